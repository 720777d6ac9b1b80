package namesrv

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// BenchmarkRouteLookup measures GET_ROUTEINFO_BY_TOPIC against a NameServer holding 4
// broker groups (master + secondary) and 1000 topics, with 1 and 64 callers; the "echo"
// peer is a bare remoting server answering the same request with a precomputed body of
// the same size, so the ratio isolates the NameServer's own cost.
func BenchmarkRouteLookup(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	srv, err := New(cfg, discard())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("Topic%04d", i)
	}
	now := time.Now()
	for g := range 4 {
		name := fmt.Sprintf("broker-%c", 'a'+g)
		srv.Table().Register(reg("DefaultCluster", name, fmt.Sprintf("10.0.0.%d:10911", g), 0, topics(1, names...)), now)
		srv.Table().Register(reg("DefaultCluster", name, fmt.Sprintf("10.0.1.%d:10911", g), 1, topics(1, names...)), now)
	}
	body := srv.Table().Route("Topic0007").Encode()

	echo := remoting.NewServer(remoting.ServerConfig{}, discard())
	echo.Handle(remoting.GetRouteinfoByTopic, func(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
		r := remoting.NewResponse(remoting.Success, "")
		r.Body = body
		return r
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go echo.Serve(ln)
	defer echo.Shutdown(context.Background())

	// Alternate chunks of 1000 lookups on each server so both see the same machine load;
	// each b.N iteration is one lookup on each.
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			cli := remoting.NewClient(remoting.ClientConfig{}, discard())
			defer cli.Close()
			bctx := context.Background()
			lookup := func(addr string) func() error {
				return func() error {
					resp, err := cli.Invoke(bctx, addr, remoting.NewRequest(remoting.GetRouteinfoByTopic, map[string]string{"topic": "Topic0007"}, nil))
					if err == nil && len(resp.Body) != len(body) {
						err = fmt.Errorf("body %d bytes, want %d", len(resp.Body), len(body))
					}
					return err
				}
			}
			nsOp, echoOp := lookup(srv.Addr().String()), lookup(ln.Addr().String())
			var tNS, tEcho time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(1000, b.N-done)
				tNS += chunk(b, n, callers, nsOp)
				tEcho += chunk(b, n, callers, echoOp)
				done += n
			}
			b.StopTimer()
			ns, echo := float64(b.N)/tNS.Seconds(), float64(b.N)/tEcho.Seconds()
			b.ReportMetric(ns, "namesrv-req/s")
			b.ReportMetric(echo, "echo-req/s")
			b.ReportMetric(ns/echo, "ratio")
		})
	}
}

// chunk runs n operations over callers goroutines and returns the elapsed time.
func chunk(b *testing.B, n, callers int, op func() error) time.Duration {
	var wg sync.WaitGroup
	errc := make(chan error, callers)
	start := time.Now()
	for g := range callers {
		count := n / callers
		if g < n%callers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range count {
				if err := op(); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	return el
}

// BenchmarkTableRegister measures a full re-registration (changed data version) of a
// master with 1000 topics: the cost a NameServer pays per broker every 30 s.
func BenchmarkTableRegister(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("Topic%04d", i)
	}
	tb := NewTable()
	now := time.Now()
	w := topics(1, names...)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		i++
		w.DataVersion.Counter = i
		tb.Register(Registration{Cluster: "c", BrokerName: "b", BrokerAddr: "a:1", Topics: w}, now)
	}
}

func BenchmarkTableRoute(b *testing.B) {
	tb := NewTable()
	now := time.Now()
	for g := range 4 {
		tb.Register(reg("c", fmt.Sprintf("b%d", g), fmt.Sprintf("a:%d", g), 0, topics(1, "T")), now)
	}
	b.ReportAllocs()
	for b.Loop() {
		if tb.Route("T").Encode() == nil {
			b.Fatal("no route")
		}
	}
}
