package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/standalone"
)

// Options configure Start; the zero value is ready to use.
type Options struct {
	// Dir is the data directory. Default "": a new temporary directory, removed by Close.
	// Give a directory to keep data across clusters (restart tests).
	Dir string
	// Logger receives the cluster's logs. Default nil: silent.
	Logger *slog.Logger
	// SyncFlush makes every send wait for fsync (SYNC_FLUSH). Default false (ASYNC_FLUSH).
	SyncFlush bool
	// HTTP starts the HTTP listener with /healthz, /metrics and /debug/pprof/. Default false.
	HTTP bool
	// DisableAutoCreate turns off creation of topics and groups on first use. Default false.
	DisableAutoCreate bool
}

// Cluster is a running embedded cluster. Its methods are safe for concurrent use.
type Cluster struct {
	srv     *standalone.Server
	done    chan error
	tempDir string

	closeOnce sync.Once
	closeErr  error
}

// Start starts a cluster and returns once it is ready to serve clients (or ctx ends).
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	cfg := standalone.DefaultConfig()
	c := &Cluster{}
	cfg.DataDir = opts.Dir
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "rocketry-embedded-")
		if err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
		cfg.DataDir, c.tempDir = dir, dir
	}
	cfg.NamesrvListen, cfg.BrokerListen, cfg.GRPCListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.HTTPListen = ""
	if opts.HTTP {
		cfg.HTTPListen = "127.0.0.1:0"
	}
	cfg.Broker.MappedFileSizeCommitLog = 16 << 20
	if opts.SyncFlush {
		cfg.Broker.FlushDiskType = broker.FlushSync
	}
	if opts.DisableAutoCreate {
		cfg.Broker.AutoCreateTopicEnable, cfg.Broker.AutoCreateSubscriptionGroup, cfg.Proxy.AutoCreateTopic = false, false, false
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv, err := standalone.New(cfg, logger)
	if err != nil {
		c.removeTemp()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	c.srv, c.done = srv, make(chan error, 1)
	go func() { c.done <- srv.Run(context.Background()) }()
	if err := srv.WaitReady(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("embedded: %w", err), c.Close())
	}
	return c, nil
}

// GRPCEndpoint is the Proxy's "host:port": the Endpoint of the official 5.x SDKs.
func (c *Cluster) GRPCEndpoint() string { return c.srv.GRPCAddr() }

// NameServerAddr is the NameServer's "host:port" (4.x remoting clients, admin tools).
func (c *Cluster) NameServerAddr() string { return c.srv.NamesrvAddr() }

// BrokerAddr is the Broker's "host:port".
func (c *Cluster) BrokerAddr() string { return c.srv.BrokerAddr() }

// HTTPAddr is the HTTP listener's "host:port" ("" unless Options.HTTP).
func (c *Cluster) HTTPAddr() string { return c.srv.HTTPAddr() }

// Close shuts the cluster down (flushing the store) and removes its temporary directory.
// Safe to call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.srv.Close()
		c.closeErr = <-c.done
		c.removeTemp()
	})
	return c.closeErr
}

func (c *Cluster) removeTemp() {
	if c.tempDir != "" {
		if err := os.RemoveAll(c.tempDir); err != nil && c.closeErr == nil {
			c.closeErr = err
		}
	}
}
