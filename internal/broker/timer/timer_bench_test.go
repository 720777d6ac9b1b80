package timer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// benchRig is a store for the benchmarks: put stores a message as the broker's put path
// would (after Intercept), src/deliver are what the service uses, onTimerRecord registers the
// dispatch notification.
type benchRig struct {
	put           func(m *message.Ext) error
	src           Source
	deliver       DeliverFunc
	onTimerRecord func(func())
	close         func()
}

// latencyRecorder collects delivery lateness (delivered - due) in ms.
type latencyRecorder struct {
	mu   sync.Mutex
	lat  []float64
	done chan struct{}
	want int
}

func newLatencyRecorder(want int) *latencyRecorder {
	return &latencyRecorder{done: make(chan struct{}), want: want, lat: make([]float64, 0, want)}
}

func (r *latencyRecorder) observe(e Entry, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat = append(r.lat, float64(at.UnixMicro()-e.Due*1000)/1000)
	if len(r.lat) == r.want {
		close(r.done)
	}
}

func (r *latencyRecorder) percentiles() (p50, p99, maxv float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := slices.Clone(r.lat)
	slices.Sort(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.99), s[len(s)-1]
}

// scheduleScenario inserts n timers with delays uniform in [minDelay, minDelay+spread) and
// waits for all deliveries; it reports the insert rate and lateness percentiles.
func scheduleScenario(b *testing.B, newRig func(b *testing.B) *benchRig, n int, minDelay, spread time.Duration) {
	for range b.N {
		b.StopTimer()
		rig := newRig(b)
		cfg := DefaultConfig()
		cfg.Dir = b.TempDir()
		svc, err := New(cfg, rig.src, rig.deliver, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		rec := newLatencyRecorder(n)
		svc.SetObserver(rec.observe)
		rig.onTimerRecord(svc.Notify)
		ctx, cancel := context.WithCancel(context.Background())
		runDone := make(chan error, 1)
		go func() { runDone <- svc.Run(ctx) }()
		r := rand.New(rand.NewPCG(1, uint64(n)))
		body := make([]byte, 128)
		t0 := time.Now()
		base := t0.Add(minDelay).UnixMilli()
		dues := make([]int64, n)
		for i := range dues {
			dues[i] = base + r.Int64N(spread.Milliseconds())
		}
		// The peer: a bare time.Timer loop sleeping to the same due times, concurrently, so
		// it sees the same machine load (its lateness is the floor the VM imposes).
		peer := newLatencyRecorder(n)
		go rawTimerLoop(slices.Sorted(slices.Values(dues)), peer)
		b.StartTimer()
		for i := range n {
			m := &message.Ext{Message: message.Message{Topic: "BenchTimer", Body: body}, QueueID: int32(i % 4)}
			m.SetProperty(message.PropertyUniqKey, strconv.Itoa(i))
			m.SetProperty(message.PropertyTimerDeliverMS, strconv.FormatInt(dues[i], 10))
			if taken, err := svc.Intercept(m, time.Now()); !taken || err != nil {
				b.Fatalf("intercept: %v %v", taken, err)
			}
			if err := rig.put(m); err != nil {
				b.Fatal(err)
			}
		}
		insert := time.Since(t0)
		select {
		case <-rec.done:
		case <-time.After(minDelay + spread + time.Minute):
			b.Fatalf("only %d of %d delivered", len(rec.lat), n)
		}
		b.StopTimer()
		cancel()
		if err := <-runDone; err != nil {
			b.Fatal(err)
		}
		if err := svc.Close(); err != nil {
			b.Fatal(err)
		}
		rig.close()
		<-peer.done
		p50, p99, mx := rec.percentiles()
		_, pp99, _ := peer.percentiles()
		b.ReportMetric(float64(n)/insert.Seconds(), "inserts/s")
		b.ReportMetric(p50, "p50-late-ms")
		b.ReportMetric(p99, "p99-late-ms")
		b.ReportMetric(mx, "max-late-ms")
		b.ReportMetric(pp99, "peer-p99-late-ms")
		b.ReportMetric(0, "ns/op")
		b.StartTimer()
	}
}

// memRig runs the scenario over the in-memory fake store (scheduling cost only).
func memRig(b *testing.B) *benchRig {
	st := newMemStore()
	var notify func()
	var mu sync.Mutex
	st.notify = func(topic string) {
		mu.Lock()
		n := notify
		mu.Unlock()
		if topic == Topic && n != nil {
			n()
		}
	}
	return &benchRig{
		put:     func(m *message.Ext) error { st.put(m); return nil },
		src:     st,
		deliver: st.deliver,
		onTimerRecord: func(f func()) {
			mu.Lock()
			notify = f
			mu.Unlock()
		},
		close: func() {},
	}
}

func BenchmarkTimerMemStore(b *testing.B) {
	for _, c := range []struct {
		n              int
		minDelay, span time.Duration
	}{
		{100_000, 3 * time.Second, 5 * time.Second},
		{10_000, time.Second, 10 * time.Second},
	} {
		b.Run(fmt.Sprintf("n=%d", c.n), func(b *testing.B) {
			scheduleScenario(b, memRig, c.n, c.minDelay, c.span)
		})
	}
}

// storeRig runs the scenario over a real store (ASYNC_FLUSH, the RocketMQ default) in a temp
// dir: inserts are store puts of timer records, deliveries are store puts to the real topic.
func storeRig(b *testing.B) *benchRig {
	dir := b.TempDir()
	cfg := storeConfig(dir)
	cfg.MappedFileSizeCommitLog = 256 << 20
	st, err := store.Open(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var notify func()
	st.OnDispatch(func(ev store.DispatchEvent) {
		if ev.Topic != Topic {
			return
		}
		mu.Lock()
		n := notify
		mu.Unlock()
		if n != nil {
			n()
		}
	})
	return &benchRig{
		put: func(m *message.Ext) error {
			_, err := st.Put(context.Background(), m)
			return err
		},
		src:     StoreSource(st, cfg.MappedFileSizeCommitLog),
		deliver: deliverTo(st),
		onTimerRecord: func(f func()) {
			mu.Lock()
			notify = f
			mu.Unlock()
		},
		close: func() {
			if err := st.Close(); err != nil {
				b.Error(err)
			}
		},
	}
}

// BenchmarkTimerStore is the figure recorded in BENCHMARKS.md: n timers, insert rate and
// lateness over the real store.
func BenchmarkTimerStore(b *testing.B) {
	for _, c := range []struct {
		n              int
		minDelay, span time.Duration
	}{
		{100_000, 5 * time.Second, 5 * time.Second}, // 100k scheduled, ~20k due per second
		{10_000, 2 * time.Second, 10 * time.Second}, // 10k pending, ~1k due per second
	} {
		b.Run(fmt.Sprintf("n=%d", c.n), func(b *testing.B) {
			scheduleScenario(b, storeRig, c.n, c.minDelay, c.span)
		})
	}
}

// BenchmarkRawPut100k is the peer figure: the same 100k messages stored directly to a normal
// topic (no timer), one at a time like the timer inserts.
func BenchmarkRawPut100k(b *testing.B) {
	for range b.N {
		b.StopTimer()
		rig := storeRig(b)
		body := make([]byte, 128)
		b.StartTimer()
		t0 := time.Now()
		for i := range 100_000 {
			m := &message.Ext{Message: message.Message{Topic: "BenchTimer", Body: body}, QueueID: int32(i % 4)}
			m.SetProperty(message.PropertyUniqKey, strconv.Itoa(i))
			if err := rig.put(m); err != nil {
				b.Fatal(err)
			}
		}
		el := time.Since(t0)
		b.StopTimer()
		rig.close()
		b.ReportMetric(100_000/el.Seconds(), "puts/s")
		b.ReportMetric(0, "ns/op")
		b.StartTimer()
	}
}

// BenchmarkRawTimerLateness is the machine's floor for the 10k scenario, measured in the same
// run: one goroutine sleeping on a time.Timer from due time to due time (10k due times over
// 10 s, as in BenchmarkTimerStore/n=10000) with nothing else to do.
func BenchmarkRawTimerLateness(b *testing.B) {
	for range b.N {
		r := rand.New(rand.NewPCG(1, 10_000))
		base := time.Now().Add(2 * time.Second).UnixMilli()
		dues := make([]int64, 10_000)
		for i := range dues {
			dues[i] = base + r.Int64N(10_000)
		}
		slices.Sort(dues)
		rec := newLatencyRecorder(len(dues))
		rawTimerLoop(dues, rec)
		p50, p99, mx := rec.percentiles()
		b.ReportMetric(p50, "p50-late-ms")
		b.ReportMetric(p99, "p99-late-ms")
		b.ReportMetric(mx, "max-late-ms")
		b.ReportMetric(0, "ns/op")
	}
}

// rawTimerLoop sleeps on one time.Timer from due time to due time (sorted, ms) and records
// each wake-up's lateness.
func rawTimerLoop(dues []int64, rec *latencyRecorder) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for _, d := range dues {
		if w := time.Until(time.UnixMilli(d)); w > 0 {
			t.Reset(w)
			<-t.C
		}
		rec.observe(Entry{Due: d}, time.Now())
	}
}

// BenchmarkTimerMillionPending stores 1,000,000 timers spread over the 3-day maximum in a real
// store and reports what stays in memory once they are ingested (wheel entries and Go heap),
// then how long a restart (recovery: timer-log scan + commit-log mark scan) takes.
func BenchmarkTimerMillionPending(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		b.StopTimer()
		sdir, tdir := b.TempDir(), b.TempDir()
		scfg := storeConfig(sdir)
		scfg.MappedFileSizeCommitLog = 256 << 20
		tcfg := DefaultConfig()
		tcfg.Dir = tdir
		r := startReal(b, sdir, scfg, tcfg)
		rnd := rand.New(rand.NewPCG(7, 7))
		body := make([]byte, 128)
		now := time.Now()
		t0 := time.Now()
		for i := range n {
			m := &message.Ext{Message: message.Message{Topic: "T", Body: body}}
			m.SetProperty(message.PropertyUniqKey, strconv.Itoa(i))
			m.SetProperty(message.PropertyTimerDeliverMS, strconv.FormatInt(now.Add(time.Minute).UnixMilli()+rnd.Int64N((72*time.Hour-time.Minute).Milliseconds()), 10))
			if _, err := r.svc.Intercept(m, now); err != nil {
				b.Fatal(err)
			}
			if _, err := r.st.Put(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, 5*time.Minute, "ingest", func() bool { return r.svc.Stats().IngestOffset == n })
		ingest := time.Since(t0)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st := r.svc.Stats()
		r.stop(b)
		t1 := time.Now()
		r = startReal(b, sdir, scfg, tcfg)
		recovery := time.Since(t1)
		st2 := r.svc.Stats()
		r.stop(b)
		if st.InMemory+st.OnDisk != n || st2.InMemory+st2.OnDisk != n {
			b.Fatalf("before %+v after %+v", st, st2)
		}
		b.ReportMetric(float64(n)/ingest.Seconds(), "stored+ingested/s")
		b.ReportMetric(float64(st.InMemory), "in-memory-entries")
		b.ReportMetric(float64(st.DiskBuckets), "disk-buckets")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(recovery.Seconds(), "recovery-s")
		b.ReportMetric(float64(st.LogBytes)/(1<<20), "timerlog-MiB")
		b.ReportMetric(0, "ns/op")
		b.StartTimer()
	}
}
