package remoting

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// benchRequest is a typical small request: a GET_ROUTEINFO-sized header plus a 64-byte body.
func benchRequest() *Command {
	return NewRequest(HeartBeat, map[string]string{"topic": "TopicTest", "clientID": "127.0.0.1@1234"}, make([]byte, 64))
}

func benchResponse(req *Command) *Command {
	r := NewResponse(Success, "")
	r.Body = req.Body
	return r
}

// runCallers runs b.N operations spread over n goroutines and reports round trips/s.
func runCallers(b *testing.B, n int, op func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	b.ResetTimer()
	start := time.Now()
	for g := range n {
		count := b.N / n
		if g < b.N%n {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range count {
				if err := op(g); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rt/s")
}

// BenchmarkRoundTrip measures Client.Invoke against a Server over loopback, with 1 and 64
// concurrent callers sharing the client's single connection.
func BenchmarkRoundTrip(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			srv := NewServer(ServerConfig{}, testLogger(nil))
			srv.Handle(HeartBeat, func(ctx context.Context, c *Conn, req *Command) *Command { return benchResponse(req) })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(ln)
			defer srv.Shutdown(context.Background())
			cli := NewClient(ClientConfig{}, testLogger(nil))
			defer cli.Close()
			addr := ln.Addr().String()
			ctx := context.Background()
			if _, err := cli.Invoke(ctx, addr, benchRequest()); err != nil {
				b.Fatal(err)
			}
			reqSize, respSize := benchFrameSizes()
			b.SetBytes(int64(reqSize + respSize))
			runCallers(b, callers, func(int) error {
				_, err := cli.Invoke(ctx, addr, benchRequest())
				return err
			})
		})
	}
}

func benchFrameSizes() (req, resp int) {
	rq := benchRequest()
	f1, _ := EncodeFrame(rq, SerializeJSON)
	rs := benchResponse(rq)
	rs.Opaque = rq.Opaque
	f2, _ := EncodeFrame(rs, SerializeJSON)
	return len(f1), len(f2)
}

// BenchmarkRawTCPPingPong is the peer of BenchmarkRoundTrip: the same request and response
// sizes written and read on plain TCP connections with no codec, no goroutine per request
// and no opaque matching. With 64 callers each caller has its own connection (raw TCP
// cannot multiplex), so it is an upper bound.
func BenchmarkRawTCPPingPong(b *testing.B) {
	reqSize, respSize := benchFrameSizes()
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var srvWG sync.WaitGroup
			srvWG.Add(1)
			go func() {
				defer srvWG.Done()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					srvWG.Add(1)
					go func() {
						defer srvWG.Done()
						defer c.Close()
						in, out := make([]byte, reqSize), make([]byte, respSize)
						for {
							if _, err := io.ReadFull(c, in); err != nil {
								return
							}
							if _, err := c.Write(out); err != nil {
								return
							}
						}
					}()
				}
			}()
			conns := make([]net.Conn, callers)
			for i := range conns {
				if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(reqSize + respSize))
			bufs := make([][2][]byte, callers)
			for i := range bufs {
				bufs[i] = [2][]byte{make([]byte, reqSize), make([]byte, respSize)}
			}
			runCallers(b, callers, func(g int) error {
				if _, err := conns[g].Write(bufs[g][0]); err != nil {
					return err
				}
				_, err := io.ReadFull(conns[g], bufs[g][1])
				return err
			})
			for _, c := range conns {
				c.Close()
			}
			ln.Close()
			srvWG.Wait()
		})
	}
}

func BenchmarkEncodeJSON(b *testing.B) {
	c := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(c, SerializeJSON); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	f, _ := EncodeFrame(benchRequest(), SerializeJSON)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	f, _ := EncodeFrame(benchRequest(), SerializeRocketMQ)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(f); err != nil {
			b.Fatal(err)
		}
	}
}

// rawPingPong is a raw TCP echo of fixed request/response sizes with one connection per
// caller (the peer of the remoting client/server).
type rawPingPong struct {
	ln    net.Listener
	conns []net.Conn
	bufs  [][2][]byte
	wg    sync.WaitGroup
}

func newRawPingPong(b *testing.B, callers, reqSize, respSize int) *rawPingPong {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	r := &rawPingPong{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer c.Close()
				in, out := make([]byte, reqSize), make([]byte, respSize)
				for {
					if _, err := io.ReadFull(c, in); err != nil {
						return
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	for range callers {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		r.conns = append(r.conns, c)
		r.bufs = append(r.bufs, [2][]byte{make([]byte, reqSize), make([]byte, respSize)})
	}
	return r
}

func (r *rawPingPong) op(g int) error {
	if _, err := r.conns[g].Write(r.bufs[g][0]); err != nil {
		return err
	}
	_, err := io.ReadFull(r.conns[g], r.bufs[g][1])
	return err
}

func (r *rawPingPong) close() {
	for _, c := range r.conns {
		c.Close()
	}
	r.ln.Close()
	r.wg.Wait()
}

// timedChunk runs n operations over callers goroutines and returns the elapsed time.
func timedChunk(n, callers int, op func(g int) error) (time.Duration, error) {
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
				if err := op(g); err != nil {
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
		return el, err
	default:
		return el, nil
	}
}

// BenchmarkRemotingVsRawTCP alternates chunks of 2000 remoting round trips and 2000 raw
// TCP ping-pongs of the same sizes, so that both see the same machine load (the shared VM
// is noisy); it reports both rates and their ratio. Each b.N iteration is one round trip
// on each side.
func BenchmarkRemotingVsRawTCP(b *testing.B) {
	reqSize, respSize := benchFrameSizes()
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			srv := NewServer(ServerConfig{}, testLogger(nil))
			srv.Handle(HeartBeat, func(ctx context.Context, c *Conn, req *Command) *Command { return benchResponse(req) })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(ln)
			defer srv.Shutdown(context.Background())
			cli := NewClient(ClientConfig{}, testLogger(nil))
			defer cli.Close()
			addr := ln.Addr().String()
			ctx := context.Background()
			if _, err := cli.Invoke(ctx, addr, benchRequest()); err != nil {
				b.Fatal(err)
			}
			raw := newRawPingPong(b, callers, reqSize, respSize)
			defer raw.close()
			remotingOp := func(int) error {
				_, err := cli.Invoke(ctx, addr, benchRequest())
				return err
			}
			var tRem, tRaw time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(2000, b.N-done)
				d, err := timedChunk(n, callers, remotingOp)
				if err != nil {
					b.Fatal(err)
				}
				tRem += d
				if d, err = timedChunk(n, callers, raw.op); err != nil {
					b.Fatal(err)
				}
				tRaw += d
				done += n
			}
			b.StopTimer()
			rem, rw := float64(b.N)/tRem.Seconds(), float64(b.N)/tRaw.Seconds()
			b.ReportMetric(rem, "remoting-rt/s")
			b.ReportMetric(rw, "raw-rt/s")
			b.ReportMetric(rem/rw, "ratio")
		})
	}
}
