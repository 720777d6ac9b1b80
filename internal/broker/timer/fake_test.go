package timer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// memStore is an in-memory stand-in for the message store: an append-only list of messages
// whose "commit-log offset" is a running byte count, with a per-topic queue index. It survives
// a simulated crash of the timer service because tests keep it across restarts.
type memStore struct {
	mu     sync.Mutex
	msgs   []*message.Ext
	byOff  map[int64]*message.Ext
	queues map[string][]*message.Ext // topic -> messages in queue order (all queue ids)
	end    int64
	notify func(topic string)

	failSync atomic.Bool // Sync fails while set (a store whose flush is failing)
	// lagging hides every timer record from TimerRecords until WaitDispatched is called: a
	// store still replaying its consume queues after a restart.
	lagging atomic.Bool
}

func newMemStore() *memStore {
	return &memStore{byOff: make(map[int64]*message.Ext), queues: make(map[string][]*message.Ext)}
}

func (s *memStore) put(m *message.Ext) *message.Ext {
	s.mu.Lock()
	c := m.Clone()
	c.CommitLogOffset = s.end
	c.StoreSize = int32(100 + len(c.Body))
	s.end += int64(c.StoreSize)
	c.QueueOffset = int64(len(s.queues[c.Topic]))
	if c.StoreTimestamp == 0 {
		c.StoreTimestamp = time.Now().UnixMilli()
	}
	s.msgs = append(s.msgs, c)
	s.byOff[c.CommitLogOffset] = c
	s.queues[c.Topic] = append(s.queues[c.Topic], c)
	n := s.notify
	s.mu.Unlock()
	if n != nil {
		n(c.Topic)
	}
	return c
}

func (s *memStore) TimerRecords(from int64, max int) ([]*message.Ext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[Topic]
	if s.lagging.Load() {
		q = nil
	}
	if from >= int64(len(q)) {
		return nil, nil
	}
	end := min(int64(len(q)), from+int64(max))
	out := make([]*message.Ext, 0, end-from)
	for _, m := range q[from:end] {
		out = append(out, m.Clone())
	}
	return out, nil
}

func (s *memStore) ReadMessage(off int64) (*message.Ext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byOff[off]
	if !ok {
		return nil, fmt.Errorf("no message at %d: %w", off, ErrRecordGone)
	}
	return m.Clone(), nil
}

func (s *memStore) CommitLogEnd() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

func (s *memStore) Scan(from int64, fn func(*message.Ext) error) error {
	s.mu.Lock()
	msgs := append([]*message.Ext(nil), s.msgs...)
	s.mu.Unlock()
	for _, m := range msgs {
		if m.CommitLogOffset >= from {
			if err := fn(m.Clone()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *memStore) Sync() error {
	if s.failSync.Load() {
		return errors.New("injected sync failure")
	}
	return nil
}

// WaitDispatched ends the simulated replay lag (the fake indexes on put otherwise).
func (s *memStore) WaitDispatched(int64) error {
	s.lagging.Store(false)
	return nil
}

func (s *memStore) deliver(_ context.Context, ms []*message.Ext) error {
	for _, m := range ms {
		s.put(m)
	}
	return nil
}

// topic returns the messages stored in topic.
func (s *memStore) topic(t string) []*message.Ext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*message.Ext(nil), s.queues[t]...)
}

// sendTimer runs the put-hook path: Intercept, then store (timer record or the message itself).
func sendTimer(svc *Service, st *memStore, topic, id string, props map[string]string) (*message.Ext, bool, error) {
	m := &message.Ext{Message: message.Message{Topic: topic, Body: []byte(id)}}
	m.BornHost = netip.MustParseAddrPort("10.0.0.1:5000")
	m.BornTimestamp = time.Now().UnixMilli()
	m.SetProperty(message.PropertyUniqKey, id)
	for k, v := range props {
		m.SetProperty(k, v)
	}
	taken, err := svc.Intercept(m, time.Now())
	if err != nil {
		return nil, false, err
	}
	stored := st.put(m)
	if taken {
		svc.Notify()
	}
	return stored, taken, nil
}
