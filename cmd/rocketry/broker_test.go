package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestBrokerCommandFlagsOverrideFile runs `rocketry broker` in-process with a broker.conf
// and flags, checks that flags win (GET_BROKER_CONFIG), and stops it by cancelling.
func TestBrokerCommandFlagsOverrideFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte("brokerName=from-file\nbrokerClusterName=FileCluster\nbrokerRole=ASYNC_MASTER\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := newBrokerCmd()
	cmd.SetArgs([]string{"--config", conf, "--name", "from-flag", "--listen", addr, "--data-dir", filepath.Join(dir, "data"),
		"--advertise-addr", "127.0.0.1", "--log-level", "error"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	cli := remoting.NewClient(remoting.DefaultClientConfig(), logging.Discard())
	defer cli.Close()
	var resp *remoting.Command
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		r, err := cli.Invoke(rctx, addr, remoting.NewRequest(remoting.GetBrokerConfig, nil, nil))
		rcancel()
		if err == nil {
			resp = r
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("broker not serving on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	body := string(resp.Body)
	if !strings.Contains(body, "brokerName=from-flag\n") || !strings.Contains(body, "brokerClusterName=FileCluster\n") {
		t.Errorf("config:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("broker command: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("broker command did not stop")
	}
}

func TestBrokerCommandBadConfigNamesKey(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte("maxMessageSize=lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := newBrokerCmd()
	cmd.SetArgs([]string{"--config", conf, "--data-dir", filepath.Join(dir, "data"), "--log-level", "error"})
	err := cmd.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "maxMessageSize") {
		t.Fatalf("err %v, want one naming maxMessageSize", err)
	}
}
