package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Lossy wraps an FS and remembers everything a power cut could still lose: file bytes written
// since the file's last Sync, and files created or renamed since their directory's last
// SyncDir. Crash undoes exactly that, leaving the files as a machine that lost power would
// find them (for the model where only fsync'ed data and fsync'ed directory entries survive).
// Tests use it to check that every acknowledged SYNC_FLUSH write survives a power cut.
//
// Writes made through memory mappings are invisible to it; the store only uses WriteAt on a
// non-OS FS. Safe for concurrent use; mu is a leaf lock.
type Lossy struct {
	FS FS

	mu      sync.Mutex
	nodes   map[string]*lossyNode // by current path
	created map[string]bool       // paths created since their dir's last SyncDir
	renames []lossyRename         // since the dir's last SyncDir
	crashed bool
}

type lossyNode struct {
	path string
	undo []lossyUndo // writes since the last Sync, oldest first
}

type lossyUndo struct {
	off     int64
	old     []byte // previous content of the range that existed
	sizeWas int64  // file size before the write
}

type lossyRename struct{ from, to string }

// NewLossy wraps base (nil = Default).
func NewLossy(base FS) *Lossy {
	if base == nil {
		base = Default
	}
	return &Lossy{FS: base, nodes: map[string]*lossyNode{}, created: map[string]bool{}}
}

// ErrCrashed is returned by every operation after Crash.
var ErrCrashed = errors.New("vfs: power lost")

func (l *Lossy) node(path string) *lossyNode {
	n := l.nodes[path]
	if n == nil {
		n = &lossyNode{path: path}
		l.nodes[path] = n
	}
	return n
}

type lossyFile struct {
	File
	l *Lossy
	n *lossyNode
}

func (f lossyFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.record(off, int64(len(p))); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f lossyFile) ZeroRange(off, n int64) error {
	if err := f.record(off, n); err != nil {
		return err
	}
	return f.File.ZeroRange(off, n)
}

// record saves the current content of [off, off+n) before it is overwritten.
func (f lossyFile) record(off, n int64) error {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	if f.l.crashed {
		return ErrCrashed
	}
	fi, err := f.File.Stat()
	if err != nil {
		return err
	}
	u := lossyUndo{off: off, sizeWas: fi.Size()}
	if have := min(n, fi.Size()-off); have > 0 {
		u.old = make([]byte, have)
		if _, err := f.File.ReadAt(u.old, off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	f.n.undo = append(f.n.undo, u)
	return nil
}

func (f lossyFile) Sync() error {
	f.l.mu.Lock()
	crashed := f.l.crashed
	f.l.mu.Unlock()
	if crashed {
		return ErrCrashed
	}
	if err := f.File.Sync(); err != nil {
		return err
	}
	f.l.mu.Lock()
	f.n.undo = nil
	f.l.mu.Unlock()
	return nil
}

// OpenFile implements FS.
func (l *Lossy) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	_, statErr := l.FS.Stat(name)
	file, err := l.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.crashed {
		file.Close()
		return nil, ErrCrashed
	}
	if errors.Is(statErr, os.ErrNotExist) {
		l.created[name] = true
	}
	return lossyFile{File: file, l: l, n: l.node(name)}, nil
}

// Rename implements FS.
func (l *Lossy) Rename(from, to string) error {
	if err := l.FS.Rename(from, to); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.nodes[from]; n != nil {
		delete(l.nodes, from)
		n.path = to
		l.nodes[to] = n
	}
	l.renames = append(l.renames, lossyRename{from, to})
	return nil
}

// SyncDir implements FS: entries created or renamed in name become durable.
func (l *Lossy) SyncDir(name string) error {
	if err := l.FS.SyncDir(name); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range l.created {
		if filepath.Dir(p) == filepath.Clean(name) {
			delete(l.created, p)
		}
	}
	kept := l.renames[:0]
	for _, r := range l.renames {
		if filepath.Dir(r.to) != filepath.Clean(name) {
			kept = append(kept, r)
		}
	}
	l.renames = kept
	return nil
}

// Crash simulates the power cut: un-synced writes are undone (newest first), renames whose
// directory was not synced are reverted and files whose creation was not synced are removed.
// Every later operation fails with ErrCrashed. Call it after the store stopped writing.
func (l *Lossy) Crash() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.crashed = true
	var errs []error
	for _, n := range l.nodes {
		if len(n.undo) == 0 {
			continue
		}
		f, err := os.OpenFile(n.path, os.O_RDWR, 0)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		for i := len(n.undo) - 1; i >= 0; i-- {
			u := n.undo[i]
			if len(u.old) > 0 {
				if _, err := f.WriteAt(u.old, u.off); err != nil {
					errs = append(errs, err)
				}
			}
			if fi, err := f.Stat(); err == nil && fi.Size() > u.sizeWas {
				if err := f.Truncate(u.sizeWas); err != nil {
					errs = append(errs, err)
				}
			}
		}
		n.undo = nil
		f.Close()
	}
	for i := len(l.renames) - 1; i >= 0; i-- {
		r := l.renames[i]
		if err := os.Rename(r.to, r.from); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("revert rename %s: %w", r.to, err))
		}
	}
	for p := range l.created {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Remove implements FS.
func (l *Lossy) Remove(name string) error { return l.FS.Remove(name) }

// ReadDir implements FS.
func (l *Lossy) ReadDir(name string) ([]os.DirEntry, error) { return l.FS.ReadDir(name) }

// Stat implements FS.
func (l *Lossy) Stat(name string) (os.FileInfo, error) { return l.FS.Stat(name) }

// MkdirAll implements FS.
func (l *Lossy) MkdirAll(name string, perm os.FileMode) error { return l.FS.MkdirAll(name, perm) }

// Lock implements FS.
func (l *Lossy) Lock(name string) (io.Closer, error) { return l.FS.Lock(name) }
