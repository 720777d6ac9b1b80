package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "meta.json")
	if err := WriteFileAtomic(nil, p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(nil, p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	// A failing fsync leaves the old content and no temp file.
	f := NewFaulty(nil)
	f.SetRule(func(op Op, path string) error {
		if op == OpSync {
			return syscall.EIO
		}
		return nil
	})
	if err := WriteFileAtomic(f, p, []byte("three"), 0o644); !errors.Is(err, syscall.EIO) {
		t.Fatalf("want EIO, got %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content after failed write %q", b)
	}
	if _, err := os.Stat(p + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("temp file left behind")
	}
	if f.Injected(OpSync) != 1 {
		t.Fatalf("injected %d", f.Injected(OpSync))
	}
}

func TestFaultyTornWrite(t *testing.T) {
	f := NewFaulty(nil)
	file, err := f.OpenFile(filepath.Join(t.TempDir(), "x"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	f.SetRule(func(op Op, path string) error {
		if op == OpWrite {
			return ErrTornWrite
		}
		return nil
	})
	n, err := file.WriteAt([]byte("abcdefgh"), 0)
	if n != 4 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("torn write: n=%d err=%v", n, err)
	}
	f.SetRule(nil)
	buf := make([]byte, 8)
	m, _ := file.ReadAt(buf, 0)
	if string(buf[:m]) != "abcd" {
		t.Fatalf("on disk %q", buf[:m])
	}
}

func TestLockAndFileOps(t *testing.T) {
	dir := t.TempDir()
	l, err := Default.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Default.Lock(filepath.Join(dir, "lock")); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	l.Close()
	l2, err := Default.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Close()

	file, err := Default.OpenFile(filepath.Join(dir, "f"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if err := file.Allocate(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if fi, _ := file.Stat(); fi.Size() != 1<<20 {
		t.Fatalf("allocate size %d", fi.Size())
	}
	file.WriteAt([]byte("xxxx"), 100)
	if err := file.ZeroRange(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	file.ReadAt(b, 100)
	if string(b) != "\x00\x00\x00\x00" {
		t.Fatal("ZeroRange did not zero")
	}
	if fi, _ := file.Stat(); fi.Size() != 1<<20 {
		t.Fatal("ZeroRange changed the size")
	}
	if err := WriteZeros(file, 0, 10); err != nil || file.Sync() != nil {
		t.Fatal(err)
	}
}

func TestLossyCrashDropsUnsynced(t *testing.T) {
	dir := t.TempDir()
	l := NewLossy(nil)
	f, err := l.OpenFile(filepath.Join(dir, "a"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("durable"), 0)
	f.Sync()
	if err := l.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("LOST"), 0)  // overwrite, not synced
	f.WriteAt([]byte("-tail"), 7) // extension, not synced
	g, _ := l.OpenFile(filepath.Join(dir, "b"), os.O_RDWR|os.O_CREATE, 0o644)
	g.WriteAt([]byte("x"), 0)
	g.Sync() // data synced, directory entry not
	if err := l.Crash(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "durable" {
		t.Fatalf("after crash a = %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("file whose directory entry was never synced survived")
	}
	if _, err := l.OpenFile(filepath.Join(dir, "a"), os.O_RDWR, 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("open after crash: %v", err)
	}
}
