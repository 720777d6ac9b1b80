package pop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// Errors returned by the Service API (besides ErrHandleInvalid, ErrHandleExpired,
// ErrInvalidFilter and ErrLogFailed). The broker maps them to ResponseCodes.
var (
	ErrTopicNotFound = errors.New("topic not exist")
	ErrGroupNotFound = errors.New("subscription group not exist")
	// ErrInvalidParameter is wrapped by every request validation error.
	ErrInvalidParameter = errors.New("invalid parameter")
	// ErrNoPermission: the group may not consume (consumeEnable=false).
	ErrNoPermission = errors.New("subscription group no permission")
	ErrClosed       = errors.New("pop: service closed")
	// ErrPollingFull: too many pops are parked already (Config.PollingSize, MaxPollingSize).
	ErrPollingFull = errors.New("pop: polling full")
)

// PopRequest asks for up to MaxMessages messages of Topic for Group.
type PopRequest struct {
	Group         string
	Topic         string
	QueueID       int32         // -1: any readable queue of the topic
	MaxMessages   int           // 1..Config.MaxBatch
	InvisibleTime time.Duration // Config.MinInvisibleTime..MaxInvisibleTime
	PollTime      time.Duration // long-poll budget (capped at Config.MaxPollTime); 0: no wait
	FilterType    string        // "" or "TAG"
	FilterExpr    string        // "", "*", "A||B"
	Order         bool          // FIFO delivery even if the group is not orderly
	// AttemptID identifies a receive attempt (gRPC ReceiveMessageRequest.attempt_id, remoting
	// POP header attemptId): an orderly queue whose in-flight messages were handed out under
	// the same attempt id hands them out again at once (the client retried a receive whose
	// answer it lost), as Apache's ConsumerOrderInfoManager; "" never matches.
	AttemptID string
}

// PopResult carries the popped messages (none when nothing arrived within the poll time).
type PopResult struct {
	Messages      []Message
	PopTime       int64 // ms since the epoch
	InvisibleTime time.Duration
	RestNum       int64 // messages left behind in the queues this pop read
}

// Message is one popped message in both forms the callers need.
type Message struct {
	// Ext is the decoded message: property POP_CK = Handle, ReconsumeTimes = previous
	// deliveries. Its Body aliases Record.
	Ext *message.Ext
	// Handle is the receipt handle (opaque, URL-safe) for Ack and ChangeInvisible.
	Handle string
	// Record is the message re-encoded in the stored-record layout (the remoting POP body
	// element), carrying the same POP_CK and RECONSUMETIMES.
	Record []byte
}

// ChangeResult is the outcome of a successful ChangeInvisible.
type ChangeResult struct {
	Handle        string // the new handle; the old one is now stale
	PopTime       int64  // ms since the epoch
	InvisibleTime time.Duration
}

// qlock serialises pops of one queue (plan, read, commit) and the publication of its
// committed offset to the broker's offset table.
type qlock struct {
	pop       sync.Mutex
	pub       sync.Mutex // guards published, havePub, resetGen
	published int64
	havePub   bool
	resetGen  uint64 // the offset table's reset generation this queue last adopted
}

// Service is pop consumption on one broker: the Machine (deterministic state) inside an I/O
// shell that reads the store, persists the pop log, long-polls, revives and dead-letters.
//
// Locks, outer to inner: qlock.pop -> qlock.pub -> Service.mu -> wal.mu. Service.mu is never
// held across store reads, the offset table, the group table, DeadLetter or an fsync.
// Goroutines: Run's loop (revive,
// dead-letter, snapshots), owned by the caller of Run.
type Service struct {
	cfg    Config
	log    *slog.Logger
	deps   Deps
	signer *Signer

	// parkMu guards parked and parkedTotal: the pops parked in long polling (a leaf lock).
	parkMu      sync.Mutex
	parked      map[string]int
	parkedTotal int

	mu      sync.Mutex // guards m, locks, dirty, budgets
	m       *Machine
	locks   map[QueueKey]*qlock
	dirty   bool             // records appended since the last snapshot
	budgets map[string]int32 // retryMaxTimes per group, refreshed by every pop of the group
	// attempts is, per queue, the last orderly delivery made under an attempt id: the id and
	// the epoch of each message it handed out (memory only: after a restart a retried attempt
	// waits for the invisible time, as without attempt ids). An orderly delivery without an
	// attempt id removes the entry.
	attempts map[QueueKey]attemptRec
	wal      *wal
	notify   notifier

	kick      chan struct{} // wakes Run: an earlier deadline or a DLQ to retry
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	rr        atomic.Uint32 // round-robin start for QueueID -1
	wakeAt    atomic.Int64  // ms: when Run's timer fires next; 0 while unknown
	stats     struct{ popped, redelivered, acked, changed, deadLettered atomic.Int64 }
	snapMu    sync.Mutex // serialises snapshots
}

// New recovers the pop state from cfg.Dir (snapshot + logs), compacts it into a fresh
// snapshot and returns a Service ready to serve; call Run to start reviving.
func New(cfg Config, deps Deps, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pop: create dir: %w", err)
	}
	secret, err := LoadOrCreateSecret(cfg.Dir)
	if err != nil {
		return nil, err
	}
	signer, err := NewSigner(secret)
	if err != nil {
		return nil, err
	}
	m := NewMachine()
	next, replayed, err := recoverState(cfg.Dir, m)
	if err != nil {
		return nil, err
	}
	// Compact: everything recovered goes into a new snapshot; new records into a new file.
	// No space for the snapshot is not fatal (QA R10T-2: a broker must start on a full disk
	// and refuse puts, as Apache): the old snapshot and logs stay and are replayed next time.
	if err := writeSnapshot(cfg.Dir, &snapshotDoc{LogSeq: next, State: m.Snapshot()}); err != nil {
		if !errors.Is(err, syscall.ENOSPC) {
			return nil, err
		}
		log.Warn("pop: no space for the start-up snapshot; keeping the previous snapshot and logs", "err", err)
	} else if err := removeLogsBefore(cfg.Dir, next); err != nil {
		return nil, err
	}
	w, err := openWAL(cfg.Dir, next, cfg.SyncFlush)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, log: log.With("component", "pop"), deps: deps, signer: signer,
		m: m, locks: make(map[QueueKey]*qlock), budgets: make(map[string]int32), wal: w,
		attempts: make(map[QueueKey]attemptRec),
		notify:   notifier{waiters: make(map[string]map[*waiter]struct{})},
		kick:     make(chan struct{}, 1), done: make(chan struct{}),
	}
	// The pop state is authoritative for the queues it knows: republish their offsets (the
	// offset table may have been persisted before our last changes).
	for _, k := range m.Keys() {
		s.publish(k)
		if _, ok := s.budgets[k.Group]; !ok {
			if g, ok := deps.Groups.Group(k.Group); ok {
				s.budgets[k.Group] = g.RetryMaxTimes
			}
		}
	}
	s.log.Info("pop state recovered", "queues", len(m.Keys()), "replayed", replayed, "log", next)
	return s, nil
}

func nowMs() int64 { return time.Now().UnixMilli() }

func (s *Service) qlock(k QueueKey) *qlock {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[k]
	if !ok {
		l = &qlock{}
		s.locks[k] = l
	}
	return l
}

// applyLocked applies r and appends it to the log; s.mu held.
func (s *Service) applyLocked(r *Record) (*batch, error) {
	b, err := s.wal.append(r)
	if err != nil {
		return nil, err
	}
	s.m.Apply(r)
	s.dirty = true
	return b, nil
}

// publish writes k's committed offset to the broker's offset table when it changed.
func (s *Service) publish(k QueueKey) {
	l := s.qlock(k)
	l.pub.Lock()
	defer l.pub.Unlock()
	s.mu.Lock()
	c, ok := s.m.Committed(k)
	s.mu.Unlock()
	if !ok || (l.havePub && l.published == c) {
		return
	}
	s.deps.Offsets.Commit(k.Group, k.Topic, k.Queue, c)
	l.published, l.havePub = c, true
}

// ensureQueue initialises k on first use and adopts a committed offset written by someone
// else, as Apache's PopMessageProcessor.getPopOffset: an admin reset (the offset table's
// reset generation moved) wherever it points, and a commit by a pull or push consumer of
// the group only when it is ahead of pop's next offset (a group switched from a 5.x to a
// 4.x client and back resumes where the 4.x client stopped: QA R9P-1). A commit behind pop
// never rewinds it (QA R9N-1: that redelivered acknowledged messages). pop's own published
// offset is its committed one, never ahead of its next. l.pop held.
func (s *Service) ensureQueue(k QueueKey, l *qlock) error {
	s.mu.Lock()
	next, known := s.m.Next(k)
	s.mu.Unlock()
	gen := s.deps.Offsets.ResetGeneration(k.Group, k.Topic, k.Queue)
	var start int64
	switch {
	case !known:
		if off, ok := s.deps.Offsets.Query(k.Group, k.Topic, k.Queue); ok {
			start = off
		} else {
			start = s.deps.Offsets.Initial(k.Group, k.Topic, k.Queue)
		}
	default:
		l.pub.Lock()
		reset := gen != l.resetGen
		l.resetGen = gen
		l.pub.Unlock()
		off, ok := s.deps.Offsets.Query(k.Group, k.Topic, k.Queue)
		switch {
		case !ok:
			return nil
		case reset:
			s.log.Info("pop: adopting admin offset reset", "group", k.Group, "topic", k.Topic, "queue", k.Queue, "offset", off)
		case off > next:
			s.log.Info("pop: moving forward to an offset another consumer of the group committed",
				"group", k.Group, "topic", k.Topic, "queue", k.Queue, "from", next, "offset", off)
		default:
			return nil
		}
		start = off
	}
	l.pub.Lock()
	l.resetGen = gen
	l.pub.Unlock()
	return s.reset(k, start)
}

// reset restarts k at offset: everything outstanding is forgotten. l.pop held.
func (s *Service) reset(k QueueKey, offset int64) error {
	s.mu.Lock()
	b, err := s.applyLocked(&Record{Kind: RecInit, Key: k, Offset: offset})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.wal.wait(b); err != nil {
		return err
	}
	s.publish(k)
	s.notify.wake(k.Topic)
	return nil
}

// ResetOffset restarts (group, topic, queue) at offset: in-flight messages are forgotten and
// delivery resumes from offset. The broker's reset-offset handler calls it (the Service
// also adopts a changed committed offset it finds in the offset table on the next pop).
func (s *Service) ResetOffset(group, topic string, queue int32, offset int64) error {
	k := QueueKey{group, topic, queue}
	l := s.qlock(k)
	l.pop.Lock()
	defer l.pop.Unlock()
	return s.reset(k, offset)
}

// ForgetTopic drops every group's pop state on topic (positions and in-flight messages; old
// handles become invalid): the topic was deleted, as Apache's deleteTopicInBroker clears its
// offsets and pop in-flight counts. A topic created again under the name then starts as for a
// new group, at its first message (QA R12E-1: the old position skipped what the new topic
// already held).
func (s *Service) ForgetTopic(topic string) error {
	return s.forget(func(k QueueKey) bool { return k.Topic == topic })
}

// ForgetGroup drops group's pop state on every topic: the group was deleted. Without it the
// state outlived the group and brought it back at the next start (QA R12F-3).
func (s *Service) ForgetGroup(group string) error {
	return s.forget(func(k QueueKey) bool { return k.Group == group })
}

// forget applies RecForget to every known queue that match selects.
func (s *Service) forget(match func(QueueKey) bool) error {
	s.mu.Lock()
	var keys []QueueKey
	for _, k := range s.m.Keys() {
		if match(k) {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, k := range keys {
		l := s.qlock(k)
		l.pop.Lock()
		s.mu.Lock()
		b, err := s.applyLocked(&Record{Kind: RecForget, Key: k})
		s.mu.Unlock()
		if err == nil {
			err = s.wal.wait(b)
		}
		if err == nil {
			l.pub.Lock()
			l.havePub = false // a new state publishes its offsets afresh
			l.pub.Unlock()
		}
		l.pop.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("pop: forget %v: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// Inflight counts the messages of (group, topic, queue) delivered and still invisible.
func (s *Service) Inflight(group, topic string, queue int32) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.m.Inflight(QueueKey{group, topic, queue}))
}

// Notify tells pollers of topic that messages may have arrived (wire it to the store's
// dispatch notifications).
func (s *Service) Notify(topic string, queue int32) { s.notify.wake(topic) }

func (s *Service) validatePop(req *PopRequest) (*TagFilter, error) {
	if req.Group == "" || req.Topic == "" {
		return nil, fmt.Errorf("%w: consumerGroup and topic are required", ErrInvalidParameter)
	}
	if req.MaxMessages <= 0 || req.MaxMessages > s.cfg.MaxBatch {
		return nil, fmt.Errorf("%w: maxMsgNums %d not in 1..%d", ErrInvalidParameter, req.MaxMessages, s.cfg.MaxBatch)
	}
	if req.InvisibleTime < s.cfg.MinInvisibleTime || req.InvisibleTime > s.cfg.MaxInvisibleTime {
		return nil, fmt.Errorf("%w: invisibleTime %dms not in %d..%dms", ErrInvalidParameter,
			req.InvisibleTime.Milliseconds(), s.cfg.MinInvisibleTime.Milliseconds(), s.cfg.MaxInvisibleTime.Milliseconds())
	}
	if req.PollTime < 0 {
		return nil, fmt.Errorf("%w: pollTime must be >= 0", ErrInvalidParameter)
	}
	f, err := ParseFilter(req.FilterType, req.FilterExpr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidParameter, err)
	}
	return f, nil
}

// Pop delivers up to req.MaxMessages messages, long-polling up to req.PollTime for them.
// Nothing available within the poll time is an empty result and a nil error. Each message is
// invisible to other pops of the group until it is acked or its invisible time passes; then
// it is delivered again with ReconsumeTimes+1, or moved to %DLQ%<group> once the group's
// retry budget is spent. With req.Order or an orderly group, a queue hands out nothing while
// one of its messages is in flight.
func (s *Service) Pop(ctx context.Context, req PopRequest) (PopResult, error) {
	f, err := s.validatePop(&req)
	if err != nil {
		return PopResult{}, err
	}
	nq, ok := s.deps.Topics.ReadQueues(req.Topic)
	if !ok {
		return PopResult{}, fmt.Errorf("%w: %s", ErrTopicNotFound, req.Topic)
	}
	g, ok := s.deps.Groups.Group(req.Group)
	if !ok {
		return PopResult{}, fmt.Errorf("%w: %s", ErrGroupNotFound, req.Group)
	}
	if g.Disabled {
		return PopResult{}, fmt.Errorf("%w, %s", ErrNoPermission, req.Group)
	}
	s.mu.Lock()
	s.budgets[req.Group] = g.RetryMaxTimes
	s.mu.Unlock()
	if req.QueueID >= nq || req.QueueID < -1 {
		return PopResult{}, fmt.Errorf("%w: queueId %d not in -1..%d", ErrInvalidParameter, req.QueueID, nq-1)
	}
	orderly := req.Order || g.Orderly
	poll := min(req.PollTime, s.cfg.MaxPollTime)
	var deadline time.Time
	if poll > 0 {
		deadline = time.Now().Add(poll)
	}
	var timer *time.Timer
	parkKey := ""
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if parkKey != "" {
			s.unpark(parkKey)
		}
	}()
	for {
		w := s.notify.watch(req.Topic)
		res, err := s.tryPop(ctx, &req, f, orderly, nq)
		if err != nil || len(res.Messages) > 0 || poll == 0 {
			s.notify.unwatch(req.Topic, w)
			if n := len(res.Messages); n > 0 && s.deps.Delivered != nil {
				size := 0
				for _, m := range res.Messages {
					if m.Ext.StoreSize > 0 {
						size += int(m.Ext.StoreSize)
					} else {
						size += len(m.Record)
					}
				}
				s.deps.Delivered(req.Topic, req.Group, n, size)
			}
			return res, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			s.notify.unwatch(req.Topic, w)
			return res, nil
		}
		if parkKey == "" {
			k := fmt.Sprintf("%s@%s@%d", req.Topic, req.Group, req.QueueID)
			if !s.park(k) {
				s.notify.unwatch(req.Topic, w)
				return PopResult{}, fmt.Errorf("%w: more than %d pops parked for %s or %d in total",
					ErrPollingFull, s.cfg.PollingSize, k, s.cfg.MaxPollingSize)
			}
			parkKey = k
		}
		if timer == nil {
			timer = time.NewTimer(left)
		} else {
			timer.Reset(left)
		}
		select {
		case <-w.ch:
		case <-timer.C:
		case <-ctx.Done():
			s.notify.unwatch(req.Topic, w)
			return PopResult{}, ctx.Err()
		case <-s.done:
			s.notify.unwatch(req.Topic, w)
			return PopResult{}, ErrClosed
		}
		s.notify.unwatch(req.Topic, w)
	}
}

// park counts a pop parked under key (topic@group@queue), false when a bound is reached
// (RocketMQ PopLongPollingService: popPollingSize per key, maxPopPollingSize in total).
func (s *Service) park(key string) bool {
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if s.parkedTotal >= s.cfg.MaxPollingSize || s.parked[key] >= s.cfg.PollingSize {
		return false
	}
	if s.parked == nil {
		s.parked = map[string]int{}
	}
	s.parked[key]++
	s.parkedTotal++
	return true
}

func (s *Service) unpark(key string) {
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if s.parked[key]--; s.parked[key] <= 0 {
		delete(s.parked, key)
	}
	s.parkedTotal--
}

// tryPop makes one pass over the requested queues.
func (s *Service) tryPop(ctx context.Context, req *PopRequest, f *TagFilter, orderly bool, nq int32) (PopResult, error) {
	select {
	case <-s.done:
		return PopResult{}, ErrClosed
	default:
	}
	res := PopResult{PopTime: nowMs(), InvisibleTime: req.InvisibleTime}
	queues := []int32{req.QueueID}
	if req.QueueID < 0 {
		queues = make([]int32, nq)
		start := int32(s.rr.Add(1) % uint32(max(nq, 1)))
		for i := range nq {
			queues[i] = (start + i) % nq
		}
	}
	var last *batch
	var touched []QueueKey
	for _, qid := range queues {
		want := req.MaxMessages - len(res.Messages)
		if want <= 0 {
			break
		}
		k := QueueKey{req.Group, req.Topic, qid}
		msgs, rest, b, err := s.popQueue(k, want, f, orderly, req.AttemptID, res.PopTime, req.InvisibleTime.Milliseconds())
		if err != nil {
			return PopResult{}, err
		}
		if b != nil {
			last = b
			touched = append(touched, k)
		}
		res.Messages = append(res.Messages, msgs...)
		res.RestNum += rest
	}
	if last == nil {
		return res, nil
	}
	// One durability wait for every queue of this pass: batches are flushed in order, so
	// the last one covers the others.
	if err := s.wal.wait(last); err != nil {
		return PopResult{}, err
	}
	s.stats.popped.Add(int64(len(res.Messages)))
	for _, k := range touched {
		s.publish(k)
	}
	if len(res.Messages) > 0 {
		s.kickRunBefore(res.PopTime + req.InvisibleTime.Milliseconds())
	}
	return res, nil
}

// attemptRec is the last orderly delivery of a queue made under an attempt id.
type attemptRec struct {
	id     string
	epochs map[int64]uint64 // queue offset -> epoch of the delivery
}

// candidate is a message read for delivery before it is committed.
type candidate struct {
	ext       *message.Ext // private copy
	reconsume int32
	ready     bool
	again     bool   // in flight, handed out again to a retried attempt (see PopRequest.AttemptID)
	epoch     uint64 // ready or again: the epoch it is ready / in flight under
}

// popQueue delivers up to want messages of k. The changes are applied and appended to the
// pop log; the caller must wait for the returned batch (nil: nothing changed) before handing
// the messages out, then publish k's offset.
func (s *Service) popQueue(k QueueKey, want int, f *TagFilter, orderly bool, attempt string, popTime, invisible int64) ([]Message, int64, *batch, error) {
	l := s.qlock(k)
	l.pop.Lock()
	defer l.pop.Unlock()
	if err := s.ensureQueue(k, l); err != nil {
		return nil, 0, nil, err
	}
	s.mu.Lock()
	plan := s.m.Plan(k, orderly, want)
	var again []Ready
	if a, ok := s.attempts[k]; ok && plan.Blocked && attempt != "" && a.id == attempt {
		// Only what this attempt received and nobody received since (same epoch).
		for _, r := range s.m.InFlight(k) {
			if a.epochs[r.Offset] == r.Epoch {
				again = append(again, r)
			}
		}
		if len(again) > want {
			again = again[:want]
		}
	}
	s.mu.Unlock()
	if plan.Blocked && len(again) == 0 {
		return nil, 0, nil, nil
	}
	var cands []candidate
	var gone []Ready // ready messages no longer in the store, or not matching the filter (acked)
	for _, r := range again {
		ext, err := s.readOne(k, r.Offset)
		if err != nil {
			return nil, 0, nil, err
		}
		if ext != nil {
			cands = append(cands, candidate{ext: ext, reconsume: r.Reconsume, again: true, epoch: r.Epoch})
		}
	}
	if len(again) > 0 {
		want = len(cands) // the same messages, nothing new: the group stays in order
	}
	for _, r := range plan.Ready {
		ext, err := s.readOne(k, r.Offset)
		if err != nil {
			return nil, 0, nil, err
		}
		if ext == nil {
			gone = append(gone, r)
			continue
		}
		if !f.All() && !f.MatchMessage(ext) {
			// A redelivery the requesting subscription does not match is acknowledged, not
			// returned, as Apache's proxy does with NO_MATCH pops (QA R7G-2): the group's
			// filter changed, or its consumers disagree about it.
			gone = append(gone, r)
			continue
		}
		cands = append(cands, candidate{ext: ext, reconsume: r.Reconsume, ready: true, epoch: r.Epoch})
	}
	next, maxOff := plan.Next, int64(-1)
	if len(cands) < want {
		var err error
		var fresh []candidate
		fresh, next, maxOff, err = s.readNew(k, plan.Next, want-len(cands), f)
		if err != nil {
			return nil, 0, nil, err
		}
		cands = append(cands, fresh...)
	}
	if len(cands) == 0 && len(gone) == 0 && maxOff >= 0 && plan.Next > maxOff {
		// The queue ends before where the group stands (the store lost an unflushed tail in
		// a crash, or the topic was recreated): continue from its end, or new messages would
		// get offsets the group already passed.
		s.log.Warn("pop: queue shorter than the group's position, rewinding", "group", k.Group,
			"topic", k.Topic, "queue", k.Queue, "next", plan.Next, "max", maxOff)
		s.mu.Lock()
		b, err := s.applyLocked(&Record{Kind: RecRewind, Key: k, Offset: maxOff})
		s.mu.Unlock()
		if err == nil {
			err = s.wal.wait(b)
		}
		if err == nil {
			s.publish(k)
		}
		return nil, 0, nil, err
	}
	if len(cands) == 0 && next == plan.Next && len(gone) == 0 {
		return nil, restOf(maxOff, next), nil, nil
	}

	s.mu.Lock()
	if s.m.Gen(k) != plan.Gen { // reset meanwhile: drop this pass
		s.mu.Unlock()
		return nil, 0, nil, nil
	}
	for _, g := range gone {
		if s.m.IsReady(k, g.Offset, g.Epoch) {
			if _, err := s.applyLocked(&Record{Kind: RecAck, Key: k, Offset: g.Offset, Epoch: g.Epoch}); err != nil {
				s.mu.Unlock()
				return nil, 0, nil, err
			}
		}
	}
	rec := &Record{Kind: RecPop, Key: k, Offset: next}
	kept := cands[:0]
	for _, c := range cands {
		if c.ready && !s.m.IsReady(k, c.ext.QueueOffset, c.epoch) {
			continue // acked or changed meanwhile
		}
		if c.again && !s.m.IsInFlight(k, c.ext.QueueOffset, c.epoch) {
			continue // acked, changed or expired meanwhile
		}
		rec.Deliveries = append(rec.Deliveries, Delivery{Offset: c.ext.QueueOffset, Reconsume: c.reconsume,
			Epoch: s.m.NextEpoch(), PopTime: popTime, Invisible: invisible})
		kept = append(kept, c)
	}
	b, err := s.applyLocked(rec)
	if err == nil && orderly && len(kept) > 0 {
		if attempt == "" {
			delete(s.attempts, k)
		} else {
			a := attemptRec{id: attempt, epochs: make(map[int64]uint64, len(rec.Deliveries))}
			for _, d := range rec.Deliveries {
				a.epochs[d.Offset] = d.Epoch
			}
			s.attempts[k] = a
		}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, 0, nil, err
	}

	out := make([]Message, 0, len(kept))
	for i, c := range kept {
		d := rec.Deliveries[i]
		if c.ready {
			s.stats.redelivered.Add(1)
		}
		h := &Handle{Broker: s.cfg.BrokerName, Topic: k.Topic, Queue: k.Queue, Offset: d.Offset,
			CommitLogOffset: c.ext.CommitLogOffset, PopTime: popTime, Invisible: invisible,
			Reconsume: d.Reconsume, Epoch: d.Epoch}
		m, err := s.finish(k.Group, c.ext, h)
		if err != nil {
			return nil, 0, nil, err
		}
		out = append(out, m)
	}
	return out, restOf(maxOff, next), b, nil
}

func restOf(maxOff, next int64) int64 {
	if maxOff < next {
		return 0
	}
	return maxOff - next
}

// finish stamps handle and reconsume times on ext and encodes the record; the returned Ext
// (ext itself, its body now aliasing the record) agrees with the record field by field.
func (s *Service) finish(group string, ext *message.Ext, h *Handle) (Message, error) {
	text := s.signer.Encode(group, h)
	ext.SetProperty(message.PropertyPopCK, text)
	ext.ReconsumeTimes = h.Reconsume
	rec, err := message.AppendRecord(nil, ext)
	if err != nil {
		return Message{}, fmt.Errorf("pop: re-encode message at %s/%d/%d: %w", h.Topic, h.Queue, h.Offset, err)
	}
	var hdr message.RecordHeader
	if err := message.ParseRecordHeader(rec, &hdr); err != nil {
		return Message{}, fmt.Errorf("pop: parse re-encoded message: %w", err)
	}
	ext.Body = hdr.Body(rec) // share the record's copy
	ext.StoreSize, ext.BodyCRC, ext.SysFlag = hdr.TotalSize, hdr.BodyCRC, hdr.SysFlag
	return Message{Ext: ext, Handle: text, Record: rec}, nil
}

// readOne reads the message at offset of k (nil when it is no longer retained).
func (s *Service) readOne(k QueueKey, offset int64) (*message.Ext, error) {
	rr, err := s.deps.Store.Read(k.Topic, k.Queue, offset, 1, nil)
	if err != nil {
		return nil, fmt.Errorf("pop: read %s/%d@%d: %w", k.Topic, k.Queue, offset, err)
	}
	defer release(rr)
	if len(rr.Records) == 0 || rr.Records[0].QueueOffset != offset {
		return nil, nil
	}
	return decodeCopy(rr.Records[0].Data)
}

func release(rr *ReadResult) {
	if rr != nil && rr.Release != nil {
		rr.Release()
	}
}

func decodeCopy(data []byte) (*message.Ext, error) {
	m, _, err := message.DecodeRecord(data, false)
	if err != nil {
		return nil, fmt.Errorf("pop: decode stored record: %w", err)
	}
	m.Body = append([]byte(nil), m.Body...)
	return m, nil
}

// readNew reads up to want never-delivered messages of k from offset on that match f. It
// returns them, the new Next (past every examined entry) and the queue's max offset (-1 when
// nothing was read).
func (s *Service) readNew(k QueueKey, offset int64, want int, f *TagFilter) ([]candidate, int64, int64, error) {
	var out []candidate
	var match func(int64) bool
	if !f.All() {
		match = f.MatchCode
	}
	maxOff := int64(-1)
	start := offset
	for len(out) < want && offset-start < int64(s.cfg.ScanLimit) {
		rr, err := s.deps.Store.Read(k.Topic, k.Queue, offset, want-len(out), match)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("pop: read %s/%d@%d: %w", k.Topic, k.Queue, offset, err)
		}
		maxOff = rr.Max
		for _, r := range rr.Records {
			ext, err := decodeCopy(r.Data)
			if err != nil {
				release(rr)
				return nil, 0, 0, err
			}
			if f.MatchMessage(ext) {
				out = append(out, candidate{ext: ext, reconsume: ext.ReconsumeTimes})
			}
		}
		release(rr)
		if rr.Next <= offset {
			break // caught up (or past the end: the caller corrects Next)
		}
		offset = rr.Next
	}
	return out, offset, maxOff, nil
}

// decodeAck authenticates a handle for (group, topic).
func (s *Service) decodeHandle(group, topic, text string) (*Handle, error) {
	h, err := s.signer.Decode(group, text)
	if err != nil {
		return nil, err
	}
	if h.Broker != s.cfg.BrokerName {
		return nil, fmt.Errorf("%w: minted by broker %q", ErrHandleInvalid, h.Broker)
	}
	if topic != "" && h.Topic != topic {
		return nil, fmt.Errorf("%w: handle of topic %q used for %q", ErrHandleInvalid, h.Topic, topic)
	}
	return h, nil
}

// Ack acknowledges the delivery named by handle. Acking a message already done (acked,
// moved to the DLQ, reset away) succeeds; a handle superseded by a later delivery is
// ErrHandleExpired; a forged one (or another group's) is ErrHandleInvalid. topic may be ""
// (the handle is authoritative).
func (s *Service) Ack(ctx context.Context, group, topic, handle string) error {
	h, err := s.decodeHandle(group, topic, handle)
	if err != nil {
		return err
	}
	if h.expired(nowMs()) {
		return ErrHandleExpired
	}
	k := QueueKey{group, h.Topic, h.Queue}
	s.mu.Lock()
	switch s.stateLocked(k, h) {
	case HandleDone:
		s.mu.Unlock()
		return nil
	case HandleStale:
		s.mu.Unlock()
		return ErrHandleExpired
	}
	b, err := s.applyLocked(&Record{Kind: RecAck, Key: k, Offset: h.Offset, Epoch: h.Epoch})
	unblocked := s.m.Inflight(k) == 0
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.wal.wait(b); err != nil {
		return err
	}
	s.stats.acked.Add(1)
	s.publish(k)
	if unblocked {
		s.notify.wake(k.Topic) // an orderly queue may deliver again
	}
	return nil
}

// stateLocked classifies h; a dead delivery (due for the DLQ) counts as stale.
func (s *Service) stateLocked(k QueueKey, h *Handle) HandleState {
	st := s.m.Check(k, h.Offset, h.Epoch)
	if st == HandleCurrent {
		if q := s.m.queues[k]; q.Outstanding[h.Offset].dead {
			return HandleStale
		}
	}
	return st
}

// BatchAck acks each handle as Ack does and returns one error (or nil) per handle, in order.
// Handles are made durable with one log sync.
func (s *Service) BatchAck(ctx context.Context, group, topic string, handles []string) []error {
	errs := make([]error, len(handles))
	var last *batch
	touched := make(map[QueueKey]bool)
	for i, text := range handles {
		h, err := s.decodeHandle(group, topic, text)
		if err != nil {
			errs[i] = err
			continue
		}
		if h.expired(nowMs()) {
			errs[i] = ErrHandleExpired
			continue
		}
		k := QueueKey{group, h.Topic, h.Queue}
		s.mu.Lock()
		switch s.stateLocked(k, h) {
		case HandleDone:
			s.mu.Unlock()
			continue
		case HandleStale:
			s.mu.Unlock()
			errs[i] = ErrHandleExpired
			continue
		}
		b, err := s.applyLocked(&Record{Kind: RecAck, Key: k, Offset: h.Offset, Epoch: h.Epoch})
		s.mu.Unlock()
		if err != nil {
			errs[i] = err
			continue
		}
		last = b
		touched[k] = true
		s.stats.acked.Add(1)
	}
	if last != nil {
		if err := s.wal.wait(last); err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
			return errs
		}
	}
	for k := range touched {
		s.publish(k)
		s.notify.wake(k.Topic)
	}
	return errs
}

// ChangeInvisible makes the delivery named by handle invisible for d from now (0 makes it
// due at once: a negative acknowledgement) and returns its new handle; the old one becomes
// stale. When d passes without an ack the message is delivered again with ReconsumeTimes+1.
// Errors as for Ack; d outside 0..MaxInvisibleTime is ErrInvalidParameter.
func (s *Service) ChangeInvisible(ctx context.Context, group, topic, handle string, d time.Duration) (ChangeResult, error) {
	if d < 0 || d > s.cfg.MaxInvisibleTime {
		return ChangeResult{}, fmt.Errorf("%w: invisibleTime %dms not in 0..%dms", ErrInvalidParameter,
			d.Milliseconds(), s.cfg.MaxInvisibleTime.Milliseconds())
	}
	h, err := s.decodeHandle(group, topic, handle)
	if err != nil {
		return ChangeResult{}, err
	}
	now := nowMs()
	if h.expired(now) {
		return ChangeResult{}, ErrHandleExpired
	}
	k := QueueKey{group, h.Topic, h.Queue}
	s.mu.Lock()
	switch s.stateLocked(k, h) {
	case HandleDone:
		s.mu.Unlock()
		return ChangeResult{}, fmt.Errorf("%w: message already acknowledged", ErrHandleExpired)
	case HandleStale:
		s.mu.Unlock()
		return ChangeResult{}, ErrHandleExpired
	}
	nh := *h
	nh.Epoch, nh.PopTime, nh.Invisible = s.m.NextEpoch(), now, d.Milliseconds()
	b, err := s.applyLocked(&Record{Kind: RecChange, Key: k, Offset: h.Offset, Epoch: h.Epoch,
		NewEpoch: nh.Epoch, PopTime: now, Invisible: nh.Invisible})
	s.mu.Unlock()
	if err != nil {
		return ChangeResult{}, err
	}
	if err := s.wal.wait(b); err != nil {
		return ChangeResult{}, err
	}
	s.stats.changed.Add(1)
	s.kickRunBefore(now + nh.Invisible)
	return ChangeResult{Handle: s.signer.Encode(group, &nh), PopTime: now, InvisibleTime: d}, nil
}

func (s *Service) kickRun() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// kickRunBefore wakes Run when deadline (ms) is earlier than the time it sleeps until, or
// when that time is unknown (0: Run is between reading the machine and going to sleep, so it
// may not have seen the change that produced deadline).
func (s *Service) kickRunBefore(deadline int64) {
	if w := s.wakeAt.Load(); w == 0 || deadline < w {
		s.kickRun()
	}
}

// Stats are cumulative counters since the Service started (for metrics).
type Stats struct {
	Popped       int64 // messages handed out (first deliveries and redeliveries)
	Redelivered  int64 // of which redeliveries after an invisible time passed
	Acked        int64 // deliveries finished by Ack/BatchAck
	Changed      int64 // successful ChangeInvisible calls
	DeadLettered int64 // messages moved to %DLQ%<group>
	Inflight     int64 // current: delivered and still invisible, all queues
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	st := Stats{Popped: s.stats.popped.Load(), Redelivered: s.stats.redelivered.Load(),
		Acked: s.stats.acked.Load(), Changed: s.stats.changed.Load(), DeadLettered: s.stats.deadLettered.Load()}
	s.mu.Lock()
	for _, q := range s.m.queues {
		st.Inflight += int64(q.Inflight())
	}
	s.mu.Unlock()
	return st
}
