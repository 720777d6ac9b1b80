package pop

import (
	"container/heap"
	"slices"
)

// QueueKey names one consumption position: a consumer group on one queue of one topic.
type QueueKey struct {
	Group string
	Topic string
	Queue int32
}

// entry is one popped, not yet acknowledged message of a queue.
//
// An entry is in flight while now < Deadline; once the machine's Expire has seen it due it is
// either ready (waiting to be delivered again with Reconsume+1) or, when the next delivery
// would exceed the group's retry budget, dead (waiting for the shell to move it to the DLQ).
type entry struct {
	Offset    int64
	PopTime   int64 // ms since the epoch of the current delivery
	Invisible int64 // ms of the current delivery
	Deadline  int64 // ms; PopTime+Invisible, or the change-invisible deadline
	Reconsume int32 // RECONSUMETIMES of the current delivery (0 on the first)
	Epoch     uint64
	ready     bool
	dead      bool
}

// queue is the pop state of one QueueKey.
//
// Invariant: every offset in [committed, Next) that is not in Outstanding is done (acked,
// filtered out, or moved to the DLQ); committed = min(Outstanding) or Next when empty.
type queue struct {
	key         QueueKey
	Next        int64            // next offset never delivered to this group
	Gen         uint64           // bumped by every reset; pops planned under another Gen are dropped
	Outstanding map[int64]*entry // popped and not done, by queue offset
	ready       map[int64]*entry // the outstanding entries with ready set
	nDead       int              // entries with dead set
	offs        offsetHeap       // outstanding offsets, lazily cleaned: min = Committed
}

func newQueue(key QueueKey, next int64, gen uint64) *queue {
	return &queue{key: key, Next: next, Gen: gen, Outstanding: make(map[int64]*entry), ready: make(map[int64]*entry)}
}

// Committed is the lowest offset not yet done: the group's consume offset on this queue.
// Amortised O(log n): offsets of finished entries are dropped from the heap when they reach
// its top.
func (q *queue) Committed() int64 {
	for len(q.offs) > 0 {
		if _, ok := q.Outstanding[q.offs[0]]; ok {
			return q.offs[0]
		}
		heap.Pop(&q.offs)
	}
	return q.Next
}

// Inflight counts entries delivered and still invisible (neither ready nor dead).
func (q *queue) Inflight() int { return len(q.Outstanding) - len(q.ready) - q.nDead }

func (q *queue) setReady(e *entry, ready bool) {
	e.ready = ready
	if ready {
		q.ready[e.Offset] = e
	} else {
		delete(q.ready, e.Offset)
	}
}

func (q *queue) remove(e *entry) {
	if e.ready {
		delete(q.ready, e.Offset)
	}
	if e.dead {
		q.nDead--
	}
	delete(q.Outstanding, e.Offset)
}

func (q *queue) put(e *entry) {
	if old, ok := q.Outstanding[e.Offset]; ok {
		q.remove(old)
	} else {
		heap.Push(&q.offs, e.Offset)
	}
	q.Outstanding[e.Offset] = e
}

// offsetHeap is a min-heap of queue offsets.
type offsetHeap []int64

func (h offsetHeap) Len() int           { return len(h) }
func (h offsetHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h offsetHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *offsetHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *offsetHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// reviveItem schedules an expiry check of (queue, offset) at deadline; stale items (the entry
// changed epoch or is gone) are skipped when they come due.
type reviveItem struct {
	deadline int64
	q        *queue
	offset   int64
	epoch    uint64
}

type reviveHeap []reviveItem

func (h reviveHeap) Len() int           { return len(h) }
func (h reviveHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h reviveHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *reviveHeap) Push(x any)        { *h = append(*h, x.(reviveItem)) }
func (h *reviveHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// Machine is the deterministic core of pop consumption: which offsets of which queue are in
// flight, ready for redelivery or dead, and where each group stands. It performs no I/O, reads
// no clock and starts no goroutine: every time is an argument, every change is a Record that
// the shell persists (the same Apply replays it after a restart), and expiry happens only when
// the shell calls Expire. It is not safe for concurrent use; Service guards it with one mutex.
type Machine struct {
	queues map[QueueKey]*queue
	revive reviveHeap
	epoch  uint64 // last epoch handed out
	// stale counts changes that may have left a dead item in revive (acks, changes,
	// redeliveries, resets) since the last compaction; see maybeCompact.
	stale int
}

// compactMin is the revive heap size below which it is never compacted.
const compactMin = 4096

// maybeCompact drops revive items that no longer match an in-flight entry once such changes
// reach half the heap: without it, acked deliveries with long invisible times (up to 12 h)
// would keep their items until their deadline. Amortised O(1) per change.
func (m *Machine) maybeCompact() {
	if m.stale < compactMin || m.stale < len(m.revive)/2 {
		return
	}
	m.stale = 0
	kept := m.revive[:0]
	for _, it := range m.revive {
		e, ok := it.q.Outstanding[it.offset]
		if ok && e.Epoch == it.epoch && !e.ready && !e.dead && m.queues[it.q.key] == it.q {
			kept = append(kept, it)
		}
	}
	clear(m.revive[len(kept):])
	m.revive = kept
	heap.Init(&m.revive)
}

// ReviveLen is the size of the revive heap (live and stale items).
func (m *Machine) ReviveLen() int { return len(m.revive) }

// NewMachine returns an empty machine.
func NewMachine() *Machine { return &Machine{queues: make(map[QueueKey]*queue)} }

// NextEpoch reserves a fresh delivery epoch. Epochs identify one delivery of one message: a
// receipt handle is current only while its entry still carries the handle's epoch.
func (m *Machine) NextEpoch() uint64 {
	m.epoch++
	return m.epoch
}

// Epoch is the last epoch handed out.
func (m *Machine) Epoch() uint64 { return m.epoch }

// Has reports whether the machine holds state for k.
func (m *Machine) Has(k QueueKey) bool {
	_, ok := m.queues[k]
	return ok
}

// Next returns k's next offset never delivered to the group and whether k is known.
func (m *Machine) Next(k QueueKey) (int64, bool) {
	q, ok := m.queues[k]
	if !ok {
		return 0, false
	}
	return q.Next, true
}

// Committed returns k's consume offset (lowest offset not done) and whether k is known.
func (m *Machine) Committed(k QueueKey) (int64, bool) {
	q, ok := m.queues[k]
	if !ok {
		return 0, false
	}
	return q.Committed(), true
}

// Inflight counts k's messages delivered and still invisible.
func (m *Machine) Inflight(k QueueKey) int {
	if q, ok := m.queues[k]; ok {
		return q.Inflight()
	}
	return 0
}

// Keys lists every queue the machine knows.
func (m *Machine) Keys() []QueueKey {
	out := make([]QueueKey, 0, len(m.queues))
	for k := range m.queues {
		out = append(out, k)
	}
	return out
}

// Plan says what a pop of k may deliver now.
type Plan struct {
	Gen     uint64
	Blocked bool    // orderly and something is still in flight: deliver nothing
	Ready   []Ready // revived messages to deliver first, by offset
	Next    int64   // first never-delivered offset
}

// Ready is a message due for redelivery.
type Ready struct {
	Offset    int64
	Reconsume int32 // RECONSUMETIMES of the coming delivery
	Epoch     uint64
}

// InFlight lists k's delivered, unacknowledged messages that are neither ready nor dead, in
// offset order, each as a Ready for a delivery again with the same RECONSUMETIMES: an
// orderly queue re-serves them to a receive retried with the same attempt id (the client
// never got the first answer). Nil when the queue has a dead message (waiting for the DLQ).
func (m *Machine) InFlight(k QueueKey) []Ready {
	q, ok := m.queues[k]
	if !ok || q.nDead > 0 {
		return nil
	}
	var out []Ready
	for _, e := range q.Outstanding {
		if !e.ready && !e.dead {
			out = append(out, Ready{Offset: e.Offset, Reconsume: e.Reconsume, Epoch: e.Epoch})
		}
	}
	slices.SortFunc(out, func(a, b Ready) int { return cmp64(a.Offset, b.Offset) })
	return out
}

// IsInFlight reports whether the message at offset is delivered under epoch and neither
// acknowledged, changed, ready nor dead since.
func (m *Machine) IsInFlight(k QueueKey, offset int64, epoch uint64) bool {
	q, ok := m.queues[k]
	if !ok {
		return false
	}
	e, ok := q.Outstanding[offset]
	return ok && !e.ready && !e.dead && e.Epoch == epoch
}

// Plan returns what a pop of k may deliver: first the ready messages (ascending offsets, at
// most max), then new messages from Next. With orderly, a queue holding any in-flight or dead
// message delivers nothing (Blocked): the next message of a queue is never handed out while an
// earlier one is unacknowledged. k must be known (see Apply of RecInit).
func (m *Machine) Plan(k QueueKey, orderly bool, max int) Plan {
	q := m.queues[k]
	p := Plan{Gen: q.Gen, Next: q.Next}
	if orderly && (q.Inflight() > 0 || q.nDead > 0) {
		p.Blocked = true
		return p
	}
	if len(q.ready) > 0 {
		for _, e := range q.ready {
			p.Ready = append(p.Ready, Ready{Offset: e.Offset, Reconsume: e.Reconsume + 1, Epoch: e.Epoch})
		}
		slices.SortFunc(p.Ready, func(a, b Ready) int { return cmp64(a.Offset, b.Offset) })
		if len(p.Ready) > max {
			p.Ready = p.Ready[:max]
		}
	}
	return p
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Due is an expired delivery whose message must go to the DLQ: the group's retry budget is
// spent. The shell moves it and then applies RecAck with the same epoch.
type Due struct {
	Key       QueueKey
	Offset    int64
	Reconsume int32 // RECONSUMETIMES of the last delivery
	Epoch     uint64
}

// Expire turns every delivery whose deadline is <= now into a ready message, or, when
// retryMax(group) < its next RECONSUMETIMES, into a dead one returned for the DLQ. It returns
// the dead ones and the keys that gained ready messages (so the shell wakes pollers).
func (m *Machine) Expire(now int64, retryMax func(group string) int32) (dead []Due, woke []QueueKey) {
	for len(m.revive) > 0 && m.revive[0].deadline <= now {
		it := heap.Pop(&m.revive).(reviveItem)
		e, ok := it.q.Outstanding[it.offset]
		if !ok || e.Epoch != it.epoch || e.ready || e.dead || e.Deadline > now {
			continue
		}
		if e.Reconsume+1 > retryMax(it.q.key.Group) {
			e.dead = true
			it.q.nDead++
			dead = append(dead, Due{Key: it.q.key, Offset: e.Offset, Reconsume: e.Reconsume, Epoch: e.Epoch})
			continue
		}
		it.q.setReady(e, true)
		if len(woke) == 0 || woke[len(woke)-1] != it.q.key {
			woke = append(woke, it.q.key)
		}
	}
	return dead, woke
}

// NextDeadline is the earliest pending expiry (ms) and whether there is one. It may be stale
// (an acked entry's deadline); Expire then simply finds nothing.
func (m *Machine) NextDeadline() (int64, bool) {
	if len(m.revive) == 0 {
		return 0, false
	}
	return m.revive[0].deadline, true
}

// HandleState classifies a receipt handle against the current state.
type HandleState int

// Handle states.
const (
	HandleCurrent HandleState = iota // the entry carries the handle's epoch
	HandleDone                       // nothing outstanding at that offset: already acked or skipped
	HandleStale                      // superseded: the entry carries another epoch
)

// Check classifies a handle for (k, offset, epoch).
func (m *Machine) Check(k QueueKey, offset int64, epoch uint64) HandleState {
	q, ok := m.queues[k]
	if !ok {
		return HandleDone
	}
	e, ok := q.Outstanding[offset]
	if !ok {
		return HandleDone
	}
	if e.Epoch != epoch {
		return HandleStale
	}
	return HandleCurrent
}

// Record kinds of the pop log.
const (
	RecInit   byte = 1 // (re)start k at Offset (first use or admin reset): Gen+1, nothing outstanding
	RecPop    byte = 2 // deliveries of k; Next advances to Offset
	RecAck    byte = 3 // the delivery (Offset, Epoch) of k is done
	RecChange byte = 4 // the delivery (Offset, Epoch) of k gets NewEpoch and a new deadline
	RecRewind byte = 5 // the queue ends before Next: Next = Offset, outstanding >= Offset dropped
	RecForget byte = 6 // k is forgotten (its topic or group was deleted): no state, nothing outstanding
)

// Record is one state change. The shell builds it, applies it and appends it to the pop log;
// recovery applies the same records in the same order.
type Record struct {
	Kind   byte
	Key    QueueKey
	Offset int64 // RecInit: start; RecPop: new Next; RecAck/RecChange: the message
	Epoch  uint64
	// RecChange
	NewEpoch  uint64
	PopTime   int64
	Invisible int64
	// RecPop
	Deliveries []Delivery
}

// Delivery is one message handed out by a pop.
type Delivery struct {
	Offset    int64
	Reconsume int32
	Epoch     uint64
	PopTime   int64 // ms
	Invisible int64 // ms
}

// Apply performs r. It is total: a record that no longer matches the state (an ack of a
// superseded epoch, say) changes nothing, so replaying a log is always safe. It reports
// whether anything changed.
func (m *Machine) Apply(r *Record) bool {
	switch r.Kind {
	case RecInit:
		var gen uint64
		if old, ok := m.queues[r.Key]; ok {
			gen = old.Gen + 1
			for _, e := range old.Outstanding {
				e.Epoch = 0 // orphan pending revive items
			}
		}
		m.queues[r.Key] = newQueue(r.Key, r.Offset, gen)
		if gen > 0 {
			m.stale += compactMin // a reset may orphan many items
			m.maybeCompact()
		}
		return true
	case RecPop:
		q, ok := m.queues[r.Key]
		if !ok {
			return false
		}
		for i := range r.Deliveries {
			d := &r.Deliveries[i]
			if d.Epoch > m.epoch {
				m.epoch = d.Epoch
			}
			if d.Offset < q.Next && !q.has(d.Offset) {
				// a redelivery of a message done meanwhile: it must not come back.
				continue
			}
			e := &entry{Offset: d.Offset, PopTime: d.PopTime, Invisible: d.Invisible,
				Deadline: d.PopTime + d.Invisible, Reconsume: d.Reconsume, Epoch: d.Epoch}
			q.put(e)
			heap.Push(&m.revive, reviveItem{deadline: e.Deadline, q: q, offset: e.Offset, epoch: e.Epoch})
		}
		if r.Offset > q.Next {
			q.Next = r.Offset
		}
		m.stale += len(r.Deliveries) // redeliveries leave their previous item behind
		m.maybeCompact()
		return true
	case RecAck:
		q, ok := m.queues[r.Key]
		if !ok {
			return false
		}
		e, ok := q.Outstanding[r.Offset]
		if !ok || e.Epoch != r.Epoch {
			return false
		}
		q.remove(e)
		m.stale++
		m.maybeCompact()
		return true
	case RecForget:
		q, ok := m.queues[r.Key]
		if !ok {
			return false
		}
		for _, e := range q.Outstanding {
			e.Epoch = 0 // orphan pending revive items
		}
		delete(m.queues, r.Key)
		m.stale += compactMin // its revive items are garbage now
		m.maybeCompact()
		return true
	case RecRewind:
		q, ok := m.queues[r.Key]
		if !ok || r.Offset >= q.Next {
			return false
		}
		for off, e := range q.Outstanding {
			if off >= r.Offset {
				q.remove(e)
				m.stale++
			}
		}
		q.Next = r.Offset
		m.maybeCompact()
		return true
	case RecChange:
		if r.NewEpoch > m.epoch {
			m.epoch = r.NewEpoch
		}
		q, ok := m.queues[r.Key]
		if !ok {
			return false
		}
		e, ok := q.Outstanding[r.Offset]
		if !ok || e.Epoch != r.Epoch || e.dead {
			return false
		}
		if e.ready {
			q.setReady(e, false)
		}
		e.Epoch, e.PopTime, e.Invisible = r.NewEpoch, r.PopTime, r.Invisible
		e.Deadline = r.PopTime + r.Invisible
		heap.Push(&m.revive, reviveItem{deadline: e.Deadline, q: q, offset: e.Offset, epoch: e.Epoch})
		m.stale++
		m.maybeCompact()
		return true
	}
	return false
}

func (q *queue) has(off int64) bool {
	_, ok := q.Outstanding[off]
	return ok
}

// Gen returns k's reset generation (0 when unknown).
func (m *Machine) Gen(k QueueKey) uint64 {
	if q, ok := m.queues[k]; ok {
		return q.Gen
	}
	return 0
}

// IsReady reports whether (k, offset) is ready for redelivery under epoch.
func (m *Machine) IsReady(k QueueKey, offset int64, epoch uint64) bool {
	q, ok := m.queues[k]
	if !ok {
		return false
	}
	e, ok := q.Outstanding[offset]
	return ok && e.ready && e.Epoch == epoch
}

// QueueSnapshot is the durable state of one queue.
type QueueSnapshot struct {
	Group   string          `json:"group"`
	Topic   string          `json:"topic"`
	Queue   int32           `json:"queue"`
	Next    int64           `json:"next"`
	Gen     uint64          `json:"gen"`
	Entries []EntrySnapshot `json:"entries,omitempty"`
}

// EntrySnapshot is the durable state of one outstanding message. Ready and dead are not
// stored: they follow from the deadline at the next Expire.
type EntrySnapshot struct {
	Offset    int64  `json:"o"`
	PopTime   int64  `json:"p"`
	Invisible int64  `json:"i"`
	Deadline  int64  `json:"d"`
	Reconsume int32  `json:"r"`
	Epoch     uint64 `json:"e"`
}

// Snapshot is the whole durable state of a Machine.
type Snapshot struct {
	Epoch  uint64          `json:"epoch"`
	Queues []QueueSnapshot `json:"queues"`
}

// Snapshot copies the durable state.
func (m *Machine) Snapshot() Snapshot {
	s := Snapshot{Epoch: m.epoch, Queues: make([]QueueSnapshot, 0, len(m.queues))}
	for _, q := range m.queues {
		qs := QueueSnapshot{Group: q.key.Group, Topic: q.key.Topic, Queue: q.key.Queue, Next: q.Next, Gen: q.Gen}
		for _, e := range q.Outstanding {
			qs.Entries = append(qs.Entries, EntrySnapshot{Offset: e.Offset, PopTime: e.PopTime,
				Invisible: e.Invisible, Deadline: e.Deadline, Reconsume: e.Reconsume, Epoch: e.Epoch})
		}
		slices.SortFunc(qs.Entries, func(a, b EntrySnapshot) int { return cmp64(a.Offset, b.Offset) })
		s.Queues = append(s.Queues, qs)
	}
	slices.SortFunc(s.Queues, func(a, b QueueSnapshot) int {
		if c := compareStr(a.Group, b.Group); c != 0 {
			return c
		}
		if c := compareStr(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Queue) - int(b.Queue)
	})
	return s
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Restore replaces the machine's state with s.
func (m *Machine) Restore(s Snapshot) {
	m.queues = make(map[QueueKey]*queue, len(s.Queues))
	m.revive = m.revive[:0]
	m.epoch = s.Epoch
	for _, qs := range s.Queues {
		k := QueueKey{Group: qs.Group, Topic: qs.Topic, Queue: qs.Queue}
		q := newQueue(k, qs.Next, qs.Gen)
		for _, es := range qs.Entries {
			e := &entry{Offset: es.Offset, PopTime: es.PopTime, Invisible: es.Invisible,
				Deadline: es.Deadline, Reconsume: es.Reconsume, Epoch: es.Epoch}
			q.put(e)
			m.revive = append(m.revive, reviveItem{deadline: e.Deadline, q: q, offset: e.Offset, epoch: e.Epoch})
			if es.Epoch > m.epoch {
				m.epoch = es.Epoch
			}
		}
		m.queues[k] = q
	}
	heap.Init(&m.revive)
}
