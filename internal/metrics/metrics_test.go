package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gather returns name -> series (label map + value) for the catalogue metrics.
type series struct {
	labels map[string]string
	value  float64
	count  uint64 // histograms
}

func gather(t *testing.T, r *Registry) map[string][]series {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := make(map[string][]series)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := series{labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value = m.GetHistogram().GetSampleSum()
				s.count = m.GetHistogram().GetSampleCount()
			}
			out[mf.GetName()] = append(out[mf.GetName()], s)
		}
	}
	return out
}

func find(t *testing.T, all map[string][]series, name string, want map[string]string) series {
	t.Helper()
	for _, s := range all[name] {
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return s
		}
	}
	t.Fatalf("no series %s%v; have %v", name, want, all[name])
	return series{}
}

func absent(t *testing.T, all map[string][]series, name string, want map[string]string) {
	t.Helper()
	for _, s := range all[name] {
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			t.Fatalf("series %s%v still present: %v", name, want, s)
		}
	}
}

var brokerA = NodeInfo{Cluster: "DefaultCluster", Type: NodeBroker, ID: "broker-a"}

func TestCountersCarryNodeAndTopicLabels(t *testing.T) {
	r := NewRegistry()
	b := r.Node(brokerA)
	p := r.Node(NodeInfo{Cluster: "DefaultCluster", Type: NodeProxy, ID: "proxy-1"})
	if r.Node(brokerA) != b {
		t.Fatal("Node must return the same *Node for the same identity")
	}
	in := b.In("orders", "NORMAL")
	in.Message(100)
	in.Message(5000)
	b.In("orders", "NORMAL").Message(1) // cached child, same series
	b.Out("orders", "g1").Add(2, 5100)
	b.SendToDLQ("orders", "g1", 1)
	b.TransactionEnded("orders", true, 3*time.Second)
	b.TransactionEnded("orders", false, time.Second)
	b.ObserveRPC(ProtocolRemoting, "310", "0", 3*time.Millisecond)
	p.ObserveRPC(ProtocolGRPC, "SendMessage", "OK", 2*time.Millisecond)
	p.In("orders", "NORMAL").Message(7)

	all := gather(t, r)
	bl := map[string]string{LabelCluster: "DefaultCluster", LabelNodeType: NodeBroker, LabelNodeID: "broker-a", LabelTopic: "orders"}
	if s := find(t, all, NameMessagesIn, merge(bl, LabelMessageType, "NORMAL")); s.value != 3 {
		t.Errorf("messages in = %v, want 3", s.value)
	}
	if s := find(t, all, NameThroughputIn, bl); s.value != 5101 {
		t.Errorf("throughput in = %v, want 5101", s.value)
	}
	if s := find(t, all, NameMessageSize, bl); s.count != 3 || s.value != 5101 {
		t.Errorf("message size count/sum = %d/%v, want 3/5101", s.count, s.value)
	}
	if s := find(t, all, NameMessagesOut, merge(bl, LabelConsumerGroup, "g1")); s.value != 2 {
		t.Errorf("messages out = %v", s.value)
	}
	if s := find(t, all, NameThroughputOut, merge(bl, LabelConsumerGroup, "g1")); s.value != 5100 {
		t.Errorf("throughput out = %v", s.value)
	}
	if s := find(t, all, NameSendToDLQ, merge(bl, LabelConsumerGroup, "g1")); s.value != 1 {
		t.Errorf("dlq = %v", s.value)
	}
	find(t, all, NameCommitMessages, bl)
	find(t, all, NameRollbackMessages, bl)
	if s := find(t, all, NameRPCLatency, map[string]string{LabelNodeType: NodeBroker, LabelProtocolType: ProtocolRemoting, LabelRequestCode: "310", LabelResponseCode: "0"}); s.count != 1 || s.value != 3 {
		t.Errorf("rpc latency count/sum = %d/%v, want 1/3ms", s.count, s.value)
	}
	if s := find(t, all, NameMessagesIn, map[string]string{LabelNodeType: NodeProxy, LabelNodeID: "proxy-1"}); s.value != 1 {
		t.Errorf("proxy messages in = %v", s.value)
	}
	if s := find(t, all, NameProxyUp, map[string]string{LabelNodeType: NodeProxy}); s.value != 1 {
		t.Errorf("proxy up = %v", s.value)
	}
	absent(t, all, NameProxyUp, map[string]string{LabelNodeType: NodeBroker})
}

func merge(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

func TestScrapeSourcesAreSummed(t *testing.T) {
	r := NewRegistry()
	b := r.Node(brokerA)
	calls := 0
	b.OnConsumers(func(emit func(ConsumerStat)) { // pull consumers (core)
		calls++
		emit(ConsumerStat{Group: "g1", Topic: "orders", Lag: 10, Ready: 10, LagLatency: 2 * time.Second, QueueingLatency: 2 * time.Second})
		emit(ConsumerStat{Group: "g2", Topic: "orders", Lag: 1, Ready: 1})
	})
	b.OnConsumers(func(emit func(ConsumerStat)) { // pop feature
		emit(ConsumerStat{Group: "g1", Topic: "orders", Lag: 5, Inflight: 5, LagLatency: 3 * time.Second})
	})
	b.OnStorage(func() StorageStat {
		return StorageStat{SizeBytes: 4096, FlushBehindBytes: 10, DispatchBehindBytes: -1, ReserveTime: time.Minute}
	})
	b.OnConnections(func(emit func(ConnectionStat)) {
		emit(ConnectionStat{Producer: true, Group: "ignored", Language: "GO", Version: "V5_1_2", Count: 2})
		emit(ConnectionStat{Group: "g1", Language: "JAVA", Version: "V5_3_3", ConsumeMode: ConsumeModePop, Count: 3})
		emit(ConnectionStat{Group: "g1", Language: "JAVA", Version: "V5_3_3", ConsumeMode: ConsumeModePop, Count: 1})
	})
	b.OnTables(func() (int, int) { return 7, 3 })
	ns := r.Node(NodeInfo{Type: NodeNamesrv, ID: "ns"})
	ns.OnTables(func() (int, int) { return 5, -1 })
	b.OnHalfMessages(func(emit func(TopicCount)) { emit(TopicCount{"orders", 4}) })
	b.OnTimingMessages(func(emit func(TopicCount)) { emit(TopicCount{"orders", 6}) })

	all := gather(t, r)
	if calls != 1 {
		t.Fatalf("consumer source called %d times per scrape, want 1", calls)
	}
	g1 := map[string]string{LabelConsumerGroup: "g1", LabelTopic: "orders", LabelNodeID: "broker-a"}
	for name, want := range map[string]float64{NameConsumerLag: 15, NameConsumerInflight: 5, NameConsumerReady: 10, NameConsumerLagLatency: 3000, NameConsumerQueueingLatency: 2000} {
		if s := find(t, all, name, g1); s.value != want {
			t.Errorf("%s = %v, want %v", name, s.value, want)
		}
	}
	if s := find(t, all, NameConsumerLag, map[string]string{LabelConsumerGroup: "g2"}); s.value != 1 {
		t.Errorf("g2 lag = %v", s.value)
	}
	if s := find(t, all, NameStorageSize, nil); s.value != 4096 {
		t.Errorf("storage size = %v", s.value)
	}
	if s := find(t, all, NameStorageFlushBehind, nil); s.value != 10 {
		t.Errorf("flush behind = %v", s.value)
	}
	if len(all[NameStorageDispatchBehind]) != 0 {
		t.Errorf("an unknown gauge must not be exported: %v", all[NameStorageDispatchBehind])
	}
	if s := find(t, all, NameStorageReserveTime, nil); s.value != 60000 {
		t.Errorf("reserve time = %v", s.value)
	}
	if s := find(t, all, NameProducerConnections, map[string]string{LabelLanguage: "GO"}); s.value != 2 {
		t.Errorf("producer conns = %v", s.value)
	}
	if s := find(t, all, NameConsumerConnections, map[string]string{LabelConsumerGroup: "g1", LabelConsumeMode: ConsumeModePop}); s.value != 4 {
		t.Errorf("consumer conns = %v", s.value)
	}
	if s := find(t, all, NameTopicNumber, map[string]string{LabelNodeType: NodeBroker}); s.value != 7 {
		t.Errorf("topics = %v", s.value)
	}
	if s := find(t, all, NameConsumerGroupNumber, nil); s.value != 3 {
		t.Errorf("groups = %v", s.value)
	}
	if s := find(t, all, NameTopicNumber, map[string]string{LabelNodeType: NodeNamesrv}); s.value != 5 {
		t.Errorf("namesrv topics = %v", s.value)
	}
	absent(t, all, NameConsumerGroupNumber, map[string]string{LabelNodeType: NodeNamesrv})
	if s := find(t, all, NameHalfMessages, map[string]string{LabelTopic: "orders"}); s.value != 4 {
		t.Errorf("half = %v", s.value)
	}
	if s := find(t, all, NameTimingMessages, map[string]string{LabelTopic: "orders"}); s.value != 6 {
		t.Errorf("timing = %v", s.value)
	}
}

func TestForgetTopicAndGroupDropSeries(t *testing.T) {
	r := NewRegistry()
	b := r.Node(brokerA)
	b.In("gone", "NORMAL").Message(1)
	b.In("kept", "NORMAL").Message(1)
	b.Out("gone", "g1").Add(1, 1)
	b.Out("kept", "g2").Add(1, 1)
	b.SendToDLQ("kept", "g2", 1)
	b.ForgetTopic("gone")
	b.ForgetGroup("g2")
	all := gather(t, r)
	absent(t, all, NameMessagesIn, map[string]string{LabelTopic: "gone"})
	absent(t, all, NameMessageSize, map[string]string{LabelTopic: "gone"})
	absent(t, all, NameMessagesOut, map[string]string{LabelTopic: "gone"})
	absent(t, all, NameMessagesOut, map[string]string{LabelConsumerGroup: "g2"})
	absent(t, all, NameSendToDLQ, map[string]string{LabelConsumerGroup: "g2"})
	find(t, all, NameMessagesIn, map[string]string{LabelTopic: "kept"})
	// A re-created topic starts again from zero.
	b.In("gone", "NORMAL").Message(1)
	if s := find(t, gather(t, r), NameMessagesIn, map[string]string{LabelTopic: "gone"}); s.value != 1 {
		t.Errorf("re-created series = %v, want 1", s.value)
	}
}

func TestNilNodeIsNoop(t *testing.T) {
	var n *Node
	n.In("t", "NORMAL").Message(10)
	n.Out("t", "g").Add(1, 1)
	n.SendToDLQ("t", "g", 1)
	n.TransactionEnded("t", true, 0)
	n.ObserveRPC(ProtocolGRPC, "x", "OK", time.Millisecond)
	n.OnConsumers(func(func(ConsumerStat)) {})
	n.OnStorage(func() StorageStat { return StorageStat{} })
	n.ForgetTopic("t")
	n.ForgetGroup("g")
	if n.Registerer() != nil || n.Info() != (NodeInfo{}) {
		t.Fatal("nil node must report zero values")
	}
}

func TestHealth(t *testing.T) {
	h := NewHealth()
	if ok, res := h.Check(); ok || len(res) != 1 {
		t.Fatalf("empty health must not be ready: %v %v", ok, res)
	}
	broker := h.Flag("broker")
	h.Add("store", func() error { return nil })
	if ok, _ := h.Check(); ok {
		t.Fatal("unset flag must make health not ready")
	}
	broker.Set()
	if ok, res := h.Check(); !ok || len(res) != 2 || res[0].Name != "broker" {
		t.Fatalf("want ready with 2 sorted checks, got %v %v", ok, res)
	}
	h.Add("proxy", func() error { return errors.New("dialing") })
	ok, res := h.Check()
	if ok || res[1].Name != "proxy" || res[1].Error != "dialing" {
		t.Fatalf("failing check must show: %v %v", ok, res)
	}
	h.Remove("proxy")
	broker.Clear()
	if ok, _ := h.Check(); ok {
		t.Fatal("cleared flag must make health not ready")
	}
}

func TestMux(t *testing.T) {
	r := NewRegistry()
	r.Node(brokerA).In("orders", "FIFO").Message(3)
	h := NewHealth()
	f := h.Flag("broker")
	srv := httptest.NewServer(NewMux(r, h))
	defer srv.Close()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("healthz before ready = %d %s", code, body)
	}
	var hb struct {
		Status string
		Checks []CheckResult
	}
	if err := json.Unmarshal([]byte(body), &hb); err != nil || hb.Status != "unavailable" || hb.Checks[0].Error != "not ready" {
		t.Fatalf("healthz body %q: %v", body, err)
	}
	f.Set()
	if code, body = get("/healthz"); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("healthz after ready = %d %s", code, body)
	}
	code, body = get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, `rocketmq_messages_in_total{cluster="DefaultCluster",is_system="false",message_type="FIFO",node_id="broker-a",node_type="broker",topic="orders"} 1`) {
		t.Fatalf("metrics = %d\n%s", code, body)
	}
	if !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Error("runtime collectors missing from /metrics")
	}
	if code, body = get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index = %d", code)
	}
	if code, _ = get("/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown path = %d", code)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := NewHealth()
	h.Add("x", func() error { return nil })
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewMux(NewRegistry(), h), slog.New(slog.DiscardHandler)) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
