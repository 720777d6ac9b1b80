package store

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func FuzzCheckpointDecode(f *testing.F) {
	f.Add(checkpoint{flushed: 100, dispatched: 50, timestamp: 1}.encode())
	f.Add(make([]byte, checkpointSize))
	f.Add([]byte("RKCP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCheckpoint(b)
		if err != nil {
			return
		}
		if c.dispatched > c.flushed || c.flushed < 0 {
			t.Fatalf("accepted inconsistent checkpoint %+v", c)
		}
		if !bytes.Equal(c.encode(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

var fuzzBase struct {
	once sync.Once
	dir  string
	end  int64
	err  error
}

// fuzzPristine builds, once per process, a store with 6 messages covered by a checkpoint.
func fuzzPristine(t *testing.T) (string, int64) {
	fuzzBase.once.Do(func() {
		dir, err := os.MkdirTemp("", "rocketry-fuzz-recover")
		if err != nil {
			fuzzBase.err = err
			return
		}
		s, err := Open(testConfig(dir), nil)
		if err != nil {
			fuzzBase.err = err
			return
		}
		for i := 0; i < 6; i++ {
			if _, err := s.Put(t.Context(), newMsg("Z", int32(i%2), i, 50)); err != nil {
				fuzzBase.err = err
			}
		}
		fuzzBase.end = s.Stats().MaxPhysicalOffset
		fuzzBase.err = s.Close()
		fuzzBase.dir = dir
	})
	if fuzzBase.err != nil {
		t.Fatal(fuzzBase.err)
	}
	return fuzzBase.dir, fuzzBase.end
}

// FuzzRecoverTail writes arbitrary bytes after the last record (a crash left garbage
// there) and opens the store: recovery must not fail or panic, must keep every earlier
// record, and must leave consume queues that agree with the log.
func FuzzRecoverTail(f *testing.F) {
	m := newMsg("Z", 0, 7, 10)
	rec, _ := message.AppendRecord(nil, m)
	f.Add(rec)
	f.Add(rec[:len(rec)/2])
	f.Add(message.AppendBlank(nil, 12))
	f.Add(bytes.Repeat([]byte{0xFF}, 300))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, tail []byte) {
		if len(tail) > 4096 {
			tail = tail[:4096]
		}
		pristine, end := fuzzPristine(t)
		dir := filepath.Join(t.TempDir(), "s")
		copyDir(t, pristine, dir)
		seg := filepath.Join(dir, "commitlog", segmentName(0))
		fh, err := os.OpenFile(seg, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fh.WriteAt(tail, end)
		fh.Close()
		os.WriteFile(filepath.Join(dir, "abort"), nil, 0o644)
		s, err := Open(testConfig(dir), nil)
		if err != nil {
			t.Fatalf("open with garbage after the log: %v", err)
		}
		defer s.Close()
		if got := s.Stats().MaxPhysicalOffset; got < end {
			t.Fatalf("recovery cut acknowledged records: end %d < %d", got, end)
		}
		if n, q := countRecords(t, s), s.MaxOffset("Z", 0)+s.MaxOffset("Z", 1); n != q && len(s.Topics()) == 1 {
			t.Fatalf("%d records, %d queue entries", n, q)
		}
		if got := len(getAll(t, s, "Z", 0)) + len(getAll(t, s, "Z", 1)); got < 6 {
			t.Fatalf("only %d of the 6 records readable", got)
		}
	})
}
