package proxy

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Auto-renewal (ReceiveMessageRequest.auto_renew, used by the Java push consumer): the proxy
// keeps a received message invisible, renewing its handle before it expires, until the client
// acks it, changes its invisible time, forwards it to the DLQ, disappears (client expiry) or
// AutoRenewMax passes. The client keeps the handle it received; Ack, ChangeInvisibleDuration and
// ForwardMessageToDeadLetterQueue translate it to the current broker handle.

// renewEntry is one auto-renewed message. mu serialises a renewal with the client's final
// operation so the latter always uses the newest broker handle.
type renewEntry struct {
	mu        sync.Mutex
	group     string
	topic     string
	clientID  string
	cur       Handle
	invisible time.Duration
	expires   time.Time // when cur becomes visible again
	started   time.Time
	done      bool // taken by the client's operation or dropped
}

// renewer is the table of auto-renewed messages by the client-facing handle. mu is a leaf
// lock; entry locks are taken without holding it.
type renewer struct {
	mu sync.Mutex
	m  map[string]*renewEntry
}

func newRenewer() *renewer { return &renewer{m: map[string]*renewEntry{}} }

func (r *renewer) add(clientHandle string, e *renewEntry) {
	r.mu.Lock()
	r.m[clientHandle] = e
	r.mu.Unlock()
}

// take removes clientHandle's entry and returns its current handle, waiting for an in-flight
// renewal; ok is false when the handle is not auto-renewed.
func (r *renewer) take(clientHandle string) (Handle, bool) {
	r.mu.Lock()
	e, ok := r.m[clientHandle]
	delete(r.m, clientHandle)
	r.mu.Unlock()
	if !ok {
		return Handle{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.done = true
	return e.cur, true
}

func (r *renewer) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// due returns the entries to renew now (expiring within ahead) and drops those past max age
// or whose client is gone.
func (r *renewer) due(now time.Time, ahead, maxAge time.Duration, alive func(clientID string) bool) []*renewEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*renewEntry
	for k, e := range r.m {
		if now.Sub(e.started) > maxAge || !alive(e.clientID) {
			delete(r.m, k)
			continue
		}
		if e.expires.Sub(now) <= ahead {
			out = append(out, e)
		}
	}
	return out
}

// drop forgets every entry pointing at e (after the broker refused to renew it).
func (r *renewer) drop(e *renewEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range r.m {
		if v == e {
			delete(r.m, k)
		}
	}
}

// renewAhead is how long before expiry a handle is renewed.
func renewAhead(invisible time.Duration) time.Duration {
	return min(10*time.Second, invisible/2)
}

// renewLoop renews due handles every tick until ctx ends.
func (s *Server) renewLoop(ctx context.Context) {
	tick := min(time.Second, s.cfg.MinInvisible/4)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now()
		for _, e := range s.renew.due(now, renewAhead(s.cfg.DefaultInvisible), s.cfg.AutoRenewMax, s.clients.known) {
			s.renewOne(ctx, e)
		}
	}
}

func (s *Server) renewOne(ctx context.Context, e *renewEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	raw, err := s.backend.ChangeInvisible(rctx, &ChangeInvisibleRequest{Group: e.group, Topic: e.topic, Handle: e.cur, InvisibleTime: e.invisible})
	cancel()
	switch {
	case err == nil:
		e.cur.Raw = raw
		e.expires = s.now().Add(e.invisible)
	case errors.Is(err, ErrHandleExpired), errors.Is(err, ErrHandleInvalid):
		// Acked elsewhere or already redelivered: nothing left to renew.
		e.done = true
		go s.renew.drop(e)
	default:
		s.logger.Debug("auto-renew failed; retrying next tick", "group", e.group, "topic", e.topic, "err", err)
	}
}
