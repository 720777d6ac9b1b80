package txn

import (
	"cmp"
	"slices"
	"time"
)

// phase is where an entry of the state table is in its life.
type phase uint8

const (
	// phasePending: open, waiting for END_TRANSACTION or a due check-back.
	phasePending phase = iota
	// phaseResolving: claimed by exactly one actor (an END_TRANSACTION, the scanner's discard or
	// its verification); nobody else may act on it until finish or abort.
	phaseResolving
	// phaseResolved: final outcome decided; stays until its op record is read back from the op
	// queue (then it becomes a tombstone).
	phaseResolved
)

// entry is one half message the table knows about (keyed by half queue offset).
type entry struct {
	half
	checks     int   // check-backs sent (or attempted) so far
	nextCheck  int64 // ms: when the next check-back (or discard) is due
	phase      phase
	outcome    Outcome // phaseResolved: the outcome
	opWritten  bool    // the op record was appended (not yet read back)
	opQueued   bool    // handed to the scanner's op batch, append in progress
	opSeen     bool    // an op record for it was read back while it was resolving
	resolvedAt int64   // ms: when it was resolved
	// unverified: the entry may have been committed by an earlier incarnation or by a commit
	// whose put failed ambiguously; look for the committed copy before checking or committing.
	unverified bool
}

// tomb remembers the outcome of a finished half message for duplicate END_TRANSACTIONs.
type tomb struct {
	outcome Outcome
	at      int64 // ms
}

// state is the deterministic core of the service: no I/O, no clock, no locks (Service.mu
// guards it). Invariants:
//   - an offset is in at most one of entries and tombs;
//   - every half record with queue offset < halfNext whose op record has not been read (op
//     offset >= opNext) is in entries;
//   - an entry in phaseResolving is owned by the one caller that claimed it.
type state struct {
	timeoutMs   int64
	intervalMs  int64
	checkMax    int
	retentionMs int64

	entries  map[int64]*entry
	tombs    map[int64]tomb
	halfNext int64 // next half queue offset to read
	opNext   int64 // next op queue offset to read
	dirty    bool  // something the checkpoint records changed
}

func newState(cfg *Config) *state {
	return &state{
		timeoutMs:   cfg.TransactionTimeout.Milliseconds(),
		intervalMs:  cfg.CheckInterval.Milliseconds(),
		checkMax:    cfg.CheckMax,
		retentionMs: cfg.ResolvedRetention.Milliseconds(),
		entries:     make(map[int64]*entry),
		tombs:       make(map[int64]tomb),
	}
}

// firstDue is when h is first checked: its store time plus its check-immunity time when the
// producer set one (shorter or longer than the timeout, as Apache's
// TransactionalMessageUtil.getImmunityTime), else plus transactionTimeOut.
func (s *state) firstDue(h *half) int64 {
	if h.Immunity > 0 {
		return h.StoreTime + h.Immunity.Milliseconds()
	}
	return h.StoreTime + s.timeoutMs
}

// observeHalf records a half read from the half queue. Known or finished offsets are ignored.
func (s *state) observeHalf(h half, unverified bool) {
	if _, ok := s.entries[h.QueueOffset]; ok {
		return
	}
	if _, ok := s.tombs[h.QueueOffset]; ok {
		return
	}
	s.entries[h.QueueOffset] = &entry{half: h, nextCheck: s.firstDue(&h), unverified: unverified}
	s.dirty = true
}

// known reports whether qo is in the table (open, being resolved, resolved or finished).
func (s *state) known(qo int64) bool {
	if _, ok := s.entries[qo]; ok {
		return true
	}
	_, ok := s.tombs[qo]
	return ok
}

// restoreEntry re-creates an entry from the checkpoint with its check count.
func (s *state) restoreEntry(h half, checks int, unverified bool) {
	e := &entry{half: h, checks: checks, unverified: unverified}
	e.nextCheck = s.firstDue(&h)
	s.entries[h.QueueOffset] = e
}

// observeOp records an op record read back for half queue offset qo.
func (s *state) observeOp(qo int64, o Outcome, now int64) {
	s.dirty = true
	if e, ok := s.entries[qo]; ok {
		if e.phase == phaseResolving {
			e.opSeen = true
			return
		}
		if e.phase == phaseResolved {
			o = e.outcome
		}
		delete(s.entries, qo)
	}
	s.tombs[qo] = tomb{outcome: o, at: now}
}

// claimResult is the answer of claim.
type claimResult uint8

const (
	claimed   claimResult = iota // caller owns the entry (phaseResolving)
	claimBusy                    // someone else is resolving it
	claimDone                    // already finished; see the outcome
	claimOld                     // before halfNext and forgotten: finished long ago, outcome unknown
)

// claim gives the caller exclusive ownership of half h. A half not read from the queue yet
// (offset >= halfNext) is added on the spot, unverified when old says it may come from an
// earlier incarnation. It also returns the entry's unverified flag.
func (s *state) claim(h half, old bool) (claimResult, Outcome, bool) {
	e, ok := s.entries[h.QueueOffset]
	if !ok {
		if t, ok := s.tombs[h.QueueOffset]; ok {
			return claimDone, t.outcome, false
		}
		if h.QueueOffset < s.halfNext {
			return claimOld, OutcomeNone, false
		}
		e = &entry{half: h, nextCheck: s.firstDue(&h), unverified: old}
		s.entries[h.QueueOffset] = e
	}
	switch e.phase {
	case phaseResolving:
		return claimBusy, OutcomeNone, false
	case phaseResolved:
		return claimDone, e.outcome, false
	}
	e.phase = phaseResolving
	return claimed, OutcomeNone, e.unverified
}

// finish moves a claimed entry to its outcome.
func (s *state) finish(qo int64, o Outcome, now int64) {
	e, ok := s.entries[qo]
	if !ok || e.phase != phaseResolving {
		return
	}
	if e.opSeen {
		delete(s.entries, qo)
		s.tombs[qo] = tomb{outcome: o, at: now}
		s.dirty = true
		return
	}
	e.phase, e.outcome, e.resolvedAt = phaseResolved, o, now
}

// opWritten notes that the op record of a resolved entry was appended (ok) or that the
// append failed (retried in the next round).
func (s *state) opWritten(qo int64, ok bool) {
	if e, found := s.entries[qo]; found && e.phase == phaseResolved {
		e.opQueued = false
		e.opWritten = ok
	}
}

// abort returns a claimed entry to pending; unverified marks it for a committed-copy lookup
// before anyone acts on it again (an ambiguous commit failure).
func (s *state) abort(qo int64, unverified bool) {
	if e, ok := s.entries[qo]; ok && e.phase == phaseResolving {
		e.phase = phasePending
		e.unverified = e.unverified || unverified
		if e.opSeen { // finished elsewhere meanwhile
			delete(s.entries, qo)
			s.tombs[qo] = tomb{outcome: OutcomeResolved}
			s.dirty = true
		}
	}
}

// verified clears the unverified flag of a claimed entry and returns it to pending without
// counting a check (the scanner's lookup found no committed copy).
func (s *state) verified(qo int64) {
	if e, ok := s.entries[qo]; ok {
		e.unverified = false
		s.abort(qo, false)
	}
}

// dueCheck is one check-back to send.
type dueCheck struct {
	half
	check int // 1-based number of this check
}

// work is what the scanner must do now; offsets are sorted ascending.
type work struct {
	checks   []dueCheck
	discards []half   // claimed: checked CheckMax times, due again
	verifies []half   // claimed: unverified and due; look for a committed copy first
	ops      []opItem // resolved entries whose op record must be appended (batched)
}

// opItem is one op record entry to append.
type opItem struct {
	queueOffset int64
	outcome     Outcome
}

// due collects the work due at now and updates check counts and due times. Checks count when
// they are handed out, whether or not a producer is online to receive them (as in RocketMQ).
func (s *state) due(now int64) work {
	var w work
	for _, e := range s.entries {
		switch e.phase {
		case phasePending:
			if e.nextCheck > now {
				continue
			}
			switch {
			case e.unverified:
				e.phase = phaseResolving
				w.verifies = append(w.verifies, e.half)
			case e.checks >= s.checkMax:
				e.phase = phaseResolving
				w.discards = append(w.discards, e.half)
			default:
				e.checks++
				e.nextCheck = now + s.intervalMs
				s.dirty = true
				w.checks = append(w.checks, dueCheck{half: e.half, check: e.checks})
			}
		}
	}
	w.ops = s.takeOps()
	byOffset := func(a, b half) int { return cmp.Compare(a.QueueOffset, b.QueueOffset) }
	slices.SortFunc(w.checks, func(a, b dueCheck) int { return byOffset(a.half, b.half) })
	slices.SortFunc(w.discards, byOffset)
	slices.SortFunc(w.verifies, byOffset)
	return w
}

// takeOps hands out the resolved entries whose op record is neither written nor being
// written, sorted by offset, and marks them queued.
func (s *state) takeOps() []opItem {
	var ops []opItem
	for _, e := range s.entries {
		if e.phase == phaseResolved && !e.opWritten && !e.opQueued {
			e.opQueued = true
			ops = append(ops, opItem{e.QueueOffset, e.outcome})
		}
	}
	slices.SortFunc(ops, func(a, b opItem) int { return cmp.Compare(a.queueOffset, b.queueOffset) })
	return ops
}

// prune forgets tombstones older than the retention that the queue reader has passed.
func (s *state) prune(now int64) {
	for qo, t := range s.tombs {
		if qo < s.halfNext && now-t.at >= s.retentionMs {
			delete(s.tombs, qo)
		}
	}
}

// pendingCount is the number of open (not finished) half messages.
func (s *state) pendingCount() int {
	n := 0
	for _, e := range s.entries {
		if e.phase != phaseResolved {
			n++
		}
	}
	return n
}

// drop forgets a half whose record is gone from the log (retention removed it).
func (s *state) drop(qo int64, now int64) {
	if _, ok := s.entries[qo]; ok {
		delete(s.entries, qo)
		s.tombs[qo] = tomb{outcome: OutcomeResolved, at: now}
		s.dirty = true
	}
}

// snapshot returns the durable part of the table: cursors and every entry read from the half
// queue that is still open, with its check count. Resolved entries whose op record was
// appended are left out: their action (the committed copy) was appended before they were
// resolved, so forgetting them loses nothing (see docs/txn.md).
func (s *state) snapshot() checkpoint {
	cp := checkpoint{Version: checkpointVersion, HalfNext: s.halfNext, OpNext: s.opNext}
	for qo, e := range s.entries {
		if qo >= s.halfNext || e.phase == phaseResolved && e.opWritten {
			continue
		}
		cp.Open = append(cp.Open, openHalf{QueueOffset: qo, CommitLogOffset: e.CommitLogOffset, Checks: e.checks})
	}
	slices.SortFunc(cp.Open, func(a, b openHalf) int { return cmp.Compare(a.QueueOffset, b.QueueOffset) })
	return cp
}

func ms(t time.Time) int64 { return t.UnixMilli() }
