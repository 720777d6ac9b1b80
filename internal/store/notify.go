package store

import "sync"

// notifier wakes every goroutine waiting for "something advanced" (a flush round) without
// allocating per broadcast, unlike closing and replacing a channel: each waiter parks on a
// one-slot channel taken from a pool and registered in a reused slice.
//
// Protocol (no lost wake-ups): register, then check the condition, then wait; the
// broadcaster changes the condition's state before it broadcasts. A waiter that leaves
// without being signalled (timeout, cancellation, condition already true) must call done,
// which unregisters the channel and drains a signal that raced in, so a pooled channel
// never carries a stale signal.
type notifier struct {
	mu      sync.Mutex
	waiters []chan struct{}
	pool    sync.Pool
}

// register returns a channel that receives one signal at the next broadcast.
func (n *notifier) register() chan struct{} {
	ch, _ := n.pool.Get().(chan struct{})
	if ch == nil {
		ch = make(chan struct{}, 1)
	}
	n.mu.Lock()
	n.waiters = append(n.waiters, ch)
	n.mu.Unlock()
	return ch
}

// done gives back a channel from register; the caller must not use it afterwards.
func (n *notifier) done(ch chan struct{}) {
	n.mu.Lock()
	for i, w := range n.waiters {
		if w == ch {
			last := len(n.waiters) - 1
			n.waiters[i] = n.waiters[last]
			n.waiters[last] = nil
			n.waiters = n.waiters[:last]
			break
		}
	}
	n.mu.Unlock()
	select {
	case <-ch:
	default:
	}
	n.pool.Put(ch)
}

// broadcast signals and unregisters every registered waiter. A signalled waiter still calls
// done (its channel is no longer registered; done drains and pools it).
func (n *notifier) broadcast() {
	n.mu.Lock()
	for i, w := range n.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
		n.waiters[i] = nil
	}
	n.waiters = n.waiters[:0]
	n.mu.Unlock()
}
