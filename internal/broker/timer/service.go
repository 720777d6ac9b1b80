package timer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// Source is what the service needs from the message store. The broker adapts *store.Store to
// it (internal/broker/feature_timer.go); tests may use the real store or a fake.
type Source interface {
	// TimerRecords returns the records of the timer topic's queue 0 from queue offset from on,
	// in queue order, at most max; an empty slice at the end of the queue. Each record carries
	// its CommitLogOffset, QueueOffset, StoreSize, StoreTimestamp and properties. Records
	// removed by retention are reported by StoreSource's error wrapping ErrRecordGone.
	TimerRecords(from int64, max int) ([]*message.Ext, error)
	// ReadMessage returns the message stored at commit-log offset off.
	ReadMessage(off int64) (*message.Ext, error)
	// CommitLogEnd is the commit-log offset just past the last stored message.
	CommitLogEnd() int64
	// Scan calls fn for every message stored at a commit-log offset >= from, in log order.
	Scan(from int64, fn func(m *message.Ext) error) error
	// Sync returns once every message stored so far is durable.
	Sync() error
	// WaitDispatched returns once every message stored below commit-log offset end is
	// visible to TimerRecords (a store replays its consume queues asynchronously after
	// opening; recovery must see every timer record stored before the crash).
	WaitDispatched(end int64) error
}

// DeliverFunc stores due messages in their real topics without running put hooks, all or
// none, in one append (the broker passes store.PutBatch; a single message is the
// PutMessageDirect case). It returns nil once the messages are appended: an append whose
// durability wait timed out (store.ErrFlushTimeout) is a success, since retrying it would
// deliver twice; the checkpoint's Source.Sync covers durability. Any other error means
// "not appended, or not known": the service retries the messages and keeps its checkpoints'
// commit-log end at or below the end read before the attempt, so that recovery finds an
// append that did happen by its delivery mark.
type DeliverFunc func(ctx context.Context, ms []*message.Ext) error

// maxChunkBytes and maxChunkMsgs bound one DeliverFunc call. (The message count bound also
// keeps store.PutBatch's encoding cheap: message.AppendRecord grows its buffer to the exact
// size, so a batch of n records copies O(n^2) bytes.)
const (
	maxChunkBytes = 1 << 20
	maxChunkMsgs  = 32
)

// ErrRecordGone may be wrapped by Source.ReadMessage when the record no longer exists (the
// store deleted or truncated it); the timer is then dropped with an error log instead of being
// retried forever.
var ErrRecordGone = errors.New("timer: record gone from the store")

// Service runs timers: it ingests timer records stored in Topic, keeps them in the wheel and
// re-puts each into its real topic when due. Lifecycle: New (recovers), Run (until ctx is
// cancelled; writes a final checkpoint), Close.
//
// Goroutines: Run's loop owns the wheel and the timer log and delivers; at most one
// checkpoint goroutine runs beside it (store Sync, log fsyncs, checkpoint write). Notify,
// Stats, SetObserver and Intercept may be called from any goroutine.
type Service struct {
	cfg     Config
	levels  Levels
	log     *slog.Logger
	src     Source
	deliver DeliverFunc
	queues  func(topic string) int

	wake chan struct{}

	// Owned by the loop (and by New before Run starts).
	w            *wheel
	ingestOffset int64
	dirty        bool
	lastCkpt     time.Time
	ckpt         chan ckptResult // the checkpoint in flight, nil when none
	attempts     map[int64]int
	// ambiguous maps each entry whose last delivery failed to the commit-log end read just
	// before that attempt: a failed append may still have reached the log (a store whose
	// fdatasync failed after the write), so checkpoints keep their commit-log end at or below
	// it until the entry is delivered, and recovery scans those records for marks.
	ambiguous map[int64]int64
	// recalled holds the recalls (delete markers) ingested and not yet spent, by recallKey,
	// each with the due time its handle named: a timer whose record matches one is dropped
	// instead of delivered. Checkpointed with the ingest offset (markers ingested after a
	// checkpoint are ingested again by recovery), so a recall survives restarts.
	recalled map[string]int64

	crashed atomic.Bool // tests: stop without the final checkpoint, as a kill would

	mu        sync.Mutex // guards stats, delivered, dropped, pending and observe
	stats     Stats
	delivered uint64
	dropped   uint64
	recalledN uint64           // timers recalled (not delivered)
	pending   map[string]int64 // undelivered timers per real topic
	observe   func(e Entry, deliveredAt time.Time)
}

// New opens the timer log in cfg.Dir, recovers from the last checkpoint (see docs/timer.md)
// and catches up with the timer records stored since. queueCount (may be nil) reports a
// topic's current write-queue count.
func New(cfg Config, src Source, deliver DeliverFunc, queueCount func(topic string) int, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	levels, _ := ParseLevels(cfg.DelayLevels)
	s := &Service{
		cfg:       cfg,
		levels:    levels,
		log:       logger.With("component", "timer"),
		src:       src,
		deliver:   deliver,
		queues:    queueCount,
		wake:      make(chan struct{}, 1),
		attempts:  make(map[int64]int),
		ambiguous: make(map[int64]int64),
		recalled:  make(map[string]int64),
		pending:   make(map[string]int64),
	}
	if err := s.recover(time.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// segmentSize is the timer log segment size (1 Mi entries, 40 MiB); tests shrink it.
var segmentSize int64 = entrySize << 20

func (s *Service) recover(now time.Time) error {
	cp, found, err := readCheckpoint(s.cfg.Dir)
	if err != nil {
		return err
	}
	tl, err := openLog(filepath.Join(s.cfg.Dir, "log"), segmentSize)
	if err != nil {
		return err
	}
	w, ingest, err := restoreWheel(tl, s.cfg.SlotWidth.Milliseconds(), s.cfg.Lookahead.Milliseconds(), cp, s.log)
	if err != nil {
		tl.close()
		return err
	}
	w.maxMem = s.cfg.MaxInMemory
	s.w, s.ingestOffset = w, ingest
	for t, n := range cp.Pending {
		s.pending[t] = n
	}
	maps.Copy(s.recalled, cp.Recalled)
	// Deliveries made after the checkpoint carry a mark naming their record.
	w.onSkip = func(m skipMark) { s.countPending(m.topic, -1) }
	var marks int
	err = s.src.Scan(cp.CommitLogEnd, func(m *message.Ext) error {
		off, ok := deliveryMark(m)
		if !ok {
			return nil
		}
		marks++
		deq, err := strconv.ParseInt(m.Properties[message.PropertyTimerDequeueMS], 10, 64)
		if err != nil {
			deq = math.MaxInt64 // unknown delivery time: never pruned, only met
		}
		w.skip[off] = skipMark{dequeue: deq, topic: m.Topic}
		return nil
	})
	if err != nil {
		tl.close()
		return fmt.Errorf("timer: scan for deliveries since %d: %w", cp.CommitLogEnd, err)
	}
	// Page in what is due, then ingest the records stored after the checkpoint — all of
	// them, so wait until the store's queues show everything written before the crash.
	// Marked entries are resolved as they are met (now or, past MaxInMemory, later).
	if err := w.advance(now.UnixMilli()); err != nil {
		tl.close()
		return err
	}
	if err := s.src.WaitDispatched(s.src.CommitLogEnd()); err != nil {
		tl.close()
		return fmt.Errorf("timer: wait for the store's dispatch: %w", err)
	}
	for {
		n, err := s.ingest()
		if err != nil {
			tl.close()
			return err
		}
		if n == 0 {
			break
		}
	}
	w.settle()
	s.dirty = true
	s.updateStats()
	s.log.Info("timer recovered", "checkpoint", found, "ingestOffset", s.ingestOffset,
		"marksSinceCheckpoint", marks, "inMemory", s.stats.InMemory, "onDisk", s.stats.OnDisk)
	return nil
}

// Intercept applies the configured max delay and delay levels to m (see the package function
// Intercept). The broker's put hook calls it and, when taken, stores m and calls Notify.
func (s *Service) Intercept(m *message.Ext, now time.Time) (bool, error) {
	return Intercept(m, now, s.cfg.MaxDelay, s.levels)
}

// Notify wakes the loop: new timer records may be in the store (call it from the store's
// dispatch notification for Topic, or after storing a timer record).
func (s *Service) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// countPending adjusts the per-topic pending count.
func (s *Service) countPending(topic string, d int64) {
	s.mu.Lock()
	if n := s.pending[topic] + d; n > 0 {
		s.pending[topic] = n
	} else {
		delete(s.pending, topic)
	}
	s.mu.Unlock()
}

// PendingByTopic calls emit for every real topic with timers waiting (rocketmq_timing_messages).
// Counts survive restarts through the checkpoint; a timer whose record vanished from the store
// before delivery stays counted.
func (s *Service) PendingByTopic(emit func(topic string, n int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, n := range s.pending {
		emit(t, n)
	}
}

// Stats returns the wheel's sizes as of the loop's last iteration.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// SetObserver installs f, called (from delivery goroutines) after each timer is delivered;
// benchmarks use it to measure lateness. Set it before Run.
func (s *Service) SetObserver(f func(e Entry, deliveredAt time.Time)) {
	s.mu.Lock()
	s.observe = f
	s.mu.Unlock()
}

func (s *Service) updateStats() {
	st := s.w.stats()
	s.mu.Lock()
	st.Delivered, st.Dropped, st.Recalled = s.delivered, s.dropped, s.recalledN
	st.IngestOffset = s.ingestOffset
	s.stats = st
	s.mu.Unlock()
}

// ingest adds up to IngestBatch new timer records to the wheel.
func (s *Service) ingest() (int, error) {
	recs, err := s.src.TimerRecords(s.ingestOffset, s.cfg.IngestBatch)
	var gone *goneError
	if errors.As(err, &gone) && gone.next > s.ingestOffset {
		s.log.Error("timer records removed from the store before they were ingested; those timers are lost",
			"from", s.ingestOffset, "to", gone.next)
		s.mu.Lock()
		s.dropped += uint64(gone.next - s.ingestOffset)
		s.mu.Unlock()
		s.ingestOffset = gone.next
		s.dirty = true
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("timer: read timer records at %d: %w", s.ingestOffset, err)
	}
	for _, r := range recs {
		if r.QueueOffset < s.ingestOffset {
			continue
		}
		due, ok := dueOf(r)
		if !ok {
			due = r.StoreTimestamp
		}
		_, skipped := s.w.skip[r.CommitLogOffset] // recovery: delivered before the crash
		if err := s.w.add(Entry{Due: due, Offset: r.CommitLogOffset, QueueOffset: r.QueueOffset, Size: r.StoreSize}); err != nil {
			return 0, err
		}
		if k, ok := recallOf(r); ok {
			s.recalled[k] = due // the marker's own entry is dropped when due
		} else if !skipped {
			s.countPending(r.Properties[message.PropertyRealTopic], 1)
		}
		s.ingestOffset = r.QueueOffset + 1
		s.dirty = true
	}
	return len(recs), nil
}

// Run is the service loop; it returns when ctx is cancelled, after a final checkpoint.
func (s *Service) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return s.finish()
		}
		n, err := s.ingest()
		if err != nil {
			s.log.Error("timer ingest failed", "err", err)
			if !s.sleep(ctx, timer, s.cfg.RetryBackoff) {
				return s.finish()
			}
			continue
		}
		now := time.Now()
		if err := s.w.advance(now.UnixMilli()); err != nil {
			s.log.Error("timer page-in failed", "err", err)
			if !s.sleep(ctx, timer, s.cfg.RetryBackoff) {
				return s.finish()
			}
			continue
		}
		batch := s.w.takeDue(now.UnixMilli(), s.cfg.DeliverBatch)
		failed := 0
		if len(batch) > 0 {
			failed = s.deliverBatch(ctx, batch)
			s.w.settle()
			s.dirty = true
		}
		s.pollCheckpoint()
		if s.dirty && s.ckpt == nil && time.Since(s.lastCkpt) >= s.cfg.CheckpointInterval {
			s.startCheckpoint()
		}
		s.updateStats()
		if failed > 0 {
			if !s.sleep(ctx, timer, s.cfg.RetryBackoff) {
				return s.finish()
			}
			continue
		}
		if len(batch) > 0 || n == s.cfg.IngestBatch {
			continue // more work may be ready
		}
		wait := time.Duration(math.MaxInt64)
		if t, ok := s.w.nextWake(); ok {
			wait = time.Until(time.UnixMilli(t))
		}
		if s.dirty && s.ckpt == nil {
			wait = min(wait, s.cfg.CheckpointInterval-time.Since(s.lastCkpt))
		}
		if !s.sleep(ctx, timer, wait) {
			return s.finish()
		}
	}
}

// finish waits for a checkpoint in flight and writes the final one (skipped when a test
// simulates a crash).
func (s *Service) finish() error {
	if s.ckpt != nil {
		r := <-s.ckpt
		s.ckpt = nil
		s.checkpointed(r)
	}
	if s.crashed.Load() {
		return nil
	}
	s.startCheckpoint()
	if s.ckpt == nil {
		return errors.New("timer: final checkpoint failed to start")
	}
	r := <-s.ckpt
	s.ckpt = nil
	s.checkpointed(r)
	return r.err
}

// sleep waits for d, a Notify, a finished checkpoint, or ctx; false means ctx was cancelled.
func (s *Service) sleep(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-s.wake:
	case <-timer.C:
	case r := <-s.ckpt: // nil channel when none is in flight
		s.ckpt = nil
		s.checkpointed(r)
	}
	return true
}

// deliverBatch re-puts the batch to the real topics and reports each outcome to the wheel;
// it returns how many must be retried. Records are read and restored first (a record that is
// gone or has no real topic is dropped with an error log); the messages are then appended in
// chunks of at most maxChunkBytes / maxChunkMsgs, one DeliverFunc call each, all or none per chunk. An entry
// whose delivery failed before goes alone, so one bad message cannot hold up a whole chunk.
func (s *Service) deliverBatch(ctx context.Context, batch []Entry) int {
	s.mu.Lock()
	obs := s.observe
	s.mu.Unlock()
	failed := 0
	fail := func(e Entry, err error, before int64) {
		if prev, ok := s.ambiguous[e.Offset]; !ok || before < prev {
			s.ambiguous[e.Offset] = before
		}
		s.attempts[e.Offset]++
		if a := s.attempts[e.Offset]; a == 1 || a%100 == 0 {
			s.log.Warn("timer delivery failed; will retry", "offset", e.Offset, "attempt", a, "err", err)
		}
		s.w.failed(e)
		failed++
	}
	var (
		chunkE []Entry
		chunkM []*message.Ext
		chunkT []string // REAL_TOPIC of each record (the pending count's key)
		bytes  int
	)
	flush := func() {
		if len(chunkE) == 0 {
			return
		}
		before := s.src.CommitLogEnd()
		err := s.deliver(ctx, chunkM)
		at := time.Now()
		if err != nil && len(chunkE) == 1 && permanent(err) {
			e := chunkE[0]
			s.log.Error("timer dropped: the store rejects its message", "offset", e.Offset, "due", e.Due, "err", err)
			s.settleUndelivered(e, &s.dropped, chunkT[0])
			chunkE, chunkM, chunkT, bytes = chunkE[:0], chunkM[:0], chunkT[:0], 0
			return
		}
		for _, e := range chunkE {
			if err != nil {
				fail(e, err, before)
				continue
			}
			s.w.done(e)
			delete(s.attempts, e.Offset)
			delete(s.ambiguous, e.Offset)
			if obs != nil {
				obs(e, at)
			}
		}
		if err == nil {
			s.mu.Lock()
			s.delivered += uint64(len(chunkE))
			for _, t := range chunkT {
				if n := s.pending[t] - 1; n > 0 {
					s.pending[t] = n
				} else {
					delete(s.pending, t)
				}
			}
			s.mu.Unlock()
		}
		chunkE, chunkM, chunkT, bytes = chunkE[:0], chunkM[:0], chunkT[:0], 0
	}
	for _, e := range batch {
		rec, err := s.src.ReadMessage(e.Offset)
		if err == nil && s.spent(e, rec) {
			continue
		}
		if err == nil {
			var out *message.Ext
			if out, err = Restore(rec, time.Now(), s.queues); err == nil {
				alone := s.attempts[e.Offset] > 0
				if alone || bytes+int(e.Size) > maxChunkBytes || len(chunkE) >= maxChunkMsgs {
					flush()
				}
				chunkE, chunkM = append(chunkE, e), append(chunkM, out)
				chunkT = append(chunkT, rec.Properties[message.PropertyRealTopic])
				bytes += int(e.Size)
				if alone {
					flush()
				}
				continue
			}
			err = fmt.Errorf("%w: %w", ErrRecordGone, err) // not deliverable, ever
		}
		if !errors.Is(err, ErrRecordGone) {
			fail(e, err, math.MaxInt64) // nothing was appended
			continue
		}
		s.log.Error("timer dropped: its record cannot be delivered", "offset", e.Offset, "due", e.Due, "err", err)
		topic := ""
		if rec != nil {
			topic = rec.Properties[message.PropertyRealTopic]
		}
		s.settleUndelivered(e, &s.dropped, topic)
	}
	flush()
	return failed
}

// spent reports, and settles, a due entry that is not delivered: a recall marker (its
// recall stays in force until pruneRecalled, since the timer it names may be in a later
// batch of the same due time), or a timer a marker recalled.
func (s *Service) spent(e Entry, rec *message.Ext) bool {
	if _, ok := recallOf(rec); ok {
		s.w.done(e)
		return true
	}
	k := recallKey(rec.Properties[message.PropertyRealTopic], rec.Properties[message.PropertyUniqKey])
	if _, ok := s.recalled[k]; !ok || rec.Properties[message.PropertyUniqKey] == "" {
		return false
	}
	delete(s.recalled, k)
	s.settleUndelivered(e, &s.recalledN, rec.Properties[message.PropertyRealTopic])
	s.log.Debug("timer recalled", "topic", rec.Properties[message.PropertyRealTopic],
		"msgId", rec.Properties[message.PropertyUniqKey], "due", e.Due)
	return true
}

// settleUndelivered ends a due entry that is not delivered (dropped or recalled): done in the
// wheel, its retry bookkeeping forgotten, *counter (guarded by mu) counted and, when topic is
// known, one fewer pending timer for it.
func (s *Service) settleUndelivered(e Entry, counter *uint64, topic string) {
	s.w.done(e)
	delete(s.attempts, e.Offset)
	delete(s.ambiguous, e.Offset)
	s.mu.Lock()
	*counter++
	s.mu.Unlock()
	if topic != "" {
		s.countPending(topic, -1)
	}
}

// recallGrace is how long past its due time a recall is kept for a timer that was not met
// yet (one delivered late, after a restart or a store hiccup, is still recalled).
const recallGrace = 10 * time.Minute

// pruneRecalled forgets recalls whose due time is recallGrace behind the delivery cursor:
// everything due by then was delivered or dropped, so they can match nothing (a recall of
// a message that does not exist, or of one that was delivered before its marker arrived).
func (s *Service) pruneRecalled() {
	if s.w.cursor.due < math.MinInt64+recallGrace.Milliseconds() {
		return // nothing delivered yet (the cursor starts at MinInt64)
	}
	limit := s.w.cursor.due - recallGrace.Milliseconds()
	for k, due := range s.recalled {
		if due < limit {
			delete(s.recalled, k)
		}
	}
}

// permanent reports whether a delivery error will repeat forever for this message (the store
// rejects the message itself, e.g. it grew past the properties limit or its real topic is not
// a valid name). Only a message delivered alone is dropped for it.
func permanent(err error) bool {
	return errors.Is(err, store.ErrMessageTooLarge) || errors.Is(err, message.ErrInvalidMessage)
}

// ckptResult is the outcome of a checkpoint's I/O.
type ckptResult struct {
	cursor key      // the cursor the checkpoint recorded
	files  []string // timer-log files it synced
	err    error
}

// startCheckpoint persists progress. The state is captured here, on the loop: the store's end
// is read first (every later delivery lands at or beyond it), then the cursor, Done and ingest
// offset, and the timer log's buffer is written out. The slow part — the store's Sync, the
// fsyncs of the timer log and the atomic checkpoint write, in that order — runs on its own
// goroutine so deliveries go on meanwhile; pollCheckpoint/sleep collect the result. At most
// one checkpoint is in flight.
func (s *Service) startCheckpoint() {
	clEnd := s.src.CommitLogEnd()
	for _, off := range s.ambiguous {
		clEnd = min(clEnd, off)
	}
	logEnd, files, err := s.w.log.prepareSync()
	if err != nil {
		s.log.Error("timer checkpoint failed", "err", err)
		return
	}
	cp := checkpoint{
		Version:      1,
		IngestOffset: s.ingestOffset,
		CursorDue:    s.w.cursor.due,
		CursorOffset: s.w.cursor.off,
		Done:         s.w.snapshotDone(),
		Skip:         s.w.snapshotSkip(),
		CommitLogEnd: clEnd,
		LogEnd:       logEnd,
	}
	s.pruneRecalled()
	if len(s.recalled) > 0 {
		cp.Recalled = maps.Clone(s.recalled)
	}
	s.mu.Lock()
	cp.Pending = maps.Clone(s.pending)
	s.mu.Unlock()
	s.dirty = false
	s.lastCkpt = time.Now()
	ch := make(chan ckptResult, 1)
	s.ckpt = ch
	dir, logDir, src := s.cfg.Dir, s.w.log.dir, s.src
	cursor := key{cp.CursorDue, cp.CursorOffset}
	go func() {
		r := ckptResult{cursor: cursor, files: files}
		if err := src.Sync(); err != nil {
			r.err = fmt.Errorf("timer: sync store: %w", err)
		} else if err := syncFiles(logDir, files); err != nil {
			r.err = err
		} else {
			r.err = writeCheckpoint(dir, cp)
		}
		ch <- r
	}()
}

// pollCheckpoint collects a finished checkpoint without waiting.
func (s *Service) pollCheckpoint() {
	if s.ckpt == nil {
		return
	}
	select {
	case r := <-s.ckpt:
		s.ckpt = nil
		s.checkpointed(r)
	default:
	}
}

// checkpointed applies a finished checkpoint: on success, log segments wholly at or below its
// (now durable) cursor are deleted; on failure the state is marked dirty again.
func (s *Service) checkpointed(r ckptResult) {
	if r.err != nil {
		s.log.Error("timer checkpoint failed", "err", r.err)
		s.w.log.unsynced(r.files)
		s.dirty = true
		return
	}
	pos := s.w.droppableLog(r.cursor)
	if err := s.w.log.dropBefore(pos); err != nil {
		s.log.Error("timer log cleanup failed", "err", err)
		return
	}
	s.w.forgetSegsBefore(pos, r.cursor)
}

// Close releases the timer log. Call it after Run has returned.
func (s *Service) Close() error {
	return s.w.log.close()
}
