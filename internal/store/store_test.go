package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("empty root accepted: %v", err)
	}
	cfg.StorePathRootDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*Config){
		func(c *Config) { c.FlushDiskType = "SOMETIMES" },
		func(c *Config) { c.MappedFileSizeConsumeQueue = 30 },
		func(c *Config) { c.DeleteWhen = "25" },
		func(c *Config) { c.DiskSpaceWarningLevelRatio = 0 },
		func(c *Config) { c.MappedFileSizeCommitLog = 1 << 20; c.MaxMessageSize = 4 << 20 },
	} {
		c := cfg
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("invalid config accepted: %+v", c)
		}
	}
}

func TestPutGetAcrossSegments(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := openT(t, cfg)
	const n = 600
	var sent [4][]*message.Ext
	for i := 0; i < n; i++ {
		qid := int32(i % 4)
		m := newMsg("TopicA", qid, i, 200+i%300)
		res := put(t, s, m)
		if res.QueueOffset != int64(len(sent[qid])) {
			t.Fatalf("message %d: queue offset %d, want %d", i, res.QueueOffset, len(sent[qid]))
		}
		if res.MsgID != message.OffsetMsgID(testHost, res.CommitLogOffset) || m.CommitLogOffset != res.CommitLogOffset {
			t.Fatal("PutResult and message disagree")
		}
		sent[qid] = append(sent[qid], m.Clone())
	}
	waitDispatched(t, s)
	if st := s.Stats(); st.Segments < 3 {
		t.Fatalf("expected several 64 KiB segments, got %d", st.Segments)
	}
	check := func(s *Store) {
		t.Helper()
		for qid := int32(0); qid < 4; qid++ {
			got := getAll(t, s, "TopicA", qid)
			if len(got) != len(sent[qid]) {
				t.Fatalf("queue %d: %d messages, want %d", qid, len(got), len(sent[qid]))
			}
			for i, g := range got {
				w := sent[qid][i]
				if !bytes.Equal(g.Body, w.Body) || g.QueueOffset != w.QueueOffset || g.CommitLogOffset != w.CommitLogOffset ||
					g.StoreTimestamp != w.StoreTimestamp || g.StoreHost != testHost || !cmp.Equal(g.Properties, w.Properties) {
					t.Fatalf("queue %d message %d differs:\n got %+v\nwant %+v", qid, i, g, w)
				}
			}
			if s.MaxOffset("TopicA", qid) != int64(len(sent[qid])) || s.MinOffset("TopicA", qid) != 0 {
				t.Fatalf("queue %d offsets min %d max %d", qid, s.MinOffset("TopicA", qid), s.MaxOffset("TopicA", qid))
			}
		}
	}
	check(s)
	before := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, cfg)
	defer s.Close()
	if after := s.Stats(); after.MaxPhysicalOffset != before.MaxPhysicalOffset {
		t.Fatalf("max offset after reopen %d, before %d", after.MaxPhysicalOffset, before.MaxPhysicalOffset)
	}
	check(s)
	// Appends continue the queues.
	res := put(t, s, newMsg("TopicA", 1, 9999, 10))
	if res.QueueOffset != int64(len(sent[1])) {
		t.Fatalf("queue offset after reopen %d, want %d", res.QueueOffset, len(sent[1]))
	}
	if diff := cmp.Diff([]string{"TopicA"}, s.Topics()); diff != "" {
		t.Fatal(diff)
	}
	if diff := cmp.Diff([]int32{0, 1, 2, 3}, s.QueueIDs("TopicA")); diff != "" {
		t.Fatal(diff)
	}
}

func TestGetStatuses(t *testing.T) {
	s := openT(t, testConfig(t.TempDir()))
	defer s.Close()
	r, err := s.Get("Nope", 0, 5, 10, 1<<20, nil)
	if err != nil || r.Status != NoMessageInQueue || r.NextBeginOffset != 0 {
		t.Fatalf("unknown queue: %+v %v", r, err)
	}
	for i := 0; i < 10; i++ {
		put(t, s, newMsg("T", 0, i, 100))
	}
	waitDispatched(t, s)
	cases := []struct {
		off    int64
		status GetStatus
		next   int64
		n      int
	}{
		{0, Found, 4, 4},
		{8, Found, 10, 2},
		{10, OffsetOverflowOne, 10, 0},
		{15, OffsetOverflowBadly, 10, 0},
	}
	for _, c := range cases {
		r, err := s.Get("T", 0, c.off, 4, 1<<20, nil)
		if err != nil || r.Status != c.status || r.NextBeginOffset != c.next || len(r.Records) != c.n {
			t.Errorf("Get(off=%d) = %v next %d n %d, want %v next %d n %d", c.off, r.Status, r.NextBeginOffset, len(r.Records), c.status, c.next, c.n)
		}
		if r.MinOffset != 0 || r.MaxOffset != 10 {
			t.Errorf("min/max %d/%d", r.MinOffset, r.MaxOffset)
		}
		r.Release()
	}
	// maxBytes: the first message always fits, then the budget applies.
	r, _ = s.Get("T", 0, 0, 10, 1, nil)
	if len(r.Records) != 1 || r.NextBeginOffset != 1 {
		t.Fatalf("maxBytes: %d records, next %d", len(r.Records), r.NextBeginOffset)
	}
	r.Release()
	// Filter on tags code: tag0 is messages 0,3,6,9.
	want := message.TagsHashCode("tag0")
	r, _ = s.Get("T", 0, 1, 10, 1<<20, func(c int64) bool { return c == want })
	if r.Status != Found || len(r.Records) != 3 || r.Records[0].QueueOffset != 3 || r.NextBeginOffset != 10 {
		t.Fatalf("filter: %v %d records next %d", r.Status, len(r.Records), r.NextBeginOffset)
	}
	r.Release()
	r, _ = s.Get("T", 0, 1, 10, 1<<20, func(int64) bool { return false })
	if r.Status != NoMatchedMessage || r.NextBeginOffset != 10 {
		t.Fatalf("no match: %v next %d", r.Status, r.NextBeginOffset)
	}
	r.Release()
}

func TestSyncFlushConcurrentAndBatch(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.FlushDiskType = SyncFlush
	s := openT(t, cfg)
	defer s.Close()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				res, err := s.Put(context.Background(), newMsg("S", int32(w%2), i, 300))
				if err != nil {
					t.Errorf("sync put: %v", err)
					return
				}
				if f := s.Stats().FlushedOffset; f < res.CommitLogOffset+int64(res.Size) {
					t.Errorf("acked before flushed: flushed %d < end %d", f, res.CommitLogOffset+int64(res.Size))
				}
			}
		}(w)
	}
	wg.Wait()
	batch := []*message.Ext{newMsg("S", 0, 1, 10), newMsg("S", 1, 2, 10), newMsg("S", 0, 3, 10)}
	res, err := s.PutBatch(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(res); i++ {
		if res[i].CommitLogOffset != res[i-1].CommitLogOffset+int64(res[i-1].Size) {
			t.Fatal("batch not contiguous")
		}
	}
	if res[0].QueueOffset != 200 || res[1].QueueOffset != 200 || res[2].QueueOffset != 201 {
		t.Fatalf("batch queue offsets %d %d %d", res[0].QueueOffset, res[1].QueueOffset, res[2].QueueOffset)
	}
	waitDispatched(t, s)
	if got := len(getAll(t, s, "S", 0)); got != 202 {
		t.Fatalf("queue 0 has %d", got)
	}
}

func TestPutRejects(t *testing.T) {
	s := openT(t, testConfig(t.TempDir()))
	m := newMsg("T", 0, 0, 17<<10)
	if _, err := s.Put(context.Background(), m); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversize body: %v", err)
	}
	m = newMsg("T", 0, 0, 10)
	m.SetProperty("big", string(bytes.Repeat([]byte("x"), 40000)))
	if _, err := s.Put(context.Background(), m); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversize properties: %v", err)
	}
	if _, err := s.Put(context.Background(), newMsg("../evil", 0, 0, 10)); !errors.Is(err, message.ErrInvalidMessage) {
		t.Fatalf("bad topic: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), newMsg("T", 0, 0, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if _, err := s.Get("T", 0, 0, 1, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
}

func TestSecondOpenFails(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := openT(t, cfg)
	defer s.Close()
	if _, err := Open(cfg, testLogger(t)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
}

func TestReadAndQuery(t *testing.T) {
	s := openT(t, testConfig(t.TempDir()))
	defer s.Close()
	var res []PutResult
	var msgs []*message.Ext
	for i := 0; i < 300; i++ {
		m := newMsg("Q", int32(i%2), i, 50)
		res = append(res, put(t, s, m))
		msgs = append(msgs, m)
	}
	waitDispatched(t, s)
	m, err := s.ReadMessage(res[7].CommitLogOffset)
	if err != nil || !bytes.Equal(m.Body, msgs[7].Body) || m.UniqKey() != msgs[7].UniqKey() {
		t.Fatalf("ReadMessage: %v", err)
	}
	raw, err := s.ReadRecord(res[7].CommitLogOffset)
	if err != nil || len(raw) != int(res[7].Size) {
		t.Fatalf("ReadRecord: %d %v", len(raw), err)
	}
	if _, err := s.ReadMessage(res[7].CommitLogOffset + 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read at a non-record offset: %v", err)
	}
	if _, err := s.ReadMessage(1 << 40); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read past end: %v", err)
	}
	// Keys: k<i> is unique, "shared" is on every message; UNIQ_KEY is indexed too.
	got, err := s.QueryByKey("Q", "k42", 10, 0, time.Now().UnixMilli()+1000)
	if err != nil || len(got) != 1 || got[0] != res[42].CommitLogOffset {
		t.Fatalf("QueryByKey(k42) = %v %v", got, err)
	}
	got, _ = s.QueryByKey("Q", msgs[99].UniqKey(), 10, 0, time.Now().UnixMilli()+1000)
	if len(got) != 1 || got[0] != res[99].CommitLogOffset {
		t.Fatalf("QueryByKey(uniq) = %v", got)
	}
	got, _ = s.QueryByKey("Q", "shared", 500, 0, time.Now().UnixMilli()+1000)
	if len(got) != 300 {
		t.Fatalf("QueryByKey(shared) found %d (index rolls over files of 256 entries)", len(got))
	}
	got, _ = s.QueryByKey("Q", "shared", 5, 0, time.Now().UnixMilli()+1000)
	if len(got) != 5 || got[0] != res[299].CommitLogOffset {
		t.Fatalf("maxNum/newest first: %v", got)
	}
	if got, _ := s.QueryByKey("Other", "k42", 10, 0, time.Now().UnixMilli()+1000); len(got) != 0 {
		t.Fatalf("other topic: %v", got)
	}
	if got, _ := s.QueryByKey("Q", "k42", 10, 0, 1000); len(got) != 0 {
		t.Fatalf("outside time range: %v", got)
	}
	// Times.
	ts, err := s.MessageStoreTime("Q", 0, 3)
	if err != nil || ts != msgs[6].StoreTimestamp {
		t.Fatalf("MessageStoreTime = %d %v, want %d", ts, err, msgs[6].StoreTimestamp)
	}
	early, err := s.EarliestMessageTime("Q", 1)
	if err != nil || early != msgs[1].StoreTimestamp {
		t.Fatalf("EarliestMessageTime = %d %v", early, err)
	}
	if off := s.OffsetByTime("Q", 0, 0); off != 0 {
		t.Fatalf("OffsetByTime(0) = %d", off)
	}
	if off := s.OffsetByTime("Q", 0, time.Now().UnixMilli()+10000); off != 150 {
		t.Fatalf("OffsetByTime(future) = %d", off)
	}
	if off := s.OffsetByTime("Q", 0, msgs[100].StoreTimestamp); off > 50 {
		t.Fatalf("OffsetByTime(msg 100) = %d, want <= 50", off)
	}
}

func TestOnDispatchAndDeleteTopic(t *testing.T) {
	s := openT(t, testConfig(t.TempDir()))
	defer s.Close()
	type seen struct {
		DispatchEvent
		tags string
	}
	var mu sync.Mutex
	var events []seen
	s.OnDispatch(func(ev DispatchEvent) {
		tags, _ := ev.Property(message.PropertyTags) // properties are readable during the call only
		mu.Lock()
		events = append(events, seen{ev, tags})
		mu.Unlock()
	})
	for i := 0; i < 5; i++ {
		put(t, s, newMsg("D", 2, i, 10))
	}
	waitDispatched(t, s)
	mu.Lock()
	if len(events) != 5 || events[4].QueueOffset != 4 || events[0].tags != "tag0" ||
		events[1].TagsCode != message.TagsHashCode("tag1") {
		t.Fatalf("events: %+v", events)
	}
	// The entry is readable when the listener runs.
	mu.Unlock()
	if err := s.DeleteTopic("D"); err != nil {
		t.Fatal(err)
	}
	if s.MaxOffset("D", 2) != 0 || len(s.Topics()) != 0 {
		t.Fatal("topic still present")
	}
	res := put(t, s, newMsg("D", 2, 0, 10))
	if res.QueueOffset != 0 {
		t.Fatalf("queue offset after delete %d", res.QueueOffset)
	}
}

func TestWaitDispatchedContext(t *testing.T) {
	s := openT(t, testConfig(t.TempDir()))
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitDispatched(ctx, 1<<40); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDispatched beyond end: %v", err)
	}
}

func TestStatsAndWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, testConfig(dir))
	put(t, s, newMsg("T", 0, 0, 10))
	st := s.Stats()
	if !st.Writable || st.MaxPhysicalOffset == 0 || st.Segments != 1 || st.DiskUsedRatio != 0.1 {
		t.Fatalf("stats %+v", st)
	}
	s.Close()
	p := dir + "/topics.json"
	for i := 0; i < 3; i++ {
		if err := WriteFileAtomic(p, []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTagsCodeOverride(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TagsCode = func(topic string, props map[string]string) int64 {
		if topic == message.TopicSchedule {
			return 1700000000000 // e.g. the delivery time of a delayed message
		}
		return message.TagsHashCode(props[message.PropertyTags])
	}
	s := openT(t, cfg)
	defer s.Close()
	put(t, s, newMsg(message.TopicSchedule, 2, 0, 10))
	put(t, s, newMsg("Plain", 0, 1, 10))
	waitDispatched(t, s)
	r, _ := s.Get(message.TopicSchedule, 2, 0, 1, 1<<20, nil)
	if len(r.Records) != 1 || r.Records[0].TagsCode != 1700000000000 {
		t.Fatalf("override not applied: %+v", r.Records)
	}
	r.Release()
	r, _ = s.Get("Plain", 0, 0, 1, 1<<20, nil)
	if len(r.Records) != 1 || r.Records[0].TagsCode != message.TagsHashCode("tag1") {
		t.Fatalf("default tags code: %+v", r.Records)
	}
	r.Release()
}

// TestOldestStoreTime: the store time of the first record still held; none for an empty log.
func TestOldestStoreTime(t *testing.T) {
	s := openT(t, testConfig(t.TempDir()))
	defer s.Close()
	if _, ok := s.OldestStoreTime(); ok {
		t.Fatal("an empty store reports an oldest message")
	}
	first := put(t, s, newMsg("O", 0, 0, 10))
	put(t, s, newMsg("O", 0, 1, 10))
	if ts, ok := s.OldestStoreTime(); !ok || ts != first.StoreTimestamp {
		t.Fatalf("oldest %d %v, want %d", ts, ok, first.StoreTimestamp)
	}
}

// TestDeleteTopicWhilePutting (QA R12E-4): a topic deleted while a producer keeps putting to
// it (the broker auto-creates it again) keeps every put made after the last delete readable,
// before and after a reopen, and no put of the old topic lands in the new one; the delete
// itself does not fail on files of the new topic.
func TestDeleteTopicWhilePutting(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, testConfig(dir))
	t.Cleanup(func() { _ = s.Close() }) // idempotent; runs after the putter stopped
	var (
		mu           sync.Mutex
		epoch        int // even: no delete under way; odd: one is
		sure, unsure int // puts since the last delete began: surely after it; overlapping it
		stop         = make(chan struct{})
		done         = make(chan struct{})
	)
	stopPutter := sync.OnceFunc(func() { close(stop); <-done })
	t.Cleanup(stopPutter) // before the store closes, also when the test fails early
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			e := epoch
			mu.Unlock()
			if _, err := s.Put(context.Background(), newMsg("D", int32(i%2), i, 64)); err != nil {
				t.Errorf("put %d: %v", i, err)
				return
			}
			mu.Lock()
			if e == epoch && e%2 == 0 {
				sure++
			} else {
				unsure++ // it overlapped a delete: it may have landed before or after it
			}
			mu.Unlock()
		}
	}()
	for round := 0; round < 20; round++ {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			mu.Lock()
			n := sure
			mu.Unlock()
			if n >= 10 {
				break
			}
			time.Sleep(time.Millisecond) // let some puts land before the next delete (not synchronisation)
		}
		mu.Lock()
		epoch++ // odd: a delete is under way
		sure, unsure = 0, 0
		mu.Unlock()
		if err := s.DeleteTopic("D"); err != nil {
			t.Fatalf("delete %d: %v", round, err)
		}
		mu.Lock()
		epoch++ // even again: puts that start now land after the delete
		mu.Unlock()
	}
	stopPutter()
	waitDispatched(t, s)
	count := func(s *Store) int64 { return s.MaxOffset("D", 0) + s.MaxOffset("D", 1) }
	got := count(s)
	mu.Lock()
	lo, hi := int64(sure), int64(sure+unsure)
	mu.Unlock()
	if got < lo || got > hi {
		t.Fatalf("queue entries after the last delete: %d, want %d..%d", got, lo, hi)
	}
	for q := int32(0); q < 2; q++ {
		if n := s.MaxOffset("D", q); n > 0 {
			res, err := s.Get("D", q, 0, int(n), 1<<30, nil)
			if err != nil || len(res.Records) != int(n) {
				t.Fatalf("queue %d: %d records of %d (%v)", q, len(res.Records), n, err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, testConfig(dir))
	defer s2.Close()
	waitDispatched(t, s2)
	if n := count(s2); n != got {
		t.Fatalf("after reopen: %d entries, want %d", n, got)
	}
}
