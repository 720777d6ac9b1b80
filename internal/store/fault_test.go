package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/store/vfs"

	"golang.org/x/sys/unix"
)

func commitLogRule(op vfs.Op, err error) vfs.Rule {
	return func(o vfs.Op, path string) error {
		if o == op && strings.Contains(path, "commitlog") {
			return err
		}
		return nil
	}
}

// putConcurrently puts n messages of 100 bytes (sequence 1..n) to topic queue 0 from n
// goroutines at once and returns each put's error.
func putConcurrently(s *Store, topic string, n int) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = s.Put(context.Background(), newMsg(topic, 0, i+1, 100))
		}(i)
	}
	wg.Wait()
	return errs
}

// TestFsyncErrorFailsWaitersAndStopsWrites: an fdatasync error is returned to every put it
// covered, later puts are refused, nothing claims durability, reads continue, and a restart
// recovers a consistent store.
func TestFsyncErrorFailsWaitersAndStopsWrites(t *testing.T) {
	dir := t.TempDir()
	ffs := vfs.NewFaulty(nil)
	cfg := testConfig(dir)
	cfg.FS = ffs
	cfg.FlushDiskType = SyncFlush
	s := openT(t, cfg)
	okRes := put(t, s, newMsg("F", 0, 0, 100))
	ffs.SetRule(commitLogRule(vfs.OpSync, syscall.EIO))
	errs := putConcurrently(s, "F", 8)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("put %d acknowledged although fdatasync failed", i)
		}
		if !errors.Is(err, ErrNotWritable) {
			t.Fatalf("put %d: %v, want ErrNotWritable", i, err)
		}
	}
	if ffs.Injected(vfs.OpSync) == 0 {
		t.Fatal("no fsync fault injected")
	}
	ffs.SetRule(nil)
	// Sticky: even with the disk healthy again, no later put is accepted.
	if _, err := s.Put(context.Background(), newMsg("F", 0, 99, 10)); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("put after failure: %v", err)
	}
	if s.Stats().Writable {
		t.Fatal("Stats reports writable")
	}
	if s.Stats().FlushedOffset > okRes.CommitLogOffset+int64(okRes.Size) {
		t.Fatal("flushed offset advanced past the failed fdatasync")
	}
	waitDispatched(t, s)
	if m, err := s.ReadMessage(okRes.CommitLogOffset); err != nil || m.Body[0] != 'm' {
		t.Fatalf("read after failure: %v", err)
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close after an I/O failure reported a clean shutdown")
	}
	if _, err := os.Stat(filepath.Join(dir, "abort")); err != nil {
		t.Fatal("abort marker removed after an unclean shutdown")
	}
	cfg.FS = nil
	s = openT(t, cfg)
	defer s.Close()
	// The unacknowledged messages may survive (they reached the page cache), but the store
	// must be consistent: queue entries == records.
	if n := countRecords(t, s); n != s.MaxOffset("F", 0) {
		t.Fatalf("%d records, %d queue entries", n, s.MaxOffset("F", 0))
	}
	put(t, s, newMsg("F", 0, 100, 10))
}

// TestWriteErrorsLeaveNoPartialRecord: failed and torn pwrites surface as errors; after a
// restart the log ends at the last complete record.
func TestWriteErrorsLeaveNoPartialRecord(t *testing.T) {
	for _, fault := range []error{syscall.ENOSPC, vfs.ErrTornWrite} {
		t.Run(fault.Error(), func(t *testing.T) {
			dir := t.TempDir()
			ffs := vfs.NewFaulty(nil)
			cfg := testConfig(dir)
			cfg.FS = ffs
			s := openT(t, cfg)
			var last PutResult
			for i := 0; i < 5; i++ {
				last = put(t, s, newMsg("W", 0, i, 500))
			}
			// Everything so far is written out (with the transient pool a commit covering
			// these and the failing put would fail for all of them: never durable, so lost).
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.WaitDispatched(ctx, last.CommitLogOffset+int64(last.Size)); err != nil {
				t.Fatal(err)
			}
			ffs.SetRule(commitLogRule(vfs.OpWrite, fault))
			_, err := s.Put(context.Background(), newMsg("W", 0, 5, 500))
			if testTransientPool {
				// Staged in the ring, the put succeeds (as RocketMQ's transient pool does) and
				// the failure surfaces when the committer writes it: the store turns read-only.
				if err != nil && !errors.Is(err, ErrNotWritable) {
					t.Fatalf("put with a failing write: %v", err)
				}
				deadline := time.Now().Add(10 * time.Second)
				for s.Stats().Writable {
					if time.Now().After(deadline) {
						t.Fatal("the failed commit did not make the store read-only")
					}
					time.Sleep(time.Millisecond)
				}
			} else if !errors.Is(err, ErrNotWritable) {
				t.Fatalf("put with a failing write: %v", err)
			}
			ffs.SetRule(nil)
			if _, err := s.Put(context.Background(), newMsg("W", 0, 6, 500)); !errors.Is(err, ErrNotWritable) {
				t.Fatalf("put after a failed write: %v", err)
			}
			if got := len(getAll(t, s, "W", 0)); got != 5 {
				t.Fatalf("%d readable, want 5 (the failed put must not be served)", got)
			}
			if err := s.Close(); !errors.Is(err, ErrNotWritable) {
				t.Fatalf("Close after a failed write: %v, want ErrNotWritable", err)
			}
			cfg.FS = nil
			s = openT(t, cfg)
			defer s.Close()
			end := last.CommitLogOffset + int64(last.Size)
			if s.Stats().MaxPhysicalOffset != end || s.MaxOffset("W", 0) != 5 {
				t.Fatalf("recovered end %d (want %d), queue max %d", s.Stats().MaxPhysicalOffset, end, s.MaxOffset("W", 0))
			}
			if res := put(t, s, newMsg("W", 0, 7, 10)); res.CommitLogOffset != end || res.QueueOffset != 5 {
				t.Fatalf("append after recovery: %+v", res)
			}
		})
	}
}

// TestSyncWriteErrorFailsWaiters: with SYNC_FLUSH the records are staged and written by
// the flusher's commit; a failed write is returned to every put the round covered as
// ErrNotWritable at once (not after SyncFlushTimeout), and nothing staged is served.
func TestSyncWriteErrorFailsWaiters(t *testing.T) {
	dir := t.TempDir()
	ffs := vfs.NewFaulty(nil)
	cfg := testConfig(dir)
	cfg.FS = ffs
	cfg.FlushDiskType = SyncFlush
	cfg.SyncFlushTimeout = time.Minute // a timeout would fail the test by its duration
	s := openT(t, cfg)
	ok := put(t, s, newMsg("S", 0, 0, 100))
	ffs.SetRule(commitLogRule(vfs.OpWrite, syscall.EIO))
	errs := putConcurrently(s, "S", 8)
	for i, err := range errs {
		if !errors.Is(err, ErrNotWritable) {
			t.Fatalf("put %d: %v, want ErrNotWritable", i, err)
		}
	}
	ffs.SetRule(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitDispatched(ctx, ok.CommitLogOffset+int64(ok.Size)); err != nil {
		t.Fatal(err)
	}
	if got := len(getAll(t, s, "S", 0)); got != 1 {
		t.Fatalf("%d readable, want 1 (failed puts must not be served)", got)
	}
	if err := s.Close(); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("Close after a failed write: %v, want ErrNotWritable", err)
	}
	cfg.FS = nil
	s = openT(t, cfg)
	defer s.Close()
	if end := ok.CommitLogOffset + int64(ok.Size); s.Stats().MaxPhysicalOffset != end || s.MaxOffset("S", 0) != 1 {
		t.Fatalf("recovered end %d (want %d), queue max %d", s.Stats().MaxPhysicalOffset, end, s.MaxOffset("S", 0))
	}
}

// TestAsyncFlushErrorStopsWrites: in ASYNC_FLUSH a failed background fdatasync also makes
// the store refuse puts.
func TestAsyncFlushErrorStopsWrites(t *testing.T) {
	ffs := vfs.NewFaulty(nil)
	cfg := testConfig(t.TempDir())
	cfg.FS = ffs
	s := openT(t, cfg)
	defer s.Close()
	put(t, s, newMsg("A", 0, 0, 10))
	ffs.SetRule(commitLogRule(vfs.OpSync, syscall.EIO))
	if err := s.flushOnce(); err == nil {
		t.Fatal("flush succeeded with a failing fdatasync")
	}
	if _, err := s.Put(context.Background(), newMsg("A", 0, 1, 10)); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("put after failed async flush: %v", err)
	}
	ffs.SetRule(nil)
}

// TestSegmentCreationENOSPC: running out of space while preparing a segment fails the put
// with ErrDiskFull without poisoning the store; once space is back, puts succeed.
func TestSegmentCreationENOSPC(t *testing.T) {
	ffs := vfs.NewFaulty(nil)
	cfg := testConfig(t.TempDir())
	cfg.FS = ffs
	s := openT(t, cfg)
	defer s.Close()
	ffs.SetRule(func(op vfs.Op, path string) error {
		if op == vfs.OpAllocate && strings.Contains(path, "commitlog") {
			return syscall.ENOSPC
		}
		return nil
	})
	var err error
	for i := 0; i < 400 && err == nil; i++ {
		_, err = s.Put(context.Background(), newMsg("E", 0, i, 1000))
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("want ErrDiskFull when no segment can be created, got %v", err)
	}
	ffs.SetRule(nil)
	put(t, s, newMsg("E", 0, 1000, 1000))
	waitDispatched(t, s)
	if got := getAll(t, s, "E", 0); int64(len(got)) != s.MaxOffset("E", 0) {
		t.Fatalf("queue has %d readable of %d", len(got), s.MaxOffset("E", 0))
	}
}

func TestSyncFlushTimeout(t *testing.T) {
	block := make(chan struct{})
	ffs := vfs.NewFaulty(nil)
	cfg := testConfig(t.TempDir())
	cfg.FS = ffs
	cfg.FlushDiskType = SyncFlush
	cfg.SyncFlushTimeout = 50e6 // 50ms
	s := openT(t, cfg)
	ffs.SetRule(func(op vfs.Op, path string) error {
		if op == vfs.OpSync && strings.Contains(path, "commitlog") {
			<-block // a stuck disk
		}
		return nil
	})
	res, err := s.Put(context.Background(), newMsg("T", 0, 0, 10))
	if !errors.Is(err, ErrFlushTimeout) || res.MsgID == "" {
		t.Fatalf("stuck fdatasync: res %+v err %v", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res2, err := s.Put(ctx, newMsg("T", 0, 1, 10))
	if !errors.Is(err, ErrFlushTimeout) {
		t.Fatalf("cancelled context: %v", err)
	}
	// Answered "stored, not yet durable": the put reached the file (page cache) and is
	// readable while the fdatasync is still stuck, not only staged in process memory.
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := s.WaitDispatched(wctx, res2.CommitLogOffset+int64(res2.Size)); err != nil {
		t.Fatalf("a put answered with a flush timeout is not readable: %v", err)
	}
	ffs.SetRule(nil)
	close(block)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConsumeQueueENOSPCStallsAndResumes (QA R10Q-1, R10Q-6): when a consume-queue file
// cannot reserve blocks (ENOSPC; files are sparse and reserved a chunk at a time so a full
// file system is an error, not a SIGBUS), the dispatcher stalls instead of failing the store
// for good: puts are refused with ErrDiskFull, the stored record is kept, and once space is
// back the record is dispatched, readable once, and puts are accepted again.
func TestConsumeQueueENOSPCStallsAndResumes(t *testing.T) {
	dir := t.TempDir()
	ffs := vfs.NewFaulty(nil)
	cfg := testConfig(dir)
	cfg.FS = ffs
	s := openT(t, cfg)
	defer s.Close()
	put(t, s, newMsg("A", 0, 0, 100))
	waitDispatched(t, s)
	ffs.SetRule(func(op vfs.Op, path string) error {
		switch {
		case op == vfs.OpAllocate && strings.Contains(path, "consumequeue/B/0"):
			return syscall.ENOSPC
		case op == vfs.OpOpen && strings.Contains(path, "consumequeue/C/0"):
			return syscall.EMFILE // the descriptors are exhausted (QA R10Q-1)
		}
		return nil
	})
	first := put(t, s, newMsg("B", 0, 1, 100)) // stored; its dispatch stalls
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Put(context.Background(), newMsg("A", 0, 2, 100))
		if errors.Is(err, ErrDiskFull) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("put while the dispatcher has no space: %v, want ErrDiskFull", err)
		}
		time.Sleep(5 * time.Millisecond) // the dispatcher has not met the fault yet
	}
	if s.Failed() != nil {
		t.Fatalf("ENOSPC failed the store for good: %v", s.Failed())
	}
	ffs.SetRule(nil)
	waitDispatched(t, s)
	got := getAll(t, s, "B", 0)
	if len(got) != 1 || got[0].CommitLogOffset != first.CommitLogOffset {
		t.Fatalf("after the stall queue B holds %d messages, want the stored one", len(got))
	}
	put(t, s, newMsg("A", 0, 3, 100)) // accepted again
	// The same with EMFILE on a new queue's file.
	ffs.SetRule(func(op vfs.Op, path string) error {
		if op == vfs.OpOpen && strings.Contains(path, "consumequeue/C/0") {
			return syscall.EMFILE
		}
		return nil
	})
	second := put(t, s, newMsg("C", 0, 4, 100))
	waitForCond(t, "the dispatcher stalled by EMFILE", func() bool {
		_, err := s.Put(context.Background(), newMsg("A", 0, 5, 100))
		return errors.Is(err, ErrDiskFull)
	})
	ffs.SetRule(nil)
	waitDispatched(t, s)
	if got := getAll(t, s, "C", 0); len(got) != 1 || got[0].CommitLogOffset != second.CommitLogOffset {
		t.Fatalf("after the EMFILE stall queue C holds %d messages", len(got))
	}
	if s.Failed() != nil {
		t.Fatalf("EMFILE failed the store for good: %v", s.Failed())
	}
}

func waitForCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConsumeQueueFilesReservedAhead: the blocks a consume-queue write lands in are reserved
// before the write (cqAllocChunk at a time), so a write through the mapping can never meet a
// hole on a full file system; the rest of the file stays sparse.
func TestConsumeQueueFilesReservedAhead(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MappedFileSizeConsumeQueue = 100_000 * cqEntrySize // 2 MB: larger than one chunk
	s := openT(t, cfg)
	defer s.Close()
	put(t, s, newMsg("R", 0, 0, 100))
	waitDispatched(t, s)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "consumequeue", "R", "0", segmentName(0)), &st); err != nil {
		t.Fatal(err)
	}
	if got := st.Blocks * 512; got < cqAllocChunk || got >= cfg.MappedFileSizeConsumeQueue {
		t.Fatalf("consume-queue file has %d bytes allocated, want one %d-byte chunk", got, cqAllocChunk)
	}
}

// TestOpenEmptyStoreOnFullDisk (QA R10T-2): a new store whose first segment cannot be
// preallocated (ENOSPC) opens anyway; puts answer ErrDiskFull until space is back, then
// the first put makes segment 0 and is readable.
func TestOpenEmptyStoreOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	ffs := vfs.NewFaulty(nil)
	full := func(op vfs.Op, path string) error {
		if op == vfs.OpAllocate {
			return syscall.ENOSPC
		}
		return nil
	}
	ffs.SetRule(full)
	cfg := testConfig(dir)
	cfg.FS = ffs
	s := openT(t, cfg)
	defer s.Close()
	if _, err := s.Put(context.Background(), newMsg("E", 0, 0, 100)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("put on a full disk: %v, want ErrDiskFull", err)
	}
	ffs.SetRule(nil)
	res := put(t, s, newMsg("E", 0, 1, 100))
	waitDispatched(t, s)
	if got := getAll(t, s, "E", 0); len(got) != 1 || got[0].CommitLogOffset != res.CommitLogOffset {
		t.Fatalf("after space came back queue E holds %d messages", len(got))
	}
}
