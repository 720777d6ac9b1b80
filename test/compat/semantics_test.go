//go:build !race

package compat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	golang "github.com/apache/rocketmq-clients/golang/v5"
)

// TestGo5FIFOTwoConsumers: two FIFO simple consumers of one group; while a message of a group
// is in flight (received, not acked) no later message of that group is delivered to anyone,
// and each group's messages are delivered in send order across both consumers.
func TestGo5FIFOTwoConsumers(t *testing.T) {
	t.Parallel()
	d := cluster(t)
	topic, group := uniq("go5_fifo2"), uniq("go5_fifo2_g")
	createTopic(t, d, topic, "FIFO", 4)
	createGroup(t, d, group, true, 16)
	p := go5Producer(t, d.grpc, golang.WithTopics(topic))
	const groups, per = 6, 10
	for i := 0; i < per; i++ {
		for g := 0; g < groups; g++ {
			m := &golang.Message{Topic: topic, Body: []byte(fmt.Sprintf("g%d-%d", g, i))}
			m.SetMessageGroup(fmt.Sprint("mg", g))
			go5Send(t, p, m)
		}
	}
	var mu sync.Mutex
	next := map[string]int{}     // group -> next expected index
	inflight := map[string]int{} // group -> index received and not yet acked (-1 none)
	total := 0
	done := func() bool { mu.Lock(); defer mu.Unlock(); return total >= groups*per }
	var wg sync.WaitGroup
	for k := 0; k < 2; k++ {
		c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			receiveUntil(t, c, 8, 20*time.Second, 45*time.Second, func(mv *golang.MessageView) {
				var g, i int
				fmt.Sscanf(string(mv.GetBody()), "g%d-%d", &g, &i)
				mg := fmt.Sprint("mg", g)
				mu.Lock()
				if cur, ok := inflight[mg]; ok && cur >= 0 {
					t.Errorf("group %s: %q delivered while index %d of the same group is still in flight", mg, mv.GetBody(), cur)
				}
				if i != next[mg] {
					t.Errorf("group %s: received index %d, expected %d", mg, i, next[mg])
				}
				if i >= next[mg] {
					next[mg] = i + 1
				}
				inflight[mg] = i
				mu.Unlock()
				// The application works on the message for a while (the window in which the
				// other consumer must not get this group's next message), then acks; the flag is
				// cleared before the ack because the next message may come right after it.
				time.Sleep(20 * time.Millisecond)
				mu.Lock()
				inflight[mg] = -1
				total++
				mu.Unlock()
				ack(t, c, mv)
			}, done)
		}()
	}
	wg.Wait()
	if total != groups*per {
		t.Fatalf("two FIFO consumers received %d of %d", total, groups*per)
	}
}

// TestGo5MaxAttemptsToDLQ (cluster, 1 s invisible time): `group create --max-attempts 2` sets
// retryMaxTimes=2 (docs/cli.md), i.e. RocketMQ's 1 delivery + 2 retries (max_attempts = 3 in
// the Settings the proxy sends, see findings F6): an unacked message is delivered with
// attempts 1, 2, 3, then moved to %DLQ%<group> and never delivered again; `rocketry admin
// message resend-dlq` sends it back to its topic, where the group receives it again.
func TestGo5MaxAttemptsToDLQ(t *testing.T) {
	t.Parallel()
	d := cluster(t)
	topic, group := uniq("go5_dlq"), uniq("go5_dlq_g")
	createTopic(t, d, topic, "NORMAL", 1)
	createGroup(t, d, group, false, 2)
	p := go5Producer(t, d.grpc, golang.WithTopics(topic))
	r := go5Send(t, p, &golang.Message{Topic: topic, Body: []byte("poison")})
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	var attempts []int32
	var lastAt time.Time
	// Never ack: deliveries 1, 2 and 3, then nothing for > 3 invisible times.
	receiveUntil(t, c, 1, time.Second, 12*time.Second, func(mv *golang.MessageView) {
		if mv.GetMessageId() == r.MessageID {
			attempts = append(attempts, mv.GetDeliveryAttempt())
			lastAt = time.Now()
		}
	}, func() bool { return len(attempts) >= 4 || (len(attempts) == 3 && time.Since(lastAt) > 4*time.Second) })
	if len(attempts) != 3 || attempts[0] != 1 || attempts[1] != 2 || attempts[2] != 3 {
		t.Fatalf("retryMaxTimes 2: delivery attempts %v, want [1 2 3] then the DLQ", attempts)
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
		t.Fatalf("%s holds %d messages after 3 failed deliveries, want 1", dlq, desc.Messages)
	}
	var res struct {
		Resent int `json:"resent"`
		Failed int `json:"failed"`
	}
	adminJSON(t, d, &res, "message", "resend-dlq", "--group", group)
	if res.Resent != 1 || res.Failed != 0 {
		t.Fatalf("resend-dlq: %+v, want 1 resent", res)
	}
	var again *golang.MessageView
	receiveUntil(t, c, 1, 10*time.Second, 20*time.Second, func(mv *golang.MessageView) {
		if string(mv.GetBody()) == "poison" {
			again = mv
			ack(t, c, mv)
		}
	}, func() bool { return again != nil })
	if again == nil {
		t.Errorf("message resent from the DLQ not received by the group")
	}
}

// TestTopicDeleteRecreate: a deleted and re-created topic does not serve the old topic's
// messages, neither at once nor after a restart (commit-log replay must not resurrect them).
func TestTopicDeleteRecreate(t *testing.T) {
	t.Parallel()
	d, err := startStandalone("", nil)
	if d != nil {
		t.Cleanup(d.close)
	}
	if err != nil {
		t.Fatalf("rocketry standalone could not be started: %v", err)
	}
	topic := uniq("recreate")
	createTopic(t, d, topic, "NORMAL", 2)
	p := go2Producer(t, d.ns)
	for i := 0; i < 5; i++ {
		sendSync(t, p, primitive.NewMessage(topic, []byte(fmt.Sprint("old", i))))
	}
	adminJSON(t, d, nil, "topic", "delete", "--name", topic)
	createTopic(t, d, topic, "NORMAL", 2)
	// The producer's cached route may still point at the old queues: wait until a send works.
	var sent bool
	waitUntil(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("new")))
		sent = err == nil && r.Status == primitive.SendOK
		return sent
	})
	if !sent {
		t.Fatal("send to the re-created topic failed")
	}
	check := func(phase string) {
		t.Helper()
		col := newCollector()
		go2Push(t, d.ns, uniq("recreate_g"), topic, "*", col.handler)
		waitUntil(20*time.Second, func() bool { return len(col.has([]string{"new"})) == 0 })
		if m := col.has([]string{"new"}); len(m) > 0 {
			t.Errorf("%s: message sent after re-creation not consumed", phase)
		}
		col.mu.Lock()
		defer col.mu.Unlock()
		for b := range col.count {
			if strings.HasPrefix(b, "old") {
				t.Errorf("%s: message %s of the deleted topic delivered by the re-created one", phase, b)
			}
		}
	}
	check("after re-creation")
	if err := d.saProc.stop(20 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	if err := d.restartStandalone(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	check("after restart")
}

// TestGo2BurstToGo5: 2000 messages in go2 batches, all received by a go5 consumer, no loss,
// no duplicate.
func TestGo2BurstToGo5(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("burst"), uniq("burst_g")
	createTopic(t, d, topic, "NORMAL", 8)
	p := go2Producer(t, d.ns)
	const batches, per = 20, 100
	for b := 0; b < batches; b++ {
		var msgs []*primitive.Message
		for i := 0; i < per; i++ {
			msgs = append(msgs, primitive.NewMessage(topic, []byte(fmt.Sprintf("b%d-%d", b, i))))
		}
		sendSync(t, p, msgs...)
	}
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	got := map[string]int{}
	receiveUntil(t, c, 32, 30*time.Second, 60*time.Second, func(mv *golang.MessageView) {
		got[string(mv.GetBody())]++
		ack(t, c, mv)
	}, func() bool { return len(got) >= batches*per })
	if len(got) != batches*per {
		t.Errorf("received %d distinct of %d", len(got), batches*per)
	}
	dups := 0
	for _, n := range got {
		if n > 1 {
			dups++
		}
	}
	if dups > 0 {
		t.Errorf("%d messages delivered more than once although acked in time", dups)
	}
}

// TestGo5FourConsumersNoDuplicates: four simple consumers of one group race for 600 messages on
// 8 queues; every message is received exactly once (all are acked well within the invisible
// time, so a second delivery would be a pop bookkeeping bug).
func TestGo5FourConsumersNoDuplicates(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, d *deployment) {
		topic, group := uniq("go5_four"), uniq("go5_four_g")
		createTopic(t, d, topic, "NORMAL", 8)
		p := go2Producer(t, d.ns)
		const n = 600
		for b := 0; b < n/100; b++ {
			var msgs []*primitive.Message
			for i := 0; i < 100; i++ {
				msgs = append(msgs, primitive.NewMessage(topic, []byte(fmt.Sprintf("m%d", b*100+i))))
			}
			sendSync(t, p, msgs...)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		done := func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= n }
		var wg sync.WaitGroup
		for k := 0; k < 4; k++ {
			c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
			wg.Add(1)
			go func() {
				defer wg.Done()
				receiveUntil(t, c, 16, 60*time.Second, 45*time.Second, func(mv *golang.MessageView) {
					mu.Lock()
					seen[string(mv.GetBody())]++
					mu.Unlock()
					ack(t, c, mv)
				}, done)
			}()
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != n {
			t.Errorf("four consumers received %d distinct of %d", len(seen), n)
		}
		dups := 0
		for _, k := range seen {
			if k > 1 {
				dups++
			}
		}
		if dups > 0 {
			t.Errorf("%d messages delivered more than once to a group whose consumers ack at once", dups)
		}
	})
}
