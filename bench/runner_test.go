package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Importing the official SDK starts its OpenCensus worker at init.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// memQueue is an in-memory Sender+Receiver: sends append, receives pop, acks count.
type memQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	q       []*Received
	acks    atomic.Int64
	failAll bool
	delay   time.Duration
}

func newMemQueue() *memQueue {
	m := &memQueue{}
	m.cond = sync.NewCond(&m.mu)
	return m
}

func (m *memQueue) Send(ctx context.Context, msg *Message) (SendResult, error) {
	if m.failAll {
		return SendResult{}, errors.New("proxy unavailable")
	}
	if m.delay > 0 {
		time.Sleep(m.delay)
	}
	m.mu.Lock()
	m.q = append(m.q, &Received{Topic: msg.Topic, Body: append([]byte(nil), msg.Body...), Tag: msg.Tag, Keys: msg.Keys, MessageGroup: msg.MessageGroup})
	m.mu.Unlock()
	m.cond.Broadcast()
	return SendResult{MessageID: "id"}, nil
}

func (m *memQueue) Receive(ctx context.Context, max int32) ([]*Received, error) {
	deadline := time.Now().Add(50 * time.Millisecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.q) == 0 {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, nil
		}
		m.mu.Unlock()
		time.Sleep(time.Millisecond) // poll the fake; the real SDK long-polls
		m.mu.Lock()
	}
	n := min(int(max), len(m.q))
	out := m.q[:n:n]
	m.q = m.q[n:]
	return out, nil
}

func (m *memQueue) Ack(context.Context, *Received) error { m.acks.Add(1); return nil }
func (m *memQueue) Close() error                         { return nil }

func TestProduceCountsAndLatency(t *testing.T) {
	q := newMemQueue()
	res, err := Run(context.Background(), Config{Mode: ModeProduce, Topic: "T", Max: 500, Concurrency: 4, MessageSize: 64, Keys: true, Groups: 3}, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 500 || res.SendErrors != 0 || res.SendLat.Count != 500 {
		t.Fatalf("sent=%d errs=%d lat=%d", res.Sent, res.SendErrors, res.SendLat.Count)
	}
	if len(q.q) != 500 {
		t.Fatalf("queue holds %d", len(q.q))
	}
	groups := map[string]bool{}
	keys := map[string]bool{}
	for _, m := range q.q {
		groups[m.MessageGroup] = true
		keys[m.Keys[0]] = true
		if len(m.Body) != 64 || string(m.Body[:4]) != bodyMagic {
			t.Fatalf("bad body %q", m.Body)
		}
	}
	if len(groups) != 3 || len(keys) != 500 {
		t.Fatalf("groups=%d unique keys=%d", len(groups), len(keys))
	}
	if res.SendRate <= 0 || res.SendMBps <= 0 {
		t.Fatalf("rates %v %v", res.SendRate, res.SendMBps)
	}
}

func TestRateLimitHoldsThePace(t *testing.T) {
	q := newMemQueue()
	start := time.Now()
	res, err := Run(context.Background(), Config{Mode: ModeProduce, Topic: "T", Max: 30, Concurrency: 8, Rate: 100}, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 30 messages at 100/s: the last is due at 290 ms.
	if el := time.Since(start); el < 280*time.Millisecond {
		t.Fatalf("30 messages at 100/s took only %v", el)
	}
	if res.Sent != 30 {
		t.Fatalf("sent %d", res.Sent)
	}
}

func TestE2EReceivesEverySentMessage(t *testing.T) {
	q := newMemQueue()
	// A message left over from an earlier run is acked but not counted.
	old := make([]byte, 64)
	copy(old, bodyMagic)
	q.q = append(q.q, &Received{Body: old})
	var prog bytes.Buffer
	res, err := Run(context.Background(), Config{Mode: ModeE2E, Topic: "T", Max: 300, Concurrency: 3, Consumers: 2, Batch: 7,
		Progress: &syncWriter{w: &prog}, ProgressInterval: 10 * time.Millisecond}, q, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 300 || res.Received != 300 || res.E2ELat.Count != 300 {
		t.Fatalf("sent=%d received=%d e2e=%d", res.Sent, res.Received, res.E2ELat.Count)
	}
	if q.acks.Load() != 301 {
		t.Fatalf("acks=%d, want 301 (300 + the leftover)", q.acks.Load())
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil || !strings.Contains(out.String(), "received  300 messages") {
		t.Fatalf("text summary: %v\n%s", err, out.String())
	}
	b, _ := json.Marshal(res)
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["received"].(float64) != 300 || back["e2e_latency"] == nil {
		t.Fatalf("json summary %s: %v", b, err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestConsumeStopsAtMaxOrIdle(t *testing.T) {
	q := newMemQueue()
	for range 50 {
		q.Send(context.Background(), &Message{Topic: "T", Body: []byte("x")})
	}
	res, err := Run(context.Background(), Config{Mode: ModeConsume, Topic: "T", Max: 20, Batch: 5, Consumers: 4}, nil, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != 20 { // concurrent receivers share the budget exactly (R5C-9)
		t.Fatalf("received %d with 4 receivers, want exactly 20", res.Received)
	}
	if res.MessageSize != 1 { // the mean received size, not the unused --size default (R7H-13)
		t.Fatalf("consume summary message_size %d, want 1", res.MessageSize)
	}
	start := time.Now()
	res, err = Run(context.Background(), Config{Mode: ModeConsume, Topic: "T", Duration: time.Minute, Drain: 200 * time.Millisecond}, nil, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Received+20 < 50 || time.Since(start) > 10*time.Second {
		t.Fatalf("second run received %d in %v", res.Received, time.Since(start))
	}
}

// TestConsumeAckParallel: with AckParallel every received message is acknowledged exactly
// once, and no more acks than the bound are in flight at a time.
func TestConsumeAckParallel(t *testing.T) {
	q := &slowAckQueue{memQueue: newMemQueue()}
	for range 64 {
		q.Send(context.Background(), &Message{Topic: "T", Body: []byte("x")})
	}
	res, err := Run(context.Background(), Config{Mode: ModeConsume, Topic: "T", Max: 64, Batch: 16, Consumers: 1, AckParallel: 4}, nil, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != 64 || q.acks.Load() != 64 || res.AckErrors != 0 {
		t.Fatalf("received %d, acked %d, ack errors %d; want 64, 64, 0", res.Received, q.acks.Load(), res.AckErrors)
	}
	if peak := q.peak.Load(); peak < 2 || peak > 4 {
		t.Fatalf("peak acks in flight %d, want 2..4", peak)
	}
}

// slowAckQueue's acks take a millisecond and record how many ran at once.
type slowAckQueue struct {
	*memQueue
	inFlight, peak atomic.Int64
}

func (q *slowAckQueue) Ack(ctx context.Context, m *Received) error {
	n := q.inFlight.Add(1)
	for {
		p := q.peak.Load()
		if n <= p || q.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(time.Millisecond)
	q.inFlight.Add(-1)
	return q.memQueue.Ack(ctx, m)
}

func TestEverySendFailingIsAnError(t *testing.T) {
	q := newMemQueue()
	q.failAll = true
	res, err := Run(context.Background(), Config{Mode: ModeProduce, Topic: "T", Duration: time.Minute, Concurrency: 2}, q, nil)
	if err == nil || !strings.Contains(err.Error(), "proxy unavailable") {
		t.Fatalf("want error naming the cause, got %v", err)
	}
	if res == nil || res.Sent != 0 || res.SendErrors < 10 {
		t.Fatalf("result %+v", res)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{{Mode: ModeProduce, Max: 1}, {Mode: "x", Topic: "T", Max: 1}, {Mode: ModeProduce, Topic: "T"}} {
		if _, err := Run(context.Background(), c, newMemQueue(), newMemQueue()); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if _, err := Run(context.Background(), Config{Mode: ModeE2E, Topic: "T", Max: 1}, newMemQueue(), nil); err == nil {
		t.Error("e2e without receiver accepted")
	}
}
