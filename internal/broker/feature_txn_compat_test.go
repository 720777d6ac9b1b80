package broker

// The official go2 transactional producer (rocketmq.NewTransactionProducer) against an
// in-process NameServer and Broker: commit, rollback, and unknown outcomes resolved by the
// broker's check-back (commit and rollback answers).

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// go2Listener decides by body prefix: "commit"/"rollback" locally, "unknown-*" left unknown
// at send time and answered from the check-back by the suffix.
type go2Listener struct {
	mu      sync.Mutex
	checked map[string]int // body -> CheckLocalTransaction calls
	txIDs   map[string]string
}

func (l *go2Listener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch b := string(m.Body); {
	case strings.HasPrefix(b, "unknown-"):
		return primitive.UnkonwnState
	case strings.HasPrefix(b, "rollback"):
		return primitive.RollbackMessageState
	default:
		return primitive.CommitMessageState
	}
}

func (l *go2Listener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	l.checked[string(m.Body)]++
	l.txIDs[string(m.Body)] = m.TransactionId
	l.mu.Unlock()
	if strings.HasSuffix(string(m.Body), "-commit") {
		return primitive.CommitMessageState
	}
	return primitive.RollbackMessageState
}

func (l *go2Listener) checks(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checked[body]
}

func TestTxnCompatGo2TransactionProducer(t *testing.T) {
	c := startCluster(t, func(cfg *Config) {
		cfg.TransactionTimeOut = 500 * time.Millisecond
		cfg.TransactionCheckInterval = time.Second
		cfg.TransactionCheckMax = 10
	})
	const topic = "TxnCompat"
	c.createTopic(topic, 4)
	group := "TXN_PG_" + instance(t)

	l := &go2Listener{checked: map[string]int{}, txIDs: map[string]string{}}
	p, err := rocketmq.NewTransactionProducer(l, producer.WithNsResolver(c.resolver()), producer.WithGroupName(group),
		producer.WithInstanceName(instance(t)), producer.WithRetry(2), producer.WithSendMsgTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })

	r := newReceived()
	c.pushConsumer("TXN_CG_"+instance(t), topic, "*", collectInto(r))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	want := map[string]primitive.LocalTransactionState{
		"commit": primitive.CommitMessageState, "rollback": primitive.RollbackMessageState,
		"unknown-commit": primitive.UnkonwnState, "unknown-rollback": primitive.UnkonwnState,
	}
	uniq := map[string]string{}
	for _, body := range []string{"commit", "rollback", "unknown-commit", "unknown-rollback"} {
		res, err := p.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(body)))
		if err != nil {
			t.Fatalf("send %s: %v", body, err)
		}
		if res.Status != primitive.SendOK || res.State != want[body] {
			t.Fatalf("send %s: status %v state %v", body, res.Status, res.State)
		}
		if res.TransactionID == "" || res.TransactionID != res.MsgID {
			t.Fatalf("send %s: transactionId %q msgId %q (want the UNIQ_KEY)", body, res.TransactionID, res.MsgID)
		}
		uniq[body] = res.MsgID
	}

	// Committed locally: delivered. The unknown ones are resolved by check-backs (go2 has to
	// heartbeat the broker first, which it does 1s after start and every 30s).
	waitFor(t, 60*time.Second, "commit and check-back commit consumed", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.count["commit"] == 1 && r.count["unknown-commit"] == 1
	})
	waitFor(t, 60*time.Second, "all transactions resolved", func() bool { return c.b.Txn().Stats().Open == 0 })
	if l.checks("unknown-commit") < 1 || l.checks("unknown-rollback") < 1 {
		t.Fatalf("check-backs: %v", l.checked)
	}
	if l.checks("commit") != 0 || l.checks("rollback") != 0 {
		t.Fatalf("resolved transactions were checked back: %v", l.checked)
	}
	l.mu.Lock()
	for _, b := range []string{"unknown-commit", "unknown-rollback"} {
		if l.txIDs[b] != uniq[b] {
			t.Errorf("check of %s carried transactionId %q, want %q", b, l.txIDs[b], uniq[b])
		}
	}
	l.mu.Unlock()

	// Exactly the committed ones are in the topic, once each (the broker's own view).
	c.b.settle()
	bodies := map[string]int{}
	for q := int32(0); q < 4; q++ {
		resp := c.b.pull("TXN_VERIFY", topic, q, 0, 32, 0, 0, "*")
		if resp.Code != remoting.Success {
			continue
		}
		for _, m := range decodeBody(t, resp) {
			bodies[string(m.Body)]++
			if m.Property(message.PropertyTransactionPrepared) != "true" {
				t.Errorf("committed %q lost TRAN_MSG", m.Body)
			}
		}
	}
	if len(bodies) != 2 || bodies["commit"] != 1 || bodies["unknown-commit"] != 1 {
		t.Fatalf("topic holds %v, want commit and unknown-commit once each", bodies)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count["rollback"] != 0 || r.count["unknown-rollback"] != 0 {
		t.Fatalf("rolled back messages consumed: %v", r.count)
	}
	// go2 marks consumed transactional messages (TRAN_MSG=true) with their transaction id.
	for _, m := range r.msgs {
		if m.TransactionId != uniq[string(m.Body)] {
			t.Errorf("consumed %q with TransactionId %q, want %q", m.Body, m.TransactionId, uniq[string(m.Body)])
		}
	}
}
