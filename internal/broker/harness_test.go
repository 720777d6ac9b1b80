package broker

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// testLogger logs to stderr at warn level with -v and discards otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("BROKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a small broker on a free loopback port with its data in a temp dir.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.AdvertiseAddr = "127.0.0.1"
	cfg.DataDir = t.TempDir()
	cfg.BrokerName = "broker-a"
	cfg.MappedFileSizeCommitLog = 8 << 20
	cfg.MaxMessageSize = 1 << 20
	cfg.TransientStorePoolEnable = os.Getenv("ROCKETRY_STORE_TRANSIENT_POOL") == "1"
	return cfg
}

// testBroker is a running in-process broker plus a remoting client to it.
type testBroker struct {
	*Broker
	t      testing.TB
	cli    *remoting.Client
	cancel context.CancelFunc
	done   chan error
	// closeErrOK, when set, accepts an expected shutdown error (e.g. after injected I/O
	// failures the store reports an unclean shutdown).
	closeErrOK func(error) bool
}

// startBroker starts a broker with cfg and stops it (Close) at the end of the test.
func startBroker(t testing.TB, cfg Config, opts ...Option) *testBroker {
	t.Helper()
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewWithListener(cfg, testLogger(t), ln, opts...)
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb := &testBroker{Broker: b, t: t, cli: remoting.NewClient(remoting.DefaultClientConfig(), testLogger(t)),
		cancel: cancel, done: make(chan error, 1)}
	go func() { tb.done <- b.Run(ctx) }()
	t.Cleanup(tb.stop)
	return tb
}

// stop cancels Run, waits for it and closes the client; safe to call twice.
func (tb *testBroker) stop() {
	if tb.cancel == nil {
		return
	}
	tb.cancel()
	select {
	case err := <-tb.done:
		if err != nil && (tb.closeErrOK == nil || !tb.closeErrOK(err)) {
			tb.t.Errorf("broker Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		tb.t.Errorf("broker did not stop within 20s")
	}
	if err := tb.Close(); err != nil && (tb.closeErrOK == nil || !tb.closeErrOK(err)) {
		tb.t.Errorf("broker Close: %v", err)
	}
	_ = tb.cli.Close()
	tb.cancel = nil
}

// invoke sends a request and fails the test on transport errors.
func (tb *testBroker) invoke(code int32, ext map[string]string, body []byte) *remoting.Command {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := tb.cli.Invoke(ctx, tb.ListenAddr().String(), remoting.NewRequest(code, ext, body))
	if err != nil {
		tb.t.Fatalf("invoke %d: %v", code, err)
	}
	return resp
}

// sendV2 sends one message with SEND_MESSAGE_V2 and returns the response.
func (tb *testBroker) sendV2(topic string, qid int32, body string, props map[string]string) *remoting.Command {
	tb.t.Helper()
	ext := map[string]string{
		"a": "PG", "b": topic, "c": message.TopicDefault, "d": "4", "e": strconv.Itoa(int(qid)), "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0",
		"i": string(message.EncodeProperties(props)), "j": "0", "k": "false", "m": "false",
	}
	return tb.invoke(remoting.SendMessageV2, ext, []byte(body))
}

// mustSend sends and fails unless the answer is SUCCESS.
func (tb *testBroker) mustSend(topic string, qid int32, body string, props map[string]string) *remoting.Command {
	tb.t.Helper()
	resp := tb.sendV2(topic, qid, body, props)
	if resp.Code != remoting.Success {
		tb.t.Fatalf("send to %s/%d: code %d %q", topic, qid, resp.Code, resp.Remark)
	}
	tb.settle()
	return resp
}

// settle waits until everything stored so far is dispatched to the consume queues (the
// store dispatches asynchronously after a put returns).
func (tb *testBroker) settle() {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tb.Store.WaitDispatched(ctx, tb.Store.Stats().MaxPhysicalOffset); err != nil {
		tb.t.Fatalf("wait dispatched: %v", err)
	}
}

// pull issues a PULL_MESSAGE.
func (tb *testBroker) pull(group, topic string, qid int32, offset int64, max int, sysFlag int32, suspend time.Duration, sub string) *remoting.Command {
	tb.t.Helper()
	if sub != "" {
		sysFlag |= pullFlagSubscription // the subscription is in the request
	}
	return tb.invoke(remoting.PullMessage, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(qid)),
		"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": strconv.Itoa(max),
		"sysFlag": strconv.Itoa(int(sysFlag)), "commitOffset": "0",
		"suspendTimeoutMillis": strconv.FormatInt(suspend.Milliseconds(), 10),
		"subscription":         sub, "subVersion": "0", "expressionType": "TAG",
	}, nil)
}

func decodeBody(t testing.TB, resp *remoting.Command) []*message.Ext {
	t.Helper()
	msgs, err := message.DecodeRecords(resp.Body)
	if err != nil {
		t.Fatalf("decode pull body: %v", err)
	}
	return msgs
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
