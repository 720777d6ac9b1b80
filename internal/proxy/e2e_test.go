// The official go5 SDK v5.1.2 is not race-clean: applying a server Settings reply
// (producer_options.go:156-157, client.go:632) and resetting its meter (metric.go:185) write
// fields its send and telemetry goroutines read without synchronisation (producer.go:55,
// client.go:474/500, metric.go:168). Every go5 application against any RocketMQ proxy hits
// this, so the SDK-driven suite is built without -race; the proxy's own handlers are covered
// under -race by the raw gRPC tests (rpc_test.go, listener_test.go).

//go:build !race

package proxy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	golang "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// End-to-end suite: the official Go SDK (go5 v5.1.2) and a plaintext gRPC client against a
// proxy, table-driven over deployment modes. Every mode provides an e2eEnv; scenarios only
// use the SDK plus the env's admin hooks, so they run unchanged against:
//   - "memory":  the proxy over the in-memory test backend (always available);
//   - "cluster": real NameServer + broker, proxy with the cluster backend (e2e_modes_test.go);
//   - "local":   broker in process, proxy with the local backend (e2e_modes_test.go).

// E2EEnv is one running deployment (exported so external test files, which may import
// packages that import proxy, can add modes with RegisterE2EMode).
type E2EEnv struct {
	Endpoint string
	// CreateTopic and CreateGroup are the admin operations scenarios need.
	CreateTopic func(t testing.TB, name string, typ MessageType, queues int)
	CreateGroup func(t testing.TB, name string, fifo bool, retryMaxTimes int)
	// CheckTransactions makes the broker send its transaction check-backs now; nil when the
	// deployment's broker checks by itself within CheckWithin.
	CheckTransactions func(t testing.TB)
	CheckWithin       time.Duration
	// OnlineConsumers returns the consumers the brokers list for group (client id ->
	// language), what `admin group describe` shows; nil when the deployment has no broker.
	OnlineConsumers func(t testing.TB, group string) map[string]string
}

type e2eEnv = E2EEnv

// E2EOptions adjust a deployment.
type E2EOptions struct {
	Proxy     func(*Config) // proxy config changes (auth, ...)
	SyncFlush bool          // broker flushDiskType SYNC_FLUSH (benchmarks)
}

type e2eOptions = E2EOptions

// e2eMode starts a deployment that lives until the test ends.
type e2eMode struct {
	name  string
	start func(t testing.TB, opts E2EOptions) *E2EEnv
}

// RegisterE2EMode adds a deployment mode to TestE2E and the SDK benchmarks (call from init).
func RegisterE2EMode(name string, start func(t testing.TB, opts E2EOptions) *E2EEnv) {
	e2eModes = append(e2eModes, e2eMode{name: name, start: start})
}

// E2EStartProxy runs a proxy over b (test config: loopback port, 1 s minimum invisible time,
// opts.Proxy applied) until the test ends and returns its address.
func E2EStartProxy(t testing.TB, b Backend, opts E2EOptions) string {
	return startProxy(t, b, opts.Proxy).Addr().String()
}

var e2eModes = []e2eMode{{name: "memory", start: startMemEnv}}

func startMemEnv(t testing.TB, opts e2eOptions) *e2eEnv {
	b := newMemBackend()
	b.autoGrp = true
	s := startProxy(t, b, opts.Proxy)
	return &e2eEnv{
		Endpoint:    s.Addr().String(),
		CreateTopic: func(_ testing.TB, name string, typ MessageType, queues int) { b.addTopic(name, typ, queues) },
		CreateGroup: func(_ testing.TB, name string, fifo bool, retry int) {
			b.mu.Lock()
			b.groups[name] = &GroupConfig{Name: name, ConsumeEnable: true, Orderly: fifo, RetryMaxTimes: retry}
			b.mu.Unlock()
		},
		CheckTransactions: func(testing.TB) { b.checkHalf() },
		CheckWithin:       5 * time.Second,
	}
}

var resetSDKLogger sync.Once

func sdkConfig(endpoint, group string, cred *credentials.SessionCredentials) *golang.Config {
	resetSDKLogger.Do(golang.ResetLogger)
	if cred == nil {
		cred = &credentials.SessionCredentials{}
	}
	return &golang.Config{Endpoint: endpoint, ConsumerGroup: group, Credentials: cred}
}

func newSDKProducer(t testing.TB, endpoint string, cred *credentials.SessionCredentials, opts ...golang.ProducerOption) golang.Producer {
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

func newSDKConsumer(t testing.TB, endpoint, group string, subs map[string]*golang.FilterExpression, cred *credentials.SessionCredentials) golang.SimpleConsumer {
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

// receiveN receives (batches of up to batch) until n messages arrived or d passes; each is
// acked when ack is set.
func receiveN(t *testing.T, c golang.SimpleConsumer, n int, batch int32, invisible time.Duration, ack bool, d time.Duration) []*golang.MessageView {
	t.Helper()
	var out []*golang.MessageView
	deadline := time.Now().Add(d)
	for len(out) < n && time.Now().Before(deadline) {
		mvs, err := c.Receive(context.Background(), batch, invisible)
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

// expectNothing asserts that one receive round delivers nothing.
func expectNothing(t *testing.T, c golang.SimpleConsumer, what string) {
	t.Helper()
	if mvs, err := c.Receive(context.Background(), 16, 10*time.Second); err == nil && len(mvs) > 0 {
		t.Fatalf("%s: got %d unexpected messages (first body %q)", what, len(mvs), mvs[0].GetBody())
	}
}

var e2eScenarios = []struct {
	name string
	run  func(t *testing.T, env *e2eEnv)
}{
	{"normal", scenarioNormal},
	{"fifo-4-groups", scenarioFIFO},
	{"delay", scenarioDelay},
	{"transaction", scenarioTransaction},
	{"redelivery-change-invisible", scenarioRedelivery},
	{"late-ack", scenarioLateAck},
	{"dlq", scenarioDLQ},
	{"tag-filter", scenarioTagFilter},
	{"two-consumers", scenarioTwoConsumers},
	{"plaintext-client", scenarioPlaintext},
	{"auto-renew", scenarioAutoRenew},
}

func TestE2E(t *testing.T) {
	for _, mode := range e2eModes {
		t.Run(mode.name, func(t *testing.T) {
			env := mode.start(t, e2eOptions{})
			for _, sc := range e2eScenarios {
				t.Run(sc.name, func(t *testing.T) { sc.run(t, env) })
			}
			if env.OnlineConsumers != nil { // deployments with a broker
				t.Run("consumers-online", func(t *testing.T) { scenarioConsumersOnline(t, env) })
				// The memory fake keeps one consumption state for all groups; the namespace
				// scenario reads one message from two groups.
				t.Run("namespace", func(t *testing.T) { scenarioNamespace(t, env) })
				// Recall needs the broker's timers (the memory fake has none).
				t.Run("recall", func(t *testing.T) { scenarioRecall(t, env) })
				t.Run("abandoned-receive", func(t *testing.T) { scenarioAbandonedReceive(t, env) })
				t.Run("sql92", func(t *testing.T) { scenarioSQL92(t, env) })
				// Delayed transactional messages need the broker's timers.
				t.Run("delay-with-group", func(t *testing.T) { scenarioDelayWithGroup(t, env) })
			}
			t.Run("auth-on", func(t *testing.T) { scenarioAuthOn(t, mode) })
			t.Run("auth-off-any-credentials", func(t *testing.T) { scenarioAuthOff(t, env) })
		})
	}
}

func scenarioNormal(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-normal", MessageTypeNormal, 4)
	env.CreateGroup(t, "g-normal", false, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-normal"))
	ids := map[string]bool{}
	for i := 0; i < 10; i++ {
		m := &golang.Message{Topic: "e2e-normal", Body: []byte(fmt.Sprintf("m%d", i))}
		m.SetTag("A")
		m.SetKeys("k1", fmt.Sprintf("key-%d", i))
		m.AddProperty("color", "red")
		rs, err := p.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if len(rs) != 1 || len(rs[0].MessageID) != 34 {
			t.Fatalf("receipts = %+v", rs)
		}
		ids[rs[0].MessageID] = true
	}
	c := newSDKConsumer(t, env.Endpoint, "g-normal", map[string]*golang.FilterExpression{"e2e-normal": golang.SUB_ALL}, nil)
	got := receiveN(t, c, 10, 16, 10*time.Second, true, 30*time.Second)
	for _, mv := range got {
		if !ids[mv.GetMessageId()] {
			t.Errorf("unexpected message id %s", mv.GetMessageId())
		}
		delete(ids, mv.GetMessageId())
		if mv.GetTag() == nil || *mv.GetTag() != "A" || len(mv.GetKeys()) != 2 || mv.GetProperties()["color"] != "red" ||
			mv.GetDeliveryAttempt() != 1 || mv.GetBornTimestamp() == nil || mv.GetTopic() != "e2e-normal" {
			t.Errorf("message view lost fields: %+v", mv)
		}
	}
	expectNothing(t, c, "after acking everything")
}

func scenarioFIFO(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-fifo", MessageTypeFIFO, 8)
	env.CreateGroup(t, "g-fifo", true, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-fifo"))
	const groups, per = 4, 10
	for i := 0; i < per; i++ {
		for g := 0; g < groups; g++ {
			m := &golang.Message{Topic: "e2e-fifo", Body: []byte(strconv.Itoa(i))}
			m.SetMessageGroup(fmt.Sprintf("order-%d", g))
			if _, err := p.Send(context.Background(), m); err != nil {
				t.Fatalf("FIFO send: %v", err)
			}
		}
	}
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-fifo", Body: []byte("n")}); err == nil {
		t.Error("a NORMAL message was accepted by a FIFO topic")
	}
	c := newSDKConsumer(t, env.Endpoint, "g-fifo", map[string]*golang.FilterExpression{"e2e-fifo": golang.SUB_ALL}, nil)
	got := receiveN(t, c, groups*per, 16, 10*time.Second, true, 60*time.Second)
	next := map[string]int{}
	for _, mv := range got {
		g := *mv.GetMessageGroup()
		n, _ := strconv.Atoi(string(mv.GetBody()))
		if n != next[g] {
			t.Fatalf("group %s: got %d, want %d (out of order)", g, n, next[g])
		}
		next[g]++
	}
}

func scenarioDelay(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-delay", MessageTypeDelay, 2)
	env.CreateGroup(t, "g-delay", false, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-delay"))
	at := time.Now().Add(2 * time.Second)
	m := &golang.Message{Topic: "e2e-delay", Body: []byte("later")}
	m.SetDelayTimestamp(at)
	if _, err := p.Send(context.Background(), m); err != nil {
		t.Fatalf("delay send: %v", err)
	}
	far := &golang.Message{Topic: "e2e-delay", Body: []byte("too late")}
	far.SetDelayTimestamp(time.Now().Add(48 * time.Hour))
	if _, err := p.Send(context.Background(), far); err == nil {
		t.Fatal("delivery time beyond the max delay accepted")
	}
	c := newSDKConsumer(t, env.Endpoint, "g-delay", map[string]*golang.FilterExpression{"e2e-delay": golang.SUB_ALL}, nil)
	got := receiveN(t, c, 1, 16, 10*time.Second, true, 20*time.Second)[0]
	if time.Now().Before(at) {
		t.Fatal("delay message delivered before its delivery time")
	}
	if dt := got.GetDeliveryTimestamp(); dt == nil || dt.UnixMilli() != at.UnixMilli() {
		t.Errorf("delivery timestamp = %v, want %v", dt, at)
	}
}

// scenarioDelayWithGroup: as on Apache, a message with both a delivery time and a message
// group (go5 labels it FIFO) is a DELAY message that keeps its group: a MIXED topic accepts
// it and delivers it at its time (QA R11B-1; go5 itself refuses to send a FIFO-labelled
// message to a DELAY topic, whose route accepts DELAY only). A committed transactional
// message with a delivery time waits for it too. A FIFO topic refuses a delayed message.
func scenarioDelayWithGroup(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-dg-mixed", MessageTypeMixed, 2)
	env.CreateTopic(t, "e2e-dg-fifo", MessageTypeFIFO, 2)
	env.CreateGroup(t, "g-dg", false, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-dg-mixed", "e2e-dg-fifo"),
		golang.WithTransactionChecker(&golang.TransactionChecker{Check: func(*golang.MessageView) golang.TransactionResolution { return golang.COMMIT }}))
	at := time.Now().Add(2 * time.Second)
	for i := 0; i < 2; i++ {
		m := &golang.Message{Topic: "e2e-dg-mixed", Body: []byte(fmt.Sprintf("grouped-%d", i))}
		m.SetMessageGroup("order-1")
		m.SetDelayTimestamp(at)
		if _, err := p.Send(context.Background(), m); err != nil {
			t.Fatalf("delayed send with a message group to a MIXED topic: %v", err)
		}
	}
	bad := &golang.Message{Topic: "e2e-dg-fifo", Body: []byte("x")}
	bad.SetMessageGroup("order-1")
	bad.SetDelayTimestamp(at)
	if _, err := p.Send(context.Background(), bad); err == nil {
		t.Fatal("a FIFO topic accepted a delayed message")
	} else if st, ok := golang.AsErrRpcStatus(err); !ok || st.GetCode() != int32(pb.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE) {
		t.Fatalf("delayed message to a FIFO topic: %v, want MESSAGE_PROPERTY_CONFLICT_WITH_TYPE", err)
	}
	// go5 refuses a delivery time on a transactional message; Apache's proxy accepts one
	// (the committed message then waits for its time), so send it raw.
	rc := dial(t, env.Endpoint, false)
	const rid = "delayed-txn-client"
	if r, _ := settingsReply(t, rc, rid, producerSettings("e2e-dg-mixed")); r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("settings: %v", r.GetStatus())
	}
	const txnMsgID = "01DELAYEDTXN000000000000000000001"
	sr, err := rc.SendMessage(cctx(t, rid, 5*time.Second), &pb.SendMessageRequest{Messages: []*pb.Message{{
		Topic: &pb.Resource{Name: "e2e-dg-mixed"}, Body: []byte("txn-later"),
		SystemProperties: &pb.SystemProperties{MessageId: txnMsgID, MessageType: pb.MessageType_TRANSACTION,
			DeliveryTimestamp: timestamppb.New(at), BornTimestamp: timestamppb.Now(), BornHost: "node", BodyEncoding: pb.Encoding_IDENTITY},
	}}})
	if err != nil || sr.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("delayed transactional send: %v %v", sr, err)
	}
	er, err := rc.EndTransaction(cctx(t, rid, 5*time.Second), &pb.EndTransactionRequest{
		Topic: &pb.Resource{Name: "e2e-dg-mixed"}, MessageId: txnMsgID, TransactionId: sr.GetEntries()[0].GetTransactionId(),
		Resolution: pb.TransactionResolution_COMMIT, Source: pb.TransactionSource_SOURCE_CLIENT,
	})
	if err != nil || er.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("commit: %v %v", er, err)
	}
	c := newSDKConsumer(t, env.Endpoint, "g-dg", map[string]*golang.FilterExpression{"e2e-dg-mixed": golang.SUB_ALL}, nil)
	var got []*golang.MessageView
	for deadline := time.Now().Add(30 * time.Second); len(got) < 3 && time.Now().Before(deadline); {
		mvs, _ := c.Receive(context.Background(), 16, 10*time.Second)
		if len(mvs) > 0 && time.Now().Before(at) {
			t.Fatalf("%q delivered before its delivery time", mvs[0].GetBody())
		}
		for _, mv := range mvs {
			if err := c.Ack(context.Background(), mv); err != nil {
				t.Fatal(err)
			}
		}
		got = append(got, mvs...)
	}
	if len(got) != 3 {
		t.Fatalf("received %d of 3 delayed messages", len(got))
	}
	for _, mv := range got {
		body := string(mv.GetBody())
		if dt := mv.GetDeliveryTimestamp(); dt == nil || dt.UnixMilli() != at.UnixMilli() {
			t.Errorf("%s: delivery timestamp %v, want %v", body, dt, at)
		}
		if strings.HasPrefix(body, "grouped-") && (mv.GetMessageGroup() == nil || *mv.GetMessageGroup() != "order-1") {
			t.Errorf("%s: message group %v, want order-1", body, mv.GetMessageGroup())
		}
	}
}

func scenarioTransaction(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-txn", MessageTypeTransaction, 2)
	env.CreateGroup(t, "g-txn", false, 16)
	checked := make(chan string, 8)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-txn"), golang.WithTransactionChecker(&golang.TransactionChecker{
		Check: func(mv *golang.MessageView) golang.TransactionResolution {
			checked <- mv.GetMessageId()
			if string(mv.GetBody()) == "orphan-commit" {
				return golang.COMMIT
			}
			return golang.ROLLBACK
		},
	}))
	send := func(body string) string {
		tx := p.BeginTransaction()
		rs, err := p.SendWithTransaction(context.Background(), &golang.Message{Topic: "e2e-txn", Body: []byte(body)}, tx)
		if err != nil {
			t.Fatalf("SendWithTransaction: %v", err)
		}
		switch body {
		case "commit":
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		case "rollback":
			if err := tx.RollBack(); err != nil {
				t.Fatal(err)
			}
		}
		return rs[0].MessageID
	}
	send("commit")
	send("rollback")
	orphan := send("orphan-commit")
	// A deployment without its own check timer is asked to check now, and again every half
	// second: a check that finds no producer session yet (its telemetry Settings may still be
	// on the way on a loaded machine) is dropped, as a broker's would be, until the next one.
	deadline := time.After(env.CheckWithin)
	var tick <-chan time.Time
	if env.CheckTransactions != nil {
		env.CheckTransactions(t)
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		tick = tk.C
	}
wait:
	for {
		select {
		case id := <-checked:
			if id != orphan {
				t.Errorf("check-back for %s, want the orphan %s", id, orphan)
			}
			break wait
		case <-tick:
			env.CheckTransactions(t)
		case <-deadline:
			t.Fatal("no RecoverOrphanedTransactionCommand reached the producer")
		}
	}
	c := newSDKConsumer(t, env.Endpoint, "g-txn", map[string]*golang.FilterExpression{"e2e-txn": golang.SUB_ALL}, nil)
	got := receiveN(t, c, 2, 16, 10*time.Second, true, 30*time.Second)
	bodies := []string{string(got[0].GetBody()), string(got[1].GetBody())}
	sort.Strings(bodies)
	if bodies[0] != "commit" || bodies[1] != "orphan-commit" {
		t.Fatalf("delivered %v, want the committed and the orphan resolved by check-back", bodies)
	}
	expectNothing(t, c, "rolled-back message")
}

func scenarioRedelivery(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-redo", MessageTypeNormal, 1)
	env.CreateGroup(t, "g-redo", false, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-redo"))
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-redo", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c := newSDKConsumer(t, env.Endpoint, "g-redo", map[string]*golang.FilterExpression{"e2e-redo": golang.SUB_ALL}, nil)
	first := receiveN(t, c, 1, 16, time.Second, false, 15*time.Second)[0]
	second := receiveN(t, c, 1, 16, time.Second, false, 15*time.Second)[0]
	if second.GetDeliveryAttempt() != 2 || second.GetMessageId() != first.GetMessageId() {
		t.Fatalf("redelivery: attempt %d id %s, want 2 / %s", second.GetDeliveryAttempt(), second.GetMessageId(), first.GetMessageId())
	}
	old := second.GetReceiptHandle()
	if err := c.ChangeInvisibleDuration(second, 20*time.Second); err != nil {
		t.Fatalf("ChangeInvisibleDuration: %v", err)
	}
	if second.GetReceiptHandle() == old {
		t.Fatal("ChangeInvisibleDuration did not return a new receipt handle")
	}
	expectNothing(t, c, "message made invisible for 20s")
	if err := c.Ack(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeInvisibleDuration(second, 13*time.Hour); err == nil {
		t.Fatal("a 13h invisible duration was accepted")
	}
}

// scenarioLateAck: once a message's invisible time has passed, its handle is expired even
// though nobody received the message again: ChangeInvisibleDuration answers
// INVALID_RECEIPT_HANDLE and an Ack does not consume the message (go5 v5.1.2's Ack ignores
// the answer's status), which is delivered again, as with Apache's proxy ("receipt handle
// is expired").
func scenarioLateAck(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-late", MessageTypeNormal, 1)
	env.CreateGroup(t, "g-late", false, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-late"))
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-late", Body: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	c := newSDKConsumer(t, env.Endpoint, "g-late", map[string]*golang.FilterExpression{"e2e-late": golang.SUB_ALL}, nil)
	first := receiveN(t, c, 1, 16, time.Second, false, 15*time.Second)[0]
	// Wait out the 1 s invisible time (measured from before the receive returned).
	expiry := time.Now().Add(1100 * time.Millisecond)
	for time.Now().Before(expiry) {
		time.Sleep(time.Until(expiry))
	}
	var st *golang.ErrRpcStatus
	if err := c.ChangeInvisibleDuration(first, 20*time.Second); !errors.As(err, &st) || st.Code != int32(pb.Code_INVALID_RECEIPT_HANDLE) {
		t.Fatalf("change of an expired handle: %v, want INVALID_RECEIPT_HANDLE", err)
	}
	_ = c.Ack(context.Background(), first) // refused by the proxy; go5 reports nil
	again := receiveN(t, c, 1, 16, 20*time.Second, true, 15*time.Second)[0]
	if again.GetMessageId() != first.GetMessageId() || again.GetDeliveryAttempt() != 2 {
		t.Fatalf("after a late ack: got %s attempt %d, want %s attempt 2", again.GetMessageId(), again.GetDeliveryAttempt(), first.GetMessageId())
	}
	expectNothing(t, c, "message acked on its second delivery")
}

func scenarioDLQ(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-dlq", MessageTypeNormal, 1)
	env.CreateGroup(t, "g-dlq", false, 1) // max delivery attempts 2
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-dlq"))
	rs, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-dlq", Body: []byte("poison")})
	if err != nil {
		t.Fatal(err)
	}
	c := newSDKConsumer(t, env.Endpoint, "g-dlq", map[string]*golang.FilterExpression{"e2e-dlq": golang.SUB_ALL}, nil)
	receiveN(t, c, 2, 16, time.Second, false, 20*time.Second) // two failed attempts
	expectNothing(t, c, "message past its max attempts")
	dc := newSDKConsumer(t, env.Endpoint, "g-dlq-inspect", map[string]*golang.FilterExpression{"%DLQ%g-dlq": golang.SUB_ALL}, nil)
	got := receiveN(t, dc, 1, 16, 10*time.Second, true, 30*time.Second)[0]
	if got.GetMessageId() != rs[0].MessageID || string(got.GetBody()) != "poison" {
		t.Fatalf("dead letter = %s %q, want %s", got.GetMessageId(), got.GetBody(), rs[0].MessageID)
	}
}

func scenarioTagFilter(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-tags", MessageTypeNormal, 2)
	env.CreateGroup(t, "g-tags", false, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-tags"))
	for _, tag := range []string{"A", "B", "C", "A", "D"} {
		m := &golang.Message{Topic: "e2e-tags", Body: []byte(tag)}
		m.SetTag(tag)
		if _, err := p.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	c := newSDKConsumer(t, env.Endpoint, "g-tags", map[string]*golang.FilterExpression{"e2e-tags": golang.NewFilterExpression("A||B")}, nil)
	for _, mv := range receiveN(t, c, 3, 16, 10*time.Second, true, 20*time.Second) {
		if tag := *mv.GetTag(); tag != "A" && tag != "B" {
			t.Errorf("filter A||B delivered tag %q", tag)
		}
	}
	expectNothing(t, c, "tags outside A||B")
}

func scenarioTwoConsumers(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-share", MessageTypeNormal, 4)
	env.CreateGroup(t, "g-share", false, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-share"))
	const n = 40
	for i := 0; i < n; i++ {
		if _, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-share", Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	subs := map[string]*golang.FilterExpression{"e2e-share": golang.SUB_ALL}
	cs := []golang.SimpleConsumer{newSDKConsumer(t, env.Endpoint, "g-share", subs, nil), newSDKConsumer(t, env.Endpoint, "g-share", subs, nil)}
	var mu sync.Mutex
	seen := map[string]int{}
	per := make([]int, 2)
	var wg sync.WaitGroup
	// Each consumer first takes one batch and holds it (unacked, so invisible to the other)
	// until both have one: sharing is then guaranteed, not left to scheduling.
	var firstBatch sync.WaitGroup
	firstBatch.Add(len(cs))
	deadline := time.Now().Add(30 * time.Second)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for time.Now().Before(deadline) {
				mu.Lock()
				done := len(seen) >= n
				mu.Unlock()
				if done && !first {
					return
				}
				mvs, err := c.Receive(context.Background(), 4, 10*time.Second)
				if err != nil || len(mvs) == 0 {
					continue
				}
				if first {
					first = false
					firstBatch.Done()
					firstBatch.Wait()
				}
				for _, mv := range mvs {
					c.Ack(context.Background(), mv)
					mu.Lock()
					seen[string(mv.GetBody())]++
					per[i]++
					mu.Unlock()
				}
			}
			if first {
				firstBatch.Done()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("consumers saw %d distinct messages, want %d", len(seen), n)
	}
	if per[0] == 0 || per[1] == 0 {
		t.Fatalf("load not shared: %v", per)
	}
}

// scenarioPlaintext drives the proxy with a plaintext gRPC client (what the Node.js SDK does).
func scenarioPlaintext(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-plain", MessageTypeNormal, 2)
	env.CreateGroup(t, "g-plain", false, 16)
	c := dial(t, env.Endpoint, false)
	const id = "plaintext-client-1"
	r, _ := settingsReply(t, c, id, producerSettings("e2e-plain"))
	if r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("settings: %v", r.GetStatus())
	}
	route, err := c.QueryRoute(cctx(t, id, 5*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "e2e-plain"}})
	if err != nil || route.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("route: %v %v", route, err)
	}
	tag := "T1"
	sr, err := c.SendMessage(cctx(t, id, 5*time.Second), &pb.SendMessageRequest{Messages: []*pb.Message{{
		Topic: &pb.Resource{Name: "e2e-plain"}, Body: []byte("plain"),
		SystemProperties: &pb.SystemProperties{MessageId: "01PLAINTEXT0000000000000000000001", Tag: &tag, MessageType: pb.MessageType_NORMAL,
			BornTimestamp: timestamppb.Now(), BornHost: "node", BodyEncoding: pb.Encoding_IDENTITY},
	}}})
	if err != nil || sr.GetStatus().GetCode() != pb.Code_OK || sr.GetEntries()[0].GetMessageId() != "01PLAINTEXT0000000000000000000001" {
		t.Fatalf("send: %v %v", sr, err)
	}
	// A normal send's transaction id is the message's unique key, as Apache (QA R7G-5).
	if got := sr.GetEntries()[0].GetTransactionId(); got != "01PLAINTEXT0000000000000000000001" {
		t.Fatalf("transaction id %q, want the message id", got)
	}
	mq := route.GetMessageQueues()[0]
	var msg *pb.Message
	for deadline := time.Now().Add(20 * time.Second); msg == nil && time.Now().Before(deadline); {
		for _, r := range receiveAllAs(t, c, id, &pb.ReceiveMessageRequest{
			Group: &pb.Resource{Name: "g-plain"}, MessageQueue: mq,
			FilterExpression: &pb.FilterExpression{Type: pb.FilterType_TAG, Expression: "*"},
			BatchSize:        8, InvisibleDuration: durationpb.New(10 * time.Second),
		}, 5*time.Second) {
			if r.GetMessage() != nil {
				msg = r.GetMessage()
			}
		}
	}
	if msg == nil || string(msg.GetBody()) != "plain" {
		t.Fatalf("plaintext receive: %v", msg)
	}
	ack, err := c.AckMessage(cctx(t, id, 5*time.Second), &pb.AckMessageRequest{
		Group: &pb.Resource{Name: "g-plain"}, Topic: &pb.Resource{Name: "e2e-plain"},
		Entries: []*pb.AckMessageEntry{{MessageId: msg.GetSystemProperties().GetMessageId(), ReceiptHandle: msg.GetSystemProperties().GetReceiptHandle()}},
	})
	if err != nil || ack.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("ack: %v %v", ack, err)
	}
}

func scenarioAuthOn(t *testing.T, mode e2eMode) {
	aclFile := writeACL(t, t.TempDir())
	env := mode.start(t, e2eOptions{Proxy: func(c *Config) { c.Auth, c.ACLFile = true, aclFile }})
	env.CreateTopic(t, "e2e-secure", MessageTypeNormal, 2)
	env.CreateGroup(t, "g-secure", false, 16)

	alice := &credentials.SessionCredentials{AccessKey: "alice", AccessSecret: "alice-secret"}
	p := newSDKProducer(t, env.Endpoint, alice, golang.WithTopics("e2e-secure"))
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-secure", Body: []byte("ok")}); err != nil {
		t.Fatalf("authorized send: %v", err)
	}
	for name, cred := range map[string]*credentials.SessionCredentials{
		"wrong secret": {AccessKey: "alice", AccessSecret: "wrong"},
		"unknown user": {AccessKey: "mallory", AccessSecret: "x"},
		"anonymous":    nil,
	} {
		bp, err := golang.NewProducer(sdkConfig(env.Endpoint, "", cred), golang.WithTopics("e2e-secure"))
		if err != nil {
			t.Fatal(err)
		}
		if err := bp.Start(); err == nil {
			bp.GracefulStop()
			t.Errorf("%s: producer started with auth on", name)
		}
	}
	bob := &credentials.SessionCredentials{AccessKey: "bob", AccessSecret: "bob-secret"}
	bp := newSDKProducer(t, env.Endpoint, bob, golang.WithTopics("e2e-secure"))
	if _, err := bp.Send(context.Background(), &golang.Message{Topic: "e2e-secure", Body: []byte("no")}); err == nil {
		t.Fatal("bob published without Pub permission")
	}
	c := newSDKConsumer(t, env.Endpoint, "g-secure", map[string]*golang.FilterExpression{"e2e-secure": golang.SUB_ALL}, bob)
	receiveN(t, c, 1, 16, 10*time.Second, true, 20*time.Second)
}

func scenarioAuthOff(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-open", MessageTypeNormal, 1)
	wrong := &credentials.SessionCredentials{AccessKey: "who", AccessSecret: "ever"}
	p := newSDKProducer(t, env.Endpoint, wrong, golang.WithTopics("e2e-open"))
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-open", Body: []byte("ok")}); err != nil {
		t.Fatalf("send with auth off: %v", err)
	}
}

// scenarioAutoRenew receives with auto_renew (what Java push consumers do): the proxy keeps
// the message invisible past its invisible time (testConfig: 5 s) until the client acks it
// with the handle it received.
func scenarioAutoRenew(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-renew", MessageTypeNormal, 1)
	env.CreateGroup(t, "g-renew", false, 16)
	c := dial(t, env.Endpoint, false)
	const id = "push-consumer-1"
	settingsReply(t, c, id, consumerSettings("g-renew"))
	sr, err := c.SendMessage(cctx(t, id, 5*time.Second), &pb.SendMessageRequest{Messages: []*pb.Message{{
		Topic: &pb.Resource{Name: "e2e-renew"}, Body: []byte("renew-me"),
		SystemProperties: &pb.SystemProperties{MessageId: "01RENEW00000000000000000000000001", MessageType: pb.MessageType_NORMAL,
			BornTimestamp: timestamppb.Now(), BornHost: "java", BodyEncoding: pb.Encoding_IDENTITY},
	}}})
	if err != nil || sr.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("send: %v %v", sr, err)
	}
	req := &pb.ReceiveMessageRequest{
		Group: &pb.Resource{Name: "g-renew"}, MessageQueue: &pb.MessageQueue{Topic: &pb.Resource{Name: "e2e-renew"}, Broker: &pb.Broker{}},
		FilterExpression: &pb.FilterExpression{Type: pb.FilterType_TAG, Expression: "*"}, BatchSize: 1, AutoRenew: true,
	}
	// The queue's broker name comes from the route, as clients do.
	route, err := c.QueryRoute(cctx(t, id, 5*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "e2e-renew"}})
	if err != nil || len(route.GetMessageQueues()) == 0 {
		t.Fatalf("route: %v %v", route, err)
	}
	req.MessageQueue = route.GetMessageQueues()[0]
	var msg *pb.Message
	for deadline := time.Now().Add(20 * time.Second); msg == nil && time.Now().Before(deadline); {
		for _, r := range receiveAllAs(t, c, id, req, 5*time.Second) {
			if r.GetMessage() != nil {
				msg = r.GetMessage()
			}
		}
	}
	if msg == nil {
		t.Fatal("nothing received")
	}
	// 9 s > the 5 s invisible time: without renewal the message would be back.
	for end := time.Now().Add(9 * time.Second); time.Now().Before(end); {
		for _, r := range receiveAllAs(t, c, id, req, 4*time.Second) {
			if r.GetMessage() != nil {
				t.Fatalf("auto-renewed message redelivered (attempt %d)", r.GetMessage().GetSystemProperties().GetDeliveryAttempt())
			}
		}
	}
	ack, err := c.AckMessage(cctx(t, id, 5*time.Second), &pb.AckMessageRequest{
		Group: &pb.Resource{Name: "g-renew"}, Topic: &pb.Resource{Name: "e2e-renew"},
		Entries: []*pb.AckMessageEntry{{MessageId: msg.GetSystemProperties().GetMessageId(), ReceiptHandle: msg.GetSystemProperties().GetReceiptHandle()}},
	})
	if err != nil || ack.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("ack with the original handle: %v %v", ack, err)
	}
	for _, r := range receiveAllAs(t, c, id, req, 4*time.Second) {
		if r.GetMessage() != nil {
			t.Fatal("acked message redelivered")
		}
	}
}

// scenarioConsumersOnline: gRPC consumers are registered with the brokers (as RocketMQ's proxy
// does) so the group's consumer connections list them with their language, and a consumer
// whose connection goes away (its process ended) disappears from the list.
func scenarioConsumersOnline(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-online", MessageTypeNormal, 2)
	env.CreateGroup(t, "g-online", false, 16)
	newSDKConsumer(t, env.Endpoint, "g-online", map[string]*golang.FilterExpression{"e2e-online": golang.NewFilterExpression("A||B")}, nil)

	// A second consumer on its own connection (a Java client, as its settings say), which
	// then disconnects like a process that exits.
	conn, err := grpc.Dial(env.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const javaID = "java-consumer-1"
	st := consumerSettings("g-online")
	st.GetSubscription().Subscriptions[0].Topic.Name = "e2e-online"
	st.UserAgent = &pb.UA{Language: pb.Language_JAVA, Version: "5.0.7"}
	if r, _ := settingsReply(t, pb.NewMessagingServiceClient(conn), javaID, st); r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("settings: %v", r.GetStatus())
	}

	waitFor := func(what string, cond func(map[string]string) bool) map[string]string {
		t.Helper()
		var got map[string]string
		eventually(t, 15*time.Second, what, func() bool { got = env.OnlineConsumers(t, "g-online"); return cond(got) })
		return got
	}
	got := waitFor("two consumers online", func(m map[string]string) bool { return len(m) == 2 })
	for id, lang := range got {
		if want := map[bool]string{true: "JAVA", false: "GO"}[id == javaID]; lang != want {
			t.Errorf("consumer %q listed with language %q, want %s", id, lang, want)
		}
	}
	conn.Close()
	waitFor("only the go5 consumer online after the Java one disconnected", func(m map[string]string) bool {
		_, java := m[javaID]
		return len(m) == 1 && !java
	})
}

// scenarioNamespace: a go5 application with a namespace (Config.NameSpace) uses topic T and
// group G; the proxy maps them to "ns1%T" / "ns1%G" as Apache does (QA F21): the message is
// stored in ns1%T (a consumer without namespace reads it there) and comes back to the
// namespaced consumer under its bare topic name, while the bare topic T stays untouched.
func scenarioNamespace(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "ns1%e2e-ns", MessageTypeNormal, 2)
	env.CreateTopic(t, "e2e-ns", MessageTypeNormal, 2)
	env.CreateGroup(t, "ns1%g-ns", false, 16)
	env.CreateGroup(t, "g-ns-plain", false, 16)
	env.CreateGroup(t, "g-ns-bare", false, 16)
	nsCfg := func(group string) *golang.Config {
		c := sdkConfig(env.Endpoint, group, nil)
		c.NameSpace = "ns1"
		return c
	}
	p, err := golang.NewProducer(nsCfg(""), golang.WithTopics("e2e-ns"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.GracefulStop()
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-ns", Body: []byte("namespaced")}); err != nil {
		t.Fatalf("namespaced send: %v", err)
	}
	nc, err := golang.NewSimpleConsumer(nsCfg("g-ns"), golang.WithAwaitDuration(3*time.Second),
		golang.WithSubscriptionExpressions(map[string]*golang.FilterExpression{"e2e-ns": golang.SUB_ALL}))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Start(); err != nil {
		t.Fatal(err)
	}
	defer nc.GracefulStop()
	got := receiveN(t, nc, 1, 16, 10*time.Second, true, 30*time.Second)
	if string(got[0].GetBody()) != "namespaced" || got[0].GetTopic() != "e2e-ns" {
		t.Fatalf("namespaced consumer got %q on topic %q, want \"namespaced\" on e2e-ns", got[0].GetBody(), got[0].GetTopic())
	}
	plain := newSDKConsumer(t, env.Endpoint, "g-ns-plain", map[string]*golang.FilterExpression{"ns1%e2e-ns": golang.SUB_ALL}, nil)
	if got := receiveN(t, plain, 1, 16, 10*time.Second, true, 30*time.Second); string(got[0].GetBody()) != "namespaced" {
		t.Fatalf("consumer of ns1%%e2e-ns got %q", got[0].GetBody())
	}
	bare := newSDKConsumer(t, env.Endpoint, "g-ns-bare", map[string]*golang.FilterExpression{"e2e-ns": golang.SUB_ALL}, nil)
	expectNothing(t, bare, "the bare topic e2e-ns (the namespaced message belongs to ns1%e2e-ns)")
}

// recallHandleOf reads SendResultEntry.recall_handle (field 5, unknown to the v5.1.2 stubs).
func recallHandleOf(t *testing.T, e *pb.SendResultEntry) string {
	t.Helper()
	b := e.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("unknown fields of %v do not parse", e)
		}
		b = b[n:]
		if num == sendResultRecallHandle && typ == protowire.BytesType {
			v, m := protowire.ConsumeString(b)
			if m < 0 {
				t.Fatal("recall_handle does not parse")
			}
			return v
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			t.Fatal("unknown field does not parse")
		}
		b = b[m:]
	}
	return ""
}

// callRecall invokes RecallMessage as a client generated from the current proto would.
func callRecall(t *testing.T, conn *grpc.ClientConn, topic, handle string) (pb.Code, string) {
	t.Helper()
	req := dynamicpb.NewMessage(recallReqDesc)
	tf := recallReqDesc.Fields().ByNumber(1)
	res := dynamicpb.NewMessage(tf.Message())
	res.Set(tf.Message().Fields().ByName("name"), protoreflect.ValueOfString(topic))
	req.Set(tf, protoreflect.ValueOfMessage(res))
	req.Set(recallReqDesc.Fields().ByNumber(2), protoreflect.ValueOfString(handle))
	resp := dynamicpb.NewMessage(recallRespDesc)
	if err := conn.Invoke(cctx(t, "recall-client", 5*time.Second), recallFullMethod, req, resp); err != nil {
		t.Fatalf("RecallMessage: %v", err)
	}
	raw, _ := proto.Marshal(resp.Get(recallRespDesc.Fields().ByNumber(1)).Message().Interface())
	var st pb.Status
	if err := proto.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st.GetCode(), resp.Get(recallRespDesc.Fields().ByNumber(2)).String()
}

// scenarioRecall: a DELAY send answers a recall handle (SendResultEntry field 5, read by
// clients generated from the current proto, as Node.js 1.0.8); RecallMessage with it answers
// the message id and the message is never delivered, while the other delay message is; an
// undecodable handle and a topic that takes no DELAY messages are refused as by Apache.
func scenarioRecall(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-recall", MessageTypeDelay, 1)
	env.CreateTopic(t, "e2e-recall-normal", MessageTypeNormal, 1)
	env.CreateGroup(t, "g-recall", false, 16)
	conn, err := grpc.Dial(env.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewMessagingServiceClient(conn)
	due := time.Now().Add(2 * time.Second)
	send := func(id string) *pb.SendResultEntry {
		m := baseMsg()
		m.Topic = &pb.Resource{Name: "e2e-recall"}
		m.Body = []byte(id)
		m.SystemProperties.MessageId = id
		m.SystemProperties.MessageType = pb.MessageType_DELAY
		m.SystemProperties.DeliveryTimestamp = timestamppb.New(due)
		resp, err := c.SendMessage(cctx(t, "recall-producer", 5*time.Second), &pb.SendMessageRequest{Messages: []*pb.Message{m}})
		if err != nil || resp.GetStatus().GetCode() != pb.Code_OK {
			t.Fatalf("send %s: %v %v", id, err, resp.GetStatus())
		}
		return resp.GetEntries()[0]
	}
	keep, gone := send("01RECALLKEEP"), send("01RECALLGONE")
	if recallHandleOf(t, keep) == "" || recallHandleOf(t, gone) == "" {
		t.Fatal("a DELAY send answered no recall handle")
	}
	if code, id := callRecall(t, conn, "e2e-recall", recallHandleOf(t, gone)); code != pb.Code_OK || id != "01RECALLGONE" {
		t.Fatalf("recall: %v %q", code, id)
	}
	if code, _ := callRecall(t, conn, "e2e-recall", "bm90IGEgaGFuZGxl"); code != pb.Code_INTERNAL_SERVER_ERROR {
		t.Fatalf("recall with a bad handle: %v, want INTERNAL_SERVER_ERROR", code)
	}
	if code, _ := callRecall(t, conn, "e2e-recall-normal", recallHandleOf(t, keep)); code != pb.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE {
		t.Fatalf("recall on a NORMAL topic: %v, want MESSAGE_PROPERTY_CONFLICT_WITH_TYPE", code)
	}
	cons := newSDKConsumer(t, env.Endpoint, "g-recall", map[string]*golang.FilterExpression{"e2e-recall": golang.SUB_ALL}, nil)
	got := receiveN(t, cons, 1, 16, 20*time.Second, true, 15*time.Second)
	if got[0].GetMessageId() != "01RECALLKEEP" {
		t.Fatalf("received %s, want 01RECALLKEEP", got[0].GetMessageId())
	}
	expectNothing(t, cons, "the recalled delay message")
}

// scenarioAbandonedReceive (QA R10S-1): a receive the client abandons while it is parked must
// not take the next message away for its whole invisible time. In cluster mode the broker
// still answers the parked pop; the proxy releases what it cannot deliver (visible again in
// a second), so the next receive gets the message long before the abandoned one's 60 s.
func scenarioAbandonedReceive(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-abandon", MessageTypeNormal, 1)
	env.CreateGroup(t, "g-abandon", false, 16)
	c := dial(t, env.Endpoint, false)
	settingsReply(t, c, "abandon-c", consumerSettings("g-abandon"))
	route, err := c.QueryRoute(cctx(t, "abandon-c", 5*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "e2e-abandon"}})
	if err != nil || len(route.GetMessageQueues()) == 0 {
		t.Fatalf("route: %v %v", err, route.GetStatus())
	}
	req := &pb.ReceiveMessageRequest{
		Group:             &pb.Resource{Name: "g-abandon"},
		MessageQueue:      route.GetMessageQueues()[0],
		FilterExpression:  &pb.FilterExpression{Type: pb.FilterType_TAG, Expression: "*"},
		BatchSize:         4,
		InvisibleDuration: durationpb.New(60 * time.Second),
	}
	ctx, cancel := context.WithTimeout(cctx(t, "abandon-c", 30*time.Second), 20*time.Second)
	stream, err := c.ReceiveMessage(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan *pb.ReceiveMessageResponse, 1)
	go func() { r, _ := stream.Recv(); first <- r }()
	select {
	case r := <-first:
		t.Fatalf("the receive on an empty topic answered at once: %v", r)
	case <-time.After(300 * time.Millisecond): // parked at the broker (nothing to wait for)
	}
	// Other traffic on the proxy's connection to the broker (another group's poll ending
	// empty), so the client side keeps that connection when the parked call is abandoned.
	other := proto.Clone(req).(*pb.ReceiveMessageRequest)
	other.Group = &pb.Resource{Name: "g-abandon-other"}
	env.CreateGroup(t, "g-abandon-other", false, 16)
	receiveAll(t, c, other, 3*time.Second)
	cancel()
	<-first
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-abandon"))
	if _, err := p.Send(context.Background(), &golang.Message{Topic: "e2e-abandon", Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	// Give the abandoned pop, still parked at a cluster broker, time to take the message (the
	// case to test); in local mode the cancelled pop left at once and nothing takes it.
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	got := receiveAll(t, c, req, 10*time.Second)
	for len(got) < 3 && time.Since(start) < 15*time.Second {
		got = receiveAll(t, c, req, 10*time.Second)
	}
	if len(got) < 3 || got[1].GetMessage() == nil || string(got[1].GetMessage().GetBody()) != "after" {
		t.Fatalf("the message sent after an abandoned receive was not received within %v: %v", time.Since(start), got)
	}
}

// scenarioSQL92: a go5 SimpleConsumer with a SQL92 selector receives exactly the messages
// whose properties match (the broker's enablePropertyFilter, on by default), TAGS included; a
// selector that does not parse is ILLEGAL_FILTER_EXPRESSION.
func scenarioSQL92(t *testing.T, env *e2eEnv) {
	env.CreateTopic(t, "e2e-sql", MessageTypeNormal, 2)
	env.CreateGroup(t, "g-sql", false, 16)
	env.CreateGroup(t, "g-sql-bad", false, 16)
	p := newSDKProducer(t, env.Endpoint, nil, golang.WithTopics("e2e-sql"))
	for i := 1; i <= 6; i++ {
		m := &golang.Message{Topic: "e2e-sql", Body: []byte(fmt.Sprint("n", i))}
		m.SetTag(map[bool]string{true: "even", false: "odd"}[i%2 == 0])
		m.AddProperty("n", strconv.Itoa(i))
		if _, err := p.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	c := newSDKConsumer(t, env.Endpoint, "g-sql", map[string]*golang.FilterExpression{
		"e2e-sql": golang.NewFilterExpressionWithType("n >= 3 AND TAGS = 'even'", golang.SQL92)}, nil)
	var got []string
	for _, mv := range receiveN(t, c, 2, 16, 20*time.Second, true, 15*time.Second) {
		got = append(got, string(mv.GetBody()))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[n4 n6]" {
		t.Fatalf("SQL92 n >= 3 AND TAGS = 'even' received %v, want [n4 n6]", got)
	}
	expectNothing(t, c, "messages the selector does not match")
	bad := newSDKConsumer(t, env.Endpoint, "g-sql-bad", map[string]*golang.FilterExpression{
		"e2e-sql": golang.NewFilterExpressionWithType("n >=", golang.SQL92)}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bad.Receive(ctx, 16, 20*time.Second); err == nil || !strings.Contains(err.Error(), "ILLEGAL_FILTER_EXPRESSION") {
		t.Fatalf("receive with a selector that does not parse: %v, want ILLEGAL_FILTER_EXPRESSION", err)
	}
}
