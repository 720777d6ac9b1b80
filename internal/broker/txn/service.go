package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// Log is what the service needs from the broker and its store. Implementations are safe for
// concurrent use.
type Log interface {
	// PutDirect appends m without the broker's put hooks (op and discard records).
	PutDirect(ctx context.Context, m *message.Ext) (Placement, error)
	// PutCommitted appends a committed message through the broker's full put path (timer and
	// delay hooks apply; the transaction hook never captures it, its sysflag says commit).
	// An error means the message may or may not have been appended.
	PutCommitted(ctx context.Context, m *message.Ext) (Placement, error)
	// ReadMessage decodes the record at a commit-log offset. When there is none (never
	// written, or removed by retention) the error wraps ErrRecordGone.
	ReadMessage(commitLogOffset int64) (*message.Ext, error)
	// ScanQueue calls fn with up to max stored records of (topic, queueID) in queue order,
	// starting at queue offset from (or at the queue's minimum when from is below it), and
	// returns the offset after the last one examined; next == from when nothing is there
	// (yet). rec is the raw stored record (message record layout), valid only during fn.
	ScanQueue(topic string, queueID int32, from int64, max int, fn func(queueOffset int64, rec []byte)) (next int64, err error)
	// QueryByKey returns up to max messages of topic indexed under key (UNIQ_KEY or a KEYS
	// entry). The index must cover every record below RecoveredOffset once Recover runs.
	QueryByKey(topic, key string, max int) ([]*message.Ext, error)
	// RecoveredOffset is the commit-log offset up to which the store had records when it was
	// opened; records below it may come from an earlier incarnation of the broker.
	RecoveredOffset() int64
	// WriteFileAtomic durably replaces path with data.
	WriteFileAtomic(path string, data []byte) error
}

// Placement is where a put landed.
type Placement struct {
	CommitLogOffset int64
	QueueOffset     int64
}

// Check is one check-back (CHECK_TRANSACTION_STATE, code 39) for a live producer of
// ProducerGroup. Message is the half message as the producer sent it: real topic and queue,
// property PGROUP = ProducerGroup, UNIQ_KEY, and the half record's offsets, hosts and store
// time. Remoting senders encode it with message.AppendRecord as the request body.
type Check struct {
	ProducerGroup        string
	TranStateTableOffset int64  // ext tranStateTableOffset: half queue offset
	CommitLogOffset      int64  // ext commitLogOffset: the half record's offset
	MsgID                string // ext msgId: UNIQ_KEY
	TransactionID        string // ext transactionId: the transaction id (= UNIQ_KEY)
	OffsetMsgID          string // ext offsetMsgId: offset id of the half record
	Message              *message.Ext
}

// CheckSender delivers check-backs. In the broker it picks one live producer of the group
// (a remoting connection registered by HEART_BEAT, or an in-process sink such as the
// local-mode gRPC proxy). SendCheck must not wait for the producer's answer (that comes back
// as END_TRANSACTION) and should return within a few milliseconds; it returns ErrNoProducer
// when the group has no live producer.
type CheckSender interface {
	SendCheck(ctx context.Context, c *Check) error
}

// CheckSenderFunc adapts a function to CheckSender.
type CheckSenderFunc func(ctx context.Context, c *Check) error

// SendCheck calls f.
func (f CheckSenderFunc) SendCheck(ctx context.Context, c *Check) error { return f(ctx, c) }

// EndRequest is END_TRANSACTION (code 37).
type EndRequest struct {
	ProducerGroup        string
	TranStateTableOffset int64
	CommitLogOffset      int64
	Resolution           Resolution
	FromCheck            bool   // fromTransactionCheck
	MsgID                string // informational (UNIQ_KEY or offset id, clients differ)
	TransactionID        string // when non-empty it must be the half's transaction id
}

// Errors of End. The broker maps them to remoting codes (see feature_txn.go).
var (
	// ErrHalfNotFound: no half message at commitLogOffset (RocketMQ SYSTEM_ERROR "Find
	// prepared transaction message failed").
	ErrHalfNotFound = errors.New("txn: prepared transaction message not found")
	// ErrProducerGroupMismatch: the half belongs to another producer group.
	ErrProducerGroupMismatch = errors.New("txn: the producer group wrong")
	// ErrOffsetMismatch: tranStateTableOffset is not the half's queue offset.
	ErrOffsetMismatch = errors.New("txn: the transaction state table offset wrong")
	// ErrTransactionIDMismatch: transactionId is not the half's transaction id.
	ErrTransactionIDMismatch = errors.New("txn: the transaction id wrong")
	// ErrAlreadyResolved: the transaction already ended the other way.
	ErrAlreadyResolved = errors.New("txn: transaction already resolved")
	// ErrResolving: another END_TRANSACTION (or the checker) is resolving it right now.
	ErrResolving = errors.New("txn: transaction is being resolved")
	// ErrImmunityExpired: a producer-side (not check) END_TRANSACTION arrived after the half's
	// CHECK_IMMUNITY_TIME_IN_SECONDS; it waits for the check-back (RocketMQ ILLEGAL_OPERATION).
	ErrImmunityExpired = errors.New("txn: check immunity time passed, waiting for check-back")
	// ErrBadResolution: commitOrRollback is not 0, 8 or 12.
	ErrBadResolution = errors.New("txn: invalid commitOrRollback")
	// ErrNotReady: the service has not finished recovering.
	ErrNotReady = errors.New("txn: transaction service is recovering")
	// ErrRecordGone is wrapped by Log.ReadMessage when no record is at the offset.
	ErrRecordGone = errors.New("txn: no record at commit-log offset")
	// ErrNoProducer is returned by CheckSenders when the group has no live producer.
	ErrNoProducer = errors.New("txn: no live producer in group")
)

// Stats are cumulative counters.
type Stats struct {
	Open      int   // half messages neither committed nor rolled back (nor discarded)
	Commits   int64 // committed by END_TRANSACTION
	Rollbacks int64
	Checks    int64 // check-backs handed to the sender
	Discards  int64 // moved to TRANS_CHECK_MAX_TIME_TOPIC
	Recovered int64 // commits found by the crash-window lookup (op record re-written)
}

// Service runs transactions over a Log. Create with New, call Recover once before serving
// End, then Run (the scanner) until its context ends.
type Service struct {
	cfg    Config
	log    Log
	sender CheckSender
	logger *slog.Logger

	mu sync.Mutex // guards st; leaf lock, never held across I/O

	// lateMu serialises commits of discarded halves (commitDiscarded), which happen outside
	// the state table; lateCommitted remembers the ones done. Taken before mu, never inside it.
	lateMu        sync.Mutex
	lateCommitted map[int64]struct{}
	st            *state

	ready     chan struct{}
	readyOnce sync.Once
	horizon   atomic.Int64 // Log.RecoveredOffset() at Recover
	scanMu    sync.Mutex   // serialises scan rounds (Run and tests)

	commits, rollbacks, checks, discards, recovered atomic.Int64
}

// New validates cfg and returns a service; nothing runs until Recover and Run.
func New(cfg Config, log Log, sender CheckSender, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil || sender == nil {
		return nil, fmt.Errorf("%w: nil Log or CheckSender", ErrInvalidConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg:    cfg,
		log:    log,
		sender: sender,
		logger: logger.With("component", "txn"),
		st:     newState(&cfg),
		ready:  make(chan struct{}),

		lateCommitted: map[int64]struct{}{},
	}, nil
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	open := s.st.pendingCount()
	s.mu.Unlock()
	return Stats{
		Open: open, Commits: s.commits.Load(), Rollbacks: s.rollbacks.Load(),
		Checks: s.checks.Load(), Discards: s.discards.Load(), Recovered: s.recovered.Load(),
	}
}

// OpenByTopic counts the open half messages per real topic (metric rocketmq_half_messages).
func (s *Service) OpenByTopic() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int)
	for _, e := range s.st.entries {
		if e.phase != phaseResolved {
			out[e.RealTopic]++
		}
	}
	return out
}

// Ready is closed once Recover has finished.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Recover rebuilds the state table: the checkpoint (when present and valid), then every half
// and op record after its cursors. Half messages that may come from an earlier incarnation
// are marked unverified: before they are checked back or committed, the real topic's key
// index is searched for their committed copy (the crash window between the committed put and
// the op record). Recover must finish before End is served (End waits for it).
func (s *Service) Recover(ctx context.Context) error {
	s.horizon.Store(s.log.RecoveredOffset())
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("txn: create %s: %w", s.cfg.Dir, err)
	}
	path := filepath.Join(s.cfg.Dir, CheckpointFile)
	var cp checkpoint
	switch b, err := os.ReadFile(path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("txn: read checkpoint: %w", err)
	default:
		if cp, err = decodeCheckpoint(b); err != nil {
			// Rescanning both queues from the start is always correct, only slower (and the
			// check counts restart).
			s.logger.Warn("ignoring bad checkpoint, rescanning transaction queues", "path", path, "err", err)
			cp = checkpoint{}
		}
	}
	restored := 0
	for _, o := range cp.Open {
		m, err := s.log.ReadMessage(o.CommitLogOffset)
		if err != nil {
			s.logger.Warn("open half message unreadable, dropped", "commitLogOffset", o.CommitLogOffset, "err", err)
			continue
		}
		h, err := halfOf(m)
		if err != nil || h.QueueOffset != o.QueueOffset {
			s.logger.Warn("open half message does not match checkpoint, dropped", "commitLogOffset", o.CommitLogOffset, "err", err)
			continue
		}
		s.mu.Lock()
		s.st.restoreEntry(h, o.Checks, true)
		s.mu.Unlock()
		restored++
	}
	s.mu.Lock()
	s.st.halfNext, s.st.opNext = cp.HalfNext, cp.OpNext
	s.mu.Unlock()
	if err := s.tail(ctx); err != nil {
		return err
	}
	s.readyOnce.Do(func() { close(s.ready) })
	st := s.Stats()
	s.logger.Info("transactions recovered", "open", st.Open, "fromCheckpoint", restored,
		"halfNext", cp.HalfNext, "opNext", cp.OpNext)
	return nil
}

// Run is the scanner: every ScanInterval it tails the half and op queues, sends due
// check-backs, discards over-checked halves and saves the checkpoint. It returns nil when ctx
// is cancelled, after a last checkpoint. Recover must have been called.
func (s *Service) Run(ctx context.Context) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		select {
		case <-s.ready:
			s.shutdown()
		default:
		}
		return nil
	}
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.shutdown()
			return nil
		case <-t.C:
			if err := s.scanOnce(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("transaction scan failed", "err", err)
			}
		}
	}
}

// shutdown records the outcomes resolved since the last round, then saves the checkpoint
// (clean shutdown; a crash skips it and recovery copes, see docs/txn.md).
func (s *Service) shutdown() {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.mu.Lock()
	ops := s.st.takeOps()
	s.mu.Unlock()
	s.writeOps(ctx, ops)
	if err := s.saveCheckpoint(false); err != nil {
		s.logger.Warn("final transaction checkpoint failed", "err", err)
	}
}

const readBatch = 256

// tail reads the op queue to its end, then the half queue to its end, then applies the ops.
// Reading ops first guarantees that every half an op refers to is read too (the dispatcher
// indexes records in commit-log order and a half always precedes its op).
func (s *Service) tail(ctx context.Context) error {
	s.mu.Lock()
	halfNext, opNext := s.st.halfNext, s.st.opNext
	s.mu.Unlock()

	type op struct {
		qo      int64
		outcome Outcome
	}
	var ops []op
	for ctx.Err() == nil {
		next, err := s.log.ScanQueue(OpTopic, HalfQueueID, opNext, readBatch, func(qo int64, rec []byte) {
			qos, o, err := parseOpRecord(rec)
			if err != nil {
				s.logger.Warn("skipping malformed op record", "queueOffset", qo, "err", err)
				return
			}
			for _, q := range qos {
				ops = append(ops, op{q, o})
			}
		})
		if err != nil {
			return fmt.Errorf("txn: read op queue at %d: %w", opNext, err)
		}
		if next <= opNext {
			break
		}
		opNext = next
	}
	horizon := s.horizon.Load()
	for ctx.Err() == nil {
		next, err := s.log.ScanQueue(HalfTopic, HalfQueueID, halfNext, readBatch, func(qo int64, rec []byte) {
			// Halves already resolved by END_TRANSACTION (the common case: commit right after
			// the send) are known and need no parsing.
			s.mu.Lock()
			known := s.st.known(qo)
			s.mu.Unlock()
			if known {
				return
			}
			h, err := parseHalfRecord(rec, qo)
			if err != nil {
				s.logger.Warn("skipping malformed half record", "queueOffset", qo, "err", err)
				return
			}
			s.mu.Lock()
			s.st.observeHalf(h, h.CommitLogOffset < horizon)
			s.mu.Unlock()
		})
		if err != nil {
			return fmt.Errorf("txn: read half queue at %d: %w", halfNext, err)
		}
		if next <= halfNext {
			break
		}
		halfNext = next
		s.mu.Lock()
		s.st.halfNext = max(s.st.halfNext, next)
		s.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := ms(s.cfg.now())
	s.mu.Lock()
	for _, o := range ops {
		s.st.observeOp(o.qo, o.outcome, now)
	}
	if opNext > s.st.opNext {
		s.st.opNext = opNext
		s.st.dirty = true
	}
	s.mu.Unlock()
	return nil
}

// scanOnce is one scanner round.
func (s *Service) scanOnce(ctx context.Context) error {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	if err := s.tail(ctx); err != nil {
		return err
	}
	now := ms(s.cfg.now())
	s.mu.Lock()
	w := s.st.due(now)
	s.mu.Unlock()

	for _, h := range w.verifies {
		s.verify(ctx, h)
	}
	for _, h := range w.discards {
		s.discard(ctx, h)
	}
	// Outcomes decided since the last round, plus the ones verify/discard just decided.
	s.mu.Lock()
	ops := append(w.ops, s.st.takeOps()...)
	s.mu.Unlock()
	s.writeOps(ctx, ops)
	// Counts are saved before the checks go out: a crash never lets a half be checked more
	// than CheckMax times (it may be checked once less).
	if err := s.saveCheckpoint(true); err != nil {
		s.logger.Warn("transaction checkpoint failed", "err", err)
	}
	for _, c := range w.checks {
		s.sendCheck(ctx, c)
	}
	s.mu.Lock()
	s.st.prune(now)
	s.mu.Unlock()
	return nil
}

// saveCheckpoint writes the checkpoint (only when something changed, if onlyDirty).
func (s *Service) saveCheckpoint(onlyDirty bool) error {
	s.mu.Lock()
	if onlyDirty && !s.st.dirty {
		s.mu.Unlock()
		return nil
	}
	cp := s.st.snapshot()
	s.st.dirty = false
	s.mu.Unlock()
	b, err := encodeCheckpoint(cp)
	if err == nil {
		err = s.log.WriteFileAtomic(filepath.Join(s.cfg.Dir, CheckpointFile), b)
	}
	if err != nil {
		s.mu.Lock()
		s.st.dirty = true
		s.mu.Unlock()
	}
	return err
}

// committedCopy reports whether h's message was already committed: a record with h's
// UNIQ_KEY and the commit sysflag exists in the real topic, or in the timer topic with
// REAL_TOPIC = the real topic (a committed message carrying a delay waits there first). The
// UNIQ_KEY names one producer message, so a committed copy made from another half of the same
// message (a producer's send retry stored it twice) counts too: the message is delivered once.
func (s *Service) committedCopy(h half) (bool, error) {
	if h.UniqKey == "" {
		return false, nil
	}
	for _, topic := range [...]string{h.RealTopic, message.TopicTimer} {
		msgs, err := s.log.QueryByKey(topic, h.UniqKey, 64)
		if err != nil {
			return false, fmt.Errorf("txn: look up %s in %s: %w", h.UniqKey, topic, err)
		}
		for _, m := range msgs {
			if m.UniqKey() != h.UniqKey || message.TransactionType(m.SysFlag) != message.SysFlagTransactionCommit {
				continue
			}
			if m.Topic == h.RealTopic || m.Property(message.PropertyRealTopic) == h.RealTopic {
				return true, nil
			}
		}
	}
	return false, nil
}

// verify handles a claimed, unverified, due entry.
func (s *Service) verify(ctx context.Context, h half) {
	ok, err := s.committedCopy(h)
	if err != nil {
		s.logger.Warn("transaction crash-window lookup failed", "queueOffset", h.QueueOffset, "err", err)
		s.mu.Lock()
		s.st.abort(h.QueueOffset, true)
		s.mu.Unlock()
		return
	}
	if !ok {
		s.mu.Lock()
		s.st.verified(h.QueueOffset)
		s.mu.Unlock()
		return
	}
	s.recovered.Add(1)
	s.logger.Info("half message was committed before a crash; recording it", "queueOffset", h.QueueOffset, "uniqKey", h.UniqKey)
	s.mu.Lock()
	s.st.finish(h.QueueOffset, OutcomeCommit, ms(s.cfg.now()))
	s.mu.Unlock()
}

// discard moves a claimed over-checked half to TRANS_CHECK_MAX_TIME_TOPIC.
func (s *Service) discard(ctx context.Context, h half) {
	m, err := s.log.ReadMessage(h.CommitLogOffset)
	if errors.Is(err, ErrRecordGone) {
		s.forget(h, err)
		return
	}
	if err == nil {
		_, err = s.log.PutDirect(ctx, discardFrom(m))
	}
	if err != nil {
		s.logger.Warn("moving half message to "+CheckMaxTopic+" failed", "queueOffset", h.QueueOffset, "err", err)
		s.mu.Lock()
		s.st.abort(h.QueueOffset, false)
		s.mu.Unlock()
		return
	}
	s.discards.Add(1)
	s.logger.Info("half message checked too many times, moved to "+CheckMaxTopic,
		"queueOffset", h.QueueOffset, "uniqKey", h.UniqKey, "group", h.Group)
	s.mu.Lock()
	s.st.finish(h.QueueOffset, OutcomeDiscard, ms(s.cfg.now()))
	s.mu.Unlock()
}

// opBatch bounds the offsets of one op record (its body stays well under 16 KiB).
const opBatch = 512

// writeOps appends the op records of resolved entries, one record per outcome and batch of
// opBatch offsets (RocketMQ 5 batches op records as well). Only the scanner calls it, so an
// END_TRANSACTION costs one put (the committed copy) and the op records of a burst share a
// few puts. A failed append is retried in the next round.
func (s *Service) writeOps(ctx context.Context, ops []opItem) {
	if len(ops) == 0 {
		return
	}
	byOutcome := map[Outcome][]int64{}
	for _, o := range ops {
		byOutcome[o.outcome] = append(byOutcome[o.outcome], o.queueOffset)
	}
	now := ms(s.cfg.now())
	for _, o := range [...]Outcome{OutcomeCommit, OutcomeRollback, OutcomeDiscard, OutcomeResolved, OutcomeNone} {
		qos := byOutcome[o]
		for len(qos) > 0 {
			n := min(len(qos), opBatch)
			_, err := s.log.PutDirect(ctx, opRecord(qos[:n], o, now))
			if err != nil {
				s.logger.Warn("writing transaction op records failed; will retry", "count", n, "err", err)
			}
			s.mu.Lock()
			for _, qo := range qos[:n] {
				s.st.opWritten(qo, err == nil)
			}
			s.mu.Unlock()
			qos = qos[n:]
		}
	}
}

// forget drops an open half whose record the log no longer has (retention removed it).
func (s *Service) forget(h half, err error) {
	s.logger.Warn("half message no longer in the commit log, forgotten", "queueOffset", h.QueueOffset,
		"commitLogOffset", h.CommitLogOffset, "uniqKey", h.UniqKey, "err", err)
	s.mu.Lock()
	s.st.drop(h.QueueOffset, ms(s.cfg.now()))
	s.mu.Unlock()
}

// sendCheck hands one due check-back to the sender.
func (s *Service) sendCheck(ctx context.Context, c dueCheck) {
	m, err := s.log.ReadMessage(c.CommitLogOffset)
	if errors.Is(err, ErrRecordGone) {
		s.forget(c.half, err)
		return
	}
	if err != nil {
		s.logger.Warn("reading half message for check-back failed", "commitLogOffset", c.CommitLogOffset, "err", err)
		return
	}
	s.checks.Add(1)
	chk := &Check{
		ProducerGroup:        c.Group,
		TranStateTableOffset: c.QueueOffset,
		CommitLogOffset:      c.CommitLogOffset,
		MsgID:                c.UniqKey,
		TransactionID:        c.TxID,
		OffsetMsgID:          m.OffsetMsgID(),
		Message:              checkMessageFrom(m, c.Group, c.check),
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := s.sender.SendCheck(sctx, chk); err != nil {
		lvl := slog.LevelWarn
		if errors.Is(err, ErrNoProducer) {
			lvl = slog.LevelDebug
		}
		s.logger.Log(ctx, lvl, "transaction check-back not delivered", "group", c.Group,
			"queueOffset", c.QueueOffset, "check", c.check, "err", err)
	}
}
