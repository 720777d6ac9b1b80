package timer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Dir = dir
	c.SlotWidth = time.Second
	c.Lookahead = 500 * time.Millisecond
	return c
}

// running is a service started in the background.
type running struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config, st *memStore, deliver DeliverFunc) *running {
	t.Helper()
	if deliver == nil {
		deliver = st.deliver
	}
	svc, err := New(cfg, st, deliver, func(string) int { return 4 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.notify = func(topic string) {
		if topic == Topic {
			svc.Notify()
		}
	}
	st.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	return r
}

// stop cancels Run, waits for it and closes the service.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Close(); err != nil {
		t.Fatal(err)
	}
}

// crash stops the service the way a kill would: no final checkpoint.
func (r *running) crash(t *testing.T) {
	t.Helper()
	r.svc.crashed.Store(true)
	r.stop(t)
}

func TestServiceDeliversOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		r := start(t, testConfig(t.TempDir()), st, nil)
		defer r.stop(t)
		t0 := time.Now()
		sendTimer(r.svc, st, "T", "two", map[string]string{message.PropertyTimerDelaySec: "2"})
		sendTimer(r.svc, st, "T", "five", map[string]string{message.PropertyTimerDelayMS: "5000"})
		sendTimer(r.svc, st, "T", "abs", map[string]string{message.PropertyTimerDeliverMS: strconv.FormatInt(t0.UnixMilli()+3500, 10)})
		if _, taken, _ := sendTimer(r.svc, st, "T", "past", map[string]string{message.PropertyTimerDeliverMS: strconv.FormatInt(t0.UnixMilli()-10, 10)}); taken {
			t.Fatal("a due time in the past must be stored directly")
		}
		check := func(at time.Duration, want ...string) {
			t.Helper()
			time.Sleep(at - time.Since(t0))
			synctest.Wait()
			var got []string
			for _, m := range st.topic("T") {
				got = append(got, m.UniqKey())
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("at %v: topic holds %v, want %v", at, got, want)
			}
		}
		check(1999*time.Millisecond, "past")
		check(2000*time.Millisecond, "past", "two")
		check(3499*time.Millisecond, "past", "two")
		check(3500*time.Millisecond, "past", "two", "abs")
		check(4999*time.Millisecond, "past", "two", "abs")
		check(5000*time.Millisecond, "past", "two", "abs", "five")
		for _, m := range st.topic("T")[1:] {
			if lat := m.StoreTimestamp - mustDue(t, m); lat != 0 {
				t.Errorf("%s stored %d ms after its due time (fake clock: want 0)", m.UniqKey(), lat)
			}
			if m.QueueID != 0 || m.Properties[message.PropertyRealTopic] != "" {
				t.Errorf("restored %+v", m)
			}
		}
		if st := r.svc.Stats(); st.Delivered != 3 || st.InMemory != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func mustDue(t *testing.T, m *message.Ext) int64 {
	t.Helper()
	d, err := strconv.ParseInt(m.Properties[message.PropertyTimerDeliverMS], 10, 64)
	if err != nil {
		t.Fatalf("%s has no TIMER_DELIVER_MS", m.UniqKey())
	}
	return d
}

// sendRandom sends n timers with delays in [0, spread) and returns their ids.
func sendRandom(t *testing.T, svc *Service, st *memStore, r *rand.Rand, prefix string, n int, spread time.Duration) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		ms := r.Int64N(spread.Milliseconds()) + 1
		if _, _, err := sendTimer(svc, st, "T", id, map[string]string{message.PropertyTimerDelayMS: strconv.FormatInt(ms, 10)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// pendingTotal sums PendingByTopic.
func pendingTotal(svc *Service) int64 {
	var n int64
	svc.PendingByTopic(func(_ string, c int64) { n += c })
	return n
}

// checkExactlyOnce asserts that topic T holds each id exactly once, none before its due time.
func checkExactlyOnce(t *testing.T, st *memStore, ids []string) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range st.topic("T") {
		seen[m.UniqKey()]++
		if m.StoreTimestamp < mustDue(t, m) {
			t.Errorf("%s delivered %d ms early", m.UniqKey(), mustDue(t, m)-m.StoreTimestamp)
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("%s delivered %d times", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("topic holds %d distinct ids, want %d", len(seen), len(ids))
	}
}

func TestServiceRestartLosesNothingAndDuplicatesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st := newMemStore()
		rnd := rand.New(rand.NewPCG(7, 8))
		r := start(t, testConfig(dir), st, nil)
		ids := sendRandom(t, r.svc, st, rnd, "a", 300, 10*time.Second)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		r.stop(t)
		before := len(st.topic("T"))
		if before == 0 || before == len(ids) {
			t.Fatalf("restart should happen mid-way: %d of %d delivered", before, len(ids))
		}
		time.Sleep(3 * time.Second) // downtime: some timers fall due while stopped
		r = start(t, testConfig(dir), st, nil)
		synctest.Wait() // the overdue ones are delivered at once; then the loop sleeps
		if got, want := pendingTotal(r.svc), int64(len(ids)-len(st.topic("T"))); got != want {
			t.Fatalf("pending after restart %d, want %d (sent %d, delivered %d)", got, want, len(ids), len(st.topic("T")))
		}
		ids = append(ids, sendRandom(t, r.svc, st, rnd, "b", 100, 5*time.Second)...)
		time.Sleep(12 * time.Second)
		synctest.Wait()
		r.stop(t)
		checkExactlyOnce(t, st, ids)
		if n := pendingTotal(r.svc); n != 0 {
			t.Fatalf("%d still counted pending", n)
		}
	})
}

// TestServiceCrashBetweenDeliveryAndBookkeeping kills the service right after the k-th
// delivered message reached the store but before the wheel recorded it (and without a final
// checkpoint); recovery must find the delivery mark and not deliver it again.
func TestServiceCrashBetweenDeliveryAndBookkeeping(t *testing.T) {
	for _, k := range []int{1, 17, 64, 65, 150} {
		t.Run(strconv.Itoa(k), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				st := newMemStore()
				rnd := rand.New(rand.NewPCG(uint64(k), 9))
				var (
					mu    sync.Mutex
					count int
					r     *running
				)
				crashed := make(chan struct{})
				// Each chunk is stored whole; the crash hits right after the chunk holding
				// the k-th delivery reached the store.
				deliver := func(ctx context.Context, ms []*message.Ext) error {
					mu.Lock()
					defer mu.Unlock()
					if count >= k {
						return errors.New("crashed")
					}
					for _, m := range ms {
						st.put(m)
					}
					count += len(ms)
					if count >= k {
						r.svc.crashed.Store(true)
						close(crashed)
						return errors.New("crashed after storing")
					}
					return nil
				}
				r = start(t, testConfig(dir), st, deliver)
				ids := sendRandom(t, r.svc, st, rnd, "c", 200, 3*time.Second)
				<-crashed
				r.stop(t)
				if got := len(st.topic("T")); got < k {
					t.Fatalf("%d delivered before the crash, want >= %d", got, k)
				}
				r = start(t, testConfig(dir), st, nil)
				time.Sleep(5 * time.Second)
				synctest.Wait()
				r.stop(t)
				checkExactlyOnce(t, st, ids)
				if n := pendingTotal(r.svc); n != 0 {
					t.Fatalf("%d still counted pending", n)
				}
			})
		})
	}
}

func TestServiceCrashAtRandomMoments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st := newMemStore()
		rnd := rand.New(rand.NewPCG(11, 12))
		var ids []string
		r := start(t, testConfig(dir), st, nil)
		for round := range 6 {
			ids = append(ids, sendRandom(t, r.svc, st, rnd, fmt.Sprintf("r%d", round), 80, 4*time.Second)...)
			time.Sleep(time.Duration(rnd.Int64N(2500)) * time.Millisecond)
			r.crash(t)
			r = start(t, testConfig(dir), st, nil)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		r.stop(t)
		checkExactlyOnce(t, st, ids)
		if n := pendingTotal(r.svc); n != 0 {
			t.Fatalf("%d still counted pending", n)
		}
	})
}

func TestServiceMemoryBoundWith100kTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		cfg := testConfig(t.TempDir())
		cfg.SlotWidth, cfg.Lookahead = 10*time.Second, 10*time.Second
		r := start(t, cfg, st, nil)
		defer r.stop(t)
		rnd := rand.New(rand.NewPCG(13, 14))
		for i := range 100_000 {
			delay := time.Minute + time.Duration(rnd.Int64N(int64(72*time.Hour-time.Minute)))
			m := &message.Ext{Message: message.Message{Topic: "T"}}
			m.SetProperty(message.PropertyUniqKey, strconv.Itoa(i))
			m.SetProperty(message.PropertyTimerDelayMS, strconv.FormatInt(delay.Milliseconds(), 10))
			if taken, err := r.svc.Intercept(m, time.Now()); !taken || err != nil {
				t.Fatal(taken, err)
			}
			st.put(m)
		}
		r.svc.Notify()
		synctest.Wait()
		s := r.svc.Stats()
		if s.IngestOffset != 100_000 || s.OnDisk+s.InMemory != 100_000 {
			t.Fatalf("stats %+v: all 100k must be ingested", s)
		}
		if s.InMemory > 100 {
			t.Fatalf("%d timers in memory for 100k pending over 3 days (window 20 s)", s.InMemory)
		}
		// Two minutes later the first timers have fired and memory is still the window.
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		s = r.svc.Stats()
		if s.Delivered == 0 || s.InMemory > 100 {
			t.Fatalf("after 2 minutes: %+v", s)
		}
	})
}

// TestServiceDropsDeliveredLogSegments runs timers through many small timer-log segments:
// fully delivered segments are deleted (oldest first) once a checkpoint covers them, and a
// restart afterwards still finds every pending timer (chains stop at the log start).
func TestServiceDropsDeliveredLogSegments(t *testing.T) {
	old := segmentSize
	segmentSize = entrySize * 16
	defer func() { segmentSize = old }()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st := newMemStore()
		rnd := rand.New(rand.NewPCG(41, 42))
		cfg := testConfig(dir)
		r := start(t, cfg, st, nil)
		var ids []string
		// Long timers first: they sit in the oldest segments and pin them until they fire.
		for i := range 20 {
			id := fmt.Sprintf("long-%d", i)
			ids = append(ids, id)
			sendTimer(r.svc, st, "T", id, map[string]string{message.PropertyTimerDelaySec: "100"})
		}
		for round := range 10 {
			ids = append(ids, sendRandom(t, r.svc, st, rnd, fmt.Sprintf("s%d", round), 40, 2*time.Second)...)
			time.Sleep(3 * time.Second)
			synctest.Wait()
		}
		segsPinned := len(r.svc.w.log.segs)
		if segsPinned < 20 {
			t.Fatalf("%d segments: want >= 20 while the long timers pin the oldest", segsPinned)
		}
		r.stop(t)
		r = start(t, cfg, st, nil)
		if s := r.svc.Stats(); s.OnDisk+s.InMemory != 20 {
			t.Fatalf("after restart: %+v, want the 20 long timers pending", s)
		}
		time.Sleep(70 * time.Second)
		synctest.Wait()
		// A checkpoint after the long timers fired releases everything but the active segment.
		time.Sleep(2 * cfg.CheckpointInterval)
		synctest.Wait()
		if n := len(r.svc.w.log.segs); n > 2 {
			t.Errorf("%d segments left after every timer fired", n)
		}
		r.stop(t)
		checkExactlyOnce(t, st, ids)
	})
}

// TestServiceFailedCheckpointsLoseNothing: while the store cannot sync, checkpoints fail and
// are retried; a crash in that state recovers from the last good checkpoint (the delivery
// marks since then are all found) without loss or duplicates.
func TestServiceFailedCheckpointsLoseNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st := newMemStore()
		rnd := rand.New(rand.NewPCG(51, 52))
		r := start(t, testConfig(dir), st, nil)
		ids := sendRandom(t, r.svc, st, rnd, "f", 100, 2*time.Second)
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		st.failSync.Store(true)
		ids = append(ids, sendRandom(t, r.svc, st, rnd, "g", 100, 3*time.Second)...)
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if got := len(st.topic("T")); got < 100 {
			t.Fatalf("only %d delivered while checkpoints failed", got)
		}
		r.crash(t)
		st.failSync.Store(false)
		r = start(t, testConfig(dir), st, nil)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		r.stop(t)
		checkExactlyOnce(t, st, ids)
	})
}

// TestServiceRecoveryWaitsForDispatch: after a restart the store's consume queues may still be
// replaying; recovery must wait for them, or delivered timers recorded only by their marks
// would be ingested after the marks were forgotten, and delivered again.
func TestServiceRecoveryWaitsForDispatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.CheckpointInterval = time.Hour // only the first (empty) checkpoint is written
		st := newMemStore()
		rnd := rand.New(rand.NewPCG(61, 62))
		r := start(t, cfg, st, nil)
		ids := sendRandom(t, r.svc, st, rnd, "w", 100, 2*time.Second)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(st.topic("T")); n == 0 || n == len(ids) {
			t.Fatalf("%d delivered before the crash", n)
		}
		r.crash(t)
		st.lagging.Store(true)
		r = start(t, cfg, st, nil)
		st.lagging.Store(false) // the replay finishes
		r.svc.Notify()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		r.stop(t)
		checkExactlyOnce(t, st, ids)
	})
}

// TestServiceUnresolvedMarksSurviveCheckpoints: with MaxInMemory small, recovery cannot page
// in every bucket holding a timer it found delivered (by its mark); those marks must be kept
// in the next checkpoints until met, or a second crash would deliver them again.
func TestServiceUnresolvedMarksSurviveCheckpoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.MaxInMemory = 0 // run 1: no cap (its failing entries would hold it)
		cfg.CheckpointInterval = 50 * time.Millisecond
		st := newMemStore()
		var ids []string
		// Run 1: every 4th timer fails to deliver, so early failures stay pending behind later
		// deliveries; after the first checkpoint (all 200 ingested, none delivered) the store
		// cannot sync, so the later deliveries are known only by their marks.
		var mu sync.Mutex
		failing := true
		deliver1 := func(ctx context.Context, ms []*message.Ext) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				n, _ := strconv.Atoi(strings.TrimPrefix(m.UniqKey(), "u-"))
				if failing && n%4 == 0 {
					return errors.New("injected failure")
				}
			}
			for _, m := range ms {
				st.put(m)
			}
			return nil
		}
		r := start(t, cfg, st, deliver1)
		for i := range 200 {
			id := fmt.Sprintf("u-%d", i)
			ids = append(ids, id)
			sendTimer(r.svc, st, "T", id, map[string]string{message.PropertyTimerDelayMS: strconv.Itoa(200 + i*50)})
		}
		time.Sleep(120 * time.Millisecond)
		synctest.Wait()
		if len(st.topic("T")) != 0 {
			t.Fatal("delivered before the first checkpoint")
		}
		st.failSync.Store(true)
		time.Sleep(11 * time.Second)
		synctest.Wait()
		delivered1 := len(st.topic("T"))
		if delivered1 < 100 || delivered1 >= 200 {
			t.Fatalf("run 1 delivered %d", delivered1)
		}
		r.crash(t)
		st.failSync.Store(false)

		// Run 2: deliveries work; the first chunk is stored, then the process dies. The
		// checkpoint taken in that iteration has a commit-log end past run 1's marks while
		// most of them are still unresolved (their buckets are beyond the cap).
		mu.Lock()
		failing = false
		mu.Unlock()
		cfg.CheckpointInterval = time.Millisecond
		cfg.MaxInMemory = 10
		var once sync.Once
		// The first append reaches the log but reports failure (as after a failed fdatasync);
		// nothing after it is stored (the store refuses writes, then the process dies).
		deliver2 := func(ctx context.Context, ms []*message.Ext) error {
			once.Do(func() {
				for _, m := range ms {
					st.put(m)
				}
			})
			return errors.New("append reported failed")
		}
		r2 := start(t, cfg, st, deliver2)
		if s := r2.svc.Stats(); s.InMemory > cfg.MaxInMemory+20 || s.OnDisk == 0 {
			t.Fatalf("after recovery %+v: want at most the cap plus one bucket in memory", s)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		r2.crash(t)

		// Run 3 must deliver each remaining timer once and nothing from run 1 again.
		r = start(t, cfg, st, nil)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		r.stop(t)
		checkExactlyOnce(t, st, ids)
	})
}

// TestPruneRecalled: recalls are forgotten only once the delivery cursor is recallGrace past
// their due time, and never while nothing was delivered (the cursor starts at MinInt64).
func TestPruneRecalled(t *testing.T) {
	s := &Service{w: &wheel{cursor: key{math.MinInt64, math.MinInt64}}, recalled: map[string]int64{"old": 1000, "new": 5_000_000}}
	s.pruneRecalled()
	if len(s.recalled) != 2 {
		t.Fatalf("pruned before any delivery: %v", s.recalled)
	}
	s.w.cursor = key{due: 1000 + recallGrace.Milliseconds() + 1}
	s.pruneRecalled()
	if _, ok := s.recalled["old"]; ok || len(s.recalled) != 1 {
		t.Fatalf("after the grace: %v, want only new", s.recalled)
	}
}
