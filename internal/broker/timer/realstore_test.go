package timer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store"
)

const testSegSize = 8 << 20

func storeConfig(dir string) store.Config {
	c := store.DefaultConfig()
	c.StorePathRootDir = dir
	c.MappedFileSizeCommitLog = testSegSize
	c.MappedFileSizeConsumeQueue = 10000 * 20
	c.MaxMessageSize = 1 << 20
	c.StoreHost = netip.MustParseAddrPort("127.0.0.1:10911")
	c.DiskUsage = func(string) (float64, error) { return 0.1, nil }
	return c
}

// realRig is the timer service over a real store in dir (both reopened by each start).
type realRig struct {
	st  *store.Store
	svc *Service

	mu      sync.Mutex
	arrived map[string][]time.Time // real-topic UNIQ_KEY -> dispatch times
	cancel  context.CancelFunc
	done    chan error
}

// deliverTo is the broker's delivery path: a batch put without hooks. A put that was appended but
// not confirmed durable in time (ErrFlushTimeout) is delivered: retrying would duplicate it.
func deliverTo(st *store.Store) DeliverFunc {
	return func(ctx context.Context, ms []*message.Ext) error {
		_, err := st.PutBatch(ctx, ms)
		if errors.Is(err, store.ErrFlushTimeout) {
			return nil
		}
		return err
	}
}

func startReal(t testing.TB, dir string, scfg store.Config, tcfg Config) *realRig {
	t.Helper()
	st, err := store.Open(scfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &realRig{st: st, arrived: map[string][]time.Time{}, done: make(chan error, 1)}
	var svcMu sync.Mutex
	st.OnDispatch(func(ev store.DispatchEvent) {
		if ev.Topic == Topic {
			svcMu.Lock()
			if r.svc != nil {
				r.svc.Notify()
			}
			svcMu.Unlock()
			return
		}
		if ev.Topic == "T" {
			r.mu.Lock()
			id, _ := ev.Property(message.PropertyUniqKey)
			r.arrived[id] = append(r.arrived[id], time.Now())
			r.mu.Unlock()
		}
	})
	svc, err := New(tcfg, StoreSource(st, scfg.MappedFileSizeCommitLog), deliverTo(st), nil, nil)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	svcMu.Lock()
	r.svc = svc
	svcMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- svc.Run(ctx) }()
	return r
}

func (r *realRig) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Error(err)
	}
	if err := r.svc.Close(); err != nil {
		t.Error(err)
	}
	if err := r.st.Close(); err != nil {
		t.Error(err)
	}
}

// send stores one timer message through the hook path.
func (r *realRig) send(t testing.TB, id string, props map[string]string) {
	t.Helper()
	m := &message.Ext{Message: message.Message{Topic: "T", Body: []byte("body-" + id)}, QueueID: 1}
	m.BornHost = netip.MustParseAddrPort("10.0.0.1:5000")
	m.BornTimestamp = time.Now().UnixMilli()
	m.SetProperty(message.PropertyUniqKey, id)
	for k, v := range props {
		m.SetProperty(k, v)
	}
	if _, err := r.svc.Intercept(m, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.Put(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// readTopic returns every message stored in T (all queues), once everything stored so far is
// dispatched.
func readTopic(t testing.TB, st *store.Store) []*message.Ext {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.WaitDispatched(ctx, st.Stats().MaxPhysicalOffset); err != nil {
		t.Fatal(err)
	}
	var out []*message.Ext
	for _, q := range st.QueueIDs("T") {
		for off := st.MinOffset("T", q); ; {
			res, err := st.Get("T", q, off, 256, 64<<20, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range res.Records {
				m, _, err := message.DecodeRecord(rec.Data, true)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, m)
			}
			n := len(res.Records)
			next := res.NextBeginOffset
			res.Release()
			if n == 0 || next <= off {
				break
			}
			off = next
		}
	}
	return out
}

// waitFor polls cond (bounded); it is used only at the end of tests, after the timers' due times.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRealStoreTimersArriveOnTime(t *testing.T) {
	dir := t.TempDir()
	tcfg := testConfig(t.TempDir())
	r := startReal(t, dir, storeConfig(dir), tcfg)
	defer r.stop(t)
	t0 := time.UnixMilli(time.Now().UnixMilli()) // due times have ms precision
	r.send(t, "two", map[string]string{message.PropertyTimerDelaySec: "2"})
	r.send(t, "five", map[string]string{message.PropertyTimerDeliverMS: strconv.FormatInt(t0.UnixMilli()+5000, 10)})
	r.send(t, "level1", map[string]string{message.PropertyDelayLevel: "1"}) // 1 s
	waitFor(t, 10*time.Second, "three deliveries", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.arrived) == 3
	})
	const tolerance = time.Second // shared, loaded 2-vCPU VM; unit tests do not assert speed (see the benchmark)
	for id, want := range map[string]time.Duration{"level1": time.Second, "two": 2 * time.Second, "five": 5 * time.Second} {
		r.mu.Lock()
		at := r.arrived[id]
		r.mu.Unlock()
		if len(at) != 1 {
			t.Fatalf("%s arrived %d times", id, len(at))
		}
		got := at[0].Sub(t0)
		// The due time is computed from the clock at Intercept, which is after t0.
		if got < want || got > want+tolerance {
			t.Errorf("%s arrived after %v, want [%v, %v]", id, got, want, want+tolerance)
		}
	}
	msgs := readTopic(t, r.st)
	if len(msgs) != 3 {
		t.Fatalf("topic T holds %d messages", len(msgs))
	}
	for _, m := range msgs {
		// Timestamp delays keep TIMER_DELIVER_MS (gRPC shows them as DELAY); a delay
		// level leaves no TIMER_* due-time mark, as Apache's schedule service.
		levelOrigin := m.UniqKey() == "level1"
		if m.QueueID != 1 || string(m.Body) != "body-"+m.UniqKey() || m.Property(message.PropertyRealTopic) != "" ||
			(m.Property(message.PropertyTimerDeliverMS) == "") != levelOrigin || m.Property(message.PropertyDelayLevel) != "" {
			t.Errorf("delivered message %+v", m)
		}
		if off, ok := deliveryMark(m); !ok || off < 0 {
			t.Errorf("no delivery mark on %s", m.UniqKey())
		}
	}
}

// checkRealExactlyOnce asserts that every id is in topic T exactly once.
func checkRealExactlyOnce(t *testing.T, st *store.Store, ids []string) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range readTopic(t, st) {
		seen[m.UniqKey()]++
		due, _ := strconv.ParseInt(m.Property(message.PropertyTimerDeliverMS), 10, 64)
		if m.StoreTimestamp < due {
			t.Errorf("%s stored %d ms before its due time", m.UniqKey(), due-m.StoreTimestamp)
		}
	}
	lost, dup := 0, 0
	for _, id := range ids {
		switch {
		case seen[id] == 0:
			lost++
		case seen[id] > 1:
			dup++
		}
	}
	if lost > 0 || dup > 0 || len(seen) != len(ids) {
		t.Fatalf("%d ids: %d lost, %d duplicated, %d distinct in the topic", len(ids), lost, dup, len(seen))
	}
}

func TestRealStoreRestartMidway(t *testing.T) {
	dir := t.TempDir()
	tdir := t.TempDir()
	rnd := rand.New(rand.NewPCG(21, 22))
	r := startReal(t, dir, storeConfig(dir), testConfig(tdir))
	var ids []string
	for i := range 300 {
		id := fmt.Sprintf("m%d", i)
		ids = append(ids, id)
		r.send(t, id, map[string]string{message.PropertyTimerDelayMS: strconv.FormatInt(200+rnd.Int64N(2500), 10)})
	}
	time.Sleep(1200 * time.Millisecond) // let part of them fire
	r.mu.Lock()
	before := len(r.arrived)
	r.mu.Unlock()
	r.stop(t)
	if before == 0 || before == len(ids) {
		t.Fatalf("the restart should come mid-way: %d of %d delivered before it", before, len(ids))
	}
	r = startReal(t, dir, storeConfig(dir), testConfig(tdir))
	deadline := time.Now().Add(3 * time.Second)
	waitFor(t, 10*time.Second, "all timers", func() bool {
		return time.Now().After(deadline) && r.svc.Stats().InMemory == 0 && r.svc.Stats().OnDisk == 0
	})
	defer r.stop(t)
	checkRealExactlyOnce(t, r.st, ids)
}

// TestRealStoreUndeliverableTimerIsDropped: a timer whose real topic the store rejects is
// retried alone, then dropped (counted) instead of blocking the cursor; the others go through.
func TestRealStoreUndeliverableTimerIsDropped(t *testing.T) {
	dir := t.TempDir()
	r := startReal(t, dir, storeConfig(dir), testConfig(t.TempDir()))
	defer r.stop(t)
	r.send(t, "ok1", map[string]string{message.PropertyTimerDelayMS: "100"})
	bad := &message.Ext{Message: message.Message{Topic: "T", Body: []byte("x")}}
	bad.SetProperty(message.PropertyUniqKey, "bad")
	bad.SetProperty(message.PropertyTimerDelayMS, "100")
	if taken, err := r.svc.Intercept(bad, time.Now()); !taken || err != nil {
		t.Fatal(taken, err)
	}
	bad.SetProperty(message.PropertyRealTopic, "bad topic/..") // not a valid topic name
	if _, err := r.st.Put(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	r.send(t, "ok2", map[string]string{message.PropertyTimerDelayMS: "100"})
	waitFor(t, 10*time.Second, "two delivered, one dropped", func() bool {
		s := r.svc.Stats()
		return s.Delivered == 2 && s.Dropped == 1 && s.InMemory == 0
	})
	if n := len(readTopic(t, r.st)); n != 2 {
		t.Fatalf("topic holds %d messages", n)
	}
}

// putMarker stores a recall marker through the hook path, as the broker's RECALL_MESSAGE does.
func (r *realRig) putMarker(t testing.TB, topic, id string, due int64) {
	t.Helper()
	m := RecallMarker(topic, id, due, time.Now())
	m.BornHost = netip.MustParseAddrPort("10.0.0.1:5000")
	if taken, err := r.svc.Intercept(m, time.Now()); err != nil || !taken {
		t.Fatalf("recall marker not taken: %v %v", taken, err)
	}
	if _, err := r.st.Put(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// TestRealStoreRecall: a recalled timer is never delivered, across a clean restart and a
// simulated crash between the recall and the due time; a recall naming another topic, or a
// message that does not exist, changes nothing; the markers never reach the topic; a marker
// whose due time passed while it was stored still goes through the wheel.
func TestRealStoreRecall(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "restart", true: "crash"}[crash], func(t *testing.T) {
			dir := t.TempDir()
			tdir := t.TempDir()
			scfg := storeConfig(dir)
			r := startReal(t, dir, scfg, testConfig(tdir))
			due := time.Now().UnixMilli() + 3000
			deliver := strconv.FormatInt(due, 10)
			for _, id := range []string{"keep", "recall", "other-topic"} {
				r.send(t, id, map[string]string{message.PropertyTimerDeliverMS: deliver})
			}
			r.putMarker(t, "T", "recall", due)
			r.putMarker(t, "U", "other-topic", due) // same id, another topic: no effect
			r.putMarker(t, "T", "ghost", due)       // nothing to recall
			r.putMarker(t, "T", "late", time.Now().UnixMilli()-1000)
			waitFor(t, 10*time.Second, "the markers ingested", func() bool {
				return r.svc.Stats().IngestOffset == 7
			})
			if crash {
				r.svc.crashed.Store(true) // no final checkpoint: recovery re-ingests the markers
			}
			r.stop(t)
			r = startReal(t, dir, scfg, testConfig(tdir))
			defer r.stop(t)
			waitFor(t, 15*time.Second, "the two kept timers", func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				return len(r.arrived) >= 2
			})
			waitFor(t, 10*time.Second, "the recall spent", func() bool { return r.svc.Stats().Recalled == 1 })
			var ids []string
			for _, m := range readTopic(t, r.st) {
				ids = append(ids, m.Properties[message.PropertyUniqKey])
			}
			if fmt.Sprint(ids) != "[keep other-topic]" && fmt.Sprint(ids) != "[other-topic keep]" {
				t.Fatalf("topic T holds %v, want keep and other-topic only", ids)
			}
		})
	}
}
