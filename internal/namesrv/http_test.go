package namesrv

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthzAndMetrics(t *testing.T) {
	srv := startNamesrv(t, func(c *Config) { c.HTTPListen = "127.0.0.1:0" })
	base := "http://" + srv.HTTPAddr().String()
	eventually(t, "healthz ready", func() bool { code, _ := httpGet(t, base+"/healthz"); return code == http.StatusOK })
	ns := srv.Addr().String()
	cli := newClient(t)
	if _, err := RegisterBroker(tctx(t), cli, ns, brokerReq("c", "b", "127.0.0.1:11", 0, "M1", "M2")); err != nil {
		t.Fatal(err)
	}
	invoke(t, cli, ns, remoting.GetRouteinfoByTopic, map[string]string{"topic": "none"}, nil)
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		`rocketmq_rpc_latency_bucket{cluster="",node_id="` + ns + `",node_type="namesrv",protocol_type="remoting",request_code="register_broker",response_code="success",le=`,
		`rocketmq_namesrv_requests_total{cluster="",node_id="` + ns + `",node_type="namesrv",request_code="get_routeinfo_by_topic",response_code="topic_not_exist"} 1`,
		`rocketmq_namesrv_brokers{cluster="",node_id="` + ns + `",node_type="namesrv"} 1`,
		`rocketmq_topic_number{cluster="",node_id="` + ns + `",node_type="namesrv"} 2`,
		`rocketmq_namesrv_connections{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "rocketmq_consumer_group_number") { // R7H-14: it cannot know
		t.Error("NameServer exports rocketmq_consumer_group_number")
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestRestartOnSharedRegistry(t *testing.T) {
	reg := metrics.NewRegistry()
	health := metrics.NewHealth()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	a, err := New(cfg, discard(), WithMetrics(reg, health))
	if err != nil {
		t.Fatal(err)
	}
	addr := a.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Same address, same registry: must not panic, and its series are registered. (The
	// port was just released; retry briefly in case another process's socket holds it.)
	cfg.Listen = addr
	var b *Server
	eventually(t, "re-listen on "+addr, func() bool {
		b, err = New(cfg, discard(), WithMetrics(reg, health))
		return err == nil
	})
	defer b.Close()
	if len(b.metrics.collectors) != 3 {
		t.Fatalf("%d collectors registered after restart", len(b.metrics.collectors))
	}
}
