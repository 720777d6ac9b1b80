package pop

import (
	"context"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// Run is the revive loop: it expires deliveries whose invisible time passed (waking pollers),
// moves messages whose retry budget is spent to %DLQ%<group>, and snapshots the state every
// SnapshotInterval (or when the log reaches SnapshotLogBytes). It sleeps until the earliest
// deadline or a kick, never polls. It returns when ctx is cancelled, after a final snapshot,
// and closes the Service.
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	lastSnap := time.Now()
	var retryDead []Due // DLQ moves that failed, retried after DLQRetryInterval
	var retryAt time.Time
	for {
		s.wakeAt.Store(0) // from here until the timer is set, every new deadline kicks
		now := time.Now()
		dead, woke, next, hasNext := s.expire(now.UnixMilli())
		for _, k := range woke {
			s.notify.wake(k.Topic)
		}
		if len(retryDead) > 0 && !now.Before(retryAt) {
			dead = append(retryDead, dead...)
			retryDead = nil
		}
		for _, d := range dead {
			if err := s.deadLetter(ctx, d); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Warn("pop: move to DLQ failed, will retry", "group", d.Key.Group, "topic", d.Key.Topic,
					"queue", d.Key.Queue, "offset", d.Offset, "err", err)
				retryDead = append(retryDead, d)
				retryAt = time.Now().Add(s.cfg.DLQRetryInterval)
			}
		}
		if time.Since(lastSnap) >= s.cfg.SnapshotInterval || s.wal.size() >= s.cfg.SnapshotLogBytes {
			if err := s.Snapshot(); err != nil {
				s.log.Warn("pop: snapshot failed", "err", err)
			}
			lastSnap = time.Now()
		}
		wait := time.Until(lastSnap.Add(s.cfg.SnapshotInterval))
		if hasNext {
			wait = min(wait, time.Until(time.UnixMilli(next)))
		}
		if len(retryDead) > 0 {
			wait = min(wait, time.Until(retryAt))
		}
		wait = max(wait, 0)
		s.wakeAt.Store(time.Now().Add(wait).UnixMilli())
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-s.kick:
		case <-timer.C:
		}
	}
}

// expire runs Machine.Expire with the groups' retry budgets as last seen by a pop (the
// default for a group not seen since the start).
func (s *Service) expire(now int64) (dead []Due, woke []QueueKey, next int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dead, woke = s.m.Expire(now, func(group string) int32 {
		if b, ok := s.budgets[group]; ok {
			return b
		}
		return s.cfg.DefaultRetryMaxTimes
	})
	next, ok = s.m.NextDeadline()
	return dead, woke, next, ok
}

// deadLetter moves the dead delivery d to %DLQ%<group> and then marks it done. A message the
// store no longer holds is simply marked done.
func (s *Service) deadLetter(ctx context.Context, d Due) error {
	ext, err := s.readOne(d.Key, d.Offset)
	if err != nil {
		return err
	}
	if ext != nil {
		dlq := ext.Clone()
		dlq.Topic = message.DLQTopic(d.Key.Group)
		dlq.QueueID = 0
		dlq.ReconsumeTimes = d.Reconsume + 1
		dlq.RemoveProperty(message.PropertyPopCK)
		// As a remoting send-back to the DLQ (Apache's proxy forwards pop dead letters that
		// way): RETRY_TOPIC and ORIGIN_MESSAGE_ID too, which 4.x DLQ processors read (QA R9N-2).
		origin := ext.Property(message.PropertyRetryTopic)
		if origin == "" {
			origin = d.Key.Topic
		}
		originID := ext.Property(message.PropertyOriginMessageID)
		if originID == "" {
			originID = ext.MsgID()
		}
		dlq.SetProperty(message.PropertyRetryTopic, origin)
		dlq.SetProperty(message.PropertyOriginMessageID, originID)
		dlq.SetProperty(message.PropertyDLQOriginTopic, origin)
		dlq.SetProperty(message.PropertyDLQOriginMessageID, originID)
		if err := s.deps.DeadLetter(ctx, dlq); err != nil {
			return err
		}
		s.stats.deadLettered.Add(1)
	}
	s.mu.Lock()
	b, err := s.applyLocked(&Record{Kind: RecAck, Key: d.Key, Offset: d.Offset, Epoch: d.Epoch})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.wal.wait(b); err != nil {
		return err
	}
	s.publish(d.Key)
	s.notify.wake(d.Key.Topic) // an orderly queue blocked on it may deliver again
	return nil
}

// Snapshot writes the whole state to the snapshot file and deletes the log files it covers.
// Run calls it periodically; it is safe to call at any time.
func (s *Service) Snapshot() error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	state := s.m.Snapshot()
	seq := s.wal.rotate()
	s.dirty = false
	s.mu.Unlock()
	// Make every record before the cut durable in the old file before it can be deleted.
	s.wal.mu.Lock()
	b := s.wal.cur
	s.wal.mu.Unlock()
	if err := s.wal.wait(b); err != nil {
		return err
	}
	if err := writeSnapshot(s.cfg.Dir, &snapshotDoc{LogSeq: seq, State: state}); err != nil {
		return err
	}
	return removeLogsBefore(s.cfg.Dir, seq)
}

// Close stops the Service: pollers return ErrClosed, a final snapshot is written and the log
// closed. Run calls it on exit; calling it again is harmless.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		err := s.Snapshot()
		if cerr := s.wal.close(); err == nil {
			err = cerr
		}
		s.closeErr = err
	})
	return s.closeErr
}

// notifier wakes long-polling pops of a topic. Each waiter has a 1-slot channel, so a wake
// that comes while the waiter is busy is remembered and never blocks the waker.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{}
}

type waiter struct{ ch chan struct{} }

func (n *notifier) watch(topic string) *waiter {
	w := &waiter{ch: make(chan struct{}, 1)}
	n.mu.Lock()
	set, ok := n.waiters[topic]
	if !ok {
		set = make(map[*waiter]struct{})
		n.waiters[topic] = set
	}
	set[w] = struct{}{}
	n.mu.Unlock()
	return w
}

func (n *notifier) unwatch(topic string, w *waiter) {
	n.mu.Lock()
	if set, ok := n.waiters[topic]; ok {
		delete(set, w)
		if len(set) == 0 {
			delete(n.waiters, topic)
		}
	}
	n.mu.Unlock()
}

func (n *notifier) wake(topic string) {
	n.mu.Lock()
	for w := range n.waiters[topic] {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
	n.mu.Unlock()
}
