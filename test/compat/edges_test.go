//go:build !race

package compat

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	golang "github.com/apache/rocketmq-clients/golang/v5"
)

// TestGo5FIFONackKeepsOrder (cluster, 1 s minimum): a FIFO message nacked with
// ChangeInvisibleDuration comes back before the next message of its group.
func TestGo5FIFONackKeepsOrder(t *testing.T) {
	t.Parallel()
	d := cluster(t)
	topic, group := uniq("go5_fifo_nack"), uniq("go5_fifo_nack_g")
	createTopic(t, d, topic, "FIFO", 2)
	createGroup(t, d, group, true, 16)
	p := go5Producer(t, d.grpc, golang.WithTopics(topic))
	for i := 0; i < 3; i++ {
		m := &golang.Message{Topic: topic, Body: []byte(fmt.Sprint("f", i))}
		m.SetMessageGroup("only")
		go5Send(t, p, m)
	}
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	var order []string
	nacked := false
	receiveUntil(t, c, 1, 5*time.Second, 30*time.Second, func(mv *golang.MessageView) {
		b := string(mv.GetBody())
		order = append(order, fmt.Sprintf("%s#%d", b, mv.GetDeliveryAttempt()))
		if b == "f0" && !nacked {
			nacked = true
			if err := c.ChangeInvisibleDuration(mv, time.Second); err != nil {
				t.Errorf("ChangeInvisibleDuration(1s) on a FIFO message: %v", err)
			}
			return
		}
		ack(t, c, mv)
	}, func() bool { return len(order) >= 4 })
	want := []string{"f0#1", "f0#2", "f1#1", "f2#1"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("FIFO with a nack of the first message: deliveries %v, want %v", order, want)
	}
}

// TestBodiesAndProperties: binary bodies (every byte value), UTF-8 property values and
// several keys survive go5 -> go2 and go2 -> go5.
func TestBodiesAndProperties(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic := uniq("bodies")
	createTopic(t, d, topic, "NORMAL", 1)
	bin := make([]byte, 512)
	for i := range bin {
		bin[i] = byte(i)
	}
	p5 := go5Producer(t, d.grpc, golang.WithTopics(topic))
	m5 := &golang.Message{Topic: topic, Body: bin}
	m5.SetKeys("k1", "k2")
	m5.SetTag("bin5")
	m5.AddProperty("greeting", "héllo wörld ✓ 你好")
	go5Send(t, p5, m5)
	p2 := go2Producer(t, d.ns)
	m2 := primitive.NewMessage(topic, bin)
	m2.WithTag("bin2")
	m2.WithKeys([]string{"k3", "k4"})
	m2.WithProperty("greeting", "héllo wörld ✓ 你好")
	sendSync(t, p2, m2)

	c5 := go5Consumer(t, d.grpc, uniq("bodies_g5"), map[string]string{topic: "*"})
	seen5 := map[string]bool{}
	receiveUntil(t, c5, 4, 20*time.Second, 20*time.Second, func(mv *golang.MessageView) {
		tag := ""
		if mv.GetTag() != nil {
			tag = *mv.GetTag()
		}
		seen5[tag] = true
		if !bytes.Equal(mv.GetBody(), bin) {
			t.Errorf("go5 received %s: body of %d bytes differs from the 512 sent", tag, len(mv.GetBody()))
		}
		if mv.GetProperties()["greeting"] != "héllo wörld ✓ 你好" {
			t.Errorf("go5 received %s: property greeting %q", tag, mv.GetProperties()["greeting"])
		}
		if len(mv.GetKeys()) != 2 {
			t.Errorf("go5 received %s: keys %v, want 2", tag, mv.GetKeys())
		}
		ack(t, c5, mv)
	}, func() bool { return len(seen5) >= 2 })
	if !seen5["bin5"] || !seen5["bin2"] {
		t.Errorf("go5 consumer saw tags %v, want bin5 and bin2", seen5)
	}
	var mu sync.Mutex
	seen2 := map[string]*primitive.MessageExt{}
	go2Push(t, d.ns, uniq("bodies_g2"), topic, "*", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seen2[m.GetTags()] = m
		}
		return consumer.ConsumeSuccess, nil
	})
	waitUntil(20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen2) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	for _, tag := range []string{"bin5", "bin2"} {
		m := seen2[tag]
		if m == nil {
			t.Errorf("go2 consumer did not get %s", tag)
			continue
		}
		if !bytes.Equal(m.Body, bin) || m.GetProperty("greeting") != "héllo wörld ✓ 你好" {
			t.Errorf("go2 received %s: body %d bytes (equal %v), greeting %q", tag, len(m.Body), bytes.Equal(m.Body, bin), m.GetProperty("greeting"))
		}
	}
}

// TestGo5PastDelayAndInflight: a delay timestamp in the past is delivered at once; unacked
// pop deliveries show as in flight in `admin group describe`, and leave it when acked.
func TestGo5PastDelayAndInflight(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("go5_past"), uniq("go5_past_g")
	createTopic(t, d, topic, "DELAY", 1)
	p := go5Producer(t, d.grpc, golang.WithTopics(topic))
	for i := 0; i < 3; i++ {
		m := &golang.Message{Topic: topic, Body: []byte(fmt.Sprint("past", i))}
		m.SetDelayTimestamp(time.Now().Add(-time.Minute))
		go5Send(t, p, m)
	}
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	var held []*golang.MessageView
	start := time.Now()
	receiveUntil(t, c, 8, 30*time.Second, 10*time.Second, func(mv *golang.MessageView) { held = append(held, mv) }, func() bool { return len(held) >= 3 })
	if len(held) != 3 {
		t.Fatalf("past-due delay messages: received %d of 3 within 10 s", len(held))
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("past-due delay messages took %s", el)
	}
	var desc struct {
		Inflight int64 `json:"inflight"`
	}
	adminJSON(t, d, &desc, "group", "describe", "--name", group)
	if desc.Inflight != 3 {
		t.Errorf("group describe inflight %d with 3 received and unacked, want 3", desc.Inflight)
	}
	for _, mv := range held {
		ack(t, c, mv)
	}
	ok := waitUntil(10*time.Second, func() bool {
		adminJSON(t, d, &desc, "group", "describe", "--name", group)
		return desc.Inflight == 0
	})
	if !ok {
		t.Errorf("group describe inflight %d after acking everything, want 0", desc.Inflight)
	}
}

// TestCLIMessageGetGo2ID: `admin message get --id` finds a go2 message by its send result
// msgId (v4 unique key) and by its offset msgId.
func TestCLIMessageGetGo2ID(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic := uniq("go2_id")
	createTopic(t, d, topic, "NORMAL", 1)
	p := go2Producer(t, d.ns)
	r := sendSync(t, p, primitive.NewMessage(topic, []byte("by-id")))
	for _, id := range []string{r.MsgID, r.OffsetMsgID} {
		var res []struct {
			Body string `json:"body"`
		}
		ok := waitUntil(10*time.Second, func() bool {
			out, _, code := cli(20*time.Second, "admin", "-n", d.ns, "-o", "json", "message", "get", "--topic", topic, "--id", id)
			return code == 0 && jsonLine(out, &res) == nil && len(res) == 1
		})
		if !ok || res[0].Body != "by-id" {
			t.Errorf("message get --id %s: %+v", id, res)
		}
	}
}

// TestGo5LongPollSeesRedelivery: a consumer waiting in a long poll gets a message as soon as
// it becomes visible again (after a nack, or after its invisible time), not at the end of the
// poll: the Node/Java push consumers always wait in 20-30 s long polls, so a late wake-up
// delays every retry by a whole poll.
func TestGo5LongPollSeesRedelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		nack bool
	}{{"after a nack", true}, {"after the invisible time", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := cluster(t) // 1 s minimum invisible time
			topic, group := uniq("go5_lp"), uniq("go5_lp_g")
			createTopic(t, d, topic, "NORMAL", 1)
			p := go5Producer(t, d.grpc, golang.WithTopics(topic))
			go5Send(t, p, &golang.Message{Topic: topic, Body: []byte("lp")})
			c, err := golang.NewSimpleConsumer(go5Config(d.grpc, group), golang.WithAwaitDuration(15*time.Second),
				golang.WithSubscriptionExpressions(map[string]*golang.FilterExpression{topic: golang.SUB_ALL}))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.GracefulStop() })
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			mvs, err := c.Receive(ctx, 1, 2*time.Second)
			cancel()
			if err != nil || len(mvs) != 1 {
				t.Fatalf("first receive: %v", err)
			}
			visibleAt := time.Now().Add(2 * time.Second)
			if tc.nack {
				if err := c.ChangeInvisibleDuration(mvs[0], time.Second); err != nil {
					t.Fatalf("ChangeInvisibleDuration(1s): %v", err)
				}
				visibleAt = time.Now().Add(time.Second)
			}
			ctx, cancel = context.WithTimeout(context.Background(), 25*time.Second)
			again, err := c.Receive(ctx, 1, 20*time.Second)
			cancel()
			if err != nil || len(again) != 1 {
				t.Fatalf("long poll (15 s) while the message becomes visible again: %v", err)
			}
			late := time.Since(visibleAt)
			t.Logf("redelivered %s after it became visible", late.Round(time.Millisecond))
			if late > 3*time.Second {
				t.Errorf("a long poll returned the redelivered message %s after it became visible again (not woken; the poll's end?)", late.Round(time.Millisecond))
			}
			ack(t, c, again[0])
		})
	}
}

// TestGo5ResetOffsetOnline: `rocketry admin group reset-offset --to-earliest` while a go5
// consumer of the group stays connected: the consumer receives everything again.
func TestGo5ResetOffsetOnline(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("go5_reset"), uniq("go5_reset_g")
	createTopic(t, d, topic, "NORMAL", 2)
	p := go5Producer(t, d.grpc, golang.WithTopics(topic))
	for i := 0; i < 4; i++ {
		go5Send(t, p, &golang.Message{Topic: topic, Body: []byte(fmt.Sprint("r", i))})
	}
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	first := map[string]bool{}
	receiveUntil(t, c, 8, 20*time.Second, 20*time.Second, func(mv *golang.MessageView) { first[string(mv.GetBody())] = true; ack(t, c, mv) },
		func() bool { return len(first) >= 4 })
	if len(first) != 4 {
		t.Fatalf("first pass received %d of 4", len(first))
	}
	adminJSON(t, d, nil, "group", "reset-offset", "--name", group, "--topic", topic, "--to-earliest")
	again := map[string]bool{}
	receiveUntil(t, c, 8, 20*time.Second, 20*time.Second, func(mv *golang.MessageView) { again[string(mv.GetBody())] = true; ack(t, c, mv) },
		func() bool { return len(again) >= 4 })
	if len(again) != 4 {
		t.Errorf("after reset-offset --to-earliest the online consumer received %d of 4 again", len(again))
	}
}

// TestResetOffsetToTime: `group reset-offset --to-time T` (SEARCH_OFFSET_BY_TIMESTAMP on the
// broker) moves a group that consumed everything back to the first message stored after T.
// (A brand-new go2 group with ConsumeFromTimestamp would not exercise it: RocketMQ answers
// its offset query with 0 while the queue's first message is in memory, and go2 then ignores
// the timestamp; Rocketry does the same.)
func TestResetOffsetToTime(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("reset_time"), uniq("reset_time_g")
	createTopic(t, d, topic, "NORMAL", 2)
	p := go2Producer(t, d.ns)
	for i := 0; i < 4; i++ {
		sendSync(t, p, primitive.NewMessage(topic, []byte(fmt.Sprint("old", i))))
	}
	// Store timestamps are milliseconds: leave a clear gap on both sides of T.
	time.Sleep(300 * time.Millisecond)
	from := time.Now()
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 4; i++ {
		sendSync(t, p, primitive.NewMessage(topic, []byte(fmt.Sprint("new", i))))
	}
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	all := map[string]bool{}
	receiveUntil(t, c, 16, 20*time.Second, 20*time.Second, func(mv *golang.MessageView) { all[string(mv.GetBody())] = true; ack(t, c, mv) },
		func() bool { return len(all) >= 8 })
	if len(all) != 8 {
		t.Fatalf("first pass received %d of 8", len(all))
	}
	var reset []struct {
		NewOffset int64 `json:"newOffset"`
	}
	adminJSON(t, d, &reset, "group", "reset-offset", "--name", group, "--topic", topic, "--to-time", fmt.Sprint(from.UnixMilli()))
	again := map[string]bool{}
	deadline := time.Now().Add(6 * time.Second)
	receiveUntil(t, c, 16, 20*time.Second, 10*time.Second, func(mv *golang.MessageView) { again[string(mv.GetBody())] = true; ack(t, c, mv) },
		func() bool { return len(again) >= 8 || (len(again) >= 4 && time.Now().After(deadline)) })
	for i := 0; i < 4; i++ {
		if !again[fmt.Sprint("new", i)] {
			t.Errorf("after reset-offset --to-time: new%d not received again", i)
		}
		if again[fmt.Sprint("old", i)] {
			t.Errorf("after reset-offset --to-time: old%d (stored before T) received again", i)
		}
	}
}

// TestGo2Namespace: go2 clients with a namespace use topics and groups named "<ns>%<name>"
// (RocketMQ 4.x namespaces); the topic is created under that name and the round trip works.
func TestGo2Namespace(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	ns, topic, group := uniq("nsx"), uniq("nstopic"), uniq("nsgroup")
	createTopic(t, d, topic, "NORMAL", 2)        // the plain name, for contrast
	createTopic(t, d, ns+"%"+topic, "NORMAL", 2) // what the namespaced clients use
	p := go2Producer(t, d.ns, producer.WithNamespace(ns))
	sendSync(t, p, primitive.NewMessage(topic, []byte("namespaced")))
	col := newCollector()
	go2Push(t, d.ns, group, topic, "*", col.handler, consumer.WithNamespace(ns))
	waitUntil(30*time.Second, func() bool { return len(col.has([]string{"namespaced"})) == 0 })
	if m := col.has([]string{"namespaced"}); len(m) > 0 {
		t.Errorf("namespaced go2 round trip: not consumed")
	}
	var desc struct {
		Messages int64 `json:"messages"`
	}
	adminJSON(t, d, &desc, "topic", "describe", "--name", ns+"%"+topic)
	if desc.Messages != 1 {
		t.Errorf("topic %s%%%s holds %d messages, want 1", ns, topic, desc.Messages)
	}
}

// TestGo2OrderlyRetryThenDLQ: an orderly go2 consumer that keeps answering
// SuspendCurrentQueueAMoment for one message: the queue is blocked (later messages wait),
// then after maxReconsumeTimes the message goes to %DLQ%<group> and the queue moves on in
// order.
func TestGo2OrderlyRetryThenDLQ(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("go2_ord_dlq"), uniq("go2_ord_dlq_g")
	createTopic(t, d, topic, "FIFO", 1)
	createGroup(t, d, group, true, 2)
	p := go2Producer(t, d.ns)
	for _, b := range []string{"a", "poison", "b", "c"} {
		m := primitive.NewMessage(topic, []byte(b))
		m.WithShardingKey("k")
		sendSync(t, p, m)
	}
	var mu sync.Mutex
	var order []string
	h := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			order = append(order, string(m.Body))
			if string(m.Body) == "poison" {
				if oc, ok := primitive.GetOrderlyCtx(ctx); ok {
					oc.SuspendCurrentQueueTimeMillis = 200
				}
				return consumer.SuspendCurrentQueueAMoment, nil
			}
		}
		return consumer.ConsumeSuccess, nil
	}
	go2Push(t, d.ns, group, topic, "*", h, consumer.WithConsumerOrder(true), consumer.WithMaxReconsumeTimes(2),
		consumer.WithConsumeMessageBatchMaxSize(1))
	waitUntil(40*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) > 0 && order[len(order)-1] == "c"
	})
	mu.Lock()
	got := append([]string(nil), order...)
	mu.Unlock()
	// a, poison x (1 + retries), b, c
	if len(got) < 4 || got[0] != "a" || got[len(got)-2] != "b" || got[len(got)-1] != "c" {
		t.Fatalf("orderly with a suspended message: consumption order %v", got)
	}
	for _, b := range got[1 : len(got)-2] {
		if b != "poison" {
			t.Errorf("orderly: %s consumed while poison still blocked the queue: %v", b, got)
		}
	}
	dlq := "%DLQ%" + group
	var desc struct {
		Messages int64 `json:"messages"`
	}
	ok := waitUntil(15*time.Second, func() bool {
		out, _, code := cli(10*time.Second, "admin", "-n", d.ns, "-o", "json", "topic", "describe", "--name", dlq)
		return code == 0 && jsonLine(out, &desc) == nil && desc.Messages == 1
	})
	if !ok {
		t.Errorf("%s holds %d messages after the orderly retries, want 1 (poison)", dlq, desc.Messages)
	}
	t.Logf("orderly consumption: %v", got)
}

// TestGo5FIFOWithTagFilter: a FIFO group filtering on tag A gets the A messages of a message
// group in order and is not blocked by the B messages between them.
func TestGo5FIFOWithTagFilter(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, d *deployment) {
		topic, group := uniq("go5_fifo_tag"), uniq("go5_fifo_tag_g")
		createTopic(t, d, topic, "FIFO", 2)
		createGroup(t, d, group, true, 16)
		p := go5Producer(t, d.grpc, golang.WithTopics(topic))
		var want []string
		for i := 0; i < 8; i++ {
			tag := "A"
			if i%2 == 1 {
				tag = "B"
			}
			m := &golang.Message{Topic: topic, Body: []byte(fmt.Sprintf("%s%d", tag, i))}
			m.SetTag(tag)
			m.SetMessageGroup("g")
			go5Send(t, p, m)
			if tag == "A" {
				want = append(want, string(m.Body))
			}
		}
		c := go5Consumer(t, d.grpc, group, map[string]string{topic: "A"})
		var got []string
		receiveUntil(t, c, 8, 10*time.Second, 20*time.Second, func(mv *golang.MessageView) {
			got = append(got, string(mv.GetBody()))
			ack(t, c, mv)
		}, func() bool { return len(got) >= len(want) })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("FIFO + tag filter A: received %v, want %v", got, want)
		}
	})
}
