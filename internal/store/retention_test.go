package store

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

type fakeUsage struct{ v atomic.Uint64 }

func (f *fakeUsage) set(r float64) { f.v.Store(math.Float64bits(r)) }
func (f *fakeUsage) get(string) (float64, error) {
	return math.Float64frombits(f.v.Load()), nil
}

func fillSegments(t *testing.T, s *Store, topic string, segments int) int {
	t.Helper()
	n := 0
	for s.Stats().Segments < segments {
		put(t, s, newMsg(topic, 0, n, 1000))
		n++
	}
	waitDispatched(t, s)
	return n
}

func TestDiskFullRejectsAndRecovers(t *testing.T) {
	usage := &fakeUsage{}
	usage.set(0.5)
	cfg := testConfig(t.TempDir())
	cfg.DiskUsage = usage.get
	s := openT(t, cfg)
	defer s.Close()
	res := put(t, s, newMsg("D", 0, 0, 100))
	usage.set(0.91)
	s.cleanOnce(time.Now())
	if _, err := s.Put(context.Background(), newMsg("D", 0, 1, 100)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("put at 91%%: %v", err)
	}
	if _, err := s.PutBatch(context.Background(), []*message.Ext{newMsg("D", 0, 1, 100)}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("batch at 91%%: %v", err)
	}
	st := s.Stats()
	if !st.DiskFull || st.Writable || st.DiskUsedRatio != 0.91 {
		t.Fatalf("stats at 91%%: %+v", st)
	}
	waitDispatched(t, s)
	if m, err := s.ReadMessage(res.CommitLogOffset); err != nil || m.QueueOffset != 0 {
		t.Fatalf("reads must continue when the disk is full: %v", err)
	}
	if got := getAll(t, s, "D", 0); len(got) != 1 {
		t.Fatalf("get when disk full: %d", len(got))
	}
	usage.set(0.6)
	s.cleanOnce(time.Now())
	if res := put(t, s, newMsg("D", 0, 2, 100)); res.QueueOffset != 1 {
		t.Fatalf("put after recovery from disk full: %+v", res)
	}
}

func TestRetentionExpiredAndForced(t *testing.T) {
	usage := &fakeUsage{}
	usage.set(0.5)
	cfg := testConfig(t.TempDir())
	cfg.DiskUsage = usage.get
	cfg.FileReservedTime = time.Hour
	cfg.DeleteWhen = "04"
	s := openT(t, cfg)
	defer func() { s.Close() }()
	n := fillSegments(t, s, "T", 6)
	segsBefore := s.Stats().Segments

	// Not expired, not the deletion hour, low usage: nothing happens.
	if d := s.cleanOnce(time.Now()); d != 0 {
		t.Fatalf("deleted %d unexpired segments", d)
	}
	// Expired but outside the deletion hour and below 75%: kept.
	later := time.Now().Add(2 * time.Hour)
	if later.Hour() == 4 {
		later = later.Add(time.Hour)
	}
	if d := s.cleanOnce(later); d != 0 {
		t.Fatalf("deleted %d segments outside DeleteWhen", d)
	}
	// A reader holds the oldest segment's bytes across the deletion.
	held, err := s.Get("T", 0, 0, 1, 1<<20, nil)
	if err != nil || len(held.Records) != 1 {
		t.Fatal(err)
	}
	heldCopy := bytes.Clone(held.Records[0].Data)

	// Above 75%: expired segments go at any hour, never the active one.
	usage.set(0.8)
	if d := s.cleanOnce(later); d != segsBefore-1 {
		t.Fatalf("deleted %d expired segments, want %d", d, segsBefore-1)
	}
	if st := s.Stats(); st.Segments != 1 || st.MinPhysicalOffset == 0 {
		t.Fatalf("after expiry: %+v", st)
	}
	if !bytes.Equal(held.Records[0].Data, heldCopy) {
		t.Fatal("a held record changed after its segment was deleted")
	}
	held.Release()
	min := s.MinOffset("T", 0)
	if min == 0 || s.MaxOffset("T", 0) != int64(n) {
		t.Fatalf("consume queue not trimmed: min %d max %d", min, s.MaxOffset("T", 0))
	}
	r, _ := s.Get("T", 0, 0, 10, 1<<20, nil)
	if r.Status != OffsetTooSmall || r.NextBeginOffset != min {
		t.Fatalf("get below min: %v next %d", r.Status, r.NextBeginOffset)
	}
	r.Release()
	if got := getAll(t, s, "T", 0); int64(len(got)) != int64(n)-min {
		t.Fatalf("%d readable after trim, want %d", len(got), int64(n)-min)
	}

	// Forced: above 85% even unexpired segments go, oldest first, one per round.
	usage.set(0.5)
	fillSegments(t, s, "T", 4)
	oldest := s.Stats().MinPhysicalOffset
	usage.set(0.87)
	if d := s.cleanOnce(time.Now()); d != 1 {
		t.Fatalf("forced round deleted %d, want 1", d)
	}
	if s.Stats().MinPhysicalOffset != oldest+cfg.MappedFileSizeCommitLog {
		t.Fatal("forced deletion did not remove the oldest segment")
	}
	for i := 0; i < 10; i++ {
		s.cleanOnce(time.Now())
	}
	if st := s.Stats(); st.Segments != 1 {
		t.Fatalf("forced deletion left %d segments (only the active one may stay)", st.Segments)
	}
	put(t, s, newMsg("T", 0, 0, 10))
	waitDispatched(t, s)

	// Restart: min offsets are recomputed from the trimmed files.
	minBefore, maxBefore := s.MinOffset("T", 0), s.MaxOffset("T", 0)
	s.Close()
	s = openT(t, cfg)
	if s.MinOffset("T", 0) != minBefore || s.MaxOffset("T", 0) != maxBefore {
		t.Fatalf("after restart min/max %d/%d, want %d/%d", s.MinOffset("T", 0), s.MaxOffset("T", 0), minBefore, maxBefore)
	}
}

// TestSetRetentionAtRunTime: shortening FileReservedTime and moving DeleteWhen to the
// current hour on a running store makes the next round delete what is now expired; bad
// values are refused and change nothing.
func TestSetRetentionAtRunTime(t *testing.T) {
	usage := &fakeUsage{}
	usage.set(0.1)
	cfg := testConfig(t.TempDir())
	cfg.DiskUsage = usage.get
	cfg.FileReservedTime = 72 * time.Hour
	s := openT(t, cfg)
	defer s.Close()
	fillSegments(t, s, "R", 4)
	before := s.Stats().Segments
	now := time.Now().Add(2 * time.Hour) // segments are 2 h old
	if d := s.cleanOnce(now); d != 0 {
		t.Fatalf("deleted %d segments within 72 h", d)
	}
	if err := s.SetRetention(time.Hour, "x", 75); err == nil {
		t.Fatal("a bad deleteWhen was accepted")
	}
	if err := s.SetRetention(0, "04", 75); err == nil {
		t.Fatal("fileReservedTime 0 was accepted")
	}
	if d := s.cleanOnce(now); d != 0 {
		t.Fatalf("a refused SetRetention changed the policy: deleted %d", d)
	}
	if err := s.SetRetention(time.Hour, strconv.Itoa(now.Hour()), 75); err != nil {
		t.Fatal(err)
	}
	if d := s.cleanOnce(now); d != before-1 {
		t.Fatalf("deleted %d segments after shortening retention, want %d", d, before-1)
	}
}

// TestUsedRatio (QA R9O-2): the disk usage ratio counts root-reserved blocks as unavailable,
// as df and RocketMQ do; the figures are statfs of the machine the finding was made on.
func TestUsedRatio(t *testing.T) {
	for _, c := range []struct {
		blocks, free, avail uint64
		want                float64
	}{
		{66053021, 47144647, 4966942, 0.792}, // df: 80 %; (blocks-free)/blocks would say 0.286
		{1000, 1000, 950, 0},
		{1000, 0, 0, 1},
		{1000, 500, 500, 0.5},
		{0, 0, 0, 0},
	} {
		if got := usedRatio(c.blocks, c.free, c.avail); math.Abs(got-c.want) > 0.001 {
			t.Errorf("usedRatio(%d, %d, %d) = %.4f, want %.3f", c.blocks, c.free, c.avail, got, c.want)
		}
	}
}
