//go:build !race

package proxy_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/admin"
	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/proxy/cluster"
)

// Cluster mode: a real NameServer and broker in process (temp dir, free ports), the proxy with
// the cluster backend speaking remoting to them.

func init() { proxy.RegisterE2EMode("cluster", startClusterEnv) }

// runUntilCleanup runs f(ctx) in a goroutine and stops it when the test ends.
func runUntilCleanup(t testing.TB, what string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop", what)
		}
	})
}

// e2eBrokerConfig is a broker tuned for tests: short transaction checks and invisible times.
func e2eBrokerConfig(t testing.TB, nsAddr string, syncFlush bool) broker.Config {
	cfg := broker.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.NamesrvAddrs = []string{nsAddr}
	cfg.DataDir = t.TempDir()
	cfg.BrokerName = "broker-a"
	cfg.ClusterName = "e2e"
	cfg.MappedFileSizeCommitLog = 64 << 20
	cfg.TransactionTimeOut = time.Second
	cfg.TransactionCheckInterval = time.Second
	cfg.PopMinInvisibleTime = time.Second
	if syncFlush {
		cfg.FlushDiskType = broker.FlushSync
	}
	return cfg
}

func startClusterEnv(t testing.TB, opts proxy.E2EOptions) *proxy.E2EEnv {
	logger := logging.Discard()
	nscfg := namesrv.DefaultConfig()
	nscfg.Listen = "127.0.0.1:0"
	ns, err := namesrv.New(nscfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "namesrv", func(ctx context.Context) error { defer ns.Close(); return ns.Run(ctx) })
	nsAddr := ns.Addr().String()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bcfg := e2eBrokerConfig(t, nsAddr, opts.SyncFlush)
	bcfg.ListenAddr = ln.Addr().String()
	bcfg.AdvertiseAddr = ln.Addr().String()
	br, err := broker.NewWithListener(bcfg, logger, ln)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "broker", func(ctx context.Context) error { defer br.Close(); return br.Run(ctx) })

	ccfg := cluster.DefaultConfig()
	ccfg.NamesrvAddrs = []string{nsAddr}
	ccfg.CacheTTL = time.Second
	ccfg.HeartbeatInterval = 500 * time.Millisecond
	be, err := cluster.New(ccfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := proxy.E2EStartProxy(t, be, opts)
	runUntilCleanup(t, "cluster backend", func(ctx context.Context) error { defer be.Close(); return be.Run(ctx) })

	acfg := admin.DefaultConfig()
	acfg.NameServers = []string{nsAddr}
	adm, err := admin.New(acfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close() })
	// Wait (bounded) for the broker's first registration.
	deadline := time.Now().Add(10 * time.Second)
	for {
		bs, err := adm.ClusterList(context.Background())
		if err == nil && len(bs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not register with the NameServer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &proxy.E2EEnv{
		Endpoint: endpoint,
		CreateTopic: func(t testing.TB, name string, typ proxy.MessageType, queues int) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := adm.CreateTopic(ctx, admin.TopicSpec{Name: name, Type: admin.TopicType(typ.String()), Queues: queues}); err != nil {
				t.Fatalf("create topic %s: %v", name, err)
			}
		},
		CreateGroup: func(t testing.TB, name string, fifo bool, retry int) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := adm.CreateGroup(ctx, admin.GroupSpec{Name: name, FIFO: fifo, MaxAttempts: retry}); err != nil {
				t.Fatalf("create group %s: %v", name, err)
			}
		},
		CheckWithin: 20 * time.Second,
		OnlineConsumers: func(t testing.TB, group string) map[string]string {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out := map[string]string{}
			d, err := adm.DescribeGroup(ctx, group)
			if err != nil {
				t.Logf("describe group %s: %v", group, err)
				return out
			}
			for _, c := range d.Clients {
				out[c.ClientID] = c.Language
			}
			return out
		},
	}
}
