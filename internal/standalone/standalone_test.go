package standalone

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketry-mq/rocketry/bench"
	"github.com/rocketry-mq/rocketry/internal/admin"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, sdkGoroutines...)
}

// sdkGoroutines are goroutines the official Go SDK v5 leaves behind after GracefulStop
// (its client manager's tickers and sleeping loops, and their gRPC client connections).
var sdkGoroutines = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/apache/rocketmq-clients/golang/v5/pkg/ticker.Tick.func1"),
	goleak.IgnoreAnyFunction("github.com/apache/rocketmq-clients/golang/v5.(*defaultClientManager).startUp.func1"),
	goleak.IgnoreAnyFunction("github.com/apache/rocketmq-clients/golang/v5.(*defaultClientManager).startUp.func2"),
	goleak.IgnoreAnyFunction("github.com/apache/rocketmq-clients/golang/v5.(*defaultClientManager).startUp.func3"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc.(*ccBalancerWrapper).watcher"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc.newClientStreamWithParams.func4"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/transport.(*http2Client).keepalive"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/transport.(*controlBuffer).get"),
	goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	goleak.IgnoreAnyFunction("github.com/natefinch/lumberjack.(*Logger).millRun"),
}

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.NamesrvListen, cfg.BrokerListen, cfg.GRPCListen, cfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Broker.MappedFileSizeCommitLog = 16 << 20
	return cfg
}

// start runs a standalone server until the test ends.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHealthzMetricsAndPprof(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if s.Ready() {
		t.Fatal("ready before Run")
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	var h struct {
		Status string
		Checks []struct{ Name string }
	}
	if code != 200 || json.Unmarshal([]byte(body), &h) != nil || len(h.Checks) != 5 {
		t.Fatalf("healthz %d %s", code, body)
	}
	code, body = get("/metrics")
	for _, want := range []string{"rocketmq_topic_number{", "rocketmq_storage_size{", "rocketmq_storage_flush_behind_bytes{", "rocketmq_namesrv_brokers", "process_resident_memory_bytes", `rocketmq_proxy_up{cluster="DefaultCluster"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ = get("/debug/pprof/"); code != 200 {
		t.Errorf("pprof %d", code)
	}
	s.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestRestartKeepsMessagesAndOffsets: produce, consume part, stop (SIGTERM path), start on
// the same data dir: every message and the committed offsets survive.
func TestRestartKeepsMessagesAndOffsets(t *testing.T) {
	for _, mode := range []string{ProxyLocal, ProxyCluster} {
		t.Run(mode, func(t *testing.T) { testRestart(t, mode) })
	}
}

func testRestart(t *testing.T, mode string) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.ProxyMode = mode
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	s1, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s1.Run(ctx) }()
	if err := s1.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := admin.New(admin.Config{NameServers: []string{s1.NamesrvAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateTopic(ctx, admin.TopicSpec{Name: "restart-t", Queues: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateGroup(ctx, admin.GroupSpec{Name: "restart-g", MaxAttempts: 16}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	cc := bench.ClientConfig{Endpoint: s1.GRPCAddr()}
	// Produce over remoting (SEND_MESSAGE_V2): the go5 SDK producer has an internal data race
	// that the race detector reports once a producer lives for more than a second.
	rc := remoting.NewClient(remoting.ClientConfig{}, logging.Discard())
	for i := range 20 {
		props := map[string]string{message.PropertyKeys: "k" + string(rune('a'+i)), message.PropertyUniqKey: message.NewUniqID()}
		req := remoting.NewRequest(remoting.SendMessageV2, map[string]string{"a": "restart-p", "b": "restart-t", "c": "TBW102", "d": "4",
			"e": strconv.Itoa(i % 2), "f": "0", "g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0",
			"i": string(message.EncodeProperties(props)), "j": "0", "k": "false", "l": "16", "m": "false", "n": "broker-a"}, []byte("m"+string(rune('a'+i))))
		resp, err := rc.Invoke(ctx, s1.BrokerAddr(), req)
		if err != nil || resp.Code != remoting.Success {
			t.Fatalf("send %d: %v %v", i, resp, err)
		}
	}
	rc.Close()
	c, err := bench.NewSDKConsumer(cc, bench.ConsumerOptions{Group: "restart-g", Topics: map[string]string{"restart-t": "*"}, Await: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for acked < 5 && ctx.Err() == nil {
		msgs, err := c.Receive(ctx, int32(5-acked))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := c.Ack(ctx, m); err != nil {
				t.Fatal(err)
			}
			acked++
		}
	}
	c.Close()
	resp, err := http.Get("http://" + s1.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`protocol_type="grpc",request_code="ReceiveMessage"`, `protocol_type="grpc",request_code="AckMessage",response_code="OK"`,
		`node_type="broker",protocol_type="remoting",request_code="send_message_v2",response_code="success"`,
		`rocketmq_messages_in_total{cluster="DefaultCluster",is_system="false",message_type="NORMAL",node_id="broker-a",node_type="broker",topic="restart-t"} 20`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	s1.Close()
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}

	s2 := start(t, cfg)
	a2, err := admin.New(admin.Config{NameServers: []string{s2.NamesrvAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	var d *admin.TopicDetail
	for ctx.Err() == nil { // the broker registers its topics at start
		if d, err = a2.DescribeTopic(ctx, "restart-t"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d == nil || d.Messages != 20 {
		t.Fatalf("after restart the topic holds %+v (%v), want 20 messages", d, err)
	}
	g, err := a2.DescribeGroup(ctx, "restart-g")
	if err != nil {
		t.Fatal(err)
	}
	if g.Lag != int64(20-acked) {
		t.Fatalf("after restart lag = %d, want %d (acked %d)", g.Lag, 20-acked, acked)
	}
	if _, err := a2.GetMessagesByKey(ctx, "restart-t", "kc", 0); err != nil {
		t.Fatalf("index lost on restart: %v", err)
	}
}

func TestNewReleasesEverythingOnError(t *testing.T) {
	cfg := testConfig(t.TempDir())
	busy, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg2 := testConfig(t.TempDir())
	cfg2.GRPCListen = busy.GRPCAddr() // taken: New fails after NameServer and Broker were created
	if _, err := New(cfg2, logging.Discard()); err == nil {
		t.Fatal("New succeeded on a busy port")
	}
	// Everything New created was released: the same config with a free port works.
	cfg2.GRPCListen = "127.0.0.1:0"
	s, err := New(cfg2, logging.Discard())
	if err != nil {
		t.Fatalf("second New after a failed one: %v", err)
	}
	s.Close()
}

// A bad component setting is refused before anything touches the data directory.
func TestBadProxyConfigTouchesNoData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(dir)
	cfg.Proxy.TLSMode = "maybe"
	if _, err := New(cfg, logging.Discard()); err == nil || !strings.Contains(err.Error(), "maybe") {
		t.Fatalf("New with TLS mode %q: %v", cfg.Proxy.TLSMode, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data dir was created (stat: %v)", err)
	}
}

// broker.conf's popMinInvisibleTime lowers the in-process proxy's receive minimum too.
func TestProxyFollowsPopMinInvisibleTime(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Broker.PopMinInvisibleTime = time.Second
	if got := proxyConfig(cfg).MinInvisible; got != time.Second {
		t.Fatalf("proxy MinInvisible = %v, want 1s", got)
	}
	cfg.Broker.PopMinInvisibleTime = time.Hour // never raises the proxy's own bound
	if got := proxyConfig(cfg).MinInvisible; got != cfg.Proxy.MinInvisible {
		t.Fatalf("proxy MinInvisible = %v, want %v", got, cfg.Proxy.MinInvisible)
	}
}

func TestBadComponentConfigTouchesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(dir)
	cfg.Proxy.TLSMode = "maybe"
	if _, err := New(cfg, logging.Discard()); err == nil || !strings.Contains(err.Error(), "TLS mode") {
		t.Fatalf("bad TLS mode: %v", err)
	}
	cfg = testConfig(dir)
	cfg.Broker.FlushDiskType = "SOMETIMES"
	if _, err := New(cfg, logging.Discard()); err == nil {
		t.Fatal("bad flush type accepted")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the data dir was touched by a config that does not validate: %v", err)
	}
}
