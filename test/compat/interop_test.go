//go:build !race

package compat

// Cross-client and lifecycle scenarios: messages sent with one protocol and consumed with the
// other, go2 transactions with check-back, go2's default "consume from last offset" start,
// proxy and NameServer restarts in cluster mode.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	golang "github.com/apache/rocketmq-clients/golang/v5"
)

// TestInteropGo2ToGo5AndBack: a go2 message (tag, keys, user property) is received by a go5
// simple consumer with the same fields, and a go5 message by a go2 push consumer.
func TestInteropGo2ToGo5AndBack(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, d *deployment) {
		topic := uniq("interop")
		createTopic(t, d, topic, "NORMAL", 2)
		p2 := go2Producer(t, d.ns)
		m := primitive.NewMessage(topic, []byte("from-go2"))
		m.WithTag("T2")
		m.WithKeys([]string{"k-a", "k-b"})
		m.WithProperty("color", "red")
		r := sendSync(t, p2, m)

		c5 := go5Consumer(t, d.grpc, uniq("interop_g5"), map[string]string{topic: "T2"})
		var mv5 *golang.MessageView
		receiveUntil(t, c5, 4, 20*time.Second, 20*time.Second, func(mv *golang.MessageView) { mv5 = mv; ack(t, c5, mv) }, func() bool { return mv5 != nil })
		if mv5 == nil {
			t.Fatal("go5 consumer did not receive the go2 message")
		}
		if string(mv5.GetBody()) != "from-go2" || mv5.GetTag() == nil || *mv5.GetTag() != "T2" ||
			strings.Join(mv5.GetKeys(), ",") != "k-a,k-b" || mv5.GetProperties()["color"] != "red" {
			t.Errorf("go2 -> go5: body %q tag %v keys %v properties %v; want from-go2, T2, [k-a k-b], color=red",
				mv5.GetBody(), mv5.GetTag(), mv5.GetKeys(), mv5.GetProperties())
		}
		if mv5.GetMessageId() != r.MsgID {
			t.Errorf("go2 -> go5: go5 message id %s, go2 send result msgId %s (UNIQ_KEY)", mv5.GetMessageId(), r.MsgID)
		}

		p5 := go5Producer(t, d.grpc, golang.WithTopics(topic))
		m5 := &golang.Message{Topic: topic, Body: []byte("from-go5")}
		m5.SetTag("T5")
		m5.SetKeys("k-5")
		m5.AddProperty("shape", "round")
		r5 := go5Send(t, p5, m5)
		var mu sync.Mutex
		var got *primitive.MessageExt
		go2Push(t, d.ns, uniq("interop_g2"), topic, "T5", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				if string(m.Body) == "from-go5" {
					got = m
				}
			}
			return consumer.ConsumeSuccess, nil
		})
		waitUntil(30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return got != nil })
		mu.Lock()
		defer mu.Unlock()
		if got == nil {
			t.Fatal("go2 consumer did not receive the go5 message")
		}
		if got.GetTags() != "T5" || got.GetKeys() != "k-5" || got.GetProperty("shape") != "round" {
			t.Errorf("go5 -> go2: tags %q keys %q shape %q; want T5, k-5, round", got.GetTags(), got.GetKeys(), got.GetProperty("shape"))
		}
		if got.MsgId != r5.MessageID {
			t.Errorf("go5 -> go2: go2 MsgId %s, go5 receipt id %s", got.MsgId, r5.MessageID)
		}
	})
}

type txListener struct {
	mu      sync.Mutex
	checked map[string]int
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch string(m.Body) {
	case "commit":
		return primitive.CommitMessageState
	case "rollback":
		return primitive.RollbackMessageState
	}
	return primitive.UnkonwnState
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	l.checked[string(m.Body)]++
	l.mu.Unlock()
	if string(m.Body) == "unknown-commit" {
		return primitive.CommitMessageState
	}
	return primitive.RollbackMessageState
}

// TestGo2Transaction: go2 transactional producer: commit delivered, rollback not, and an
// UNKNOWN local state resolved by the broker's check-back (CHECK_TRANSACTION_STATE) to the
// producer group: commit for one, rollback for the other.
func TestGo2Transaction(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, d *deployment) {
		topic := uniq("go2_txn")
		createTopic(t, d, topic, "TRANSACTION", 2)
		l := &txListener{checked: map[string]int{}}
		tp, err := rocketmq.NewTransactionProducer(l, producer.WithNameServer([]string{d.ns}), producer.WithRetry(1),
			producer.WithGroupName(uniq("go2_txn_pg")), producer.WithInstanceName(uniq("inst")))
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.Start(); err != nil {
			t.Fatalf("go2 transaction producer Start: %v", err)
		}
		t.Cleanup(func() { _ = tp.Shutdown() })
		for _, b := range []string{"commit", "rollback", "unknown-commit", "unknown-rollback"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := tp.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(b)))
			cancel()
			if err != nil || r.Status != primitive.SendOK {
				t.Fatalf("SendMessageInTransaction(%s): %+v %v", b, r, err)
			}
		}
		col := newCollector()
		go2Push(t, d.ns, uniq("go2_txn_g"), topic, "*", col.handler)
		waitUntil(30*time.Second, func() bool { return len(col.has([]string{"commit", "unknown-commit"})) == 0 })
		if m := col.has([]string{"commit", "unknown-commit"}); len(m) > 0 {
			l.mu.Lock()
			t.Errorf("not delivered: %v (check-backs: %v)", m, l.checked)
			l.mu.Unlock()
		}
		// The check-back for unknown-rollback must have happened too (it is checked in the same
		// rounds as unknown-commit).
		waitUntil(10*time.Second, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.checked["unknown-rollback"] > 0 })
		col.mu.Lock()
		for b, n := range col.count {
			if b == "rollback" || b == "unknown-rollback" {
				t.Errorf("rolled-back transactional message %s delivered", b)
			} else if n != 1 {
				t.Errorf("%s delivered %d times", b, n)
			}
		}
		col.mu.Unlock()
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.checked["commit"] != 0 || l.checked["rollback"] != 0 {
			t.Errorf("check-back asked about resolved transactions: %v", l.checked)
		}
		if l.checked["unknown-rollback"] == 0 {
			t.Errorf("no check-back for the UNKNOWN message later rolled back: %v", l.checked)
		}
	})
}

// TestGo2DefaultStartQuickStart: a go2 push consumer with the default ConsumeFromLastOffset,
// started after the sends on a brand-new topic, still gets them (RocketMQ's broker answers a
// new group's offset query with 0 while the queue's first message is still in memory, which is
// what makes the 4.x quick start work).
func TestGo2DefaultStartQuickStart(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("go2_qs"), uniq("go2_qs_g")
	createTopic(t, d, topic, "NORMAL", 4)
	p := go2Producer(t, d.ns)
	var want []string
	for i := 0; i < 8; i++ {
		b := fmt.Sprint("qs", i)
		want = append(want, b)
		sendSync(t, p, primitive.NewMessage(topic, []byte(b)))
	}
	col := newCollector()
	go2Push(t, d.ns, group, topic, "*", col.handler, consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	waitUntil(20*time.Second, func() bool { return len(col.has(want)) == 0 })
	if m := col.has(want); len(m) > 0 {
		t.Errorf("go2 consumer (default ConsumeFromLastOffset) started after the sends missed %d of %d: %v", len(m), len(want), m)
	}
}

// TestClusterProxyRestart: the proxy is stateless: a message received through it and not yet
// acked can be acked with its receipt handle after the proxy was killed (-9) and restarted,
// and the same go5 producer and consumer keep working.
func TestClusterProxyRestart(t *testing.T) {
	t.Parallel()
	d, err := startCluster([]string{"autoCreateTopicEnable=false", "popMinInvisibleTime=1000"}, "--min-invisible", "1s")
	if d != nil {
		t.Cleanup(d.close)
	}
	if err != nil {
		t.Fatalf("cluster could not be started: %v", err)
	}
	topic, group := uniq("px_restart"), uniq("px_restart_g")
	createTopic(t, d, topic, "NORMAL", 2)
	p := go5Producer(t, d.grpc, golang.WithTopics(topic))
	go5Send(t, p, &golang.Message{Topic: topic, Body: []byte("one")})
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	var first *golang.MessageView
	receiveUntil(t, c, 1, 20*time.Second, 20*time.Second, func(mv *golang.MessageView) { first = mv }, func() bool { return first != nil })
	if first == nil {
		t.Fatal("not received before the proxy restart")
	}
	d.pxProc.kill9()
	px, err := startProc("proxy", d.pxProc.args...)
	if err != nil {
		t.Fatal(err)
	}
	d.pxProc = px
	d.procs = append(d.procs, px)
	if err := px.waitFor(20*time.Second, "listening again", dialOK(d.grpc)); err != nil {
		t.Fatal(err)
	}
	// Ack through the new proxy with the handle the old one issued.
	ackOK := waitUntil(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.Ack(ctx, first) == nil
	})
	if !ackOK {
		t.Errorf("ack through the restarted proxy with the old receipt handle failed")
	}
	// The producer keeps working (go5 re-dials), and the acked message never comes back.
	var sent bool
	waitUntil(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := p.Send(ctx, &golang.Message{Topic: topic, Body: []byte("two")})
		sent = err == nil
		return sent
	})
	if !sent {
		t.Fatal("go5 producer could not send after the proxy restart")
	}
	got := map[string]int{}
	receiveUntil(t, c, 4, 20*time.Second, 30*time.Second, func(mv *golang.MessageView) {
		got[string(mv.GetBody())]++
		ack(t, c, mv)
	}, func() bool { return got["two"] > 0 })
	if got["two"] == 0 {
		t.Errorf("message sent after the proxy restart not received")
	}
	if got["one"] > 0 {
		t.Errorf("message acked through the restarted proxy was delivered again")
	}
}

// TestClusterNamesrvRestart: with the NameServer down, go2 clients keep working on cached
// routes; after it restarts the broker registers again and new clients find the topic.
func TestClusterNamesrvRestart(t *testing.T) {
	t.Parallel()
	d, err := startCluster([]string{"autoCreateTopicEnable=false", "registerNameServerPeriod=10000"})
	if d != nil {
		t.Cleanup(d.close)
	}
	if err != nil {
		t.Fatalf("cluster could not be started: %v", err)
	}
	topic, group := uniq("ns_restart"), uniq("ns_restart_g")
	createTopic(t, d, topic, "NORMAL", 2)
	p := go2Producer(t, d.ns)
	sendSync(t, p, primitive.NewMessage(topic, []byte("before")))
	if err := d.nsProc.stop(10 * time.Second); err != nil {
		t.Errorf("namesrv SIGTERM: %v (want exit 0)", err)
	}
	sendSync(t, p, primitive.NewMessage(topic, []byte("during"))) // cached route
	ns, err := startProc("namesrv", "namesrv", "--listen", d.ns, "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	d.nsProc = ns
	d.procs = append([]*proc{ns}, d.procs...)
	if err := ns.waitFor(30*time.Second, "re-populated by the broker (registerNameServerPeriod 10 s)", brokerRegistered(d.ns, d.broker)); err != nil {
		t.Fatal(err)
	}
	var routed bool
	waitUntil(15*time.Second, func() bool {
		_, _, code := cli(10*time.Second, "admin", "-n", d.ns, "topic", "describe", "--name", topic)
		routed = code == 0
		return routed
	})
	if !routed {
		t.Fatalf("topic not routed by the restarted NameServer")
	}
	col := newCollector()
	go2Push(t, d.ns, group, topic, "*", col.handler)
	want := []string{"before", "during"}
	waitUntil(30*time.Second, func() bool { return len(col.has(want)) == 0 })
	if m := col.has(want); len(m) > 0 {
		t.Errorf("after the NameServer restart a new consumer missed %v", m)
	}
}

// TestClusterProxyRestartTransactionCheck: after a proxy kill -9 and restart, an existing go5
// transactional producer (its telemetry stream broken) must become known to the new proxy
// again (heartbeat -> UNRECOGNIZED_CLIENT_TYPE -> settings), so an orphan transaction sent
// after the restart is still resolved by its TransactionChecker.
func TestClusterProxyRestartTransactionCheck(t *testing.T) {
	t.Parallel()
	d, err := startCluster(append([]string{"autoCreateTopicEnable=false"}, sharedConf...))
	if d != nil {
		t.Cleanup(d.close)
	}
	if err != nil {
		t.Fatalf("cluster could not be started: %v", err)
	}
	topic, group := uniq("px_txn"), uniq("px_txn_g")
	createTopic(t, d, topic, "TRANSACTION", 2)
	var mu sync.Mutex
	checked := map[string]int{}
	checker := &golang.TransactionChecker{Check: func(mv *golang.MessageView) golang.TransactionResolution {
		mu.Lock()
		checked[string(mv.GetBody())]++
		mu.Unlock()
		return golang.COMMIT
	}}
	p := go5Producer(t, d.grpc, golang.WithTopics(topic), golang.WithTransactionChecker(checker))
	d.pxProc.kill9()
	px, err := startProc("proxy", d.pxProc.args...)
	if err != nil {
		t.Fatal(err)
	}
	d.pxProc = px
	d.procs = append(d.procs, px)
	if err := px.waitFor(20*time.Second, "listening again", dialOK(d.grpc)); err != nil {
		t.Fatal(err)
	}
	var sent bool
	restarted := time.Now()
	waitUntil(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := p.SendWithTransaction(ctx, &golang.Message{Topic: topic, Body: []byte("orphan-after-restart")}, p.BeginTransaction())
		sent = err == nil
		return sent
	})
	if !sent {
		t.Fatal("transactional send through the restarted proxy failed for 30 s")
	}
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	var got bool
	receiveUntil(t, c, 4, 20*time.Second, 45*time.Second, func(mv *golang.MessageView) { got = true; ack(t, c, mv) }, func() bool { return got })
	mu.Lock()
	defer mu.Unlock()
	if !got {
		t.Errorf("orphan transaction sent after a proxy restart not resolved within 45 s (checker calls %v)", checked)
	} else {
		t.Logf("orphan after proxy restart resolved %s after the restart", time.Since(restarted).Round(time.Millisecond))
	}
}

// TestTwoBrokers: one NameServer, two brokers (broker-a, broker-b) of one cluster, one proxy.
// A topic created on the cluster lives on both; go5 sends spread over both brokers; a go5
// consumer receives every message and its acks reach the right broker (nothing comes back
// after the 1 s invisible time); a go2 consumer of another group reads all of them too.
func TestTwoBrokers(t *testing.T) {
	t.Parallel()
	d, err := startCluster([]string{"autoCreateTopicEnable=false", "popMinInvisibleTime=1000"}, "--min-invisible", "1s")
	if d != nil {
		t.Cleanup(d.close)
	}
	if err != nil {
		t.Fatalf("cluster could not be started: %v", err)
	}
	// Second broker: same cluster, another name, own data dir and port.
	addrB, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	argsB := []string{"broker", "--config", d.conf, "--listen", addrB, "--namesrv-addr", d.ns,
		"--data-dir", d.dir + "/broker-b", "--name", "broker-b-" + runID, "--advertise-addr", addrB, "--log-format", "json"}
	pb, err := startProc("broker-b", argsB...)
	if err != nil {
		t.Fatal(err)
	}
	d.procs = append(d.procs, pb)
	if err := pb.waitFor(45*time.Second, "registered with the NameServer", brokerRegistered(d.ns, addrB)); err != nil {
		t.Fatal(err)
	}
	topic, g5, g2 := uniq("two"), uniq("two_g5"), uniq("two_g2")
	var created struct {
		Brokers []string `json:"brokers"`
	}
	adminJSON(t, d, &created, "topic", "create", "--name", topic, "--queues", "2")
	if len(created.Brokers) != 2 {
		t.Fatalf("topic create on a two-broker cluster: brokers %v, want both", created.Brokers)
	}
	// The proxy caches routes (--route-cache-ttl 5s): wait until it routes to both brokers.
	p := go5Producer(t, d.grpc, golang.WithTopics(topic))
	const n = 40
	sent := map[string]bool{}
	for i := 0; i < n; i++ {
		r := go5Send(t, p, &golang.Message{Topic: topic, Body: []byte(fmt.Sprint("m", i))})
		sent[r.MessageID] = true
	}
	var desc struct {
		Queues []struct {
			Broker    string `json:"broker"`
			MaxOffset int64  `json:"maxOffset"`
		} `json:"queues"`
	}
	perBroker := map[string]int64{}
	waitUntil(10*time.Second, func() bool {
		adminJSON(t, d, &desc, "topic", "describe", "--name", topic)
		clear(perBroker)
		var sum int64
		for _, q := range desc.Queues {
			perBroker[q.Broker] += q.MaxOffset
			sum += q.MaxOffset
		}
		return sum == n
	})
	if len(perBroker) != 2 || perBroker["broker-"+runID] == 0 || perBroker["broker-b-"+runID] == 0 {
		t.Errorf("40 go5 sends spread as %v, want messages on both brokers", perBroker)
	}
	c := go5Consumer(t, d.grpc, g5, map[string]string{topic: "*"})
	got := map[string]int{}
	receiveUntil(t, c, 16, 2*time.Second, 30*time.Second, func(mv *golang.MessageView) {
		got[mv.GetMessageId()]++
		ack(t, c, mv)
	}, func() bool { return len(got) >= n })
	if len(got) != n {
		t.Fatalf("go5 received %d of %d messages from two brokers", len(got), n)
	}
	// Acks went to the right broker: nothing comes back after the invisible time.
	deadline := time.Now().Add(4 * time.Second)
	again := 0
	receiveUntil(t, c, 16, 2*time.Second, 5*time.Second, func(mv *golang.MessageView) { again++; ack(t, c, mv) },
		func() bool { return time.Now().After(deadline) })
	if again > 0 {
		t.Errorf("%d acked messages delivered again (acks lost on one broker?)", again)
	}
	col := newCollector()
	go2Push(t, d.ns, g2, topic, "*", col.handler)
	waitUntil(30*time.Second, func() bool { return col.distinct() >= n })
	if col.distinct() != n {
		t.Errorf("go2 consumer read %d of %d messages from two brokers", col.distinct(), n)
	}
}

// TestTwoNameServers: the README's multi-node layout: two independent NameServers, a broker
// registered with both, a proxy and clients listing both. With the first NameServer killed,
// new go2 and go5 clients still find the topic through the second.
func TestTwoNameServers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nsA, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	brAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	both := nsA + ";" + nsB
	var procs []*proc
	t.Cleanup(func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].stop(10 * time.Second)
		}
	})
	start := func(name string, ready func() error, args ...string) *proc {
		t.Helper()
		p, err := startProc(name, args...)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		if err := p.waitFor(45*time.Second, "ready", ready); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := start("namesrv-a", dialOK(nsA), "namesrv", "--listen", nsA)
	start("namesrv-b", dialOK(nsB), "namesrv", "--listen", nsB)
	conf, err := brokerConf(dir)
	if err != nil {
		t.Fatal(err)
	}
	start("broker", func() error {
		if err := brokerRegistered(nsA, brAddr)(); err != nil {
			return err
		}
		return brokerRegistered(nsB, brAddr)()
	}, "broker", "--config", conf, "--listen", brAddr, "--namesrv-addr", both, "--data-dir", dir+"/broker",
		"--name", "broker-ns2-"+runID, "--advertise-addr", brAddr)
	start("proxy", dialOK(grpcAddr), "proxy", "--grpc-listen", grpcAddr, "--namesrv-addr", both)
	d := &deployment{ns: both, grpc: grpcAddr, broker: brAddr}
	topic := uniq("ns2")
	createTopic(t, d, topic, "NORMAL", 2) // admin with both NameServers

	a.kill9()
	p2 := go2Producer(t, both)
	sendSync(t, p2, primitive.NewMessage(topic, []byte("via-b")))
	col := newCollector()
	go2Push(t, both, uniq("ns2_g2"), topic, "*", col.handler)
	waitUntil(30*time.Second, func() bool { return len(col.has([]string{"via-b"})) == 0 })
	if m := col.has([]string{"via-b"}); len(m) > 0 {
		t.Errorf("go2 with NameServer A down: not consumed %v", m)
	}
	// The proxy's route cache expires (5 s): it must keep routing through NameServer B.
	p5 := go5Producer(t, grpcAddr, golang.WithTopics(topic))
	var sent bool
	waitUntil(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := p5.Send(ctx, &golang.Message{Topic: topic, Body: []byte("go5-via-b")})
		sent = err == nil
		return sent
	})
	if !sent {
		t.Errorf("go5 through a proxy listing two NameServers, one down: send failed")
	}
	out, errOut, code := cli(30*time.Second, "admin", "-n", both, "-o", "json", "topic", "describe", "--name", topic)
	if code != 0 {
		t.Errorf("admin -n \"A;B\" with A down: exit %d %s %s", code, out, errOut)
	}
}

// TestIdleClientsKeepWorking: go5 clients idle for longer than the proxy's client expiry and
// idle-connection limits (120 s) keep working: the producer sends, its telemetry stream still
// carries the transaction check-back for an orphan, and the consumer receives. (Long: it runs
// in parallel with the rest of the suite.)
func TestIdleClientsKeepWorking(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, txTopic, group := uniq("idle"), uniq("idle_txn"), uniq("idle_g")
	createTopic(t, d, topic, "NORMAL", 1)
	createTopic(t, d, txTopic, "TRANSACTION", 1)
	var mu sync.Mutex
	checked := 0
	checker := &golang.TransactionChecker{Check: func(*golang.MessageView) golang.TransactionResolution {
		mu.Lock()
		checked++
		mu.Unlock()
		return golang.COMMIT
	}}
	p := go5Producer(t, d.grpc, golang.WithTopics(topic, txTopic), golang.WithTransactionChecker(checker))
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*", txTopic: "*"})
	go5Send(t, p, &golang.Message{Topic: topic, Body: []byte("before-idle")})
	got := map[string]bool{}
	receiveUntil(t, c, 4, 20*time.Second, 20*time.Second, func(mv *golang.MessageView) { got[string(mv.GetBody())] = true; ack(t, c, mv) },
		func() bool { return got["before-idle"] })

	// Idle: no application call for 130 s (the SDKs keep heartbeating on their own).
	idle := time.NewTimer(130 * time.Second)
	<-idle.C

	go5Send(t, p, &golang.Message{Topic: topic, Body: []byte("after-idle")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := p.SendWithTransaction(ctx, &golang.Message{Topic: txTopic, Body: []byte("orphan-after-idle")}, p.BeginTransaction())
	cancel()
	if err != nil {
		t.Fatalf("transactional send after 130 s idle: %v", err)
	}
	receiveUntil(t, c, 4, 20*time.Second, 30*time.Second, func(mv *golang.MessageView) { got[string(mv.GetBody())] = true; ack(t, c, mv) },
		func() bool { return got["after-idle"] && got["orphan-after-idle"] })
	if !got["after-idle"] {
		t.Errorf("after 130 s idle: the consumer did not receive a new message")
	}
	mu.Lock()
	defer mu.Unlock()
	if !got["orphan-after-idle"] {
		t.Errorf("after 130 s idle: orphan transaction not resolved (checker called %d times): telemetry stream lost?", checked)
	}
}
