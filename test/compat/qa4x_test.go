//go:build !race

package compat

// QA round 4 X (docs/qa/round4-X.md): regression tests for behaviour found to match Apache
// RocketMQ on awkward application paths — go2 request-reply with reply bodies under
// concurrency, a dead-letter queue read by a go5 DLQ monitor, and a consumer group moving
// from a go2 push consumer (pull offsets) to a go5 SimpleConsumer (pop) without replaying.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	golang "github.com/apache/rocketmq-clients/golang/v5"
)

// TestQA4XGo2RequestReplyConcurrent: go2 producer.Request / RequestAsync (Java
// DefaultMQProducer.request) with a replier that sets a body and a property on the reply, as
// Java's MessageUtil.createReplyMessage does; 20 concurrent requests each get their own reply.
func TestQA4XGo2RequestReplyConcurrent(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("qa4x_rpc"), uniq("qa4x_rpc_g")
	createTopic(t, d, topic, "NORMAL", 4)
	replier := go2Producer(t, d.ns)
	// The replier runs on go2's consumer goroutines, which may still deliver (at least once)
	// after the test returned: its failures are collected and reported by the test body, never
	// with t.Errorf from the callback (a t.Errorf after the test completed fails the package
	// without naming a test, and go2 swallows the resulting panic).
	var cbMu sync.Mutex
	var cbErrs []string
	cbError := func(format string, args ...any) {
		cbMu.Lock()
		cbErrs = append(cbErrs, fmt.Sprintf(format, args...))
		cbMu.Unlock()
	}
	defer func() {
		cbMu.Lock()
		defer cbMu.Unlock()
		for _, e := range cbErrs {
			t.Error(e)
		}
	}()
	go2Push(t, d.ns, group, topic, "ask", func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			r, err := consumer.CreateReplyMessage(m, nil)
			if err != nil {
				cbError("CreateReplyMessage: %v", err)
				continue
			}
			// go2's CreateReplyMessage drops the body it is given; set it as Java does.
			r.Body = []byte("re:" + string(m.Body))
			r.WithProperty("answer", "yes-"+string(m.Body))
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := replier.SendSync(sctx, r); err != nil {
				cbError("reply SendSync: %v", err)
			}
			cancel()
		}
		return consumer.ConsumeSuccess, nil
	})
	requester := go2Producer(t, d.ns)
	request := func(body string) (*primitive.Message, error) {
		m := primitive.NewMessage(topic, []byte(body))
		m.WithTag("ask")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return requester.Request(ctx, 20*time.Second, m)
	}
	if _, err := request("warm-up"); err != nil {
		t.Fatalf("first Request: %v", err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf("q%02d", i)
			r, err := request(body)
			if err != nil {
				t.Errorf("Request(%s): %v", body, err)
				return
			}
			if string(r.Body) != "re:"+body || r.GetProperty("answer") != "yes-"+body {
				t.Errorf("Request(%s) got reply body %q answer %q", body, r.Body, r.GetProperty("answer"))
			}
		}(i)
	}
	wg.Wait()
	done := make(chan string, 1)
	am := primitive.NewMessage(topic, []byte("async"))
	am.WithTag("ask")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := requester.RequestAsync(ctx, 20*time.Second, func(_ context.Context, msg *primitive.Message, err error) {
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- string(msg.Body)
	}, am)
	if err != nil {
		t.Fatalf("RequestAsync: %v", err)
	}
	select {
	case got := <-done:
		if got != "re:async" {
			t.Errorf("RequestAsync reply %q, want re:async", got)
		}
	case <-time.After(25 * time.Second):
		t.Errorf("RequestAsync: no callback within 25 s")
	}
}

// TestQA4XGo5ReadsDLQ: a DLQ monitor reads %DLQ%<group> with a go5 SimpleConsumer; the dead
// messages keep body, tag and keys and carry DLQ_ORIGIN_TOPIC / DLQ_ORIGIN_MESSAGE_ID.
func TestQA4XGo5ReadsDLQ(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("qa4x_dlq"), uniq("qa4x_dlq_g")
	createTopic(t, d, topic, "NORMAL", 2)
	createGroup(t, d, group, false, 16)
	p := go2Producer(t, d.ns)
	// DelayLevelWhenNextConsume = -1: straight to the DLQ at the first failure.
	go2Push(t, d.ns, group, topic, "*", func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		if cc, ok := primitive.GetConcurrentlyCtx(ctx); ok {
			cc.DelayLevelWhenNextConsume = -1
		}
		return consumer.ConsumeRetryLater, nil
	})
	want := map[string]string{} // body -> key
	for i := 0; i < 3; i++ {
		body, key := fmt.Sprintf("dead-%d", i), fmt.Sprintf("dkey-%d", i)
		m := primitive.NewMessage(topic, []byte(body))
		m.WithTag("T1")
		m.WithKeys([]string{key})
		sendSync(t, p, m)
		want[body] = key
	}
	dlq := "%DLQ%" + group
	if !waitUntil(30*time.Second, func() bool {
		var out struct {
			Messages int64 `json:"messages"`
		}
		stdout, _, code := cli(10*time.Second, "admin", "-n", d.ns, "-o", "json", "topic", "describe", "--name", dlq)
		if code != 0 || jsonUnmarshal([]byte(stdout), &out) != nil || out.Messages < 3 {
			time.Sleep(400 * time.Millisecond) // the DLQ appears after the first failure; poll gently
			return false
		}
		return true
	}) {
		t.Fatalf("%s never held the 3 dead messages", dlq)
	}
	c := go5Consumer(t, d.grpc, uniq("qa4x_dlq_mon"), map[string]string{dlq: "*"})
	got := map[string]bool{}
	receiveUntil(t, c, 16, 20*time.Second, 30*time.Second, func(mv *golang.MessageView) {
		body := string(mv.GetBody())
		key, ok := want[body]
		if !ok {
			t.Errorf("DLQ monitor got unexpected body %q", body)
			return
		}
		got[body] = true
		if mv.GetTag() == nil || *mv.GetTag() != "T1" {
			t.Errorf("%s: tag %v, want T1", body, mv.GetTag())
		}
		if ks := mv.GetKeys(); len(ks) != 1 || ks[0] != key {
			t.Errorf("%s: keys %v, want [%s]", body, ks, key)
		}
		if o := mv.GetProperties()["DLQ_ORIGIN_TOPIC"]; o != topic {
			t.Errorf("%s: DLQ_ORIGIN_TOPIC %q, want %q", body, o, topic)
		}
		if mv.GetProperties()["DLQ_ORIGIN_MESSAGE_ID"] == "" {
			t.Errorf("%s: no DLQ_ORIGIN_MESSAGE_ID (properties %v)", body, mv.GetProperties())
		}
		ack(t, c, mv)
	}, func() bool { return len(got) == len(want) })
	if len(got) != len(want) {
		t.Errorf("DLQ monitor received %d of %d dead messages", len(got), len(want))
	}
}

// TestQA4XGroupMovesGo2ToGo5: a group consumed by a go2 push consumer (committed pull offsets)
// is taken over by a go5 SimpleConsumer: pop starts at the committed offset, so the new client
// gets exactly the later messages and nothing the go2 consumer already consumed.
func TestQA4XGroupMovesGo2ToGo5(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("qa4x_move"), uniq("qa4x_move_g")
	createTopic(t, d, topic, "NORMAL", 2)
	p := go2Producer(t, d.ns)
	var first []string
	for i := 0; i < 10; i++ {
		b := fmt.Sprintf("old-%d", i)
		sendSync(t, p, primitive.NewMessage(topic, []byte(b)))
		first = append(first, b)
	}
	col := newCollector()
	stop := go2Push(t, d.ns, group, topic, "*", col.handler)
	if !waitUntil(20*time.Second, func() bool { return len(col.has(first)) == 0 }) {
		t.Fatalf("go2 push consumer missed %v", col.has(first))
	}
	stop() // go2 persists its offsets at Shutdown
	var second []string
	for i := 0; i < 10; i++ {
		b := fmt.Sprintf("new-%d", i)
		sendSync(t, p, primitive.NewMessage(topic, []byte(b)))
		second = append(second, b)
	}
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	got := map[string]int{}
	receiveUntil(t, c, 16, 20*time.Second, 20*time.Second, func(mv *golang.MessageView) {
		got[string(mv.GetBody())]++
		ack(t, c, mv)
	}, func() bool { return len(got) >= len(second) })
	for _, b := range first {
		if got[b] > 0 {
			t.Errorf("go5 replayed %q, already consumed by go2 in the same group", b)
		}
	}
	for _, b := range second {
		if got[b] != 1 {
			t.Errorf("go5 received %q %d times, want once", b, got[b])
		}
	}
}
