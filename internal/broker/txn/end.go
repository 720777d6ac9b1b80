package txn

import (
	"context"
	"fmt"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// End resolves a half message (END_TRANSACTION). Commit puts the committed copy into the real
// topic and records the op; rollback records the op; unknown does nothing. The request must
// name a half message of its producer group: the record at CommitLogOffset must be in the half
// topic, with PGROUP = ProducerGroup, queue offset = TranStateTableOffset and, when
// TransactionID is set, that transaction id. End is idempotent: a repeated commit (or
// rollback) of a finished transaction succeeds without putting anything; the opposite
// resolution fails with ErrAlreadyResolved. It waits for Recover to finish (bounded by ctx).
func (s *Service) End(ctx context.Context, req *EndRequest) error {
	var want Outcome
	switch req.Resolution {
	case ResolutionUnknown:
		return nil
	case ResolutionCommit:
		want = OutcomeCommit
	case ResolutionRollback:
		want = OutcomeRollback
	default:
		return fmt.Errorf("%w: %d", ErrBadResolution, req.Resolution)
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
	}
	m, err := s.log.ReadMessage(req.CommitLogOffset)
	if err != nil {
		return fmt.Errorf("%w: commit log offset %d: %w", ErrHalfNotFound, req.CommitLogOffset, err)
	}
	h, err := halfOf(m)
	if err != nil {
		return fmt.Errorf("%w: commit log offset %d: %w", ErrHalfNotFound, req.CommitLogOffset, err)
	}
	if h.Group != req.ProducerGroup {
		return fmt.Errorf("%w: half at %d belongs to %q, not %q", ErrProducerGroupMismatch, req.CommitLogOffset, h.Group, req.ProducerGroup)
	}
	if h.QueueOffset != req.TranStateTableOffset {
		return fmt.Errorf("%w: half at %d has queue offset %d, not %d", ErrOffsetMismatch, req.CommitLogOffset, h.QueueOffset, req.TranStateTableOffset)
	}
	if req.TransactionID != "" && req.TransactionID != h.TxID && req.TransactionID != h.UniqKey {
		return fmt.Errorf("%w: half at %d has transaction id %q, not %q", ErrTransactionIDMismatch, req.CommitLogOffset, h.TxID, req.TransactionID)
	}
	if !req.FromCheck && h.Immunity > 0 {
		limit := h.Immunity.Milliseconds() // Apache rejectCommitOrRollback: the immunity alone
		if ms(s.cfg.now())-m.BornTimestamp > limit {
			return fmt.Errorf("%w: half at %d born %d ms ago", ErrImmunityExpired, req.CommitLogOffset, ms(s.cfg.now())-m.BornTimestamp)
		}
	}

	s.mu.Lock()
	res, done, unverified := s.st.claim(h, h.CommitLogOffset < s.horizon.Load())
	s.mu.Unlock()
	switch res {
	case claimBusy:
		return fmt.Errorf("%w: half at %d", ErrResolving, req.CommitLogOffset)
	case claimDone:
		if done == OutcomeDiscard && want == OutcomeCommit {
			return s.commitDiscarded(ctx, h, m)
		}
		return s.answerFinished(h, done, want)
	case claimOld:
		return s.answerFinished(h, done, want)
	}

	// We own the entry now: every path below ends with finish or abort. A commit answering a
	// check-back also looks for a committed copy: the half may be an orphan twin of a message
	// already committed (a send retry stored it twice).
	if unverified || req.FromCheck && want == OutcomeCommit {
		found, err := s.committedCopy(h)
		if err != nil {
			s.mu.Lock()
			s.st.abort(h.QueueOffset, true)
			s.mu.Unlock()
			return err
		}
		if found {
			s.recovered.Add(1)
			s.mu.Lock()
			s.st.finish(h.QueueOffset, OutcomeCommit, ms(s.cfg.now()))
			s.mu.Unlock()
			return s.answerFinished(h, OutcomeCommit, want)
		}
	}
	if want == OutcomeCommit {
		c, err := committedFrom(m, s.cfg.KeepPreparedFlagOnCommit)
		if err == nil {
			_, err = s.log.PutCommitted(ctx, c)
		}
		if err != nil {
			// The put may have landed: look for the committed copy before trying again.
			s.mu.Lock()
			s.st.abort(h.QueueOffset, true)
			s.mu.Unlock()
			return fmt.Errorf("txn: commit half at %d: %w", req.CommitLogOffset, err)
		}
		s.commits.Add(1)
	} else {
		s.rollbacks.Add(1)
	}
	// The op record is appended by the scanner's next round (batched); until then the
	// outcome lives in memory, and a crash before it is covered by recovery's verification.
	s.mu.Lock()
	s.st.finish(h.QueueOffset, want, ms(s.cfg.now()))
	s.mu.Unlock()
	if s.cfg.OnEnd != nil {
		s.cfg.OnEnd(h.RealTopic, want, time.UnixMilli(m.BornTimestamp))
	}
	return nil
}

// answerFinished answers a request for a transaction that already ended with outcome done
// (OutcomeNone or OutcomeResolved: ended long ago, way unknown; the key index decides).
func (s *Service) answerFinished(h half, done, want Outcome) error {
	if done == OutcomeNone || done == OutcomeResolved {
		committed, err := s.committedCopy(h)
		if err != nil {
			return err
		}
		done = OutcomeRollback
		if committed {
			done = OutcomeCommit
		}
		if want == OutcomeRollback && !committed {
			return nil // rolled back or discarded: either way not visible
		}
	}
	if done == want || want == OutcomeRollback && done == OutcomeDiscard {
		return nil
	}
	return fmt.Errorf("%w: half at %d already ended with %s, %s refused", ErrAlreadyResolved, h.CommitLogOffset, done, want)
}

// commitDiscarded delivers a half the checker discarded (checked CheckMax times without an
// answer) when its producer commits it afterwards, as Apache's broker does while the half
// record exists (EndTransactionProcessor finds it by its offset; QA R11B-5). It applies
// while the discard's outcome is remembered (ResolvedRetention); later the half is "ended
// long ago" and a commit is refused. The recorded outcome stays discard (its op record and
// its TRANS_CHECK_MAX_TIME_TOPIC copy are already written); a repeated commit puts nothing.
func (s *Service) commitDiscarded(ctx context.Context, h half, m *message.Ext) error {
	s.lateMu.Lock()
	defer s.lateMu.Unlock()
	if _, ok := s.lateCommitted[h.QueueOffset]; ok {
		return nil
	}
	found, err := s.committedCopy(h)
	if err != nil {
		return err
	}
	if !found {
		c, err := committedFrom(m, s.cfg.KeepPreparedFlagOnCommit)
		if err == nil {
			_, err = s.log.PutCommitted(ctx, c)
		}
		if err != nil {
			return fmt.Errorf("txn: commit discarded half at %d: %w", h.CommitLogOffset, err)
		}
		s.commits.Add(1)
		s.logger.Info("transaction committed after its half was discarded; delivered", "queueOffset", h.QueueOffset,
			"commitLogOffset", h.CommitLogOffset, "topic", h.RealTopic)
		if s.cfg.OnEnd != nil {
			s.cfg.OnEnd(h.RealTopic, OutcomeCommit, time.UnixMilli(m.BornTimestamp))
		}
	}
	if len(s.lateCommitted) >= maxLateCommitted {
		clear(s.lateCommitted) // rare events; the committed-copy lookup still guards repeats
	}
	s.lateCommitted[h.QueueOffset] = struct{}{}
	return nil
}

// maxLateCommitted bounds the memory of late commits of discarded halves.
const maxLateCommitted = 4096
