package vfs

import (
	"errors"
	"io"
	"os"
	"sync"
)

// Op names an operation Faulty can fail.
type Op int

// Operations seen by a Faulty rule.
const (
	OpWrite Op = iota + 1
	OpSync
	OpOpen
	OpAllocate
	OpRename
	OpRemove
	OpSyncDir
	OpTruncate
)

func (o Op) String() string {
	switch o {
	case OpWrite:
		return "write"
	case OpSync:
		return "sync"
	case OpOpen:
		return "open"
	case OpAllocate:
		return "allocate"
	case OpRename:
		return "rename"
	case OpRemove:
		return "remove"
	case OpSyncDir:
		return "syncdir"
	case OpTruncate:
		return "truncate"
	}
	return "op?"
}

// ErrInjected is the default error of an injected fault.
var ErrInjected = errors.New("vfs: injected fault")

// ErrTornWrite, returned by a Rule for OpWrite, makes Faulty write only the first half of the
// buffer and then report io.ErrShortWrite (a torn write).
var ErrTornWrite = errors.New("vfs: injected torn write")

// Rule decides the fate of one operation on path: nil lets it through, any other error is
// returned instead of performing it (ErrTornWrite: half-performed).
type Rule func(op Op, path string) error

// Faulty wraps an FS and consults its rule before each operation. The zero rule injects
// nothing. Safe for concurrent use.
type Faulty struct {
	FS FS

	mu    sync.Mutex
	rule  Rule
	count map[Op]int
}

// NewFaulty wraps base (nil = Default).
func NewFaulty(base FS) *Faulty {
	if base == nil {
		base = Default
	}
	return &Faulty{FS: base, count: map[Op]int{}}
}

// SetRule installs r (nil removes it).
func (f *Faulty) SetRule(r Rule) {
	f.mu.Lock()
	f.rule = r
	f.mu.Unlock()
}

// Injected reports how many faults of op have been injected.
func (f *Faulty) Injected(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[op]
}

// check consults the rule outside the lock (a rule may block to simulate a stuck disk).
func (f *Faulty) check(op Op, path string) error {
	f.mu.Lock()
	rule := f.rule
	f.mu.Unlock()
	if rule == nil {
		return nil
	}
	err := rule(op, path)
	if err != nil {
		f.mu.Lock()
		f.count[op]++
		f.mu.Unlock()
	}
	return err
}

type faultyFile struct {
	File
	fs *Faulty
}

func (ff faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if err := ff.fs.check(OpWrite, ff.Name()); err != nil {
		if errors.Is(err, ErrTornWrite) {
			n, werr := ff.File.WriteAt(p[:len(p)/2], off)
			if werr != nil {
				return n, werr
			}
			return n, io.ErrShortWrite
		}
		return 0, err
	}
	return ff.File.WriteAt(p, off)
}

func (ff faultyFile) Sync() error {
	if err := ff.fs.check(OpSync, ff.Name()); err != nil {
		return err
	}
	return ff.File.Sync()
}

func (ff faultyFile) Allocate(off, n int64) error {
	if err := ff.fs.check(OpAllocate, ff.Name()); err != nil {
		return err
	}
	return ff.File.Allocate(off, n)
}

func (ff faultyFile) Truncate(size int64) error {
	if err := ff.fs.check(OpTruncate, ff.Name()); err != nil {
		return err
	}
	return ff.File.Truncate(size)
}

// OpenFile implements FS.
func (f *Faulty) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return faultyFile{File: file, fs: f}, nil
}

// Remove implements FS.
func (f *Faulty) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

// Rename implements FS.
func (f *Faulty) Rename(o, n string) error {
	if err := f.check(OpRename, n); err != nil {
		return err
	}
	return f.FS.Rename(o, n)
}

// ReadDir implements FS.
func (f *Faulty) ReadDir(name string) ([]os.DirEntry, error) { return f.FS.ReadDir(name) }

// Stat implements FS.
func (f *Faulty) Stat(name string) (os.FileInfo, error) { return f.FS.Stat(name) }

// MkdirAll implements FS.
func (f *Faulty) MkdirAll(name string, perm os.FileMode) error { return f.FS.MkdirAll(name, perm) }

// SyncDir implements FS.
func (f *Faulty) SyncDir(name string) error {
	if err := f.check(OpSyncDir, name); err != nil {
		return err
	}
	return f.FS.SyncDir(name)
}

// Lock implements FS.
func (f *Faulty) Lock(name string) (io.Closer, error) { return f.FS.Lock(name) }
