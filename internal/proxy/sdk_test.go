// The official go5 SDK v5.1.2 is not race-clean: applying a server Settings reply
// (producer_options.go:156-157, client.go:632) and resetting its meter (metric.go:185) write
// fields its send and telemetry goroutines read without synchronisation (producer.go:55,
// client.go:474/500, metric.go:168). Every go5 application against any RocketMQ proxy hits
// this, so the SDK-driven tests are built without -race; the proxy's own handlers are covered
// under -race by the raw gRPC tests (rpc_test.go, listener_test.go).

//go:build !race

package proxy

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	golang "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
)

// These tests drive the proxy with the official Go SDK (go5 v5.1.2) over the in-memory
// backend: they pin the wire contract (TLS, settings, routes, stream shapes, handles,
// orphaned-transaction commands). The same scenarios against a real NameServer + broker live
// in e2e_test.go.

var resetSDKLogger sync.Once

func sdkConfig(endpoint, group string, cred *credentials.SessionCredentials) *golang.Config {
	resetSDKLogger.Do(golang.ResetLogger)
	if cred == nil {
		cred = &credentials.SessionCredentials{}
	}
	return &golang.Config{Endpoint: endpoint, ConsumerGroup: group, Credentials: cred}
}

func newSDKProducer(t *testing.T, endpoint string, cred *credentials.SessionCredentials, opts ...golang.ProducerOption) golang.Producer {
	t.Helper()
	p, err := golang.NewProducer(sdkConfig(endpoint, "", cred), opts...)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("producer Start: %v", err)
	}
	t.Cleanup(func() { p.GracefulStop() })
	return p
}

func newSDKConsumer(t *testing.T, endpoint, group string, subs map[string]*golang.FilterExpression, cred *credentials.SessionCredentials) golang.SimpleConsumer {
	t.Helper()
	c, err := golang.NewSimpleConsumer(sdkConfig(endpoint, group, cred),
		golang.WithAwaitDuration(3*time.Second), golang.WithSubscriptionExpressions(subs))
	if err != nil {
		t.Fatalf("NewSimpleConsumer: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("consumer Start: %v", err)
	}
	t.Cleanup(func() { c.GracefulStop() })
	return c
}

// receiveN receives until n messages arrived (acking each unless ack is false) or d passes.
func receiveN(t *testing.T, c golang.SimpleConsumer, n int, invisible time.Duration, ack bool, d time.Duration) []*golang.MessageView {
	t.Helper()
	var out []*golang.MessageView
	deadline := time.Now().Add(d)
	for len(out) < n && time.Now().Before(deadline) {
		mvs, err := c.Receive(context.Background(), 16, invisible)
		if err != nil {
			continue // MESSAGE_NOT_FOUND on an empty poll
		}
		for _, mv := range mvs {
			if ack {
				if err := c.Ack(context.Background(), mv); err != nil {
					t.Errorf("Ack: %v", err)
				}
			}
			out = append(out, mv)
		}
	}
	if len(out) < n {
		t.Fatalf("received %d messages, want %d", len(out), n)
	}
	return out
}

func TestSDKNormalSendReceiveAck(t *testing.T) {
	b := newMemBackend()
	b.addTopic("normal", MessageTypeNormal, 4)
	s := startProxy(t, b, nil)
	ep := s.Addr().String()
	p := newSDKProducer(t, ep, nil, golang.WithTopics("normal"))
	for i := 0; i < 5; i++ {
		m := &golang.Message{Topic: "normal", Body: []byte(fmt.Sprintf("m%d", i))}
		m.SetTag("A")
		m.SetKeys("k1", fmt.Sprintf("key-%d", i))
		m.AddProperty("color", "red")
		rs, err := p.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if len(rs) != 1 || rs[0].MessageID == "" {
			t.Fatalf("receipts = %+v", rs)
		}
	}
	if qs := b.sentQueues(); len(qs) != 5 || qs[0] == qs[4] {
		t.Errorf("sends spread over queues %v, want round robin", qs)
	}
	c := newSDKConsumer(t, ep, "g-normal", map[string]*golang.FilterExpression{"normal": golang.SUB_ALL}, nil)
	got := receiveN(t, c, 5, 10*time.Second, true, 20*time.Second)
	mv := got[0]
	if mv.GetTag() == nil || *mv.GetTag() != "A" || len(mv.GetKeys()) != 2 || mv.GetProperties()["color"] != "red" {
		t.Errorf("message view lost fields: tag=%v keys=%v props=%v", mv.GetTag(), mv.GetKeys(), mv.GetProperties())
	}
	if mv.GetDeliveryAttempt() != 1 {
		t.Errorf("delivery attempt = %d, want 1", mv.GetDeliveryAttempt())
	}
	// All acked: nothing comes back.
	if mvs, err := c.Receive(context.Background(), 16, 10*time.Second); err == nil && len(mvs) > 0 {
		t.Fatalf("acked messages redelivered: %d", len(mvs))
	}
}

func TestSDKRedeliveryAndChangeInvisible(t *testing.T) {
	b := newMemBackend()
	b.addTopic("redo", MessageTypeNormal, 1)
	s := startProxy(t, b, nil)
	ep := s.Addr().String()
	p := newSDKProducer(t, ep, nil, golang.WithTopics("redo"))
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "redo", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c := newSDKConsumer(t, ep, "g-redo", map[string]*golang.FilterExpression{"redo": golang.SUB_ALL}, nil)
	first := receiveN(t, c, 1, time.Second, false, 10*time.Second)[0]
	// Not acked: it comes back after 1 s with attempt 2.
	second := receiveN(t, c, 1, time.Second, false, 10*time.Second)[0]
	if second.GetDeliveryAttempt() != 2 || second.GetMessageId() != first.GetMessageId() {
		t.Fatalf("redelivery: attempt %d id %s, want 2 / %s", second.GetDeliveryAttempt(), second.GetMessageId(), first.GetMessageId())
	}
	old := second.GetReceiptHandle()
	if err := c.ChangeInvisibleDuration(second, 30*time.Second); err != nil {
		t.Fatalf("ChangeInvisibleDuration: %v", err)
	}
	if second.GetReceiptHandle() == old {
		t.Fatal("ChangeInvisibleDuration did not return a new receipt handle")
	}
	if err := c.Ack(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	acked := b.msgs["redo"][0].acked
	b.mu.Unlock()
	if !acked {
		t.Fatal("ack with the renewed handle did not ack")
	}
	// Out-of-range invisible duration is refused.
	if err := c.ChangeInvisibleDuration(second, 13*time.Hour); err == nil {
		t.Fatal("13h invisible duration accepted")
	}
}

func TestSDKFIFOAndDelayAndTagFilter(t *testing.T) {
	b := newMemBackend()
	b.addTopic("fifo", MessageTypeFIFO, 8)
	b.addTopic("delay", MessageTypeDelay, 2)
	b.addTopic("tags", MessageTypeNormal, 2)
	s := startProxy(t, b, nil)
	ep := s.Addr().String()
	p := newSDKProducer(t, ep, nil, golang.WithTopics("fifo", "delay", "tags"))

	for i := 0; i < 12; i++ {
		m := &golang.Message{Topic: "fifo", Body: []byte(fmt.Sprint(i))}
		m.SetMessageGroup(fmt.Sprintf("grp-%d", i%3))
		if _, err := p.Send(context.Background(), m); err != nil {
			t.Fatalf("FIFO send: %v", err)
		}
	}
	// Stable group -> queue mapping.
	b.mu.Lock()
	qOf := map[string]int32{}
	for _, r := range b.sent {
		g := r.Message.Properties[PropShardingKey]
		if q, ok := qOf[g]; ok && q != r.QueueID {
			t.Errorf("group %s went to queues %d and %d", g, q, r.QueueID)
		}
		qOf[g] = r.QueueID
	}
	b.mu.Unlock()

	// A NORMAL message to a FIFO topic is refused by the SDK itself (accept_message_types).
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "fifo", Body: []byte("n")}); err == nil {
		t.Fatal("NORMAL message accepted by a FIFO topic")
	}

	at := time.Now().Add(1500 * time.Millisecond)
	dm := &golang.Message{Topic: "delay", Body: []byte("later")}
	dm.SetDelayTimestamp(at)
	if _, err := p.Send(context.Background(), dm); err != nil {
		t.Fatalf("delay send: %v", err)
	}
	b.mu.Lock()
	last := b.sent[len(b.sent)-1].Message.Properties[PropTimerDeliverMS]
	b.mu.Unlock()
	if last != fmt.Sprint(at.UnixMilli()) {
		t.Errorf("TIMER_DELIVER_MS = %q, want %d", last, at.UnixMilli())
	}
	far := &golang.Message{Topic: "delay", Body: []byte("too late")}
	far.SetDelayTimestamp(time.Now().Add(48 * time.Hour))
	if _, err := p.Send(context.Background(), far); err == nil {
		t.Fatal("delivery time beyond max delay accepted")
	}
	dc := newSDKConsumer(t, ep, "g-delay", map[string]*golang.FilterExpression{"delay": golang.SUB_ALL}, nil)
	got := receiveN(t, dc, 1, 10*time.Second, true, 10*time.Second)[0]
	if time.Now().Before(at) {
		t.Fatal("delay message delivered before its delivery time")
	}
	if dt := got.GetDeliveryTimestamp(); dt == nil || dt.UnixMilli() != at.UnixMilli() {
		t.Errorf("delivery timestamp = %v, want %v", dt, at)
	}

	for _, tag := range []string{"A", "B", "C", "A"} {
		m := &golang.Message{Topic: "tags", Body: []byte(tag)}
		m.SetTag(tag)
		if _, err := p.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	tc := newSDKConsumer(t, ep, "g-tags", map[string]*golang.FilterExpression{"tags": golang.NewFilterExpression("A||B")}, nil)
	for _, mv := range receiveN(t, tc, 3, 10*time.Second, true, 10*time.Second) {
		if tag := *mv.GetTag(); tag != "A" && tag != "B" {
			t.Errorf("tag filter A||B delivered %q", tag)
		}
	}
}

func TestSDKTransactionCommitAndOrphanCheck(t *testing.T) {
	b := newMemBackend()
	b.addTopic("txn", MessageTypeTransaction, 2)
	s := startProxy(t, b, nil)
	ep := s.Addr().String()
	checked := make(chan string, 4)
	p := newSDKProducer(t, ep, nil, golang.WithTopics("txn"), golang.WithTransactionChecker(&golang.TransactionChecker{
		Check: func(mv *golang.MessageView) golang.TransactionResolution {
			checked <- mv.GetMessageId()
			return golang.COMMIT
		},
	}))
	// Committed directly.
	tx := p.BeginTransaction()
	if _, err := p.SendWithTransaction(context.Background(), &golang.Message{Topic: "txn", Body: []byte("direct")}, tx); err != nil {
		t.Fatalf("SendWithTransaction: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "direct commit", func() bool { return b.halfResolved() == 1 })

	// Orphaned: never resolved by the client; the broker check-back goes through Telemetry.
	tx2 := p.BeginTransaction()
	rs, err := p.SendWithTransaction(context.Background(), &golang.Message{Topic: "txn", Body: []byte("orphan")}, tx2)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "producer session", func() bool { return len(s.ProducerGroups()) == 1 })
	if n := b.checkHalf(); n != 1 {
		t.Fatalf("half messages to check = %d, want 1", n)
	}
	select {
	case id := <-checked:
		if id != rs[0].MessageID {
			t.Errorf("check-back for %s, want %s", id, rs[0].MessageID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no RecoverOrphanedTransactionCommand reached the producer")
	}
	eventually(t, 5*time.Second, "orphan resolved by check-back", func() bool { return b.halfResolved() == 2 })
	c := newSDKConsumer(t, ep, "g-txn", map[string]*golang.FilterExpression{"txn": golang.SUB_ALL}, nil)
	receiveN(t, c, 2, 10*time.Second, true, 10*time.Second)
}

func TestSDKAuth(t *testing.T) {
	b := newMemBackend()
	b.addTopic("secure", MessageTypeNormal, 2)
	aclFile := writeACL(t, t.TempDir())
	s := startProxy(t, b, func(c *Config) { c.Auth, c.ACLFile = true, aclFile })
	ep := s.Addr().String()

	good := &credentials.SessionCredentials{AccessKey: "alice", AccessSecret: "alice-secret"}
	p := newSDKProducer(t, ep, good, golang.WithTopics("secure"))
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "secure", Body: []byte("ok")}); err != nil {
		t.Fatalf("authorized send: %v", err)
	}

	bad := &credentials.SessionCredentials{AccessKey: "alice", AccessSecret: "wrong"}
	bp, err := golang.NewProducer(sdkConfig(ep, "", bad), golang.WithTopics("secure"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bp.Start(); err == nil {
		bp.GracefulStop()
		t.Fatal("producer with a wrong secret started")
	}
	anon, err := golang.NewProducer(sdkConfig(ep, "", nil), golang.WithTopics("secure"))
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.Start(); err == nil {
		anon.GracefulStop()
		t.Fatal("anonymous producer started with auth on")
	}
	// bob may subscribe but not publish.
	bob := &credentials.SessionCredentials{AccessKey: "bob", AccessSecret: "bob-secret"}
	bp2 := newSDKProducer(t, ep, bob, golang.WithTopics("secure"))
	if _, err := bp2.Send(context.Background(), &golang.Message{Topic: "secure", Body: []byte("no")}); err == nil {
		t.Fatal("bob published without Pub permission")
	}
	c := newSDKConsumer(t, ep, "g-secure", map[string]*golang.FilterExpression{"secure": golang.SUB_ALL}, bob)
	receiveN(t, c, 1, 10*time.Second, true, 10*time.Second)
}
