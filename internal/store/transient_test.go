package store

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// TestTransientPoolRing: with the transient store pool and a ring far smaller than a segment,
// concurrent puts of mixed sizes, batches larger than the ring (written around it), reads by
// offset straight after Put and segment rolls all keep the log intact: every record reads back
// byte-identical before and after a restart, in queue-offset order per queue.
func TestTransientPoolRing(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.TransientStorePoolEnable = true
	cfg.transientRingSize = 8 << 10
	s := openT(t, cfg)

	type rec struct {
		off  int64
		body []byte
	}
	var mu sync.Mutex
	byQueue := map[int32][]rec{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < 150; i++ {
				if i%25 == 24 {
					// A batch bigger than the ring: committed around it, in log order.
					var ms []*message.Ext
					for j := 0; j < 6; j++ {
						ms = append(ms, newMsg("R", int32(w), i*10+j, 2000))
					}
					rs, err := s.PutBatch(context.Background(), ms)
					if err != nil {
						t.Errorf("PutBatch: %v", err)
						return
					}
					mu.Lock()
					for j, r := range rs {
						byQueue[int32(w)] = append(byQueue[int32(w)], rec{r.CommitLogOffset, ms[j].Body})
					}
					mu.Unlock()
					continue
				}
				m := newMsg("R", int32(w), i, 100+rng.IntN(6000))
				r, err := s.Put(context.Background(), m)
				if err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				// Readable by the offset Put reported, at once.
				got, err := s.ReadMessage(r.CommitLogOffset)
				if err != nil || !bytes.Equal(got.Body, m.Body) {
					t.Errorf("ReadMessage(%d) right after Put: %v", r.CommitLogOffset, err)
					return
				}
				mu.Lock()
				byQueue[int32(w)] = append(byQueue[int32(w)], rec{r.CommitLogOffset, m.Body})
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		s.Close()
		return
	}
	check := func(s *Store, when string) {
		t.Helper()
		waitDispatched(t, s)
		for q, recs := range byQueue {
			got := getAll(t, s, "R", q)
			if len(got) != len(recs) {
				t.Fatalf("%s: queue %d has %d records, want %d", when, q, len(got), len(recs))
			}
			for i, m := range got {
				if m.CommitLogOffset != recs[i].off || !bytes.Equal(m.Body, recs[i].body) || m.QueueOffset != int64(i) {
					t.Fatalf("%s: queue %d entry %d: offset %d (want %d), queue offset %d", when, q, i, m.CommitLogOffset, recs[i].off, m.QueueOffset)
				}
			}
		}
	}
	check(s, "before restart")
	if segs := s.Stats().Segments; segs < 4 {
		t.Fatalf("only %d segments: the test should roll several", segs)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openT(t, cfg)
	defer s.Close()
	check(s, "after restart")
	t.Logf("%d queues verified, %d segments", len(byQueue), s.Stats().Segments)
}

// TestSyncFlushNoWaitIsCommitted: with SYNC_FLUSH a put with WAIT=false returns at once and
// is still committed from the ring and dispatched promptly (not at the flusher's 10 s safety
// tick), for single puts and batches alike.
func TestSyncFlushNoWaitIsCommitted(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.FlushDiskType = SyncFlush
	s := openT(t, cfg)
	defer s.Close()
	m := newMsg("NW", 0, 0, 100)
	m.SetProperty(message.PropertyWaitStoreMsgOK, "false")
	res, err := s.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitDispatched(ctx, res.CommitLogOffset+int64(res.Size)); err != nil {
		t.Fatalf("a WAIT=false put was not committed: %v", err)
	}
	b := []*message.Ext{newMsg("NW", 0, 1, 100), newMsg("NW", 0, 2, 100)}
	for _, m := range b {
		m.SetProperty(message.PropertyWaitStoreMsgOK, "false")
	}
	rs, err := s.PutBatch(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	last := rs[len(rs)-1]
	if err := s.WaitDispatched(ctx, last.CommitLogOffset+int64(last.Size)); err != nil {
		t.Fatalf("a WAIT=false batch was not committed: %v", err)
	}
	if got := len(getAll(t, s, "NW", 0)); got != 3 {
		t.Fatalf("%d readable, want 3", got)
	}
}
