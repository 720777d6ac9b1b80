package pop

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The state-machine tests drive Machine with explicit times (ms): fully deterministic, no
// clock, no goroutines.

var kA = QueueKey{"G", "T", 0}

func budget(n int32) func(string) int32 { return func(string) int32 { return n } }

// popN simulates a shell pop of k at now: the plan's ready messages, then new offsets up to
// avail (exclusive), at most max.
func popN(t *testing.T, m *Machine, k QueueKey, now, invisible int64, max int, orderly bool, avail int64) []Delivery {
	t.Helper()
	p := m.Plan(k, orderly, max)
	if p.Blocked {
		return nil
	}
	rec := &Record{Kind: RecPop, Key: k, Offset: p.Next}
	for _, r := range p.Ready {
		rec.Deliveries = append(rec.Deliveries, Delivery{Offset: r.Offset, Reconsume: r.Reconsume,
			Epoch: m.NextEpoch(), PopTime: now, Invisible: invisible})
	}
	for off := p.Next; off < avail && len(rec.Deliveries) < max; off++ {
		rec.Deliveries = append(rec.Deliveries, Delivery{Offset: off, Epoch: m.NextEpoch(), PopTime: now, Invisible: invisible})
		rec.Offset = off + 1
	}
	m.Apply(rec)
	return rec.Deliveries
}

func offsets(ds []Delivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Offset)
	}
	return out
}

func ack(m *Machine, k QueueKey, d Delivery) bool {
	return m.Apply(&Record{Kind: RecAck, Key: k, Offset: d.Offset, Epoch: d.Epoch})
}

func TestMachineReviveAfterInvisibleTime(t *testing.T) {
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	ds := popN(t, m, kA, 1000, 10_000, 4, false, 10)
	if got := offsets(ds); !slices.Equal(got, []int64{0, 1, 2, 3}) {
		t.Fatalf("first pop = %v", got)
	}
	ack(m, kA, ds[1])
	ack(m, kA, ds[3])
	if c, _ := m.Committed(kA); c != 0 {
		t.Fatalf("committed = %d, want 0 (0 unacked)", c)
	}
	if n := m.Inflight(kA); n != 2 {
		t.Fatalf("inflight = %d, want 2", n)
	}
	// Just before the deadline nothing revives.
	if dead, woke := m.Expire(10_999, budget(16)); len(dead)+len(woke) != 0 {
		t.Fatalf("early expire: %v %v", dead, woke)
	}
	if d, ok := m.NextDeadline(); !ok || d != 11_000 {
		t.Fatalf("next deadline = %d %v", d, ok)
	}
	dead, woke := m.Expire(11_000, budget(16))
	if len(dead) != 0 || !slices.Equal(woke, []QueueKey{kA}) {
		t.Fatalf("expire: dead=%v woke=%v", dead, woke)
	}
	// The next pop redelivers 0 and 2 first, with reconsume 1, then new ones.
	ds2 := popN(t, m, kA, 11_000, 10_000, 4, false, 10)
	if got := offsets(ds2); !slices.Equal(got, []int64{0, 2, 4, 5}) {
		t.Fatalf("second pop = %v", got)
	}
	if ds2[0].Reconsume != 1 || ds2[1].Reconsume != 1 || ds2[2].Reconsume != 0 {
		t.Fatalf("reconsume = %d %d %d", ds2[0].Reconsume, ds2[1].Reconsume, ds2[2].Reconsume)
	}
	// The old handle of offset 0 is stale, the new one current.
	if st := m.Check(kA, 0, ds[0].Epoch); st != HandleStale {
		t.Fatalf("old handle state = %v", st)
	}
	if st := m.Check(kA, 0, ds2[0].Epoch); st != HandleCurrent {
		t.Fatalf("new handle state = %v", st)
	}
	// A stale ack changes nothing; the current one finishes.
	if ack(m, kA, ds[0]) {
		t.Fatal("stale ack applied")
	}
	for _, d := range ds2 {
		ack(m, kA, d)
	}
	if c, _ := m.Committed(kA); c != 6 {
		t.Fatalf("committed = %d, want 6", c)
	}
	if st := m.Check(kA, 0, ds2[0].Epoch); st != HandleDone {
		t.Fatalf("acked handle state = %v, want done", st)
	}
}

func TestMachineDeadLetterAfterBudget(t *testing.T) {
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	now := int64(0)
	const retryMax = 2 // deliveries with reconsume 0, 1, 2, then the DLQ
	var last Delivery
	for attempt := int32(0); attempt <= retryMax; attempt++ {
		ds := popN(t, m, kA, now, 100, 1, false, 1)
		if len(ds) != 1 || ds[0].Offset != 0 || ds[0].Reconsume != attempt {
			t.Fatalf("attempt %d: got %+v", attempt, ds)
		}
		last = ds[0]
		now += 100
		dead, _ := m.Expire(now, budget(retryMax))
		if attempt < retryMax && len(dead) != 0 {
			t.Fatalf("attempt %d: dead early %v", attempt, dead)
		}
		if attempt == retryMax {
			if len(dead) != 1 || dead[0].Offset != 0 || dead[0].Reconsume != retryMax || dead[0].Epoch != last.Epoch {
				t.Fatalf("dead = %+v", dead)
			}
		}
	}
	// Dead: not delivered again, blocks an orderly pop, not counted in flight.
	if ds := popN(t, m, kA, now, 100, 1, false, 1); len(ds) != 0 {
		t.Fatalf("dead message delivered again: %+v", ds)
	}
	if p := m.Plan(kA, true, 1); !p.Blocked {
		t.Fatal("orderly plan not blocked by a dead message")
	}
	if n := m.Inflight(kA); n != 0 {
		t.Fatalf("inflight = %d", n)
	}
	// The shell moved it to the DLQ: ack with the dead epoch.
	if !ack(m, kA, last) {
		t.Fatal("DLQ ack not applied")
	}
	if c, _ := m.Committed(kA); c != 1 {
		t.Fatalf("committed = %d", c)
	}
}

func TestMachineOrderlyBlocksQueue(t *testing.T) {
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	ds := popN(t, m, kA, 0, 1000, 2, true, 10)
	if got := offsets(ds); !slices.Equal(got, []int64{0, 1}) {
		t.Fatalf("first pop = %v", got)
	}
	// In flight: blocked.
	if ds := popN(t, m, kA, 10, 1000, 2, true, 10); ds != nil {
		t.Fatalf("orderly pop while in flight = %v", offsets(ds))
	}
	// A non-orderly pop of the same state is not blocked.
	if p := m.Plan(kA, false, 2); p.Blocked {
		t.Fatal("non-orderly plan blocked")
	}
	// Ack 1 only: still blocked by 0.
	ack(m, kA, ds[1])
	if p := m.Plan(kA, true, 2); !p.Blocked {
		t.Fatal("not blocked while 0 in flight")
	}
	// 0 fails (invisible time passes): it comes back first, before anything behind it.
	m.Expire(1000, budget(16))
	ds2 := popN(t, m, kA, 1000, 1000, 3, true, 10)
	if got := offsets(ds2); !slices.Equal(got, []int64{0, 2, 3}) {
		t.Fatalf("after failure = %v", got)
	}
	if ds2[0].Reconsume != 1 {
		t.Fatalf("reconsume = %d", ds2[0].Reconsume)
	}
	for _, d := range ds2 {
		ack(m, kA, d)
	}
	ds3 := popN(t, m, kA, 1001, 1000, 1, true, 10)
	if got := offsets(ds3); !slices.Equal(got, []int64{4}) {
		t.Fatalf("after acks = %v", got)
	}
}

func TestMachineChangeInvisible(t *testing.T) {
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	ds := popN(t, m, kA, 0, 1000, 1, true, 5)
	e2 := m.NextEpoch()
	// Postpone to t=5000.
	if !m.Apply(&Record{Kind: RecChange, Key: kA, Offset: 0, Epoch: ds[0].Epoch, NewEpoch: e2, PopTime: 500, Invisible: 4500}) {
		t.Fatal("change not applied")
	}
	if st := m.Check(kA, 0, ds[0].Epoch); st != HandleStale {
		t.Fatalf("old handle = %v", st)
	}
	if dead, woke := m.Expire(4999, budget(16)); len(dead)+len(woke) != 0 {
		t.Fatal("revived before the changed deadline")
	}
	// A second change with the old epoch is rejected.
	if m.Apply(&Record{Kind: RecChange, Key: kA, Offset: 0, Epoch: ds[0].Epoch, NewEpoch: m.NextEpoch(), PopTime: 600, Invisible: 0}) {
		t.Fatal("change with stale epoch applied")
	}
	// Nack: change to 0 makes it due now; redelivered with reconsume 1, still first.
	if !m.Apply(&Record{Kind: RecChange, Key: kA, Offset: 0, Epoch: e2, NewEpoch: m.NextEpoch(), PopTime: 700, Invisible: 0}) {
		t.Fatal("nack not applied")
	}
	m.Expire(700, budget(16))
	ds2 := popN(t, m, kA, 700, 1000, 2, true, 5)
	if got := offsets(ds2); !slices.Equal(got, []int64{0, 1}) || ds2[0].Reconsume != 1 {
		t.Fatalf("after nack = %+v", ds2)
	}
}

func TestMachineResetForgetsOutstanding(t *testing.T) {
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	ds := popN(t, m, kA, 0, 1000, 3, false, 10)
	gen := m.Gen(kA)
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 7})
	if m.Gen(kA) != gen+1 {
		t.Fatal("gen not bumped")
	}
	if c, _ := m.Committed(kA); c != 7 {
		t.Fatalf("committed = %d", c)
	}
	if st := m.Check(kA, ds[0].Offset, ds[0].Epoch); st != HandleDone {
		t.Fatalf("handle after reset = %v", st)
	}
	// The old revive items are orphaned.
	if dead, woke := m.Expire(5000, budget(0)); len(dead)+len(woke) != 0 {
		t.Fatalf("orphan revived: %v %v", dead, woke)
	}
	if got := offsets(popN(t, m, kA, 5000, 1000, 2, false, 10)); !slices.Equal(got, []int64{7, 8}) {
		t.Fatalf("after reset = %v", got)
	}
}

// TestMachineForget: a forgotten queue has no state (its topic or group was deleted), its
// handles are done, its revive items are orphaned, and a later Init starts it afresh.
func TestMachineForget(t *testing.T) {
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	ds := popN(t, m, kA, 0, 1000, 3, false, 10)
	if !m.Apply(&Record{Kind: RecForget, Key: kA}) {
		t.Fatal("forget changed nothing")
	}
	if slices.Contains(m.Keys(), kA) {
		t.Fatal("forgotten queue still known")
	}
	if m.Apply(&Record{Kind: RecForget, Key: kA}) {
		t.Fatal("a second forget changed something")
	}
	if st := m.Check(kA, ds[0].Offset, ds[0].Epoch); st == HandleCurrent {
		t.Fatalf("handle after forget = %v", st)
	}
	if dead, woke := m.Expire(5000, budget(0)); len(dead)+len(woke) != 0 {
		t.Fatalf("orphan revived: %v %v", dead, woke)
	}
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	if got := offsets(popN(t, m, kA, 6000, 1000, 2, false, 10)); !slices.Equal(got, []int64{0, 1}) {
		t.Fatalf("after forget and init = %v", got)
	}
}

// TestMachineReplayEqualsLive checks that applying the same records to a fresh machine (log
// replay), or restoring a snapshot, reproduces the state.
func TestMachineReplayEqualsLive(t *testing.T) {
	live := NewMachine()
	var log []*Record
	apply := func(r *Record) {
		live.Apply(r)
		log = append(log, r)
	}
	apply(&Record{Kind: RecInit, Key: kA, Offset: 3})
	kB := QueueKey{"G", "T", 1}
	apply(&Record{Kind: RecInit, Key: kB, Offset: 0})
	for i := range 5 {
		for _, k := range []QueueKey{kA, kB} {
			p := live.Plan(k, false, 3)
			rec := &Record{Kind: RecPop, Key: k, Offset: p.Next + 2}
			for _, r := range p.Ready {
				rec.Deliveries = append(rec.Deliveries, Delivery{Offset: r.Offset, Reconsume: r.Reconsume, Epoch: live.NextEpoch(), PopTime: int64(i * 100), Invisible: 150})
			}
			rec.Deliveries = append(rec.Deliveries,
				Delivery{Offset: p.Next, Epoch: live.NextEpoch(), PopTime: int64(i * 100), Invisible: 150},
				Delivery{Offset: p.Next + 1, Epoch: live.NextEpoch(), PopTime: int64(i * 100), Invisible: 150})
			apply(rec)
			apply(&Record{Kind: RecAck, Key: k, Offset: rec.Deliveries[len(rec.Deliveries)-1].Offset, Epoch: rec.Deliveries[len(rec.Deliveries)-1].Epoch})
		}
		live.Expire(int64(i*100+99), budget(16))
	}
	replay := NewMachine()
	for _, r := range log {
		replay.Apply(r)
	}
	restored := NewMachine()
	restored.Restore(live.Snapshot())
	for _, m := range []*Machine{replay, restored} {
		if !equalSnapshots(live.Snapshot(), m.Snapshot()) {
			t.Fatalf("state differs:\nlive %+v\nother %+v", live.Snapshot(), m.Snapshot())
		}
	}
	// After expiring at the same time, plans agree.
	for _, m := range []*Machine{live, replay, restored} {
		m.Expire(10_000, budget(16))
	}
	for _, k := range []QueueKey{kA, kB} {
		a, b, c := live.Plan(k, false, 32), replay.Plan(k, false, 32), restored.Plan(k, false, 32)
		if !slices.Equal(a.Ready, b.Ready) || !slices.Equal(a.Ready, c.Ready) || a.Next != b.Next || a.Next != c.Next {
			t.Fatalf("plans differ: %+v %+v %+v", a, b, c)
		}
	}
}

func equalSnapshots(a, b Snapshot) bool {
	if a.Epoch != b.Epoch || len(a.Queues) != len(b.Queues) {
		return false
	}
	for i := range a.Queues {
		x, y := a.Queues[i], b.Queues[i]
		if x.Group != y.Group || x.Topic != y.Topic || x.Queue != y.Queue || x.Next != y.Next || !slices.Equal(x.Entries, y.Entries) {
			return false
		}
	}
	return true
}

func TestMachineRewind(t *testing.T) {
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	ds := popN(t, m, kA, 0, 1000, 6, false, 6)
	ack(m, kA, ds[0])
	if !m.Apply(&Record{Kind: RecRewind, Key: kA, Offset: 3}) {
		t.Fatal("rewind not applied")
	}
	if c, _ := m.Committed(kA); c != 1 {
		t.Fatalf("committed = %d", c)
	}
	if st := m.Check(kA, 4, ds[4].Epoch); st != HandleDone {
		t.Fatalf("dropped delivery state = %v", st)
	}
	if st := m.Check(kA, 2, ds[2].Epoch); st != HandleCurrent {
		t.Fatalf("kept delivery state = %v", st)
	}
	if got := offsets(popN(t, m, kA, 0, 1000, 2, false, 10)); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("after rewind = %v", got)
	}
	if m.Apply(&Record{Kind: RecRewind, Key: kA, Offset: 9}) {
		t.Fatal("rewind forward applied")
	}
}

// TestMachineRandomOpsInvariants drives the machine with random pops, acks, changes, expiries
// and rewinds, and checks its invariants against brute force after every step: Committed is
// min(outstanding) or Next, counters agree with the entries, nothing outstanding at or beyond
// Next, and an orderly plan is blocked exactly when something is in flight or dead.
func TestMachineRandomOpsInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	now := int64(0)
	avail := int64(0)
	for step := range 20000 {
		now += int64(rng.IntN(50))
		avail += int64(rng.IntN(3))
		switch rng.IntN(6) {
		case 0, 1:
			popN(t, m, kA, now, int64(10+rng.IntN(200)), 1+rng.IntN(8), rng.IntN(2) == 0, avail)
		case 2:
			q := m.queues[kA]
			for _, e := range q.Outstanding {
				if rng.IntN(2) == 0 {
					m.Apply(&Record{Kind: RecAck, Key: kA, Offset: e.Offset, Epoch: e.Epoch})
				}
			}
		case 3:
			q := m.queues[kA]
			for _, e := range q.Outstanding {
				m.Apply(&Record{Kind: RecChange, Key: kA, Offset: e.Offset, Epoch: e.Epoch, NewEpoch: m.NextEpoch(), PopTime: now, Invisible: int64(rng.IntN(100))})
				break
			}
		case 4:
			dead, _ := m.Expire(now, budget(3))
			for _, d := range dead {
				m.Apply(&Record{Kind: RecAck, Key: d.Key, Offset: d.Offset, Epoch: d.Epoch})
			}
		case 5:
			if rng.IntN(50) == 0 {
				q := m.queues[kA]
				m.Apply(&Record{Kind: RecRewind, Key: kA, Offset: q.Next - int64(rng.IntN(3))})
			}
		}
		q := m.queues[kA]
		want := q.Next
		nReady, nDead := 0, 0
		for off, e := range q.Outstanding {
			want = min(want, off)
			if off >= q.Next {
				t.Fatalf("step %d: outstanding %d >= next %d", step, off, q.Next)
			}
			if e.ready {
				nReady++
			}
			if e.dead {
				nDead++
			}
		}
		if got := q.Committed(); got != want {
			t.Fatalf("step %d: committed %d, brute force %d", step, got, want)
		}
		if nReady != len(q.ready) || nDead != q.nDead {
			t.Fatalf("step %d: ready %d/%d dead %d/%d", step, nReady, len(q.ready), nDead, q.nDead)
		}
		if blocked := m.Plan(kA, true, 1).Blocked; blocked != (q.Inflight() > 0 || nDead > 0) {
			t.Fatalf("step %d: orderly blocked=%v with inflight %d dead %d", step, blocked, q.Inflight(), nDead)
		}
	}
}

// TestMachineReviveHeapStaysBounded: with a 12 h invisible time and every message acked at
// once, the revive heap must not keep one item per delivery.
func TestMachineReviveHeapStaysBounded(t *testing.T) {
	m := NewMachine()
	m.Apply(&Record{Kind: RecInit, Key: kA, Offset: 0})
	const invisible = 12 * 3600 * 1000
	for i := range 200_000 {
		ds := popN(t, m, kA, int64(i), invisible, 1, false, int64(i+1))
		ack(m, kA, ds[0])
	}
	if n := m.ReviveLen(); n > 2*compactMin {
		t.Fatalf("revive heap holds %d items for 0 in flight", n)
	}
	// Live items survive compaction.
	ds := popN(t, m, kA, 0, 100, 3, false, 200_003)
	for range 3 * compactMin {
		m.Apply(&Record{Kind: RecAck, Key: kA, Offset: 1 << 40, Epoch: 1}) // no-op acks
	}
	m.stale = compactMin * 10
	m.maybeCompact()
	if n := m.ReviveLen(); n != 3 {
		t.Fatalf("after compaction %d items, want 3", n)
	}
	if dead, woke := m.Expire(100, budget(16)); len(dead) != 0 || len(woke) != 1 || len(m.Plan(kA, false, 32).Ready) != 3 {
		t.Fatalf("expire after compaction: dead %v woke %v", dead, woke)
	}
	_ = ds
}
