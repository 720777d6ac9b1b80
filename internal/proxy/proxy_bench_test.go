//go:build !race

package proxy

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	golang "github.com/apache/rocketmq-clients/golang/v5"
)

// Benchmarks through the proxy with the official Go SDK, 1 KiB bodies, over every e2e mode
// (memory = the proxy and SDK alone, the peer figure for the real modes). Run e.g.:
//
//	go test ./internal/proxy -run '^$' -bench 'SDK' -benchtime 3000x

func reportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func flushName(sync bool) string {
	if sync {
		return "SYNC_FLUSH"
	}
	return "ASYNC_FLUSH"
}

func BenchmarkSDKSend(b *testing.B) {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	for _, mode := range e2eModes {
		flushes := []bool{false}
		if mode.name != "memory" {
			flushes = append(flushes, true)
		}
		for _, syncFlush := range flushes {
			b.Run(mode.name+"/"+flushName(syncFlush), func(b *testing.B) {
				env := mode.start(b, e2eOptions{SyncFlush: syncFlush})
				env.CreateTopic(b, "bench-send", MessageTypeNormal, 8)
				p := newSDKProducer(b, env.Endpoint, nil, golang.WithTopics("bench-send"))
				for _, conc := range []int{1, 16, 64} {
					b.Run(fmt.Sprintf("senders=%d", conc), func(b *testing.B) {
						lat := make([]time.Duration, b.N)
						var next atomic.Int64
						var wg sync.WaitGroup
						b.ResetTimer()
						start := time.Now()
						for g := 0; g < conc; g++ {
							wg.Add(1)
							go func() {
								defer wg.Done()
								for {
									i := next.Add(1) - 1
									if i >= int64(b.N) {
										return
									}
									t0 := time.Now()
									if _, err := p.Send(context.Background(), &golang.Message{Topic: "bench-send", Body: body}); err != nil {
										b.Error(err)
										return
									}
									lat[i] = time.Since(t0)
								}
							}()
						}
						wg.Wait()
						elapsed := time.Since(start)
						b.StopTimer()
						reportLatency(b, lat, elapsed)
					})
				}
			})
		}
	}
}

func BenchmarkSDKReceiveAck(b *testing.B) {
	body := make([]byte, 1024)
	for _, mode := range e2eModes {
		b.Run(mode.name, func(b *testing.B) {
			env := mode.start(b, e2eOptions{})
			topic, group := fmt.Sprintf("bench-recv-%d", b.N), fmt.Sprintf("g-bench-recv-%d", b.N)
			env.CreateTopic(b, topic, MessageTypeNormal, 8)
			env.CreateGroup(b, group, false, 16)
			p := newSDKProducer(b, env.Endpoint, nil, golang.WithTopics(topic))
			var wg sync.WaitGroup
			var next atomic.Int64
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := p.Send(context.Background(), &golang.Message{Topic: topic, Body: body}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			const consumers = 4
			cs := make([]golang.SimpleConsumer, consumers)
			for i := range cs {
				cs[i] = newSDKConsumer(b, env.Endpoint, group, map[string]*golang.FilterExpression{topic: golang.SUB_ALL}, nil)
			}
			var got atomic.Int64
			var finished atomic.Int64 // unix nanos when the last message was acked
			b.ResetTimer()
			start := time.Now()
			deadline := start.Add(2 * time.Minute)
			for _, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for got.Load() < int64(b.N) && time.Now().Before(deadline) {
						mvs, err := c.Receive(context.Background(), 32, 30*time.Second)
						if err != nil {
							continue
						}
						for _, mv := range mvs {
							if err := c.Ack(context.Background(), mv); err != nil {
								b.Error(err)
							}
						}
						if got.Add(int64(len(mvs))) >= int64(b.N) {
							finished.CompareAndSwap(0, time.Now().UnixNano())
						}
					}
				}()
			}
			// Consumers still long-polling when the last message was acked end on their own;
			// the figure stops at the last ack.
			wg.Wait()
			b.StopTimer()
			elapsed := time.Duration(finished.Load() - start.UnixNano())
			if got.Load() < int64(b.N) {
				b.Fatalf("received %d of %d", got.Load(), b.N)
			}
			b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "msgs/s")
		})
	}
}
