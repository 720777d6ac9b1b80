package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"testing"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/rocketry-mq/rocketry/internal/logging"
)

func TestMain(m *testing.M) {
	// The official go5 SDK logs through a file logger configured from these variables at init;
	// point it at a temp dir and keep only errors (golang.ResetLogger is called by the SDK
	// tests' setup).
	dir, err := os.MkdirTemp("", "go5-logs-")
	if err == nil {
		os.Setenv("rocketmq.client.logRoot", dir)
		os.Setenv("rocketmq.client.logLevel", "error")
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	if code == 0 && checkLeaks {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLeaks is set in -race builds (leak_race_test.go), where no go5 SDK code runs: the SDK
// leaves goroutines behind after GracefulStop.
var checkLeaks bool

// testConfig is DefaultConfig on a loopback ephemeral port with short test-friendly bounds.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.GRPCListen = "127.0.0.1:0"
	cfg.MinInvisible = time.Second
	cfg.DefaultInvisible = 5 * time.Second
	cfg.HandshakeTimeout = 2 * time.Second
	return cfg
}

// startProxy runs a proxy over b until the test ends.
func startProxy(t testing.TB, b Backend, mutate func(*Config)) *Server {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, b, logging.Discard())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return")
		}
		s.Close()
	})
	return s
}

func dial(t *testing.T, addr string, useTLS bool) pb.MessagingServiceClient {
	t.Helper()
	creds := insecure.NewCredentials()
	if useTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewMessagingServiceClient(conn)
}

// cctx returns a context with a client id and a timeout.
func cctx(t *testing.T, clientID string, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	if clientID != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, mdClientID, clientID)
	}
	return ctx
}

// eventually polls cond every 10ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
