package timer

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

// newTestWheel builds a wheel over a fresh timer log with small segments.
func newTestWheel(t *testing.T, width, lookahead int64) *wheel {
	t.Helper()
	l, err := openLog(filepath.Join(t.TempDir(), "log"), entrySize*64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.close() })
	return newWheel(l, width, lookahead)
}

// clockDriver steps a wheel the way the service loop does, with a clock the test controls.
type clockDriver struct {
	t   *testing.T
	w   *wheel
	now int64
	got []Entry // delivered, in delivery order, with the time they fired
	at  []int64
}

// runUntil advances the clock from wake-up to wake-up (never sleeping) up to end, delivering
// every due entry successfully.
func (d *clockDriver) runUntil(end int64) {
	d.t.Helper()
	for {
		if err := d.w.advance(d.now); err != nil {
			d.t.Fatal(err)
		}
		for {
			batch := d.w.takeDue(d.now, 7)
			if len(batch) == 0 {
				break
			}
			for _, e := range batch {
				d.w.done(e)
				d.got = append(d.got, e)
				d.at = append(d.at, d.now)
			}
			d.w.settle()
		}
		next, ok := d.w.nextWake()
		if !ok || next > end {
			d.now = end
			if err := d.w.advance(d.now); err != nil {
				d.t.Fatal(err)
			}
			return
		}
		if next > d.now {
			d.now = next
		}
	}
}

func TestWheelFiresInOrderAndNeverEarly(t *testing.T) {
	w := newTestWheel(t, 1000, 500)
	d := &clockDriver{t: t, w: w, now: 10_000}
	r := rand.New(rand.NewPCG(1, 2))
	var want []Entry
	for i := range 500 {
		e := Entry{Due: 10_000 + r.Int64N(60_000), Offset: int64(i) * 100, QueueOffset: int64(i), Size: 100}
		if err := w.add(e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	d.runUntil(80_000)
	if len(d.got) != len(want) {
		t.Fatalf("delivered %d of %d", len(d.got), len(want))
	}
	for i, e := range d.got {
		if d.at[i] != e.Due {
			t.Fatalf("entry %+v fired at %d, want exactly its due time (the clock jumps to each wake-up)", e, d.at[i])
		}
		if i > 0 && e.key().less(d.got[i-1].key()) {
			t.Fatalf("out of order: %+v after %+v", e, d.got[i-1])
		}
	}
	slices.SortFunc(want, func(a, b Entry) int {
		if a.key().less(b.key()) {
			return -1
		}
		return 1
	})
	for i := range want {
		if want[i] != d.got[i] {
			t.Fatalf("delivery %d = %+v, want %+v", i, d.got[i], want[i])
		}
	}
	if st := w.stats(); st.InMemory != 0 || st.OnDisk != 0 || w.cursor != want[len(want)-1].key() {
		t.Fatalf("after all deliveries: stats %+v cursor %+v", st, w.cursor)
	}
}

func TestWheelMemoryIsBoundedByTheWindow(t *testing.T) {
	const n = 100_000
	w := newTestWheel(t, 10_000, 10_000)
	w.log.segSize = entrySize << 14
	now := int64(1_000_000)
	if err := w.advance(now); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	span := int64(3 * 24 * 3600 * 1000) // spread over the 3-day max delay
	for i := range n {
		if err := w.add(Entry{Due: now + r.Int64N(span), Offset: int64(i), QueueOffset: int64(i), Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	st := w.stats()
	// The window is [now, now+lookahead+width): 20 s of a 3-day spread, ~8 entries on average.
	if st.InMemory > 100 || st.InMemory+st.OnDisk != n {
		t.Fatalf("stats %+v: want at most 100 in memory and %d in total", st, n)
	}
	// Walk one hour forward: memory stays bounded while buckets are paged in and delivered.
	d := &clockDriver{t: t, w: w, now: now}
	maxMem := 0
	for step := range 360 {
		d.runUntil(now + int64(step+1)*10_000)
		maxMem = max(maxMem, w.stats().InMemory)
	}
	if maxMem > 100 {
		t.Fatalf("in-memory entries peaked at %d", maxMem)
	}
	if len(d.got) == 0 {
		t.Fatal("nothing delivered in an hour")
	}
	for i, e := range d.got {
		if d.at[i] < e.Due {
			t.Fatalf("%+v fired early at %d", e, d.at[i])
		}
	}
}

func TestWheelClampsLateEntriesAboveTheCursor(t *testing.T) {
	w := newTestWheel(t, 1000, 0)
	d := &clockDriver{t: t, w: w, now: 5000}
	must(t, w.add(Entry{Due: 4000, Offset: 10}))
	must(t, w.add(Entry{Due: 5000, Offset: 20}))
	d.runUntil(5000)
	if len(d.got) != 2 || w.cursor != (key{5000, 20}) {
		t.Fatalf("got %v cursor %+v", d.got, w.cursor)
	}
	// A timer due in the past arrives after the cursor passed its due time.
	must(t, w.add(Entry{Due: 3000, Offset: 30}))
	d.runUntil(5000)
	if len(d.got) != 3 || d.got[2].Offset != 30 || d.got[2].Due != 5000 {
		t.Fatalf("late entry not delivered at once with a clamped due: %+v", d.got)
	}
	if w.cursor != (key{5000, 30}) {
		t.Fatalf("cursor %+v", w.cursor)
	}
}

func TestWheelFailedDeliveryKeepsCursorBehind(t *testing.T) {
	w := newTestWheel(t, 1000, 0)
	for i := range 3 {
		must(t, w.add(Entry{Due: 100 + int64(i), Offset: int64(i + 1)}))
	}
	must(t, w.advance(200))
	batch := w.takeDue(200, 10)
	if len(batch) != 3 {
		t.Fatalf("batch %v", batch)
	}
	w.failed(batch[0])
	w.done(batch[1])
	w.done(batch[2])
	w.settle()
	if w.cursor != (key{math.MinInt64, math.MinInt64}) || len(w.doneAbove) != 2 {
		t.Fatalf("cursor %+v doneAbove %v: the failed entry must hold the cursor back", w.cursor, w.doneAbove)
	}
	retry := w.takeDue(200, 10)
	if len(retry) != 1 || retry[0] != batch[0] {
		t.Fatalf("retry %v", retry)
	}
	w.done(retry[0])
	w.settle()
	if w.cursor != batch[2].key() || len(w.doneAbove) != 0 {
		t.Fatalf("cursor %+v doneAbove %v", w.cursor, w.doneAbove)
	}
}

func TestWheelNextWakeIncludesPageIn(t *testing.T) {
	w := newTestWheel(t, 1000, 300)
	must(t, w.advance(0))
	must(t, w.add(Entry{Due: 5500, Offset: 1}))
	if at, ok := w.nextWake(); !ok || at != 4700 {
		t.Fatalf("nextWake %d %v, want 4700 (bucket 5 starts at 5000, lookahead 300)", at, ok)
	}
	must(t, w.advance(4700))
	if at, ok := w.nextWake(); !ok || at != 5500 {
		t.Fatalf("nextWake %d %v, want 5500 after page-in", at, ok)
	}
	if got := w.takeDue(5499, 10); len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	if got := w.takeDue(5500, 10); len(got) != 1 {
		t.Fatalf("not fired at due: %v", got)
	}
}

func TestWheelRestoreMatchesLiveState(t *testing.T) {
	dir := t.TempDir()
	l, err := openLog(filepath.Join(dir, "log"), entrySize*16)
	if err != nil {
		t.Fatal(err)
	}
	w := newWheel(l, 1000, 0)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 200 {
		must(t, w.add(Entry{Due: r.Int64N(20_000), Offset: int64(i), QueueOffset: int64(i)}))
	}
	d := &clockDriver{t: t, w: w}
	d.runUntil(7000)
	// Deliver a few above the cursor out of order.
	must(t, w.advance(9000))
	b := w.takeDue(9000, 5)
	w.done(b[4])
	w.done(b[2])
	w.settle()
	end, err := l.sync()
	if err != nil {
		t.Fatal(err)
	}
	cp := checkpoint{Version: 1, IngestOffset: 200, CursorDue: w.cursor.due, CursorOffset: w.cursor.off, Done: w.snapshotDone(), LogEnd: end}
	// Entries appended after the checkpoint are discarded by restore.
	must(t, w.add(Entry{Due: 15_000, Offset: 999, QueueOffset: 200}))
	l.close()

	l2, err := openLog(filepath.Join(dir, "log"), entrySize*16)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.close()
	w2, ingest, err := restoreWheel(l2, 1000, 0, cp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ingest != 200 {
		t.Fatalf("ingest %d", ingest)
	}
	d2 := &clockDriver{t: t, w: w2, now: 7000}
	d2.runUntil(30_000)
	delivered := map[int64]bool{}
	for _, e := range d.got {
		delivered[e.Offset] = true
	}
	delivered[b[4].Offset], delivered[b[2].Offset] = true, true
	for _, e := range d2.got {
		if delivered[e.Offset] {
			t.Fatalf("entry %d delivered twice", e.Offset)
		}
		delivered[e.Offset] = true
	}
	if delivered[999] {
		t.Fatal("entry appended after the checkpoint survived restore")
	}
	delete(delivered, 999)
	if len(delivered) != 200 {
		t.Fatalf("delivered %d distinct timers, want 200", len(delivered))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestWheelChainWithDeliveredEntriesAfterClockStep: the wall clock is behind the cursor after a
// restart (clock stepped back), so a bucket whose old entries are all delivered is not in the
// window; a new entry chained to them must page in alone, the old ones skipped.
func TestWheelChainWithDeliveredEntriesAfterClockStep(t *testing.T) {
	dir := t.TempDir()
	l, err := openLog(filepath.Join(dir, "log"), entrySize*8)
	if err != nil {
		t.Fatal(err)
	}
	w := newWheel(l, 1000, 0)
	for i := range 5 {
		must(t, w.add(Entry{Due: 50_100 + int64(i), Offset: int64(i + 1), QueueOffset: int64(i)}))
	}
	d := &clockDriver{t: t, w: w, now: 50_000}
	d.runUntil(51_000)
	if len(d.got) != 5 {
		t.Fatalf("delivered %d", len(d.got))
	}
	end, err := l.sync()
	if err != nil {
		t.Fatal(err)
	}
	cp := checkpoint{Version: 1, IngestOffset: 5, CursorDue: w.cursor.due, CursorOffset: w.cursor.off, LogEnd: end}
	l.close()

	l2, err := openLog(filepath.Join(dir, "log"), entrySize*8)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.close()
	w2, _, err := restoreWheel(l2, 1000, 0, cp, nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, w2.advance(40_000)) // the clock stepped back 11 s
	must(t, w2.add(Entry{Due: 50_500, Offset: 100, QueueOffset: 5}))
	d2 := &clockDriver{t: t, w: w2, now: 40_000}
	d2.runUntil(52_000)
	if len(d2.got) != 1 || d2.got[0].Offset != 100 {
		t.Fatalf("after the clock step delivered %+v, want only the new entry", d2.got)
	}
}

// TestWheelMaxInMemoryPagesABacklogGradually: 2,000 overdue timers over 100 buckets (a
// restart after downtime) are paged in a few buckets at a time, in order, none lost.
func TestWheelMaxInMemoryPagesABacklogGradually(t *testing.T) {
	w := newTestWheel(t, 1000, 0)
	w.maxMem = 50
	r := rand.New(rand.NewPCG(71, 72))
	for i := range 2000 {
		must(t, w.add(Entry{Due: r.Int64N(100_000), Offset: int64(i + 1), QueueOffset: int64(i)}))
	}
	now := int64(200_000)
	peak := 0
	var got []Entry
	for range 10_000 {
		must(t, w.advance(now))
		peak = max(peak, w.stats().InMemory)
		batch := w.takeDue(now, 7)
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			w.done(e)
		}
		w.settle()
		got = append(got, batch...)
	}
	if len(got) != 2000 {
		t.Fatalf("delivered %d of 2000", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].key().less(got[i-1].key()) {
			t.Fatalf("out of order at %d", i)
		}
	}
	// 2,000 over 100 buckets: about 20 per bucket; the cap is exceeded by at most one bucket.
	if peak > 50+40 {
		t.Fatalf("peak %d entries in memory, cap 50", peak)
	}
	if at, ok := w.nextWake(); ok {
		t.Fatalf("nothing left, yet nextWake %d", at)
	}
}

// TestOldestDue: stats report the due time of the earliest undelivered timer, pending, in
// flight or on disk (rocketmq_timer_dequeue_latency), and 0 when none is left.
func TestOldestDue(t *testing.T) {
	w := newTestWheel(t, 1000, 0)
	if got := w.stats().OldestDue; got != 0 {
		t.Fatalf("empty wheel: %d", got)
	}
	for i, due := range []int64{5_000, 2_500, 900_000} {
		if err := w.add(Entry{Due: due, Offset: int64(i) * 100, QueueOffset: int64(i), Size: 100}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.advance(3_000); err != nil {
		t.Fatal(err)
	}
	if got := w.stats().OldestDue; got != 2_500 {
		t.Fatalf("oldest due %d, want 2500", got)
	}
	taken := w.takeDue(3_000, 10) // in flight now: still the oldest undelivered
	if len(taken) != 1 || w.stats().OldestDue != 2_500 {
		t.Fatalf("taken %v, oldest %d", taken, w.stats().OldestDue)
	}
	w.done(taken[0])
	w.settle()
	if got := w.stats().OldestDue; got != 5_000 {
		t.Fatalf("after delivery: oldest due %d, want 5000", got)
	}
}
