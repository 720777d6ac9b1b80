//go:build !race

package proxy_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/proxy/cluster"
	"github.com/rocketry-mq/rocketry/internal/proxy/local"
)

// BenchmarkBackendSend measures the backends alone (no SDK, no gRPC): the cost of the
// remoting hop in cluster mode against the in-process call of local mode, ASYNC_FLUSH, 1 KiB.
//
//	go test ./internal/proxy -run '^$' -bench BackendSend -benchtime 20000x
func BenchmarkBackendSend(b *testing.B) {
	logger := logging.Discard()
	for _, mode := range []string{"local", "cluster"} {
		b.Run(mode, func(b *testing.B) {
			var nsAddr string
			if mode == "cluster" {
				nscfg := namesrv.DefaultConfig()
				nscfg.Listen = "127.0.0.1:0"
				ns, err := namesrv.New(nscfg, logger)
				if err != nil {
					b.Fatal(err)
				}
				runUntilCleanup(b, "namesrv", func(ctx context.Context) error { defer ns.Close(); return ns.Run(ctx) })
				nsAddr = ns.Addr().String()
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			cfg := e2eBrokerConfig(b, nsAddr, false)
			if nsAddr == "" {
				cfg.NamesrvAddrs = nil
			}
			cfg.ListenAddr, cfg.AdvertiseAddr = ln.Addr().String(), ln.Addr().String()
			br, err := broker.NewWithListener(cfg, logger, ln)
			if err != nil {
				b.Fatal(err)
			}
			runUntilCleanup(b, "broker", func(ctx context.Context) error { defer br.Close(); return br.Run(ctx) })
			tc := broker.NewTopicConfig("bench-be", 8)
			if err := br.CreateTopic(tc); err != nil {
				b.Fatal(err)
			}
			var be proxy.Backend
			if mode == "local" {
				be = local.New(br, logger)
			} else {
				ccfg := cluster.DefaultConfig()
				ccfg.NamesrvAddrs = []string{nsAddr}
				cb, err := cluster.New(ccfg, logger)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { cb.Close() })
				be = cb
				// The broker registers asynchronously: wait for the route.
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					if _, err := be.QueryRoute(context.Background(), "bench-be"); err == nil {
						break
					} else if time.Now().After(deadline) {
						b.Fatal(err)
					}
				}
			}
			body := make([]byte, 1024)
			for _, conc := range []int{1, 64} {
				b.Run(fmt.Sprintf("senders=%d", conc), func(b *testing.B) {
					var next atomic.Int64
					var wg sync.WaitGroup
					b.ResetTimer()
					start := time.Now()
					for g := 0; g < conc; g++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
								_, err := be.Send(context.Background(), &proxy.SendRequest{Broker: br.Name(), QueueID: int32(i % 8), ProducerGroup: "bench-be",
									Message: &proxy.Message{Topic: "bench-be", Body: body, BornTimestamp: time.Now().UnixMilli(), Properties: map[string]string{"UNIQ_KEY": fmt.Sprint(i)}}})
								if err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
				})
			}
		})
	}
}
