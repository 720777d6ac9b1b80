package broker

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rocketry-mq/rocketry/internal/broker/pop"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// gather returns the value of every sample of metric name whose labels include want.
func gather(t *testing.T, reg *metrics.Registry, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metric
				}
			}
			found = true
			sum += value(m)
		}
	}
	return sum, found
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func TestBrokerMetrics(t *testing.T) {
	reg, health := metrics.NewRegistry(), metrics.NewHealth()
	tb := startBroker(t, testConfig(t), WithMetrics(reg, health))
	if tb.Metrics() == nil {
		t.Fatal("no metrics node")
	}
	waitFor(t, 5*time.Second, "ready", func() bool { ok, _ := health.Check(); return ok })
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	var off int64
	for i := 0; i < 3; i++ {
		resp := tb.mustSend("T", 0, "abcd", nil)
		_, off, _ = message.ParseOffsetMsgID(resp.ExtString("msgId"))
	}
	tb.Offsets.Commit("G", "T", 0, 1)
	if msgs := decodeBody(t, tb.pull("G", "T", 0, 0, 32, 0, 0, "*")); len(msgs) != 3 {
		t.Fatalf("pulled %d", len(msgs))
	}
	if r := tb.invoke(remoting.ConsumerSendMsgBack, map[string]string{"group": "G", "offset": strconv.FormatInt(off, 10),
		"delayLevel": "-1", "maxReconsumeTimes": "16"}, nil); r.Code != remoting.Success {
		t.Fatalf("send back %d", r.Code)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rocketmq_messages_in_total", map[string]string{"topic": "T", "node_type": "broker", "node_id": "broker-a"}, 3},
		{"rocketmq_throughput_in_total", map[string]string{"topic": "T"}, 12},
		{"rocketmq_messages_out_total", map[string]string{"topic": "T", "consumer_group": "G"}, 3},
		{"rocketmq_send_to_dlq_messages_total", map[string]string{"topic": "T", "consumer_group": "G"}, 1},
		{"rocketmq_consumer_lag_messages", map[string]string{"topic": "T", "consumer_group": "G"}, 2},
	}
	for _, c := range checks {
		got, ok := gather(t, reg, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if n, ok := gather(t, reg, "rocketmq_rpc_latency", map[string]string{"request_code": "send_message_v2", "response_code": "success"}); !ok || n < 3 {
		mfs, _ := reg.Gatherer().Gather()
		var names []string
		for _, mf := range mfs {
			names = append(names, mf.GetName())
		}
		t.Errorf("rpc latency samples %v (%v); metrics: %s", n, ok, strings.Join(names, " "))
	}
	if n, ok := gather(t, reg, "rocketmq_topic_number", nil); !ok || n < 2 {
		t.Errorf("topic number %v %v", n, ok)
	}
	// Deleting the group, then the topic, removes their series (QA R7H-5).
	if _, _, err := tb.Groups.GetOrCreate("G"); err != nil {
		t.Fatal(err)
	}
	if r := tb.invoke(remoting.DeleteSubscriptionGroup, map[string]string{"groupName": "G"}, nil); r.Code != remoting.Success {
		t.Fatalf("delete group: %d %q", r.Code, r.Remark)
	}
	if _, ok := gather(t, reg, "rocketmq_messages_out_total", map[string]string{"consumer_group": "G"}); ok {
		t.Error("messages_out series of a deleted group kept")
	}
	if err := tb.DeleteTopic("T"); err != nil {
		t.Fatal(err)
	}
	if _, ok := gather(t, reg, "rocketmq_messages_in_total", map[string]string{"topic": "T"}); ok {
		t.Error("messages_in series of a deleted topic kept")
	}
	tb.stop()
	if ok, _ := health.Check(); ok {
		t.Error("still ready after stop")
	}
}

// TestConnectionMetricLabels: rocketmq_consumer_connections carries Apache's label values:
// language and version name in lower case (QA F11 follow-up).
func TestConnectionMetricLabels(t *testing.T) {
	reg, health := metrics.NewRegistry(), metrics.NewHealth()
	tb := startBroker(t, testConfig(t), WithMetrics(reg, health))
	if r := tb.invoke(remoting.HeartBeat, nil, heartbeatBody("c1", "CG", "T", "*")); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
	}
	want := map[string]string{"consumer_group": "CG", "language": "go", "version": "v5_3_3"}
	if n, ok := gather(t, reg, "rocketmq_consumer_connections", want); !ok || n != 1 {
		mfs, _ := reg.Gatherer().Gather()
		for _, mf := range mfs {
			if mf.GetName() == "rocketmq_consumer_connections" {
				t.Logf("%v", mf.GetMetric())
			}
		}
		t.Fatalf("rocketmq_consumer_connections%v = %v (found %v), want 1", want, n, ok)
	}
}

// TestPopCountsMessagesOut: messages handed out by pop (gRPC consumers through the proxy,
// POP_MESSAGE over remoting) count in rocketmq_messages_out_total and
// rocketmq_throughput_out_total like pulled ones (QA F11).
func TestPopCountsMessagesOut(t *testing.T) {
	reg, health := metrics.NewRegistry(), metrics.NewHealth()
	tb := startBroker(t, testConfig(t), WithMetrics(reg, health))
	if err := tb.CreateTopic(NewTopicConfig("PT", 1)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		tb.mustSend("PT", 0, "abcd", nil)
	}
	svc := tb.PopService()
	if svc == nil {
		t.Fatal("pop service not running")
	}
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for got < 4 && time.Now().Before(deadline) {
		res, err := svc.Pop(context.Background(), pop.PopRequest{Group: "PG", Topic: "PT", QueueID: -1, MaxMessages: 32,
			InvisibleTime: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		got += len(res.Messages)
	}
	if got != 4 {
		t.Fatalf("popped %d, want 4", got)
	}
	if n, ok := gather(t, reg, "rocketmq_messages_out_total", map[string]string{"topic": "PT", "consumer_group": "PG"}); !ok || n != 4 {
		t.Errorf("rocketmq_messages_out_total = %v (found %v), want 4", n, ok)
	}
	if b, ok := gather(t, reg, "rocketmq_throughput_out_total", map[string]string{"topic": "PT", "consumer_group": "PG"}); !ok || b < 4*4 {
		t.Errorf("rocketmq_throughput_out_total = %v (found %v), want at least the bodies' 16 bytes", b, ok)
	}
}

// TestQueueingLatency: rocketmq_consumer_queueing_latency is the age of the oldest message
// not yet delivered (Apache: earliest un-pulled), rocketmq_consumer_lag_latency that of the
// oldest unacknowledged one. With the first of two messages popped and in flight, the two
// differ by the gap between their store times, measured in one scrape.
func TestQueueingLatency(t *testing.T) {
	reg, health := metrics.NewRegistry(), metrics.NewHealth()
	tb := startBroker(t, testConfig(t), WithMetrics(reg, health))
	if err := tb.CreateTopic(NewTopicConfig("QT", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("QT", 0, "first", nil)
	first := time.Now()
	waitFor(t, 5*time.Second, "300 ms between the two store times", func() bool { return time.Since(first) > 300*time.Millisecond })
	tb.mustSend("QT", 0, "second", nil)
	svc := tb.PopService()
	var popped []pop.Message
	waitFor(t, 10*time.Second, "pop of the first message", func() bool {
		res, err := svc.Pop(context.Background(), pop.PopRequest{Group: "QG", Topic: "QT", QueueID: -1, MaxMessages: 1,
			InvisibleTime: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		popped = append(popped, res.Messages...)
		return len(popped) > 0
	})
	if string(popped[0].Ext.Body) != "first" {
		t.Fatalf("popped %q first", popped[0].Ext.Body)
	}
	labels := map[string]string{"topic": "QT", "consumer_group": "QG"}
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) float64 {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
						continue metric
					}
				}
				return value(m)
			}
		}
		t.Fatalf("%s%v not exported", name, labels)
		return 0
	}
	lag, queueing := get("rocketmq_consumer_lag_latency"), get("rocketmq_consumer_queueing_latency")
	if queueing <= 0 || lag-queueing < 300 {
		t.Fatalf("lag latency %v ms, queueing latency %v ms: want the queueing latency to be the second message's age, at least 300 ms less", lag, queueing)
	}
}

// Timers and transactions feed rocketmq_timing_messages, rocketmq_half_messages and the
// commit/rollback counters.
func TestBrokerFeatureMetrics(t *testing.T) {
	reg, health := metrics.NewRegistry(), metrics.NewHealth()
	tb := startBroker(t, testConfig(t), WithMetrics(reg, health))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	due := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	tb.mustSend("T", 0, "later", map[string]string{message.PropertyTimerDeliverMS: due})
	waitFor(t, 5*time.Second, "timing gauge", func() bool {
		n, ok := gather(t, reg, "rocketmq_timing_messages", map[string]string{"topic": "T"})
		return ok && n == 1
	})
	// Taken into the wheel and not due for an hour: no enqueue lag, nothing late.
	waitFor(t, 5*time.Second, "timer enqueue lag 0", func() bool {
		n, ok := gather(t, reg, "rocketmq_timer_enqueue_lag", nil)
		return ok && n == 0
	})
	if n, ok := gather(t, reg, "rocketmq_timer_dequeue_latency", nil); !ok || n != 0 {
		t.Errorf("timer dequeue latency %v (found %v), want 0", n, ok)
	}
	if _, ok := gather(t, reg, "rocketmq_timer_enqueue_latency", nil); !ok {
		t.Error("rocketmq_timer_enqueue_latency not exported")
	}

	h := sendHalf(t, tb, "T", 0, "PG", "half")
	waitFor(t, 5*time.Second, "half gauge", func() bool {
		n, ok := gather(t, reg, "rocketmq_half_messages", map[string]string{"topic": "T"})
		return ok && n == 1
	})
	if r := endTxn(tb, h, "PG", 8, false); r.Code != remoting.Success {
		t.Fatalf("commit: %d %q", r.Code, r.Remark)
	}
	if n, ok := gather(t, reg, "rocketmq_commit_messages_total", map[string]string{"topic": "T"}); !ok || n != 1 {
		t.Errorf("commit counter %v (found %v), want 1", n, ok)
	}
	h2 := sendHalf(t, tb, "T", 0, "PG", "half-2")
	if r := endTxn(tb, h2, "PG", 12, false); r.Code != remoting.Success {
		t.Fatalf("rollback: %d %q", r.Code, r.Remark)
	}
	if n, ok := gather(t, reg, "rocketmq_rollback_messages_total", map[string]string{"topic": "T"}); !ok || n != 1 {
		t.Errorf("rollback counter %v (found %v), want 1", n, ok)
	}
	// R7H-18: commits only are timed (RocketMQ's EndTransactionProcessor).
	if n, ok := gather(t, reg, "rocketmq_finish_message_latency", map[string]string{"topic": "T"}); !ok || n != 1 {
		t.Errorf("finish latency samples %v (found %v), want 1", n, ok)
	}

	// Timer: the message due in an hour was enqueued with a delay of about an hour; one due
	// at once after a second is enqueued and then dequeued.
	if n, ok := gather(t, reg, "rocketmq_timer_enqueue_total", map[string]string{"topic": "T"}); !ok || n != 1 {
		t.Errorf("timer enqueue %v (found %v), want 1", n, ok)
	}
	if b, ok := histogramBucket(t, reg, "rocketmq_delay_message_latency", 1800); !ok || b != 0 {
		t.Errorf("delay latency: %v samples at or below 1800 s (found %v), want 0 (an hour's delay)", b, ok)
	}
	soon := strconv.FormatInt(time.Now().Add(time.Second).UnixMilli(), 10)
	tb.mustSend("T", 0, "soon", map[string]string{message.PropertyTimerDeliverMS: soon})
	waitFor(t, 10*time.Second, "timer dequeue", func() bool {
		n, ok := gather(t, reg, "rocketmq_timer_dequeue_total", map[string]string{"topic": "T"})
		return ok && n == 1
	})
	if b, ok := histogramBucket(t, reg, "rocketmq_delay_message_latency", 5); !ok || b != 1 {
		t.Errorf("delay latency: %v samples at or below 5 s (found %v), want 1", b, ok)
	}

	// Admin creates are timed by outcome and system-ness; the permission is exported.
	if r := tb.invoke(remoting.UpdateAndCreateTopic, map[string]string{"topic": "T2", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil); r.Code != remoting.Success {
		t.Fatalf("create topic: %d %q", r.Code, r.Remark)
	}
	if r := tb.invoke(remoting.UpdateAndCreateTopic, map[string]string{"topic": "bad topic"}, nil); r.Code == remoting.Success {
		t.Fatal("bad topic name accepted")
	}
	if r := tb.invoke(remoting.UpdateAndCreateSubscriptionGroup, nil, []byte(`{"groupName":"G1"}`)); r.Code != remoting.Success {
		t.Fatalf("create group: %d %q", r.Code, r.Remark)
	}
	for _, c := range []struct {
		name, status string
	}{
		{"rocketmq_topic_create_execution_time", "success"},
		{"rocketmq_topic_create_execution_time", "failure"},
		{"rocketmq_consumer_group_create_execution_time", "success"},
	} {
		if n, ok := gather(t, reg, c.name, map[string]string{"invocation_status": c.status, "is_system": "false"}); !ok || n != 1 {
			t.Errorf("%s{%s}: %v samples (found %v), want 1", c.name, c.status, n, ok)
		}
	}
	if p, ok := gather(t, reg, "rocketmq_broker_permission", nil); !ok || p != 6 {
		t.Errorf("broker permission %v (found %v), want 6", p, ok)
	}
}

// histogramBucket returns the cumulative count of histogram name's bucket with upper bound le.
func histogramBucket(t *testing.T, reg *metrics.Registry, name string, le float64) (uint64, bool) {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				if b.GetUpperBound() == le {
					return b.GetCumulativeCount(), true
				}
			}
		}
	}
	return 0, false
}

// TestRegistrationReadiness (QA R7H-20): with NameServers configured, /healthz stays 503
// until a registration reaches one of them, and again once none has been reached for the
// NameServers' expiry (the broker is no longer discoverable).
func TestRegistrationReadiness(t *testing.T) {
	registration := func(h *metrics.Health) metrics.CheckResult {
		_, results := h.Check()
		for _, r := range results {
			if r.Name == "broker-registration" {
				return r
			}
		}
		t.Fatal("no broker-registration check")
		return metrics.CheckResult{}
	}

	dead := testConfig(t)
	dead.NamesrvAddrs = []string{"127.0.0.1:1"} // nothing listens
	hDead := metrics.NewHealth()
	startBroker(t, dead, WithMetrics(metrics.NewRegistry(), hDead))
	if r := registration(hDead); r.Ready || !strings.Contains(r.Error, "not registered") {
		t.Fatalf("unreachable NameServer: %+v", r)
	}
	if ok, _ := hDead.Check(); ok {
		t.Fatal("ready without any NameServer")
	}

	c := startCluster(t, nil) // registered before startCluster returns (waitRoute)
	h := metrics.NewHealth()
	cfg := c.cfg
	cfg.DataDir = t.TempDir()
	cfg.BrokerName = "broker-b"
	b := startBroker(t, cfg, WithMetrics(metrics.NewRegistry(), h))
	waitFor(t, 10*time.Second, "registration", func() bool { return registration(h).Ready })
	b.registeredAt.Store(time.Now().Add(-cfg.ChannelExpiredTimeout - time.Second).UnixNano())
	if r := registration(h); r.Ready || !strings.Contains(r.Error, "no NameServer reached") {
		t.Fatalf("registration older than the expiry: %+v", r)
	}
}
