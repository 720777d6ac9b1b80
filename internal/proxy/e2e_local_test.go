//go:build !race

package proxy_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/proxy/local"
)

// Local mode: the broker in process (no NameServer), the proxy calling it through the local
// backend with no network hop between them.

func init() { proxy.RegisterE2EMode("local", startLocalEnv) }

func startLocalEnv(t testing.TB, opts proxy.E2EOptions) *proxy.E2EEnv {
	logger := logging.Discard()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := e2eBrokerConfig(t, "", opts.SyncFlush)
	cfg.NamesrvAddrs = nil
	cfg.ListenAddr = ln.Addr().String()
	cfg.AdvertiseAddr = ln.Addr().String()
	br, err := broker.NewWithListener(cfg, logger, ln)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "broker", func(ctx context.Context) error { defer br.Close(); return br.Run(ctx) })
	be := local.New(br, logger)
	endpoint := proxy.E2EStartProxy(t, be, opts)
	runUntilCleanup(t, "local backend", be.Run)
	return &proxy.E2EEnv{
		Endpoint: endpoint,
		CreateTopic: func(t testing.TB, name string, typ proxy.MessageType, queues int) {
			tc := broker.NewTopicConfig(name, int32(queues))
			tc.Attributes["message.type"] = typ.String()
			if err := br.CreateTopic(tc); err != nil {
				t.Fatalf("create topic %s: %v", name, err)
			}
		},
		CreateGroup: func(t testing.TB, name string, fifo bool, retry int) {
			gc := broker.NewGroupConfig(name)
			gc.ConsumeMessageOrderly = fifo
			gc.RetryMaxTimes = int32(retry)
			if err := br.Groups.Update(gc); err != nil {
				t.Fatalf("create group %s: %v", name, err)
			}
		},
		CheckWithin: 20 * time.Second,
		OnlineConsumers: func(_ testing.TB, group string) map[string]string {
			out := map[string]string{}
			if g, ok := br.Clients.ConsumerGroup(group); ok {
				for _, ch := range g.Channels {
					out[ch.ClientID] = ch.Language
				}
			}
			return out
		},
	}
}
