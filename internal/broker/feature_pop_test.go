package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/pop"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Pop over remoting against a running broker (docs/broker-proxy-protocol.md).

func popTestConfig(t testing.TB) Config {
	cfg := testConfig(t)
	cfg.PopMinInvisibleTime = 50 * time.Millisecond
	return cfg
}

func (tb *testBroker) popGroup(name string, retryMax int32, orderly bool) {
	tb.t.Helper()
	gc := NewGroupConfig(name)
	gc.RetryMaxTimes = retryMax
	gc.ConsumeMessageOrderly = orderly
	if err := tb.Groups.Update(gc); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *testBroker) popMsgs(group, topic string, qid int32, max int, invisible, poll time.Duration, extra ...string) (*remoting.Command, []*message.Ext) {
	tb.t.Helper()
	ext := map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(qid)),
		"maxMsgNums": strconv.Itoa(max), "invisibleTime": strconv.FormatInt(invisible.Milliseconds(), 10),
		"pollTime": strconv.FormatInt(poll.Milliseconds(), 10), "bornTime": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"initMode": "0", "expType": "TAG", "exp": "*",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ext[extra[i]] = extra[i+1]
	}
	resp := tb.invoke(remoting.PopMessage, ext, nil)
	if resp.Code != remoting.Success {
		return resp, nil
	}
	msgs, err := message.DecodeRecords(resp.Body)
	if err != nil {
		tb.t.Fatalf("decode pop body: %v", err)
	}
	return resp, msgs
}

func (tb *testBroker) ackMsg(group, topic, handle string) *remoting.Command {
	tb.t.Helper()
	return tb.invoke(remoting.AckMessage, map[string]string{"consumerGroup": group, "topic": topic,
		"queueId": "0", "offset": "0", "extraInfo": handle}, nil)
}

func (tb *testBroker) changeInvisible(group, topic, handle string, d time.Duration) *remoting.Command {
	tb.t.Helper()
	return tb.invoke(remoting.ChangeMessageInvisibleTime, map[string]string{"consumerGroup": group, "topic": topic,
		"queueId": "0", "offset": "0", "extraInfo": handle, "invisibleTime": strconv.FormatInt(d.Milliseconds(), 10)}, nil)
}

func TestPopRemotingRoundTrip(t *testing.T) {
	tb := startBroker(t, popTestConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 2)); err != nil {
		t.Fatal(err)
	}
	tb.popGroup("G", 16, false)
	for i := range 3 {
		tb.mustSend("T", int32(i%2), fmt.Sprint("m", i), map[string]string{message.PropertyTags: "A"})
	}
	var msgs []*message.Ext
	waitFor(t, 5*time.Second, "3 popped", func() bool {
		_, got := tb.popMsgs("G", "T", -1, 32, time.Minute, 0)
		msgs = append(msgs, got...)
		return len(msgs) == 3
	})
	for _, m := range msgs {
		if m.Property(message.PropertyPopCK) == "" || m.ReconsumeTimes != 0 {
			t.Fatalf("popped %+v", m)
		}
	}
	if st := tb.ConsumeStats("G", "T"); len(st) != 2 {
		t.Fatalf("consume stats %v", st)
	} else {
		var inflight, lag int64
		for _, w := range st {
			inflight += w.Inflight
			lag += w.BrokerOffset - w.ConsumerOffset
		}
		if inflight != 3 || lag != 3 {
			t.Fatalf("consume stats: inflight %d, lag %d; want 3, 3", inflight, lag)
		}
	}
	// Empty: POLLING_TIMEOUT, immediately with pollTime 0 and after pollTime otherwise.
	if r, _ := tb.popMsgs("G", "T", -1, 32, time.Minute, 0); r.Code != remoting.PollingTimeout {
		t.Fatalf("empty pop code %d", r.Code)
	}
	start := time.Now()
	if r, _ := tb.popMsgs("G", "T", -1, 32, time.Minute, 200*time.Millisecond); r.Code != remoting.PollingTimeout || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("empty long poll code %d after %v", r.Code, time.Since(start))
	}
	// Ack one, twice (harmless).
	h0 := msgs[0].Property(message.PropertyPopCK)
	for range 2 {
		if r := tb.ackMsg("G", "T", h0); r.Code != remoting.Success {
			t.Fatalf("ack code %d %q", r.Code, r.Remark)
		}
	}
	// Batch ack the rest plus a forged handle.
	body, _ := json.Marshal(map[string]any{"consumerGroup": "G", "topic": "T",
		"receiptHandles": []string{msgs[1].Property(message.PropertyPopCK), "forged", msgs[2].Property(message.PropertyPopCK)}})
	r := tb.invoke(remoting.BatchAckMessage, nil, body)
	if r.Code != remoting.Success {
		t.Fatalf("batch ack code %d %q", r.Code, r.Remark)
	}
	var results struct {
		Results []struct {
			Code   int32  `json:"code"`
			Remark string `json:"remark"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.Body, &results); err != nil || len(results.Results) != 3 {
		t.Fatalf("batch ack body %s: %v", r.Body, err)
	}
	if results.Results[0].Code != 0 || results.Results[1].Code != remoting.InvalidParameter || results.Results[2].Code != 0 {
		t.Fatalf("batch ack results %+v", results.Results)
	}
	waitFor(t, 5*time.Second, "offsets committed", func() bool {
		o0, _ := tb.Offsets.Query("G", "T", 0)
		o1, _ := tb.Offsets.Query("G", "T", 1)
		return o0 == 2 && o1 == 1
	})
	for mq, w := range tb.ConsumeStats("G", "T") {
		if w.Inflight != 0 || w.BrokerOffset != w.ConsumerOffset {
			t.Fatalf("after acks %v: %+v", mq, w)
		}
	}
}

func TestPopRemotingHandleCodesAndRedelivery(t *testing.T) {
	tb := startBroker(t, popTestConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.popGroup("G", 16, false)
	tb.mustSend("T", 0, "x", nil)
	_, msgs := tb.popMsgs("G", "T", 0, 1, 150*time.Millisecond, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatal("nothing popped")
	}
	h1 := msgs[0].Property(message.PropertyPopCK)
	// Forged handle.
	if r := tb.ackMsg("G", "T", h1[:len(h1)-3]+"abc"); r.Code != remoting.InvalidParameter || r.Remark != "receipt handle is invalid" {
		t.Fatalf("forged ack: %d %q", r.Code, r.Remark)
	}
	// Change invisible time: new handle, old one stale.
	r := tb.changeInvisible("G", "T", h1, 100*time.Millisecond)
	h2 := r.ExtString("extraInfo")
	if r.Code != remoting.Success || h2 == "" || h2 == h1 || r.ExtString("invisibleTime") != "100" {
		t.Fatalf("change: %d %q ext %v", r.Code, r.Remark, r.ExtFields)
	}
	if r := tb.ackMsg("G", "T", h1); r.Code != remoting.NoMessage || r.Remark != "receipt handle is expired" {
		t.Fatalf("stale ack: %d %q", r.Code, r.Remark)
	}
	// Not acked: redelivered after 100ms with reconsumeTimes 1 (long poll woken by revive).
	_, again := tb.popMsgs("G", "T", 0, 1, time.Minute, 5*time.Second)
	if len(again) != 1 || again[0].ReconsumeTimes != 1 || string(again[0].Body) != "x" {
		t.Fatalf("redelivery %+v", again)
	}
	if r := tb.ackMsg("G", "T", h2); r.Code != remoting.NoMessage {
		t.Fatalf("ack of handle superseded by redelivery: %d", r.Code)
	}
	if r := tb.ackMsg("G", "T", again[0].Property(message.PropertyPopCK)); r.Code != remoting.Success {
		t.Fatalf("ack: %d %q", r.Code, r.Remark)
	}
	// Validation codes.
	if r, _ := tb.popMsgs("G", "T", 0, 1, 10*time.Millisecond, 0); r.Code != remoting.InvalidParameter {
		t.Fatalf("invisible too small: %d", r.Code)
	}
	if r, _ := tb.popMsgs("G", "T", 0, 33, time.Minute, 0); r.Code != remoting.InvalidParameter {
		t.Fatalf("maxMsgNums 33: %d", r.Code)
	}
	if r, _ := tb.popMsgs("G", "NOPE", 0, 1, time.Minute, 0); r.Code != remoting.TopicNotExist {
		t.Fatalf("unknown topic: %d", r.Code)
	}
	off := NewGroupConfig("OFF")
	off.ConsumeEnable = false
	if err := tb.Groups.Update(off); err != nil {
		t.Fatal(err)
	}
	if r, _ := tb.popMsgs("OFF", "T", 0, 1, time.Minute, 0); r.Code != remoting.NoPermission {
		t.Fatalf("consumeEnable=false: %d", r.Code)
	}
}

func TestPopRemotingDLQAfterMaxAttempts(t *testing.T) {
	tb := startBroker(t, popTestConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.popGroup("G", 2, false)
	tb.mustSend("T", 0, "poison", map[string]string{message.PropertyKeys: "k"})
	var uniq string
	for attempt := range 3 {
		_, msgs := tb.popMsgs("G", "T", 0, 1, 60*time.Millisecond, 5*time.Second)
		if len(msgs) != 1 || msgs[0].ReconsumeTimes != int32(attempt) {
			t.Fatalf("attempt %d: %+v", attempt, msgs)
		}
		uniq = msgs[0].UniqKey()
	}
	dlq := message.DLQTopic("G")
	waitFor(t, 5*time.Second, "DLQ message", func() bool { return tb.Store.MaxOffset(dlq, 0) == 1 })
	tc, ok := tb.Topics.Get(dlq)
	if !ok || tc.ReadQueueNums != 1 || !tc.Readable() {
		t.Fatalf("DLQ topic %+v %v", tc, ok)
	}
	resp := tb.pull("CONSUMER_OF_DLQ", dlq, 0, 0, 32, 0, 0, "*")
	got := decodeBody(t, resp)
	if len(got) != 1 {
		t.Fatalf("DLQ pull code %d, %d messages", resp.Code, len(got))
	}
	d := got[0]
	if string(d.Body) != "poison" || d.Property(message.PropertyDLQOriginTopic) != "T" ||
		d.Property(message.PropertyDLQOriginMessageID) != uniq || d.UniqKey() != uniq || d.Property(message.PropertyPopCK) != "" {
		t.Fatalf("DLQ message props %v", d.Properties)
	}
	if r, _ := tb.popMsgs("G", "T", 0, 1, time.Minute, 300*time.Millisecond); r.Code != remoting.PollingTimeout {
		t.Fatalf("4th delivery: code %d", r.Code)
	}
}

// TestPopRemotingFIFO: 4 message groups x 50 messages on an orderly group; the first
// delivery of message 20 of group 1 fails (not acked, so its invisible time passes). Each
// group's messages must be processed strictly in order.
func TestPopRemotingFIFO(t *testing.T) {
	tb := startBroker(t, popTestConfig(t))
	const groups, per = 4, 50
	if err := tb.CreateTopic(NewTopicConfig("F", groups)); err != nil {
		t.Fatal(err)
	}
	tb.popGroup("GF", 16, true)
	for i := range per {
		for g := range groups {
			tb.mustSend("F", int32(g), strconv.Itoa(i), map[string]string{message.PropertyShardingKey: fmt.Sprint("mg", g)})
		}
	}
	var mu sync.Mutex
	next := make([]int, groups)
	failed := false
	done := 0
	var bad []string
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				mu.Lock()
				fin := done == groups*per
				mu.Unlock()
				if fin {
					return
				}
				_, msgs := tb.popMsgs("GF", "F", -1, 8, 2*time.Second, 500*time.Millisecond)
				stop := map[int32]bool{}
				for _, m := range msgs {
					q := m.QueueID
					if stop[q] {
						continue
					}
					seq, _ := strconv.Atoi(string(m.Body))
					mu.Lock()
					if seq != next[q] {
						bad = append(bad, fmt.Sprintf("q%d got %d want %d", q, seq, next[q]))
					}
					if q == 1 && seq == 20 && !failed {
						failed = true
						stop[q] = true
						mu.Unlock()
						continue
					}
					next[q]++
					done++
					mu.Unlock()
					if r := tb.ackMsg("GF", "F", m.Property(message.PropertyPopCK)); r.Code != remoting.Success {
						t.Errorf("ack: %d %q", r.Code, r.Remark)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 || done != groups*per || !failed {
		t.Fatalf("done=%d failed=%v violations=%v", done, failed, bad)
	}
}

// TestPopRemotingRestart: pop, ack part, stop the broker, start a new one on the same data
// dir. Acked messages never come back, unacked ones come back after their invisible time,
// the rest is delivered: every message acked at least once, none lost.
func TestPopRemotingRestart(t *testing.T) {
	cfg := popTestConfig(t)
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("T", 2)); err != nil {
		t.Fatal(err)
	}
	tb.popGroup("G", 16, false)
	const n = 40
	for i := range n {
		tb.mustSend("T", int32(i%2), strconv.Itoa(i), nil)
	}
	acked := map[string]int{}
	var msgs []*message.Ext
	waitFor(t, 5*time.Second, "first 20", func() bool {
		_, got := tb.popMsgs("G", "T", -1, 20-len(msgs), 2*time.Second, 0)
		msgs = append(msgs, got...)
		return len(msgs) == 20
	})
	for i, m := range msgs {
		if i%2 == 0 {
			if r := tb.ackMsg("G", "T", m.Property(message.PropertyPopCK)); r.Code != remoting.Success {
				t.Fatalf("ack %d", r.Code)
			}
			acked[string(m.Body)]++
		}
	}
	tb.stop()

	tb2 := startBroker(t, cfg)
	// Handles minted before the restart stay valid (same secret, same state).
	if r := tb2.ackMsg("G", "T", msgs[1].Property(message.PropertyPopCK)); r.Code != remoting.Success {
		t.Fatalf("ack of pre-restart handle: %d %q", r.Code, r.Remark)
	}
	acked[string(msgs[1].Body)]++
	deadline := time.Now().Add(30 * time.Second)
	for len(acked) < n && time.Now().Before(deadline) {
		_, got := tb2.popMsgs("G", "T", -1, 32, time.Minute, time.Second)
		for _, m := range got {
			body := string(m.Body)
			if acked[body] > 0 {
				t.Fatalf("message %s redelivered after it was acked", body)
			}
			if r := tb2.ackMsg("G", "T", m.Property(message.PropertyPopCK)); r.Code != remoting.Success {
				t.Fatalf("ack %d", r.Code)
			}
			acked[body]++
		}
	}
	if len(acked) != n {
		t.Fatalf("acked %d distinct of %d", len(acked), n)
	}
	for q := range int32(2) {
		if o, _ := tb2.Offsets.Query("G", "T", q); o != n/2 {
			t.Fatalf("committed q%d = %d", q, o)
		}
	}
}

// TestPopRemotingAdminReset: INVOKE_BROKER_TO_RESET_OFFSET rewinds a pop group; the next pop
// delivers from the reset position again, and a group started after the sends gets them all.
func TestPopRemotingAdminReset(t *testing.T) {
	tb := startBroker(t, popTestConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.popGroup("G", 16, false)
	for i := range 5 {
		tb.mustSend("T", 0, strconv.Itoa(i), nil)
	}
	consume := func() []string {
		var bodies []string
		waitFor(t, 5*time.Second, "5 messages", func() bool {
			_, msgs := tb.popMsgs("G", "T", 0, 32, time.Minute, 0)
			for _, m := range msgs {
				bodies = append(bodies, string(m.Body))
				if r := tb.ackMsg("G", "T", m.Property(message.PropertyPopCK)); r.Code != remoting.Success {
					t.Fatalf("ack %d", r.Code)
				}
			}
			return len(bodies) >= 5
		})
		return bodies
	}
	if got := consume(); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("first pass %v", got)
	}
	r := tb.invoke(remoting.InvokeBrokerToResetOffset, map[string]string{"topic": "T", "group": "G",
		"timestamp": "0", "isForce": "true"}, nil)
	if r.Code != remoting.Success {
		t.Fatalf("reset: %d %q", r.Code, r.Remark)
	}
	if got := consume(); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("after reset %v", got)
	}
}

// TestPopCountsAsDeliveriesAndDLQ (QA R7H-1, R7H-3): pops count in the broker's get totals
// (cluster list OUT-TODAY / GET-TPS) like pulls, and a pop message dead-lettered counts in
// rocketmq_send_to_dlq_messages_total like a remoting send-back.
func TestPopCountsAsDeliveriesAndDLQ(t *testing.T) {
	reg, health := metrics.NewRegistry(), metrics.NewHealth()
	tb := startBroker(t, popTestConfig(t), WithMetrics(reg, health))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.popGroup("G", 1, false)
	tb.mustSend("T", 0, "poison", nil)
	for attempt := range 2 {
		if _, msgs := tb.popMsgs("G", "T", 0, 1, 60*time.Millisecond, 5*time.Second); len(msgs) != 1 {
			t.Fatalf("attempt %d: %d messages", attempt, len(msgs))
		}
	}
	if got := tb.RuntimeInfo()["msgGetTotalTodayNow"]; got != "2" {
		t.Fatalf("msgGetTotalTodayNow = %q after 2 pops, want 2", got)
	}
	waitFor(t, 5*time.Second, "DLQ metric", func() bool {
		v, ok := gather(t, reg, "rocketmq_send_to_dlq_messages_total", map[string]string{"topic": "T", "consumer_group": "G"})
		return ok && v == 1
	})
}

// TestGroupConsumeTps (QA R7H-2): GET_CONSUME_STATS' consumeTps is the group's deliveries per
// second over the last minute, sampled every 10 s.
func TestGroupConsumeTps(t *testing.T) {
	var s brokerStats
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i <= 20; i++ { // samples at 0, 10 and 20 s
		s.sample(now.Add(time.Duration(i) * time.Second))
		if i < 20 {
			s.delivered("G", "T", 5)   // 5 msgs/s
			s.delivered("G", "U", 1)   // 1 msg/s
			s.delivered("H", "T", 100) // another group
		}
	}
	if got := s.groupTps("G", "T"); got != 5 {
		t.Errorf("G on T: %v msgs/s, want 5", got)
	}
	if got := s.groupTps("G", ""); got != 6 {
		t.Errorf("G on all topics: %v msgs/s, want 6", got)
	}
	if got := s.groupTps("nobody", ""); got != 0 {
		t.Errorf("unknown group: %v", got)
	}
	// A group's first burst counts (QA R10X-2: it was the baseline of the first sample).
	var b brokerStats
	b.delivered("B", "T", 50)
	b.sample(now)
	if got := b.groupTps("B", "T"); got != 5 {
		t.Errorf("first burst of 50 within the first 10 s window: %v msgs/s, want 5", got)
	}
}

// TestDeleteTopicRestartsPopGroups (QA R12E-1): a pop group that consumed a topic before it
// was deleted gets the first messages of the topic created again under its name; its old
// position used to skip them.
func TestDeleteTopicRestartsPopGroups(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	svc := tb.PopService()
	popAll := func(want int) []pop.Message {
		t.Helper()
		var got []pop.Message
		waitFor(t, 10*time.Second, fmt.Sprintf("%d popped", want), func() bool {
			res, err := svc.Pop(context.Background(), pop.PopRequest{Group: "GX", Topic: "TX", QueueID: -1, MaxMessages: 32,
				InvisibleTime: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range res.Messages {
				if err := svc.Ack(context.Background(), "GX", "TX", m.Handle); err != nil {
					t.Fatal(err)
				}
			}
			got = append(got, res.Messages...)
			return len(got) >= want
		})
		return got
	}
	if err := tb.CreateTopic(NewTopicConfig("TX", 1)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		tb.mustSend("TX", 0, fmt.Sprint("old-", i), nil)
	}
	popAll(5)
	if err := tb.DeleteTopic("TX"); err != nil {
		t.Fatal(err)
	}
	if err := tb.CreateTopic(NewTopicConfig("TX", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("TX", 0, "new-0", nil)
	if got := popAll(1); string(got[0].Ext.Body) != "new-0" {
		t.Fatalf("first pop after re-creation: %q", got[0].Ext.Body)
	}
}

// TestDeletedGroupStaysDeleted (QA R12F-3): a deleted pop group's state goes with it, so a
// restart does not bring the group back.
func TestDeletedGroupStaysDeleted(t *testing.T) {
	cfg := testConfig(t)
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("TG", 2)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("TG", 0, "m", nil)
	svc := tb.PopService()
	waitFor(t, 10*time.Second, "a pop of GD", func() bool {
		res, err := svc.Pop(context.Background(), pop.PopRequest{Group: "GD", Topic: "TG", QueueID: -1, MaxMessages: 8,
			InvisibleTime: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Messages) > 0
	})
	if r := tb.invoke(remoting.DeleteSubscriptionGroup, map[string]string{"groupName": "GD", "cleanOffset": "true"}, nil); r.Code != remoting.Success {
		t.Fatalf("delete group: %d %q", r.Code, r.Remark)
	}
	tb.stop()
	tb2 := startBroker(t, cfg)
	if _, ok := tb2.Groups.Get("GD"); ok {
		t.Fatal("the deleted group came back after a restart")
	}
}
