package timer

import (
	"container/heap"
	"fmt"
	"math"
	"slices"
)

// wheel is the scheduling state machine. It is pure bookkeeping driven by the caller's clock
// (every method takes now, in ms) plus the timer log it pages buckets from; it starts no
// goroutine, reads no clock and has no lock (the service loop owns it).
//
// Time is cut into buckets of width ms. Every ingested entry is appended to the timer log,
// chained to the previous entry of its bucket. Buckets up to loadedThrough are "in the window":
// their undelivered entries live in the in-memory heap. Later buckets live only on disk, as a
// (last position, count) slot; advance pages a bucket in when the clock comes within
// lookahead of it. Memory therefore holds the timers due before now+lookahead+width plus the
// overdue ones, one small slot per future bucket, and nothing per future timer.
//
// Delivery bookkeeping (the crash-consistency state, persisted by checkpoints):
//   - cursor: every ingested entry with key <= cursor has been delivered;
//   - doneAbove: entries delivered whose key is above cursor (out-of-order completions);
//   - skip: record offsets recovery found delivered (by their delivery mark) whose entry has
//     not been met yet; each is resolved (moved to doneAbove) when its entry is paged in or
//     re-ingested, or pruned once the cursor passes its delivery time (its entry was due by
//     then, so it cannot still be pending). It is kept in checkpoints until resolved, so a
//     capped page-in (maxMem) may resolve it runs later.
//
// New entries whose key would fall at or below cursor (due in the past) are clamped just above
// it, which keeps the cursor invariant; their due time is <= now anyway, so they still fire at
// once.
type wheel struct {
	width     int64
	lookahead int64
	maxMem    int // stop paging in while this many entries are in memory (0: no limit)
	log       *timerLog

	slots         map[int64]*slot // unloaded buckets with entries on disk
	diskBuckets   []int64         // keys of slots, ascending
	chainLast     map[int64]int64 // last log position of each bucket's chain (loaded or not)
	loadedThrough int64           // every bucket <= this is in memory
	pending       entryHeap       // undelivered entries of loaded buckets
	inflight      map[int64]Entry // taken by takeDue, not yet done/failed (by record offset)

	cursor    key
	doneAbove map[int64]key
	skip      map[int64]skipMark

	// segMax is the largest key appended to each log segment (for segment deletion).
	segMax map[int64]key

	// onSkip, when set, is called for a skip-set entry resolved while paging in (the service
	// keeps per-topic pending counts with it).
	onSkip func(m skipMark)
}

// skipMark is a delivery found by recovery: when it was delivered (TIMER_DEQUEUE_MS) and to
// which topic.
type skipMark struct {
	dequeue int64
	topic   string
}

type slot struct {
	last  int64 // position of the bucket's last entry
	count int   // entries in the chain (delivered ones included until paged in); for Stats
}

func newWheel(log *timerLog, width, lookahead int64) *wheel {
	return &wheel{
		width:         width,
		lookahead:     lookahead,
		log:           log,
		slots:         make(map[int64]*slot),
		chainLast:     make(map[int64]int64),
		loadedThrough: math.MinInt64,
		inflight:      make(map[int64]Entry),
		cursor:        key{math.MinInt64, math.MinInt64},
		doneAbove:     make(map[int64]key),
		skip:          make(map[int64]skipMark),
		segMax:        make(map[int64]key),
	}
}

func (w *wheel) bucketOf(due int64) int64 {
	b := due / w.width
	if due < 0 && due%w.width != 0 {
		b--
	}
	return b
}

// delivered reports whether the entry is known delivered (and records it when recovery found
// it in skip).
func (w *wheel) delivered(e Entry) bool {
	k := e.key()
	if !w.cursor.less(k) {
		return true
	}
	if _, ok := w.doneAbove[e.Offset]; ok {
		return true
	}
	if m, ok := w.skip[e.Offset]; ok {
		delete(w.skip, e.Offset)
		w.doneAbove[e.Offset] = k
		if w.onSkip != nil {
			w.onSkip(m)
		}
		return true
	}
	return false
}

// add ingests a new timer. The caller feeds records in timer-queue order, so offsets grow.
func (w *wheel) add(e Entry) error {
	if e.Due < w.cursor.due {
		e.Due = w.cursor.due
	}
	if !w.cursor.less(e.key()) {
		e.Due = w.cursor.due + 1
	}
	if _, ok := w.skip[e.Offset]; ok { // recovery: delivered before the crash
		delete(w.skip, e.Offset)
		w.doneAbove[e.Offset] = e.key()
		return nil
	}
	b := w.bucketOf(e.Due)
	prev, ok := w.chainLast[b]
	if !ok {
		prev = -1
	}
	pos, err := w.log.append(logEntry{Entry: e, prev: prev})
	if err != nil {
		return err
	}
	w.chainLast[b] = pos
	w.noteSeg(pos, e.key())
	if b <= w.loadedThrough {
		heap.Push(&w.pending, e)
		return nil
	}
	s := w.slots[b]
	if s == nil {
		s = &slot{}
		w.slots[b] = s
		i, _ := slices.BinarySearch(w.diskBuckets, b)
		w.diskBuckets = slices.Insert(w.diskBuckets, i, b)
	}
	s.last = pos
	s.count++
	return nil
}

func (w *wheel) noteSeg(pos int64, k key) {
	seg := pos / w.log.segSize * w.log.segSize
	if m, ok := w.segMax[seg]; !ok || m.less(k) {
		w.segMax[seg] = k
	}
}

// advance pages in every bucket due before now+lookahead, in time order, but stops while
// maxMem entries are in memory (a backlog after downtime, or a huge burst): the rest waits on
// disk until deliveries drain the heap. Whole buckets are paged in, so memory stays below
// maxMem plus one bucket. Invariant: every bucket <= loadedThrough is in memory and every
// disk bucket is > loadedThrough, so the heap's order is the global order.
func (w *wheel) advance(now int64) error {
	target := w.bucketOf(now + w.lookahead)
	for len(w.diskBuckets) > 0 && w.diskBuckets[0] <= target {
		b := w.diskBuckets[0]
		if w.full() {
			w.loadedThrough = max(w.loadedThrough, b-1)
			return nil
		}
		if err := w.load(b, w.slots[b]); err != nil {
			return err
		}
		w.diskBuckets = w.diskBuckets[1:]
		delete(w.slots, b)
	}
	if target > w.loadedThrough {
		w.loadedThrough = target
	}
	return nil
}

// full reports whether paging in must wait for deliveries.
func (w *wheel) full() bool { return w.maxMem > 0 && len(w.pending)+len(w.inflight) >= w.maxMem }

func (w *wheel) load(b int64, s *slot) error {
	pos := s.last
	for pos >= w.log.start && pos >= 0 {
		e, err := w.log.read(pos)
		if err != nil {
			return err
		}
		if w.bucketOf(e.Due) != b {
			return fmt.Errorf("%w: entry at %d (due %d) is not in bucket %d", errCorruptLog, pos, e.Due, b)
		}
		if e.prev >= pos {
			return fmt.Errorf("%w: entry at %d chains forward to %d", errCorruptLog, pos, e.prev)
		}
		if !w.delivered(e.Entry) {
			heap.Push(&w.pending, e.Entry)
		}
		pos = e.prev
	}
	return nil
}

// takeDue moves up to max entries due at or before now to in-flight and returns them in key
// order. The caller delivers them and reports each through done or failed.
func (w *wheel) takeDue(now int64, max int) []Entry {
	var out []Entry
	for len(out) < max && len(w.pending) > 0 && w.pending[0].Due <= now {
		e := heap.Pop(&w.pending).(Entry)
		if w.delivered(e) {
			continue
		}
		w.inflight[e.Offset] = e
		out = append(out, e)
	}
	return out
}

// done records that e has been delivered (its re-put returned success).
func (w *wheel) done(e Entry) {
	delete(w.inflight, e.Offset)
	w.doneAbove[e.Offset] = e.key()
}

// failed returns e to the pending heap (delivery will be retried).
func (w *wheel) failed(e Entry) {
	delete(w.inflight, e.Offset)
	heap.Push(&w.pending, e)
}

// settle advances the cursor over the delivered prefix: it becomes the largest delivered key
// below the smallest undelivered one (pending, in flight, or the first unloaded bucket).
func (w *wheel) settle() {
	low := key{math.MaxInt64, math.MaxInt64}
	if len(w.pending) > 0 {
		low = w.pending[0].key()
	}
	for _, e := range w.inflight {
		if k := e.key(); k.less(low) {
			low = k
		}
	}
	if len(w.diskBuckets) > 0 {
		if k := (key{w.diskBuckets[0] * w.width, math.MinInt64}); k.less(low) {
			low = k
		}
	}
	for off, k := range w.doneAbove {
		if k.less(low) {
			if w.cursor.less(k) {
				w.cursor = k
			}
			delete(w.doneAbove, off)
		}
	}
	for off, m := range w.skip {
		if m.dequeue < w.cursor.due {
			delete(w.skip, off)
		}
	}
}

// nextWake is the earliest time the state machine has work: the first pending due time, or the
// moment the next unloaded bucket enters the lookahead (unless memory is full).
func (w *wheel) nextWake() (int64, bool) {
	t, ok := int64(math.MaxInt64), false
	if len(w.pending) > 0 {
		t, ok = w.pending[0].Due, true
	}
	if len(w.diskBuckets) > 0 && !w.full() { // when full, deliveries make room first
		if p := w.diskBuckets[0]*w.width - w.lookahead; p < t {
			t, ok = p, true
		}
	}
	return t, ok
}

// droppableLog returns the log position before which every segment holds only entries at or
// below cursor (whole segments, oldest first). cursor is the one of a durable checkpoint.
func (w *wheel) droppableLog(cursor key) int64 {
	pos := w.log.start
	for _, seg := range w.log.segs {
		if seg+w.log.segSize > w.log.end {
			break // the segment being appended to stays
		}
		if m, ok := w.segMax[seg]; ok && cursor.less(m) {
			break
		}
		pos = seg + w.log.segSize
	}
	return pos
}

func (w *wheel) forgetSegsBefore(pos int64, cursor key) {
	for seg := range w.segMax {
		if seg+w.log.segSize <= pos {
			delete(w.segMax, seg)
		}
	}
	// Chains of buckets wholly before the cursor can no longer be extended.
	cb := w.bucketOf(cursor.due)
	for b := range w.chainLast {
		if b < cb && b <= w.loadedThrough {
			delete(w.chainLast, b)
		}
	}
}

// Stats is a snapshot of the state machine's size.
type Stats struct {
	InMemory    int   // entries held in memory (pending heap + in flight)
	OnDisk      int   // entries in unloaded buckets (paged in later)
	DiskBuckets int   // unloaded buckets
	DoneAbove   int   // delivered entries above the cursor
	CursorDue   int64 // due time of the cursor (ms)
	LogBytes    int64 // live timer log size

	// OldestDue is the due time (ms) of the earliest undelivered timer: pending, in flight,
	// or the start of the first bucket still on disk; 0 when there is none.
	OldestDue int64

	// Filled by Service.Stats.
	IngestOffset int64  // next timer-queue offset to ingest
	Delivered    uint64 // timers delivered since start
	Dropped      uint64 // timers dropped because their record was gone
	Recalled     uint64 // timers recalled (RecallMessage) and so not delivered
}

func (w *wheel) stats() Stats {
	s := Stats{
		InMemory:    len(w.pending) + len(w.inflight),
		DiskBuckets: len(w.diskBuckets),
		DoneAbove:   len(w.doneAbove),
		CursorDue:   w.cursor.due,
		LogBytes:    w.log.end - w.log.start,
	}
	for _, sl := range w.slots {
		s.OnDisk += sl.count
	}
	oldest := int64(math.MaxInt64)
	if len(w.pending) > 0 {
		oldest = w.pending[0].Due
	}
	for _, e := range w.inflight {
		oldest = min(oldest, e.Due)
	}
	if len(w.diskBuckets) > 0 {
		oldest = min(oldest, w.diskBuckets[0]*w.width)
	}
	if oldest != math.MaxInt64 {
		s.OldestDue = oldest
	}
	return s
}

// entryHeap is a min-heap of entries by key.
type entryHeap []Entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].key().less(h[j].key()) }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(Entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func sortInt64(s []int64) { slices.Sort(s) }

// snapshotSkip lists the unresolved delivery marks for a checkpoint.
func (w *wheel) snapshotSkip() []skipJSON {
	out := make([]skipJSON, 0, len(w.skip))
	for off, m := range w.skip {
		out = append(out, skipJSON{Offset: off, Dequeue: m.dequeue, Topic: m.topic})
	}
	slices.SortFunc(out, func(a, b skipJSON) int { return cmpInt64(a.Offset, b.Offset) })
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// snapshotDone lists doneAbove as {record offset, due} pairs for a checkpoint.
func (w *wheel) snapshotDone() [][2]int64 {
	out := make([][2]int64, 0, len(w.doneAbove))
	for off, k := range w.doneAbove {
		out = append(out, [2]int64{off, k.due})
	}
	slices.SortFunc(out, func(a, b [2]int64) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	return out
}
