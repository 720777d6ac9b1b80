package testcluster

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/standalone"
)

// Options configure Start; the zero value is a ready-to-use cluster.
type Options struct {
	// Dir is the data directory. Default t.TempDir().
	Dir string
	// HTTP starts the HTTP listener (/healthz, /metrics, /debug/pprof/). Default off.
	HTTP bool
	// Logger receives every component's logs. Default: discarded, or text on stderr at debug
	// level when ROCKETRY_TEST_LOG=1.
	Logger *slog.Logger
	// Configure, when set, adjusts the configuration after the test defaults are applied
	// (e.g. c.Broker.FlushDiskType = broker.FlushSync, c.Proxy.MinInvisible = time.Second).
	Configure func(c *standalone.Config)
}

// Cluster is a running in-process deployment.
type Cluster struct {
	t    testing.TB
	cfg  standalone.Config
	log  *slog.Logger
	mu   sync.Mutex
	srv  *standalone.Server
	done chan error
}

// Start starts a cluster and waits until it is ready.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	cfg := standalone.DefaultConfig()
	cfg.DataDir = opts.Dir
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.NamesrvListen, cfg.BrokerListen, cfg.GRPCListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.HTTPListen = ""
	if opts.HTTP {
		cfg.HTTPListen = "127.0.0.1:0"
	}
	cfg.Broker.MappedFileSizeCommitLog = 16 << 20
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	log := opts.Logger
	if log == nil {
		log = logging.Discard()
		if os.Getenv("ROCKETRY_TEST_LOG") == "1" {
			log, _ = logging.New(os.Stderr, logging.Config{Level: "debug"})
		}
	}
	c := &Cluster{t: t, cfg: cfg, log: log}
	c.start()
	t.Cleanup(c.Stop)
	return c
}

func (c *Cluster) start() {
	c.t.Helper()
	srv, err := standalone.New(c.cfg, c.log)
	if err != nil {
		c.t.Fatalf("testcluster: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitReady(ctx); err != nil {
		srv.Close()
		<-done
		c.t.Fatalf("testcluster: %v", err)
	}
	c.mu.Lock()
	c.srv, c.done = srv, done
	c.mu.Unlock()
}

// Stop shuts the cluster down (idempotent) and reports a shutdown error as a test error.
func (c *Cluster) Stop() {
	c.mu.Lock()
	srv, done := c.srv, c.done
	c.srv, c.done = nil, nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	if err := <-done; err != nil {
		c.t.Errorf("testcluster: shutdown: %v", err)
	}
}

// Restart stops the cluster and starts it again on the same data dir and configuration.
// Listen ports are ephemeral, so addresses change: read them again afterwards.
func (c *Cluster) Restart() {
	c.t.Helper()
	c.Stop()
	c.start()
}

// Server returns the running standalone server (components, metrics registry, health).
func (c *Cluster) Server() *standalone.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv
}

// GRPCEndpoint is the Proxy's "host:port", the Endpoint of the official 5.x SDKs.
func (c *Cluster) GRPCEndpoint() string { return c.Server().GRPCAddr() }

// NameServerAddr is the NameServer's "host:port" (remoting clients, admin).
func (c *Cluster) NameServerAddr() string { return c.Server().NamesrvAddr() }

// BrokerAddr is the Broker's advertised "host:port".
func (c *Cluster) BrokerAddr() string { return c.Server().BrokerAddr() }

// HTTPAddr is the HTTP listener's "host:port" ("" unless Options.HTTP).
func (c *Cluster) HTTPAddr() string { return c.Server().HTTPAddr() }

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return c.cfg.DataDir }
