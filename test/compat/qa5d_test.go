//go:build !race

package compat

// QA round 5 D (docs/qa/round5-D.md): regression tests for messaging semantics under churn
// found to match Apache RocketMQ: a transaction check-back answered by another producer
// process of the same group after the one that sent the half messages is gone.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// qa5dTxListener executes every local transaction as UNKNOWN (exec) and answers check-backs
// with commit for even message numbers and rollback for odd ones, counting the checks.
type qa5dTxListener struct {
	mu      sync.Mutex
	checked map[string]int
}

func (l *qa5dTxListener) ExecuteLocalTransaction(*primitive.Message) primitive.LocalTransactionState {
	return primitive.UnkonwnState
}

func (l *qa5dTxListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	l.checked[string(m.Body)]++
	l.mu.Unlock()
	n, _ := strconv.Atoi(strings.TrimPrefix(string(m.Body), "tx"))
	if n%2 == 0 {
		return primitive.CommitMessageState
	}
	return primitive.RollbackMessageState
}

func (l *qa5dTxListener) checks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.checked {
		n += c
	}
	return n
}

// TestQA5DTransactionCheckByOtherProducer: producers A and B of one group (two client
// instances) each send half messages whose local state is UNKNOWN; A shuts down before any
// check-back, B answers the broker's CHECK_TRANSACTION_STATE for A's messages too: the 4
// committed messages are delivered once each, the 3 rolled back never (Apache: the check goes to any
// channel of the producer group, ProducerManager.getAvailableChannel).
func TestQA5DTransactionCheckByOtherProducer(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("qa5d_txn"), uniq("qa5d_txn_pg")
	createTopic(t, d, topic, "TRANSACTION", 2)
	newTP := func(l *qa5dTxListener) rocketmq.TransactionProducer {
		tp, err := rocketmq.NewTransactionProducer(l, producer.WithNameServer([]string{d.ns}), producer.WithRetry(1),
			producer.WithGroupName(group), producer.WithInstanceName(uniq("inst")))
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.Start(); err != nil {
			t.Fatalf("go2 transaction producer Start: %v", err)
		}
		return tp
	}
	send := func(tp rocketmq.TransactionProducer, body string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := tp.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(body)))
		cancel()
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("SendMessageInTransaction(%s): %+v %v", body, r, err)
		}
	}
	// B publishes too (tx6): a go2 producer heartbeats only to the brokers of the topics it
	// has routes for, on Apache as here, so an idle B would be unknown to the broker.
	lb := &qa5dTxListener{checked: map[string]int{}}
	b := newTP(lb)
	t.Cleanup(func() { _ = b.Shutdown() })
	send(b, "tx6")
	commit, rollback := []string{"tx6"}, []string{}
	la := &qa5dTxListener{checked: map[string]int{}}
	a := newTP(la)
	for i := 0; i < 6; i++ {
		body := fmt.Sprint("tx", i)
		send(a, body)
		if i%2 == 0 {
			commit = append(commit, body)
		} else {
			rollback = append(rollback, body)
		}
	}
	_ = a.Shutdown()
	col := newCollector()
	go2Push(t, d.ns, uniq("qa5d_txn_g"), topic, "*", col.handler)
	waitUntil(30*time.Second, func() bool { return len(col.has(commit)) == 0 })
	if m := col.has(commit); len(m) > 0 {
		t.Fatalf("committed by the other producer's check-back, not delivered: %v (checks by B %v, by A %v)", m, lb.checked, la.checked)
	}
	// The rollbacks are checked in the same rounds; give them a moment to be resolved too.
	waitUntil(10*time.Second, func() bool { return lb.checks()+la.checks() >= 7 })
	col.mu.Lock()
	defer col.mu.Unlock()
	rolled := map[string]bool{}
	for _, r := range rollback {
		rolled[r] = true
	}
	for body, n := range col.count {
		if rolled[body] {
			t.Errorf("rolled-back transactional message %s delivered", body)
		} else if n != 1 {
			t.Errorf("%s delivered %d times", body, n)
		}
	}
	la.mu.Lock()
	defer la.mu.Unlock()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	byB := 0
	for i := 0; i < 6; i++ {
		byB += lb.checked[fmt.Sprint("tx", i)]
	}
	if byB == 0 {
		t.Errorf("producer B answered no check-back for A's half messages (B %v, A %v)", lb.checked, la.checked)
	}
}
