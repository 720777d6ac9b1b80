package store

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNotifierNoLostWakeup: waiters that register, check a counter and wait are always woken
// by a broadcast that follows an increment, and channels returned after a racing signal
// come back clean from the pool.
func TestNotifierNoLostWakeup(t *testing.T) {
	var n notifier
	var gen atomic.Int64
	const waiters, rounds = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < waiters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for want := int64(1); want <= rounds; want++ {
				for {
					ch := n.register()
					if gen.Load() >= want {
						n.done(ch)
						break
					}
					select {
					case <-ch:
					case <-stop:
						n.done(ch)
						return
					}
					n.done(ch)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := 0; i < rounds; i++ {
		gen.Add(1)
		n.broadcast()
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(stop)
		t.Fatal("a waiter missed a broadcast")
	}
	// Every channel is back in the pool or unregistered, none holds a signal.
	n.mu.Lock()
	left := len(n.waiters)
	n.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiters still registered", left)
	}
	for i := 0; i < 16; i++ {
		ch := n.register()
		select {
		case <-ch:
			t.Fatal("pooled channel carried a stale signal")
		default:
		}
		n.done(ch)
	}
}

// TestNotifierDoneWithoutBroadcast: a waiter that gives up (timeout) unregisters, so the
// next broadcast does not signal a channel that went back to the pool.
func TestNotifierDoneWithoutBroadcast(t *testing.T) {
	var n notifier
	a, b := n.register(), n.register()
	n.done(a)
	n.broadcast()
	select {
	case <-b:
	default:
		t.Fatal("registered waiter not signalled")
	}
	n.done(b)
	c := n.register()
	select {
	case <-c:
		t.Fatal("fresh registration already signalled")
	default:
	}
	n.done(c)
}
