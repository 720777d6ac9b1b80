package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// copyDir copies a store directory (files only, recursively).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if fi.Name() == "lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// crashState builds a store with `good` messages covered by a clean checkpoint, then one
// more message written after it (the victim), and simulates a crash. It returns the dir, the
// victim's offset and size, and the good messages.
func crashState(t *testing.T, good int) (dir string, victim PutResult, msgs []*message.Ext) {
	dir = t.TempDir()
	cfg := testConfig(dir)
	s := openT(t, cfg)
	for i := 0; i < good; i++ {
		m := newMsg("R", int32(i%2), i, 40+i)
		put(t, s, m)
		msgs = append(msgs, m.Clone())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, cfg)
	victim = put(t, s, newMsg("R", 0, 999, 60))
	waitDispatched(t, s)
	s.abandon()
	return dir, victim, msgs
}

func segmentPath(dir string, off, segSize int64) string {
	return filepath.Join(dir, "commitlog", segmentName(off-off%segSize))
}

// verifyRecovered opens dir and checks that exactly msgs survive, the log ends at end, the
// consume queues match, and appends still work.
func verifyRecovered(t *testing.T, dir string, end int64, msgs []*message.Ext) {
	t.Helper()
	s := openT(t, testConfig(dir))
	defer s.Close()
	if got := s.Stats().MaxPhysicalOffset; got != end {
		t.Fatalf("recovered log ends at %d, want %d", got, end)
	}
	per := map[int32][]*message.Ext{}
	for _, m := range msgs {
		per[m.QueueID] = append(per[m.QueueID], m)
	}
	for qid, want := range per {
		got := getAll(t, s, "R", qid)
		if len(got) != len(want) || s.MaxOffset("R", qid) != int64(len(want)) {
			t.Fatalf("queue %d: %d messages (max offset %d), want %d", qid, len(got), s.MaxOffset("R", qid), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i].Body, want[i].Body) || got[i].CommitLogOffset != want[i].CommitLogOffset {
				t.Fatalf("queue %d message %d differs", qid, i)
			}
		}
	}
	res := put(t, s, newMsg("R", 0, 5000, 33))
	if res.CommitLogOffset != end || res.QueueOffset != int64(len(per[0])) {
		t.Fatalf("append after recovery at %d (queue offset %d), want %d (%d)", res.CommitLogOffset, res.QueueOffset, end, len(per[0]))
	}
	waitDispatched(t, s)
	if got := getAll(t, s, "R", 0); len(got) != len(per[0])+1 || got[len(got)-1].Body[0] != newMsg("R", 0, 5000, 33).Body[0] {
		t.Fatal("appended message not readable")
	}
}

// TestRecoverTornTailEveryByte cuts the last record at every byte position: recovery must
// end the log exactly before it, whatever the cut.
func TestRecoverTornTailEveryByte(t *testing.T) {
	dir, victim, msgs := crashState(t, 20)
	segSize := testConfig(dir).MappedFileSizeCommitLog
	pristine := t.TempDir()
	copyDir(t, dir, pristine)
	for cut := int64(0); cut < int64(victim.Size); cut++ {
		work := filepath.Join(t.TempDir(), "s")
		copyDir(t, pristine, work)
		seg := segmentPath(work, victim.CommitLogOffset, segSize)
		f, err := os.OpenFile(seg, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		pos := victim.CommitLogOffset%segSize + cut
		if _, err := f.WriteAt(make([]byte, int64(victim.Size)-cut), pos); err != nil {
			t.Fatal(err)
		}
		f.Close()
		verifyRecovered(t, work, victim.CommitLogOffset, msgs)
		if t.Failed() {
			t.Fatalf("cut at byte %d of %d", cut, victim.Size)
		}
	}
}

func TestRecoverCorruptTail(t *testing.T) {
	dir, victim, msgs := crashState(t, 10)
	segSize := testConfig(dir).MappedFileSizeCommitLog
	pristine := t.TempDir()
	copyDir(t, dir, pristine)
	damage := map[string]func(f *os.File, pos int64){
		"body bit flip": func(f *os.File, pos int64) {
			b := make([]byte, 1)
			f.ReadAt(b, pos+int64(victim.Size)-80)
			b[0] ^= 0x10
			f.WriteAt(b, pos+int64(victim.Size)-80)
		},
		"zeroed topic length (RocketMQ testRecover)": func(f *os.File, pos int64) {
			rec := make([]byte, victim.Size)
			f.ReadAt(rec, pos)
			var h message.RecordHeader
			if err := message.ParseRecordHeader(rec, &h); err != nil {
				t.Fatal(err)
			}
			f.WriteAt(make([]byte, 16), pos+int64(h.TopicOff-1))
		},
		"garbage after the last good record": func(f *os.File, pos int64) {
			f.WriteAt(bytes.Repeat([]byte{0xA5}, int(victim.Size)+100), pos)
		},
		"length field past the segment": func(f *os.File, pos int64) {
			f.WriteAt([]byte{0x7f, 0xff, 0xff, 0xff}, pos)
		},
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			work := filepath.Join(t.TempDir(), "s")
			copyDir(t, pristine, work)
			f, err := os.OpenFile(segmentPath(work, victim.CommitLogOffset, segSize), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			fn(f, victim.CommitLogOffset%segSize)
			f.Close()
			verifyRecovered(t, work, victim.CommitLogOffset, msgs)
		})
	}
	t.Run("intact victim survives", func(t *testing.T) {
		work := filepath.Join(t.TempDir(), "s")
		copyDir(t, pristine, work)
		s := openT(t, testConfig(work))
		defer s.Close()
		if got := s.Stats().MaxPhysicalOffset; got != victim.CommitLogOffset+int64(victim.Size) {
			t.Fatalf("intact crash state recovered to %d", got)
		}
		if s.MaxOffset("R", 0) != 6 {
			t.Fatalf("queue 0 max %d", s.MaxOffset("R", 0))
		}
	})
}

// TestRecoverRefusesDurableCorruption: damage below the checkpointed flushed offset is
// acknowledged data; the store must refuse to open instead of truncating it.
func TestRecoverRefusesDurableCorruption(t *testing.T) {
	dir, cfg, res := closedStore(t, 10, 100)
	f, err := os.OpenFile(segmentPath(dir, 0, cfg.MappedFileSizeCommitLog), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xFF}, res[3].CommitLogOffset+int64(res[3].Size)-70) // inside body of message 3
	f.Close()
	// A clean restart scans nothing before the checkpointed dispatch offset; move it back
	// (keeping the flushed offset) so that recovery scans the damaged region.
	cp, err := readCheckpoint(vfs.Default, filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	cp.dispatched = 0
	if err := writeCheckpoint(vfs.Default, filepath.Join(dir, "checkpoint"), cp); err != nil {
		t.Fatal(err)
	}
	_, err = Open(cfg, testLogger(t))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with corruption below the durable checkpoint: %v", err)
	}
	// The data was not touched: the first three messages are still on disk.
	b, _ := os.ReadFile(segmentPath(dir, 0, cfg.MappedFileSizeCommitLog))
	if _, _, err := message.DecodeRecord(b[res[2].CommitLogOffset:], true); err != nil {
		t.Fatalf("refused open modified the log: %v", err)
	}
}

// TestRecoverCheckpointLost: a missing or corrupt checkpoint makes recovery scan from the
// first segment; nothing is lost and nothing is dispatched twice.
func TestRecoverCheckpointLost(t *testing.T) {
	for _, mode := range []string{"zeroed", "removed", "stale"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			s := openT(t, cfg)
			cp := filepath.Join(dir, "checkpoint")
			var old []byte
			for i := 0; i < 400; i++ {
				put(t, s, newMsg("R", int32(i%2), i, 300))
				if i == 100 {
					waitDispatched(t, s)
					if err := s.writeCheckpoint(); err != nil {
						t.Fatal(err)
					}
					old, _ = os.ReadFile(cp)
				}
			}
			waitDispatched(t, s)
			if err := s.writeCheckpoint(); err != nil {
				t.Fatal(err)
			}
			end := s.Stats().MaxPhysicalOffset
			s.abandon()
			switch mode {
			case "zeroed":
				os.WriteFile(cp, make([]byte, checkpointSize), 0o644)
			case "removed":
				os.Remove(cp)
			case "stale": // rolled back to an older, valid checkpoint
				os.WriteFile(cp, old, 0o644)
			}
			s = openT(t, cfg)
			defer s.Close()
			if s.Stats().MaxPhysicalOffset != end || s.MaxOffset("R", 0) != 200 || s.MaxOffset("R", 1) != 200 {
				t.Fatalf("after recovery: end %d (want %d), max %d/%d", s.Stats().MaxPhysicalOffset, end, s.MaxOffset("R", 0), s.MaxOffset("R", 1))
			}
			if n := len(getAll(t, s, "R", 1)); n != 200 {
				t.Fatalf("queue 1 has %d", n)
			}
			if got, _ := s.QueryByKey("R", "shared", 1000, 0, 1<<62); len(got) != 400 {
				t.Fatalf("index holds %d distinct records for the shared key, want 400", len(got))
			}
		})
	}
}

// TestRecoverRebuildsConsumeQueues: consume queues deleted while the log survives are
// rebuilt from the commit log.
func TestRecoverRebuildsConsumeQueues(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	s := openT(t, cfg)
	for i := 0; i < 300; i++ {
		put(t, s, newMsg("R", int32(i%3), i, 200))
	}
	s.Close()
	os.RemoveAll(filepath.Join(dir, "consumequeue"))
	os.Remove(filepath.Join(dir, "checkpoint"))
	s = openT(t, cfg)
	defer s.Close()
	for q := int32(0); q < 3; q++ {
		if got := getAll(t, s, "R", q); len(got) != 100 || got[99].QueueOffset != 99 {
			t.Fatalf("queue %d rebuilt with %d messages", q, len(got))
		}
	}
	if got, _ := s.QueryByKey("R", "k7", 5, 0, 1<<62); len(got) != 1 {
		t.Fatalf("index after rebuild: %v", got)
	}
}

func TestCleanVsAbnormalRestartAgree(t *testing.T) {
	clean, crashed := t.TempDir(), t.TempDir()
	var ends [2]int64
	for i, dir := range []string{clean, crashed} {
		s := openT(t, testConfig(dir))
		for j := 0; j < 250; j++ {
			put(t, s, newMsg("R", int32(j%4), j, 100+j))
		}
		waitDispatched(t, s)
		if i == 0 {
			s.Close()
		} else {
			s.abandon()
		}
		if _, err := os.Stat(filepath.Join(dir, "abort")); (err == nil) != (i == 1) {
			t.Fatalf("abort marker presence wrong after %s shutdown", map[int]string{0: "clean", 1: "crash"}[i])
		}
		s = openT(t, testConfig(dir))
		ends[i] = s.Stats().MaxPhysicalOffset
		for q := int32(0); q < 4; q++ {
			if s.MaxOffset("R", q) != 62+int64(boolInt(q < 2)) {
				t.Fatalf("queue %d max %d", q, s.MaxOffset("R", q))
			}
		}
		s.Close()
	}
	if ends[0] != ends[1] {
		t.Fatalf("clean end %d, abnormal end %d", ends[0], ends[1])
	}
	_ = context.Background()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRecoverQuarantinesIntactTail (QA R6F-1): a damaged record followed by intact records
// (a bit flip in the middle of acknowledged data, not a torn tail) still truncates the log
// there, as Apache does, but every byte cut is first saved: the rest of the damaged segment
// to a file, the later segments moved, all under <root>/quarantine. Without a checkpoint
// (the whole log is scanned) and with one whose flushed offset lags the damage.
func TestRecoverQuarantinesIntactTail(t *testing.T) {
	for _, variant := range []string{"checkpoint lags", "checkpoint lost", "below checkpoint, recoverTruncateCorrupt"} {
		t.Run(variant, func(t *testing.T) {
			dir, cfg, res := closedStore(t, 60, 2500) // ~2.5 segments of 64 KiB
			victim := res[10]
			segSize := cfg.MappedFileSizeCommitLog
			segFile := segmentPath(dir, victim.CommitLogOffset, segSize)
			orig, err := os.ReadFile(segFile)
			if err != nil {
				t.Fatal(err)
			}
			later, _ := os.ReadDir(filepath.Join(dir, "commitlog"))
			f, err := os.OpenFile(segFile, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			pos := victim.CommitLogOffset%segSize + int64(victim.Size) - 100 // inside the body
			f.WriteAt([]byte{orig[pos] ^ 0x01}, pos)
			f.Close()
			cpPath := filepath.Join(dir, "checkpoint")
			switch variant {
			case "checkpoint lags":
				cp, err := readCheckpoint(vfs.Default, cpPath)
				if err != nil {
					t.Fatal(err)
				}
				cp.dispatched, cp.flushed = res[5].CommitLogOffset, res[5].CommitLogOffset
				if err := writeCheckpoint(vfs.Default, cpPath, cp); err != nil {
					t.Fatal(err)
				}
			case "checkpoint lost":
				if err := os.Remove(cpPath); err != nil {
					t.Fatal(err)
				}
			default:
				cp, err := readCheckpoint(vfs.Default, cpPath)
				if err != nil {
					t.Fatal(err)
				}
				cp.dispatched = 0
				if err := writeCheckpoint(vfs.Default, cpPath, cp); err != nil {
					t.Fatal(err)
				}
				cfg.RecoverTruncateCorrupt = true
			}
			var logs bytes.Buffer
			s2, err := Open(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s2.Close()
			if got := s2.Stats().MaxPhysicalOffset; got != victim.CommitLogOffset {
				t.Fatalf("log ends at %d, want the damaged record's offset %d", got, victim.CommitLogOffset)
			}
			if !strings.Contains(logs.String(), "quarantine") || !strings.Contains(logs.String(), "level=ERROR") {
				t.Fatalf("no ERROR naming the quarantine:\n%s", logs.String())
			}
			qs, err := os.ReadDir(filepath.Join(dir, "quarantine"))
			if err != nil || len(qs) != 1 {
				t.Fatalf("quarantine dir: %v %v", qs, err)
			}
			qdir := filepath.Join(dir, "quarantine", qs[0].Name())
			tail, err := os.ReadFile(filepath.Join(qdir, fmt.Sprintf("%s.from-%d", filepath.Base(segFile), victim.CommitLogOffset)))
			if err != nil {
				t.Fatal(err)
			}
			from := victim.CommitLogOffset % segSize
			want := bytes.TrimRight(orig[from:], "\x00")
			want = append([]byte(nil), want...)
			want[pos-from] ^= 0x01 // the flipped byte, as found on disk
			if !bytes.Equal(tail, want) {
				t.Fatalf("quarantined tail: %d bytes, want the %d bytes from the damage to the segment's data end", len(tail), len(want))
			}
			// Every later segment was moved, not deleted.
			moved := 0
			for _, e := range later {
				start, err := strconv.ParseInt(e.Name(), 10, 64)
				if err != nil || start <= victim.CommitLogOffset {
					continue
				}
				if _, err := os.Stat(filepath.Join(qdir, e.Name())); err != nil {
					t.Errorf("later segment %s not in quarantine: %v", e.Name(), err)
				}
				moved++
			}
			if moved == 0 {
				t.Fatal("test setup: no segment after the damaged one")
			}
			// Records before the damage are served, appends continue at the damage.
			if got := getAll(t, s2, "R", 0); len(got) != 10 {
				t.Fatalf("%d messages survive, want 10", len(got))
			}
			if r := put(t, s2, newMsg("R", 0, 99, 10)); r.CommitLogOffset != victim.CommitLogOffset {
				t.Fatalf("append at %d", r.CommitLogOffset)
			}
		})
	}
}

// TestChangedSegmentSizeRefused: a commit log written with one mappedFileSizeCommitLog is
// not opened under another (larger: it would extend the last segment and map offsets to the
// wrong files; smaller: segments longer than configured), with an error naming the size on
// disk; the original size still opens it with every message intact.
func TestChangedSegmentSizeRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MappedFileSizeCommitLog = 128 << 10
	s := openT(t, cfg)
	var want []PutResult
	for i := range 80 { // ~3 segments of 128 KiB
		want = append(want, put(t, s, newMsg("T", 0, i, 4000)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{cfg.MappedFileSizeCommitLog * 2, cfg.MappedFileSizeCommitLog / 2} {
		other := cfg
		other.MappedFileSizeCommitLog = size
		s2, err := Open(other, testLogger(t))
		if err == nil {
			s2.Close()
			t.Fatalf("size %d: Open succeeded on a log of %d-byte segments", size, cfg.MappedFileSizeCommitLog)
		}
		if !errors.Is(err, ErrSegmentSize) || !strings.Contains(err.Error(), fmt.Sprintf("mappedFileSizeCommitLog=%d", cfg.MappedFileSizeCommitLog)) {
			t.Fatalf("size %d: error %v, want ErrSegmentSize naming the size on disk", size, err)
		}
	}
	s = openT(t, cfg)
	defer s.Close()
	waitDispatched(t, s)
	got := getAll(t, s, "T", 0)
	if len(got) != len(want) {
		t.Fatalf("after the refused opens: %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.CommitLogOffset != want[i].CommitLogOffset {
			t.Fatalf("message %d at %d, want %d", i, m.CommitLogOffset, want[i].CommitLogOffset)
		}
	}
}
