package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// File is an open file. WriteAt must write all of p or return an error; Sync is fdatasync
// (data plus the metadata needed to read it back).
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes everything written so far durable (fdatasync).
	Sync() error
	// Truncate changes the file size.
	Truncate(size int64) error
	// Allocate reserves blocks for [off, off+n) and extends the size when needed
	// (fallocate mode 0), so later writes there cannot fail for lack of space.
	Allocate(off, n int64) error
	// ZeroRange makes [off, off+n) read as zeros without changing the size.
	ZeroRange(off, n int64) error
	Stat() (os.FileInfo, error)
	// Fd returns the descriptor for memory mapping.
	Fd() uintptr
	Name() string
}

// FS is a filesystem.
type FS interface {
	// OpenFile opens name with os.OpenFile flags.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	ReadDir(name string) ([]os.DirEntry, error)
	Stat(name string) (os.FileInfo, error)
	MkdirAll(name string, perm os.FileMode) error
	// SyncDir fsyncs a directory so that entries created, renamed or removed in it survive
	// a power loss.
	SyncDir(name string) error
	// Lock takes an exclusive, non-blocking advisory lock on name (created if missing). The
	// lock is held until the returned Closer is closed or the process exits.
	Lock(name string) (io.Closer, error)
}

// ErrLocked is returned by Lock when another process (or another Lock in this process)
// holds the lock.
var ErrLocked = errors.New("vfs: lock held by another owner")

// Default is the operating-system filesystem.
var Default FS = OS{}

// OS is the real filesystem.
type OS struct{}

type osFile struct{ *os.File }

func (f osFile) Sync() error { return unix.Fdatasync(int(f.File.Fd())) }

func (f osFile) Allocate(off, n int64) error {
	if n <= 0 {
		return nil
	}
	err := unix.Fallocate(int(f.File.Fd()), 0, off, n)
	if !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	// No fallocate on this filesystem: reserve the blocks by writing zeros past the end.
	fi, serr := f.File.Stat()
	if serr != nil {
		return serr
	}
	if end := off + n; end > fi.Size() {
		return writeZeros(f, fi.Size(), end-fi.Size())
	}
	return nil
}

func (f osFile) ZeroRange(off, n int64) error {
	if n <= 0 {
		return nil
	}
	err := unix.Fallocate(int(f.File.Fd()), unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil {
		return nil
	}
	return writeZeros(f, off, n)
}

func (f osFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// writeZeros overwrites [off, off+n) with zeros in 1 MiB writes.
func writeZeros(f io.WriterAt, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		c := min(n, int64(len(buf)))
		if _, err := f.WriteAt(buf[:c], off); err != nil {
			return err
		}
		off += c
		n -= c
	}
	return nil
}

// WriteZeros overwrites [off, off+n) of f with zeros (pre-zeroing a segment so later
// writes overwrite allocated, initialised blocks in place).
func WriteZeros(f File, off, n int64) error { return writeZeros(f, off, n) }

// OpenFile implements FS.
func (OS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove implements FS.
func (OS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OS) Rename(o, n string) error { return os.Rename(o, n) }

// ReadDir implements FS.
func (OS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }

// Stat implements FS.
func (OS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// MkdirAll implements FS.
func (OS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }

// SyncDir implements FS.
func (OS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type flockCloser struct{ f *os.File }

func (c flockCloser) Close() error {
	_ = unix.Flock(int(c.f.Fd()), unix.LOCK_UN)
	return c.f.Close()
}

// Lock implements FS with flock(LOCK_EX|LOCK_NB). flock locks belong to the open file
// description, so a second Lock of the same path fails even inside one process.
func (OS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, name)
		}
		return nil, err
	}
	return flockCloser{f}, nil
}

// WriteFileAtomic replaces path with data so that after a crash the file holds either its old
// or its new content, never a mix: it writes path+".tmp", fsyncs it, renames it over path and
// fsyncs the directory. fsys nil means Default.
func WriteFileAtomic(fsys FS, path string, data []byte, perm os.FileMode) error {
	if fsys == nil {
		fsys = Default
	}
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("vfs: create %s: %w", tmp, err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		_ = fsys.Remove(tmp)
		return fmt.Errorf("vfs: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		_ = fsys.Remove(tmp)
		return fmt.Errorf("vfs: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("vfs: close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("vfs: rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("vfs: sync dir of %s: %w", path, err)
	}
	return nil
}
