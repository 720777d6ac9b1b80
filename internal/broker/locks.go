package broker

import (
	"sync"
	"time"
)

// MessageQueue identifies a queue as clients spell it in JSON bodies.
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

type lockKey struct {
	topic string
	qid   int32
}

type lockEntry struct {
	clientID string
	last     time.Time
}

// QueueLocks is the orderly-consumption lock table (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ): at
// most one client of a group owns a queue; a lock not renewed within ttl expires. mu is a
// leaf lock.
type QueueLocks struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[string]map[lockKey]*lockEntry // group -> queue -> owner
}

func newQueueLocks(ttl time.Duration) *QueueLocks {
	return &QueueLocks{ttl: ttl, m: map[string]map[lockKey]*lockEntry{}}
}

// TryLock locks (or renews) each queue for clientID where it is free, expired or already
// owned by clientID, and returns the queues clientID now owns.
func (l *QueueLocks) TryLock(group, clientID string, mqs []MessageQueue, now time.Time) []MessageQueue {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.m[group]
	if g == nil {
		g = map[lockKey]*lockEntry{}
		l.m[group] = g
	}
	out := make([]MessageQueue, 0, len(mqs))
	for _, mq := range mqs {
		k := lockKey{mq.Topic, mq.QueueID}
		e := g[k]
		switch {
		case e == nil:
			g[k] = &lockEntry{clientID: clientID, last: now}
		case e.clientID == clientID || now.Sub(e.last) > l.ttl:
			e.clientID, e.last = clientID, now
		default:
			continue
		}
		out = append(out, mq)
	}
	return out
}

// Unlock releases the queues clientID owns among mqs.
func (l *QueueLocks) Unlock(group, clientID string, mqs []MessageQueue) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.m[group]
	for _, mq := range mqs {
		k := lockKey{mq.Topic, mq.QueueID}
		if e := g[k]; e != nil && e.clientID == clientID {
			delete(g, k)
		}
	}
	if len(g) == 0 {
		delete(l.m, group)
	}
}

// Owner returns the live owner of a queue ("" when unlocked or expired).
func (l *QueueLocks) Owner(group, topic string, qid int32, now time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[group][lockKey{topic, qid}]; e != nil && now.Sub(e.last) <= l.ttl {
		return e.clientID
	}
	return ""
}

// HasLiveLock reports whether any queue of group is locked by a lock that has not expired
// (RocketMQ's !isLockAllExpired): the group consumes orderly right now.
func (l *QueueLocks) HasLiveLock(group string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.m[group] {
		if now.Sub(e.last) <= l.ttl {
			return true
		}
	}
	return false
}
