package proxy

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memBackend is a small in-memory Backend for testing the gRPC layer without brokers: one
// broker ("mem-broker"), pop with invisible time and redelivery, tag filtering, delayed
// visibility, half messages with commit/rollback and check-backs on demand.
type memBackend struct {
	mu       sync.Mutex
	wake     chan struct{} // closed and replaced on every change
	topics   map[string]*TopicConfig
	groups   map[string]*GroupConfig
	msgs     map[string][]*memEntry // by topic
	half     []*memEntry
	checker  TransactionChecker
	sent     []*SendRequest
	ended    []*EndTransactionRequest
	autoGrp  bool
	maxTimes int32 // reconsume limit before a message goes to %DLQ%<group>
}

type memEntry struct {
	msg       *Message
	visibleAt time.Time
	acked     bool
	gen       int
	pops      int
	group     string // group that popped it (single-group tests)
}

const memBroker = "mem-broker"

func newMemBackend() *memBackend {
	return &memBackend{
		wake: make(chan struct{}), topics: map[string]*TopicConfig{}, groups: map[string]*GroupConfig{},
		msgs: map[string][]*memEntry{}, autoGrp: true, maxTimes: 16,
	}
}

func (b *memBackend) addTopic(name string, typ MessageType, queues int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.topics[name] = &TopicConfig{Name: name, ReadQueues: queues, WriteQueues: queues, Perm: PermRead | PermWrite, MessageType: typ}
}

func (b *memBackend) notify() {
	close(b.wake)
	b.wake = make(chan struct{})
}

func (b *memBackend) QueryRoute(_ context.Context, topic string) (*TopicRoute, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tc, ok := b.topics[topic]
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", topic, ErrTopicNotFound)
	}
	return &TopicRoute{Topic: topic, Brokers: []BrokerQueues{{Name: memBroker, ReadQueues: tc.ReadQueues, WriteQueues: tc.WriteQueues, Perm: tc.Perm}}}, nil
}

func (b *memBackend) TopicConfig(_ context.Context, topic string) (*TopicConfig, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tc, ok := b.topics[topic]
	if !ok {
		return nil, ErrTopicNotFound
	}
	c := *tc
	return &c, nil
}

func (b *memBackend) CreateTopic(_ context.Context, cfg TopicConfig) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.topics[cfg.Name] = &cfg
	return nil
}

func (b *memBackend) GroupConfig(_ context.Context, group string) (*GroupConfig, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, ok := b.groups[group]
	if !ok {
		if !b.autoGrp {
			return nil, ErrGroupNotFound
		}
		g = &GroupConfig{Name: group, ConsumeEnable: true, RetryMaxTimes: 16}
		b.groups[group] = g
	}
	c := *g
	return &c, nil
}

func (b *memBackend) Send(_ context.Context, req *SendRequest) (*SendResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[req.Message.Topic]; !ok {
		return nil, &BrokerError{Code: rcTopicNotExist, Remark: "topic not exist"}
	}
	b.sent = append(b.sent, req)
	m := *req.Message
	m.QueueID = req.QueueID
	m.BornHost = "127.0.0.1:1234"
	m.StoreHost = "127.0.0.1:10911"
	m.StoreTimestamp = time.Now().UnixMilli()
	e := &memEntry{msg: &m}
	if v := m.Properties[PropTimerDeliverMS]; v != "" {
		ms, _ := strconv.ParseInt(v, 10, 64)
		e.visibleAt = time.UnixMilli(ms)
	}
	if m.SysFlag&SysFlagTransactionPrepared != 0 {
		m.QueueOffset = int64(len(b.half))
		m.CommitLogOffset = 1000 + m.QueueOffset
		b.half = append(b.half, e)
		return &SendResult{QueueID: req.QueueID, QueueOffset: m.QueueOffset, CommitLogOffset: m.CommitLogOffset, TransactionID: m.Properties[PropUniqKey]}, nil
	}
	m.QueueOffset = int64(len(b.msgs[m.Topic]))
	m.CommitLogOffset = 1 << 20 * m.QueueOffset
	b.msgs[m.Topic] = append(b.msgs[m.Topic], e)
	b.notify()
	return &SendResult{QueueID: req.QueueID, QueueOffset: m.QueueOffset, CommitLogOffset: m.CommitLogOffset, TransactionID: m.Properties[PropUniqKey]}, nil
}

func tagMatches(expr, tag string) bool {
	if expr == "*" || expr == "" {
		return true
	}
	for _, t := range strings.Split(expr, "||") {
		if strings.TrimSpace(t) == tag {
			return true
		}
	}
	return false
}

func (b *memBackend) Pop(ctx context.Context, req *PopRequest) (*PopResult, error) {
	if req.Broker != memBroker {
		return nil, ErrBrokerNotFound
	}
	if req.FilterType == "SQL92" { // the broker's property filter is tested with real brokers
		return nil, &BrokerError{Code: rcSubscriptionParseFailed, Remark: "the memory backend has no property filter"}
	}
	deadline := time.Now().Add(req.PollTime)
	for {
		b.mu.Lock()
		if _, ok := b.topics[req.Topic]; !ok {
			b.mu.Unlock()
			return nil, &BrokerError{Code: rcTopicNotExist, Remark: "topic not exist"}
		}
		now := time.Now()
		var out []*Message
		var next time.Time
		busyGroups := map[string]bool{}
		for _, e := range b.msgs[req.Topic] {
			if e.acked {
				continue
			}
			mg := e.msg.Properties[PropShardingKey]
			if e.visibleAt.After(now) {
				if next.IsZero() || e.visibleAt.Before(next) {
					next = e.visibleAt
				}
				if req.Order && mg != "" {
					busyGroups[mg] = true
				}
				continue
			}
			if req.Order && mg != "" && busyGroups[mg] {
				continue
			}
			if !tagMatches(req.FilterExpr, e.msg.Properties[PropTags]) {
				continue
			}
			limit := b.maxTimes
			if g, ok := b.groups[req.Group]; ok {
				limit = int32(g.RetryMaxTimes)
			}
			if int32(e.pops) > limit {
				e.acked = true // dead-lettered
				dlq := "%DLQ%" + req.Group
				d := *e.msg
				d.Topic = dlq
				d.Properties = map[string]string{}
				for k, v := range e.msg.Properties {
					d.Properties[k] = v
				}
				d.Properties[PropDLQOriginTopic] = req.Topic
				d.Properties[PropDLQOriginMsgID] = e.msg.Properties[PropUniqKey]
				d.QueueOffset = int64(len(b.msgs[dlq]))
				if _, ok := b.topics[dlq]; !ok {
					b.topics[dlq] = &TopicConfig{Name: dlq, ReadQueues: 1, WriteQueues: 1, Perm: PermRead | PermWrite, MessageType: MessageTypeNormal}
				}
				b.msgs[dlq] = append(b.msgs[dlq], &memEntry{msg: &d})
				continue
			}
			if req.Order && mg != "" {
				busyGroups[mg] = true
			}
			e.gen++
			m := *e.msg
			m.ReconsumeTimes = int32(e.pops)
			e.pops++
			e.visibleAt = now.Add(req.InvisibleTime)
			m.ReceiptHandle = fmt.Sprintf("%s.%d.%d", req.Topic, e.msg.QueueOffset, e.gen)
			out = append(out, &m)
			if int32(len(out)) >= req.MaxMessages {
				break
			}
		}
		wake := b.wake
		b.mu.Unlock()
		if len(out) > 0 {
			return &PopResult{Messages: out}, nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return &PopResult{}, nil
		}
		if !next.IsZero() {
			wait = min(wait, time.Until(next)+time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (b *memBackend) entry(h Handle) (*memEntry, error) {
	f := strings.Split(h.Raw, ".")
	if len(f) != 3 {
		return nil, ErrHandleInvalid
	}
	off, err1 := strconv.Atoi(f[1])
	gen, err2 := strconv.Atoi(f[2])
	list := b.msgs[f[0]]
	if err1 != nil || err2 != nil || off < 0 || off >= len(list) {
		return nil, ErrHandleInvalid
	}
	e := list[off]
	if e.acked {
		return e, nil
	}
	if e.gen != gen {
		return nil, ErrHandleExpired
	}
	return e, nil
}

func (b *memBackend) Ack(_ context.Context, req *AckRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.entry(req.Handle)
	if err != nil {
		return err
	}
	if !e.acked && !time.Now().Before(e.visibleAt) {
		return ErrHandleExpired // the invisible time passed, as the broker's pop service
	}
	e.acked = true
	return nil
}

func (b *memBackend) ChangeInvisible(_ context.Context, req *ChangeInvisibleRequest) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.entry(req.Handle)
	if err != nil {
		return "", err
	}
	if e.acked || !time.Now().Before(e.visibleAt) {
		return "", ErrHandleExpired
	}
	e.gen++
	e.visibleAt = time.Now().Add(req.InvisibleTime)
	b.notify()
	return fmt.Sprintf("%s.%d.%d", e.msg.Topic, e.msg.QueueOffset, e.gen), nil
}

func (b *memBackend) ForwardToDLQ(_ context.Context, req *ForwardDLQRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.entry(req.Handle)
	if err != nil {
		return err
	}
	e.acked = true
	dlq := "%DLQ%" + req.Group
	d := *e.msg
	d.Topic = dlq
	b.msgs[dlq] = append(b.msgs[dlq], &memEntry{msg: &d})
	return nil
}

func (b *memBackend) EndTransaction(_ context.Context, req *EndTransactionRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = append(b.ended, req)
	if req.Broker != memBroker || req.TranStateTableOffset >= int64(len(b.half)) {
		return &BrokerError{Code: rcSystemError, Remark: "no such half message"}
	}
	e := b.half[req.TranStateTableOffset]
	if e.acked || e.msg.CommitLogOffset != req.CommitLogOffset {
		return nil
	}
	switch req.Resolution {
	case ResolutionCommit:
		e.acked = true
		m := *e.msg
		m.SysFlag &^= SysFlagTransactionPrepared
		m.QueueOffset = int64(len(b.msgs[m.Topic]))
		b.msgs[m.Topic] = append(b.msgs[m.Topic], &memEntry{msg: &m})
		b.notify()
	case ResolutionRollback:
		e.acked = true
	}
	return nil
}

func (b *memBackend) SetTransactionChecker(c TransactionChecker) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checker = c
}

// checkHalf sends a check-back for every unresolved half message; it returns how many.
func (b *memBackend) checkHalf() int {
	b.mu.Lock()
	var checks []*TransactionCheck
	for _, e := range b.half {
		if e.acked {
			continue
		}
		m := *e.msg
		checks = append(checks, &TransactionCheck{
			Broker: memBroker, ProducerGroup: m.Properties[PropProducerGroup], Message: &m,
			CommitLogOffset: m.CommitLogOffset, TranStateTableOffset: m.QueueOffset,
			MsgID: m.Properties[PropUniqKey], TransactionID: m.Properties[PropUniqKey],
		})
	}
	c := b.checker
	b.mu.Unlock()
	for _, ch := range checks {
		c.CheckTransaction(ch)
	}
	return len(checks)
}

// halfResolved reports how many half messages are resolved.
func (b *memBackend) halfResolved() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.half {
		if e.acked {
			n++
		}
	}
	return n
}

func (b *memBackend) sentQueues() []int32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []int32
	for _, s := range b.sent {
		out = append(out, s.QueueID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Recall: the memory backend keeps no timers; RECALL_MESSAGE is a broker feature the e2e
// modes over real brokers test (TestRecallMessage).
func (b *memBackend) Recall(context.Context, *RecallRequest) (string, error) {
	return "", &BrokerError{Code: rcRequestCodeNotSupported, Remark: "the memory backend keeps no timers"}
}
