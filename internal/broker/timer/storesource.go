package timer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// storeSource adapts *store.Store to Source.
type storeSource struct {
	st      *store.Store
	segSize int64
}

// StoreSource returns the Source over st. segmentSize is st's commit-log segment size
// (store.Config.MappedFileSizeCommitLog); Scan uses it to step over segment-end fillers.
func StoreSource(st *store.Store, segmentSize int64) Source {
	return &storeSource{st: st, segSize: segmentSize}
}

// TimerRecords reads the timer queue. Records retention already removed (the queue's minimum
// moved past from) are skipped with ErrRecordGone so the caller can log the loss and resume.
func (s *storeSource) TimerRecords(from int64, max int) ([]*message.Ext, error) {
	res, err := s.st.Get(Topic, 0, from, max, 64<<20, nil)
	if err != nil {
		return nil, err
	}
	defer res.Release()
	if res.Status == store.OffsetTooSmall {
		return nil, &goneError{next: res.NextBeginOffset}
	}
	out := make([]*message.Ext, 0, len(res.Records))
	for _, r := range res.Records {
		m, _, err := message.DecodeRecord(r.Data, false)
		if err != nil {
			return nil, fmt.Errorf("timer: record at %d: %w", r.CommitLogOffset, err)
		}
		m.QueueOffset, m.CommitLogOffset, m.StoreSize = r.QueueOffset, r.CommitLogOffset, int32(len(r.Data))
		out = append(out, m)
	}
	if len(out) == 0 && res.Status != store.OffsetOverflowOne && res.Status != store.NoMessageInQueue &&
		res.NextBeginOffset > from {
		return nil, &goneError{next: res.NextBeginOffset} // holes: entries without a readable record
	}
	return out, nil
}

// goneError reports timer-queue offsets [from, next) whose records no longer exist.
type goneError struct{ next int64 }

func (e *goneError) Error() string {
	return fmt.Sprintf("timer: timer records gone from the store up to queue offset %d", e.next)
}
func (e *goneError) Unwrap() error { return ErrRecordGone }

func (s *storeSource) ReadMessage(off int64) (*message.Ext, error) {
	m, err := s.st.ReadMessage(off)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", ErrRecordGone, err)
	}
	return m, err
}

func (s *storeSource) CommitLogEnd() int64 { return s.st.Stats().MaxPhysicalOffset }

// Scan walks the commit log record by record from from; at a segment-end filler (or a
// removed segment) it moves to the next segment.
func (s *storeSource) Scan(from int64, fn func(*message.Ext) error) error {
	end := s.st.Stats().MaxPhysicalOffset
	if min := s.st.Stats().MinPhysicalOffset; from < min {
		from = min
	}
	for off := from; off < end; {
		rec, err := s.st.ReadRecord(off)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			off = (off/s.segSize + 1) * s.segSize
			continue
		}
		m, _, err := message.DecodeRecord(rec, false)
		if err != nil {
			return fmt.Errorf("timer: scan at %d: %w", off, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		off += int64(len(rec))
	}
	return nil
}

// syncPoll is how often Sync re-checks the flushed offset; the store flushes every
// flushIntervalCommitLog (500 ms) in ASYNC_FLUSH and on every put in SYNC_FLUSH. Checkpoint
// latency does not matter, CPU does.
const syncPoll = 20 * time.Millisecond

// syncTimeout bounds Sync.
const syncTimeout = 30 * time.Second

// Sync waits until the store's flushed offset covers what was written when it was called.
// The store has no flush-and-wait call yet, so this polls Stats (on the checkpoint goroutine,
// never on the delivery loop).
func (s *storeSource) Sync() error {
	target := s.st.Stats().MaxPhysicalOffset
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	t := time.NewTicker(syncPoll)
	defer t.Stop()
	for {
		st := s.st.Stats()
		if st.FlushedOffset >= target {
			return nil
		}
		if !st.Writable && !st.DiskFull {
			return fmt.Errorf("timer: store not writable, flushed %d < %d", st.FlushedOffset, target)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timer: store flushed %d < %d after %v", st.FlushedOffset, target, syncTimeout)
		case <-t.C:
		}
	}
}

// waitDispatchedTimeout bounds WaitDispatched (the replay of a large commit-log tail).
const waitDispatchedTimeout = 10 * time.Minute

func (s *storeSource) WaitDispatched(end int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitDispatchedTimeout)
	defer cancel()
	return s.st.WaitDispatched(ctx, end)
}
