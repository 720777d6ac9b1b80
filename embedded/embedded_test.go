package embedded_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/embedded"
)

func TestCloseRemovesTempDirAndFreesPorts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := embedded.Start(ctx, embedded.Options{HTTP: true, SyncFlush: true})
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{c.GRPCEndpoint(), c.NameServerAddr(), c.BrokerAddr(), c.HTTPAddr()}
	for _, a := range addrs {
		conn, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", a, err)
		}
		conn.Close()
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, a := range addrs {
		if conn, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Close", a)
		}
	}
}

func TestKeepsDataInGivenDir(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := embedded.Start(ctx, embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/broker"); err != nil {
		t.Fatalf("data dir not kept: %v", err)
	}
}

// TestStartWithEndedContext: a context that ends before the cluster is ready fails Start with
// the context's error only, and leaves nothing behind (QA F26).
func TestStartWithEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := embedded.Start(ctx, embedded.Options{})
	if err == nil {
		c.Close()
		t.Fatal("Start with an ended context succeeded")
	}
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "twice") {
		t.Fatalf("Start error = %q, want only the context's cancellation", err)
	}
}
