package broker

// Broker benchmarks over loopback with 1 KiB messages, each beside the raw store figure
// measured in the same run (BenchmarkStore*). Record figures in BENCHMARKS.md, section
// "Broker (issue 3)". Example:
//
//	go test -run '^$' -bench 'BenchmarkSend|BenchmarkStorePut|BenchmarkPull|BenchmarkStoreGet' \
//	    -benchtime 3s -count 3 ./internal/broker/
//	go test -run '^$' -bench 'BenchmarkE2E' -benchtime 5000x -count 3 ./internal/broker/

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

const benchBodySize = 1024

var benchBody = func() []byte {
	b := make([]byte, benchBodySize)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

var flushModes = []string{FlushAsync, FlushSync}

func benchConfig(b *testing.B, flush string) Config {
	cfg := testConfig(b)
	cfg.FlushDiskType = flush
	cfg.MappedFileSizeCommitLog = 256 << 20
	cfg.MaxMessageSize = 4 << 20
	return cfg
}

func flushName(f string) string {
	if f == FlushSync {
		return "sync"
	}
	return "async"
}

// runConcurrent runs n operations split over conc workers and reports msgs/s (msgsPerOp
// messages per operation) and MB/s of bodies.
func runConcurrent(b *testing.B, conc, msgsPerOp int, op func(worker int) error) {
	b.SetBytes(int64(benchBodySize * msgsPerOp))
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(w); err != nil {
					failed.Store(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*msgsPerOp)/el.Seconds(), "msgs/s")
}

// BenchmarkSend: SEND_MESSAGE_V2 (and SEND_BATCH_MESSAGE of 32) over one loopback
// connection, the way a client process multiplexes its producers.
func BenchmarkSend(b *testing.B) {
	for _, flush := range flushModes {
		for _, sc := range []struct {
			name        string
			conc, batch int
		}{{"c1", 1, 1}, {"c32", 32, 1}, {"batch32", 1, 32}, {"batch32-c8", 8, 32}} {
			b.Run(flushName(flush)+"/"+sc.name, func(b *testing.B) {
				tb := startBroker(b, benchConfig(b, flush))
				if err := tb.CreateTopic(NewTopicConfig("Bench", 8)); err != nil {
					b.Fatal(err)
				}
				addr := tb.ListenAddr().String()
				props := string(message.EncodeProperties(map[string]string{message.PropertyTags: "TagA"}))
				var body []byte
				code := int32(remoting.SendMessageV2)
				if sc.batch > 1 {
					code = remoting.SendBatchMessage
					msgs := make([]message.Message, sc.batch)
					for i := range msgs {
						msgs[i] = message.Message{Body: benchBody, Properties: map[string]string{message.PropertyTags: "TagA"}}
					}
					body = encodeBatch(msgs...)
				} else {
					body = benchBody
				}
				ctx := context.Background()
				runConcurrent(b, sc.conc, sc.batch, func(w int) error {
					ext := map[string]string{"a": "PG", "b": "Bench", "c": "TBW102", "d": "4", "e": strconv.Itoa(w % 8),
						"f": "0", "g": "1700000000000", "h": "0", "i": props, "j": "0", "k": "false",
						"m": strconv.FormatBool(sc.batch > 1)}
					resp, err := tb.cli.Invoke(ctx, addr, remoting.NewRequest(code, ext, body))
					if err != nil {
						return err
					}
					if resp.Code != remoting.Success {
						return fmt.Errorf("send: %d %s", resp.Code, resp.Remark)
					}
					return nil
				})
			})
		}
	}
}

// BenchmarkEchoPeer is the network peer of BenchmarkSend: a bare remoting server answering
// the same request frames with a send-result-shaped response (no broker, no store).
func BenchmarkEchoPeer(b *testing.B) {
	for _, sc := range []struct {
		name        string
		conc, batch int
	}{{"c1", 1, 1}, {"c32", 32, 1}, {"batch32", 1, 32}, {"batch32-c8", 8, 32}} {
		b.Run(sc.name, func(b *testing.B) {
			srv := remoting.NewServer(remoting.DefaultServerConfig(), testLogger(b))
			echo := func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
				resp := remoting.NewResponse(remoting.Success, "")
				resp.SetExt("msgId", "7F00000100002A9F0000000000000000")
				resp.SetExt("queueId", req.ExtFields["e"])
				resp.SetExt("queueOffset", "12345")
				resp.SetExt("transactionId", "7F0000010001000000000000000000AB")
				resp.SetExt(message.PropertyMsgRegion, defaultRegion)
				resp.SetExt(message.PropertyTraceSwitch, "true")
				return resp
			}
			srv.Handle(remoting.SendMessageV2, echo)
			srv.Handle(remoting.SendBatchMessage, echo)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = srv.Serve(ln) }()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			cli := remoting.NewClient(remoting.DefaultClientConfig(), testLogger(b))
			defer cli.Close()
			props := string(message.EncodeProperties(map[string]string{message.PropertyTags: "TagA"}))
			body, code := benchBody, int32(remoting.SendMessageV2)
			if sc.batch > 1 {
				code = remoting.SendBatchMessage
				msgs := make([]message.Message, sc.batch)
				for i := range msgs {
					msgs[i] = message.Message{Body: benchBody, Properties: map[string]string{message.PropertyTags: "TagA"}}
				}
				body = encodeBatch(msgs...)
			}
			ctx := context.Background()
			addr := ln.Addr().String()
			runConcurrent(b, sc.conc, sc.batch, func(w int) error {
				ext := map[string]string{"a": "PG", "b": "Bench", "c": "TBW102", "d": "4", "e": strconv.Itoa(w % 8),
					"f": "0", "g": "1700000000000", "h": "0", "i": props, "j": "0", "k": "false",
					"m": strconv.FormatBool(sc.batch > 1)}
				_, err := cli.Invoke(ctx, addr, remoting.NewRequest(code, ext, body))
				return err
			})
		})
	}
}

func openBenchStore(b *testing.B, flush string) *store.Store {
	cfg := store.DefaultConfig()
	cfg.StorePathRootDir = b.TempDir()
	cfg.FlushDiskType = flush
	cfg.MappedFileSizeCommitLog = 256 << 20
	cfg.StoreHost = netip.MustParseAddrPort("127.0.0.1:10911")
	st, err := store.Open(cfg, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}

func benchMessage(qid int32) *message.Ext {
	return &message.Ext{Message: message.Message{Topic: "Bench", Body: benchBody,
		Properties: map[string]string{message.PropertyTags: "TagA", message.PropertyUniqKey: message.NewUniqID()}},
		QueueID: qid, BornTimestamp: 1700000000000, BornHost: netip.MustParseAddrPort("127.0.0.1:5555")}
}

// BenchmarkStorePut is the raw store peer of BenchmarkSend: the same puts without network,
// codec or handler.
func BenchmarkStorePut(b *testing.B) {
	for _, flush := range flushModes {
		for _, sc := range []struct {
			name        string
			conc, batch int
		}{{"c1", 1, 1}, {"c32", 32, 1}, {"batch32", 1, 32}, {"batch32-c8", 8, 32}} {
			b.Run(flushName(flush)+"/"+sc.name, func(b *testing.B) {
				st := openBenchStore(b, flush)
				ctx := context.Background()
				runConcurrent(b, sc.conc, sc.batch, func(w int) error {
					if sc.batch == 1 {
						_, err := st.Put(ctx, benchMessage(int32(w%8)))
						return err
					}
					ms := make([]*message.Ext, sc.batch)
					for i := range ms {
						ms[i] = benchMessage(int32(w % 8))
					}
					_, err := st.PutBatch(ctx, ms)
					return err
				})
			})
		}
	}
}

// fillQueue stores n 1 KiB messages in queue 0 of topic Bench and waits for dispatch.
func fillQueue(b *testing.B, st *store.Store, n int) {
	ctx := context.Background()
	for i := 0; i < n; i += 32 {
		ms := make([]*message.Ext, min(32, n-i))
		for j := range ms {
			ms[j] = benchMessage(0)
		}
		if _, err := st.PutBatch(ctx, ms); err != nil {
			b.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := st.WaitDispatched(wctx, st.Stats().MaxPhysicalOffset); err != nil {
		b.Fatal(err)
	}
}

const pullBatch = 32

// BenchmarkPull: PULL_MESSAGE of 32 messages at a time from a filled queue, one puller
// walking the queue (wrapping at the end), over loopback.
func BenchmarkPull(b *testing.B) {
	for _, flush := range flushModes {
		b.Run(flushName(flush), func(b *testing.B) {
			tb := startBroker(b, benchConfig(b, flush))
			if err := tb.CreateTopic(NewTopicConfig("Bench", 8)); err != nil {
				b.Fatal(err)
			}
			const n = 32 * 1024
			fillQueue(b, tb.Store, n)
			addr := tb.ListenAddr().String()
			ctx := context.Background()
			var off int64
			runConcurrent(b, 1, pullBatch, func(int) error {
				req := remoting.NewRequest(remoting.PullMessage, map[string]string{
					"consumerGroup": "BG", "topic": "Bench", "queueId": "0", "queueOffset": strconv.FormatInt(off, 10),
					"maxMsgNums": strconv.Itoa(pullBatch), "sysFlag": "0", "commitOffset": "0",
					"suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0", "expressionType": "TAG"}, nil)
				resp, err := tb.cli.Invoke(ctx, addr, req)
				if err != nil {
					return err
				}
				if resp.Code != remoting.Success {
					return fmt.Errorf("pull at %d: %d", off, resp.Code)
				}
				off, _ = strconv.ParseInt(resp.ExtString("nextBeginOffset"), 10, 64)
				if off >= n {
					off = 0
				}
				return nil
			})
		})
	}
}

// BenchmarkStoreGet is the raw store peer of BenchmarkPull: Get of 32 records plus the
// copy into one body the handler makes.
func BenchmarkStoreGet(b *testing.B) {
	for _, flush := range flushModes {
		b.Run(flushName(flush), func(b *testing.B) {
			st := openBenchStore(b, flush)
			const n = 32 * 1024
			fillQueue(b, st, n)
			var off int64
			runConcurrent(b, 1, pullBatch, func(int) error {
				res, err := st.Get("Bench", 0, off, pullBatch, pullMaxBytes, nil)
				if err != nil {
					return err
				}
				body := make([]byte, 0, res.TotalBytes())
				for _, r := range res.Records {
					body = append(body, r.Data...)
				}
				off = res.NextBeginOffset
				res.Release()
				if off >= n {
					off = 0
				}
				_ = body
				return nil
			})
		})
	}
}

// BenchmarkE2E: end-to-end latency, go2 producer -> broker -> go2 push consumer, at a fixed
// rate of 1000 msgs/s (b.N messages); reports p50/p99 of send-start-to-receipt. The body
// carries the send time.
func BenchmarkE2E(b *testing.B) {
	const rate = 1000
	for _, flush := range flushModes {
		b.Run(flushName(flush), func(b *testing.B) {
			c := startCluster(b, func(c *Config) {
				c.FlushDiskType = flush
				c.MappedFileSizeCommitLog = 256 << 20
			})
			c.createTopic("E2E", 4)
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			done := make(chan struct{})
			var got atomic.Int64
			c.pushConsumer("E2EG", "E2E", "*", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				now := time.Now()
				mu.Lock()
				for _, m := range msgs {
					ns, err := strconv.ParseInt(string(m.Body[:19]), 10, 64)
					if err == nil {
						lat = append(lat, now.Sub(time.Unix(0, ns)))
					}
				}
				mu.Unlock()
				if got.Add(int64(len(msgs))) >= int64(b.N) {
					select {
					case <-done:
					default:
						close(done)
					}
				}
				return consumer.ConsumeSuccess, nil
			})
			p := c.producer()
			time.Sleep(2 * time.Second) // consumer owns the queues before the first send
			body := make([]byte, benchBodySize)
			copy(body, benchBody)
			b.ResetTimer()
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				<-tick.C
				m := make([]byte, len(body))
				copy(m, body)
				copy(m, strconv.FormatInt(time.Now().UnixNano(), 10))
				if err := p.SendAsync(ctx, func(context.Context, *primitive.SendResult, error) {}, primitive.NewMessage("E2E", m)); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				b.Fatalf("received %d of %d", got.Load(), b.N)
			}
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkStoreE2E is the raw store peer of BenchmarkE2E: at the same rate, the time from
// the start of a Put to the store's dispatch of that message (when a long-polling pull is
// woken), with the same flush mode.
func BenchmarkStoreE2E(b *testing.B) {
	const rate = 1000
	for _, flush := range flushModes {
		b.Run(flushName(flush), func(b *testing.B) {
			st := openBenchStore(b, flush)
			var mu sync.Mutex
			started := map[string]time.Time{}
			lat := make([]time.Duration, 0, b.N)
			var got atomic.Int64
			done := make(chan struct{})
			st.OnDispatch(func(ev store.DispatchEvent) {
				now := time.Now()
				mu.Lock()
				uniq, _ := ev.Property(message.PropertyUniqKey)
				if t0, ok := started[uniq]; ok {
					lat = append(lat, now.Sub(t0))
				}
				mu.Unlock()
				if got.Add(1) == int64(b.N) {
					close(done)
				}
			})
			ctx := context.Background()
			b.ResetTimer()
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			var wg sync.WaitGroup
			for i := 0; i < b.N; i++ {
				<-tick.C
				m := benchMessage(int32(i % 4))
				mu.Lock()
				started[m.UniqKey()] = time.Now()
				mu.Unlock()
				wg.Add(1)
				go func() { // like the broker: each put on its own goroutine
					defer wg.Done()
					if _, err := st.Put(ctx, m); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				b.Fatalf("dispatched %d of %d", got.Load(), b.N)
			}
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkE2ERemoting is BenchmarkE2E with the clients replaced by Rocketry's remoting
// client: SEND_MESSAGE_V2 at the same rate, and one long-polling PULL_MESSAGE loop per queue
// (what a push consumer does, without go2's own scheduling).
func BenchmarkE2ERemoting(b *testing.B) {
	const rate, queues = 1000, 4
	for _, flush := range flushModes {
		b.Run(flushName(flush), func(b *testing.B) {
			tb := startBroker(b, benchConfig(b, flush))
			if err := tb.CreateTopic(NewTopicConfig("E2E", queues)); err != nil {
				b.Fatal(err)
			}
			addr := tb.ListenAddr().String()
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			var got atomic.Int64
			done := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for q := 0; q < queues; q++ {
				wg.Add(1)
				go func(q int) {
					defer wg.Done()
					var off int64
					for ctx.Err() == nil {
						resp, err := tb.cli.Invoke(ctx, addr, remoting.NewRequest(remoting.PullMessage, map[string]string{
							"consumerGroup": "E2EG", "topic": "E2E", "queueId": strconv.Itoa(q), "queueOffset": strconv.FormatInt(off, 10),
							"maxMsgNums": "32", "sysFlag": strconv.Itoa(pullFlagSuspend), "commitOffset": "0",
							"suspendTimeoutMillis": "5000", "subscription": "*", "subVersion": "0", "expressionType": "TAG"}, nil))
						if err != nil {
							return
						}
						now := time.Now()
						if resp.Code == remoting.Success {
							msgs, err := message.DecodeRecords(resp.Body)
							if err != nil {
								b.Error(err)
								return
							}
							mu.Lock()
							for _, m := range msgs {
								if ns, err := strconv.ParseInt(string(m.Body[:19]), 10, 64); err == nil {
									lat = append(lat, now.Sub(time.Unix(0, ns)))
								}
							}
							mu.Unlock()
							if got.Add(int64(len(msgs))) == int64(b.N) {
								close(done)
							}
						}
						off, _ = strconv.ParseInt(resp.ExtString("nextBeginOffset"), 10, 64)
					}
				}(q)
			}
			defer func() { cancel(); wg.Wait() }()
			time.Sleep(200 * time.Millisecond) // pulls parked
			props := string(message.EncodeProperties(map[string]string{message.PropertyTags: "TagA"}))
			b.ResetTimer()
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			for i := 0; i < b.N; i++ {
				<-tick.C
				body := make([]byte, benchBodySize)
				copy(body, benchBody)
				copy(body, strconv.FormatInt(time.Now().UnixNano(), 10))
				ext := map[string]string{"a": "PG", "b": "E2E", "c": "TBW102", "d": "4", "e": strconv.Itoa(i % queues),
					"f": "0", "g": "1700000000000", "h": "0", "i": props, "j": "0", "k": "false", "m": "false"}
				tb.cli.InvokeAsync(context.Background(), addr, remoting.NewRequest(remoting.SendMessageV2, ext, body), func(*remoting.Command, error) {})
			}
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				b.Fatalf("received %d of %d", got.Load(), b.N)
			}
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
