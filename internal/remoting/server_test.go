package remoting

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// logBuffer collects log output so tests can count log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger(w io.Writer) *slog.Logger {
	if w == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func echoHandler(ctx context.Context, c *Conn, req *Command) *Command {
	resp := NewResponse(Success, "")
	resp.Body = req.Body
	resp.ExtFields = req.ExtFields
	return resp
}

func startServer(t *testing.T, cfg ServerConfig, log io.Writer) (*Server, string) {
	t.Helper()
	srv := NewServer(cfg, testLogger(log))
	srv.Handle(HeartBeat, echoHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return srv, srv.Addr().String()
}

func newTestClient(t *testing.T) *Client {
	t.Helper()
	c := NewClient(ClientConfig{}, testLogger(nil))
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// expectClosed reads from nc until the server closes it, failing after 5 s.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		if isTimeout(err) {
			t.Fatalf("connection still open after 5 s")
		}
		return
	}
}

func rawFrame(t *testing.T, c *Command) []byte {
	t.Helper()
	f, err := EncodeFrame(c, SerializeJSON)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readResponse(t *testing.T, nc net.Conn) *Command {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := ReadFrame(nc, DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	c, err := DecodePayload(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInvokeRoundTrip(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, nil)
	cli := newTestClient(t)
	req := NewRequest(HeartBeat, map[string]string{"clientID": "c1"}, []byte("ping"))
	resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != Success || string(resp.Body) != "ping" || resp.ExtString("clientID") != "c1" || !resp.IsResponse() || resp.Opaque != req.Opaque {
		t.Fatalf("resp %v body %q", resp, resp.Body)
	}
}

func TestUnknownCodeKeepsConnection(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, nil)
	cli := newTestClient(t)
	resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(9999, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != RequestCodeNotSupported || resp.Remark != " request type 9999 not supported" {
		t.Fatalf("resp %v", resp)
	}
	conn, _ := cli.Conn(context.Background(), addr)
	if _, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if again, _ := cli.Conn(context.Background(), addr); again != conn {
		t.Fatal("connection was replaced after an unknown code")
	}
}

func TestMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	jsonHdr := []byte(`{"code":34}`)
	cases := map[string][]byte{
		"negative length":        {0x80, 0, 0, 0},
		"length below 4":         {0, 0, 0, 1, 0},
		"oversized":              binary.BigEndian.AppendUint32(nil, 1<<20+1),
		"header longer":          golden2FrameRaw(0x000000ff, []byte("{}")),
		"bad json":               golden2Frame([]byte(`{"code":34,`), SerializeJSON, nil),
		"bad binary header":      golden2Frame([]byte{0, 34, 9}, SerializeRocketMQ, nil),
		"unknown serialize type": golden2FrameRaw(uint32(3)<<24|uint32(len(jsonHdr)), jsonHdr),
	}
	for name, garbage := range cases {
		t.Run(name, func(t *testing.T) {
			logs := &logBuffer{}
			_, addr := startServer(t, ServerConfig{MaxFrameSize: 1 << 20}, logs)
			cli := newTestClient(t)
			if _, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
				t.Fatal(err)
			}
			bad, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			if _, err := bad.Write(garbage); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, bad)
			resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, []byte("still")))
			if err != nil || string(resp.Body) != "still" {
				t.Fatalf("healthy connection affected: %v %v", resp, err)
			}
			if n := strings.Count(logs.String(), "closing connection after bad input"); n != 1 {
				t.Fatalf("%d log lines about the bad connection, want 1:\n%s", n, logs.String())
			}
		})
	}
}

func TestFirstFrameAndIdleTimeouts(t *testing.T) {
	_, addr := startServer(t, ServerConfig{FirstFrameTimeout: 100 * time.Millisecond, IdleTimeout: time.Minute}, nil)
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	half, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	_, _ = half.Write([]byte{0, 0}) // half a length prefix, then stall
	start := time.Now()
	expectClosed(t, silent)
	expectClosed(t, half)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow connections closed after %v", d)
	}
	// After one frame the idle timeout applies (a separate server, so that a slow first
	// write under load cannot hit the short first-frame deadline).
	_, addr2 := startServer(t, ServerConfig{FirstFrameTimeout: time.Minute, IdleTimeout: 300 * time.Millisecond}, nil)
	idle, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = idle.Write(rawFrame(t, NewRequest(HeartBeat, nil, nil)))
	if r := readResponse(t, idle); r.Code != Success {
		t.Fatalf("resp %v", r)
	}
	expectClosed(t, idle)
}

// TestSlowFirstFrameIsServed: the first-frame timeout covers only the start of the frame;
// a first request whose body arrives slowly (a large message over a slow link) is answered.
func TestSlowFirstFrameIsServed(t *testing.T) {
	_, addr := startServer(t, ServerConfig{FirstFrameTimeout: 200 * time.Millisecond, IdleTimeout: time.Minute}, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	frame := rawFrame(t, NewRequest(HeartBeat, nil, []byte(strings.Repeat("x", 4096))))
	if _, err := nc.Write(frame[:6]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // the slow link under test, past the first-frame timeout
	if _, err := nc.Write(frame[6:]); err != nil {
		t.Fatalf("connection closed while its first frame was arriving: %v", err)
	}
	if r := readResponse(t, nc); r.Code != Success {
		t.Fatalf("resp %v", r)
	}
}

// TestNoPerIPLimitByDefault: many connections from one address are accepted (no per-IP
// bound unless configured, as Apache), and the next client of that address is served.
func TestNoPerIPLimitByDefault(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, nil)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 1100; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(rawFrame(t, NewRequest(HeartBeat, nil, nil))); err != nil {
		t.Fatal(err)
	}
	if r := readResponse(t, c); r.Code != Success {
		t.Fatalf("resp %v", r)
	}
}

func TestOnewayGetsNoResponse(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	var ran atomic.Int32
	srv.Handle(UpdateConsumerOffset, func(ctx context.Context, c *Conn, req *Command) *Command {
		ran.Add(1)
		return NewResponse(Success, "")
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ow := NewRequest(UpdateConsumerOffset, nil, nil)
	ow.MarkOneway()
	unknownOw := NewRequest(7777, nil, nil)
	unknownOw.MarkOneway()
	normal := NewRequest(HeartBeat, nil, nil)
	var frames []byte
	frames = append(frames, rawFrame(t, ow)...)
	frames = append(frames, rawFrame(t, unknownOw)...)
	frames = append(frames, rawFrame(t, normal)...)
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	if r := readResponse(t, nc); r.Opaque != normal.Opaque {
		t.Fatalf("first response has opaque %d, want %d (the non-oneway request)", r.Opaque, normal.Opaque)
	}
	// Requests are served concurrently: the oneway handler may run after the later
	// request's response went out. Wait for it (bounded), then check it ran exactly once.
	for deadline := time.Now().Add(5 * time.Second); ran.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if ran.Load() != 1 {
		t.Fatalf("oneway handler ran %d times", ran.Load())
	}
}

func TestInFlightLimitAnswersSystemBusy(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{MaxInFlightPerConn: 2}, nil)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	srv.Handle(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		started <- struct{}{}
		<-release
		return NewResponse(PullNotFound, "")
	})
	cli := newTestClient(t)
	ctx := ctxT(t, 5*time.Second)
	results := make(chan *Command, 2)
	for range 2 {
		cli.InvokeAsync(ctx, addr, NewRequest(PullMessage, nil, nil), func(c *Command, err error) {
			if err != nil {
				t.Error(err)
			}
			results <- c
		})
	}
	<-started
	<-started
	resp, err := cli.Invoke(ctx, addr, NewRequest(PullMessage, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != SystemBusy {
		t.Fatalf("third request code %d, want SystemBusy", resp.Code)
	}
	close(release)
	for range 2 {
		if r := <-results; r == nil || r.Code != PullNotFound {
			t.Fatalf("blocked request got %v", r)
		}
	}
}

// TestLongPollsTakeNoSlot (R4A-6): requests of codes marked as long polls (parked pulls and
// pops) do not count toward MaxInFlightPerConn, so the connection's other requests still
// get in (the bound itself: TestInFlightLimitAnswersSystemBusy).
func TestLongPollsTakeNoSlot(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{MaxInFlightPerConn: 2, MaxLongPollsPerConn: 8}, nil)
	srv.MarkLongPoll(PullMessage)
	release := make(chan struct{})
	parked := make(chan struct{}, 8)
	srv.Handle(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		parked <- struct{}{}
		<-release
		return NewResponse(PullNotFound, "")
	})
	srv.Handle(SendMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		return NewResponse(Success, "")
	})
	cli := newTestClient(t)
	ctx := ctxT(t, 5*time.Second)
	results := make(chan *Command, 8)
	for range 8 {
		cli.InvokeAsync(ctx, addr, NewRequest(PullMessage, nil, nil), func(c *Command, err error) {
			if err != nil {
				t.Error(err)
			}
			results <- c
		})
	}
	for range 8 {
		<-parked
	}
	for i := range 2 {
		resp, err := cli.Invoke(ctx, addr, NewRequest(SendMessage, nil, nil))
		if err != nil || resp.Code != Success {
			t.Fatalf("send %d with 8 parked polls on the connection: %v %v", i, resp, err)
		}
	}
	// Long polls have their own bound (MaxLongPollsPerConn, QA R10Q-2): the ninth is refused.
	if resp, err := cli.Invoke(ctx, addr, NewRequest(PullMessage, nil, nil)); err != nil || resp.Code != SystemBusy {
		t.Fatalf("ninth parked poll: %v %v, want SystemBusy", resp, err)
	}
	// A self-bounded long poll (pop) takes neither bound (QA R10T-4).
	srv.MarkSelfBoundedLongPoll(PopMessage)
	srv.Handle(PopMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		<-release
		return NewResponse(PollingTimeout, "")
	})
	pops := make(chan *Command, 10)
	for range 10 {
		cli.InvokeAsync(ctx, addr, NewRequest(PopMessage, nil, nil), func(c *Command, err error) {
			pops <- c
		})
	}
	if resp, err := cli.Invoke(ctx, addr, NewRequest(SendMessage, nil, nil)); err != nil || resp.Code != Success {
		t.Fatalf("send with 8 + 10 parked polls: %v %v", resp, err)
	}
	close(release)
	for range 10 {
		if c := <-pops; c == nil || c.Code != PollingTimeout {
			t.Fatalf("self-bounded poll answered %v, want its handler's answer", c)
		}
	}
	for range 8 {
		if r := <-results; r == nil || r.Code != PullNotFound {
			t.Fatalf("parked request got %v", r)
		}
	}
}

func TestHandlerPanicAnswersSystemError(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	srv.Handle(SendMessage, func(ctx context.Context, c *Conn, req *Command) *Command { panic("boom") })
	cli := newTestClient(t)
	resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(SendMessage, nil, nil))
	if err != nil || resp.Code != SystemError {
		t.Fatalf("resp %v err %v", resp, err)
	}
}

func TestConnectionLimits(t *testing.T) {
	_, addr := startServer(t, ServerConfig{MaxConnsPerIP: 2}, nil)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		_, _ = nc.Write(rawFrame(t, NewRequest(HeartBeat, nil, nil)))
		readResponse(t, nc) // admitted and served
	}
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	expectClosed(t, third)
	conns[0].Close()
	// The slot is released once the server notices the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = nc.Write(rawFrame(t, NewRequest(HeartBeat, nil, nil)))
		_ = nc.SetReadDeadline(time.Now().Add(time.Second))
		_, err = ReadFrame(nc, DefaultMaxFrameSize)
		if err == nil {
			nc.Close()
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("connection slot never released")
		}
	}
}

func TestOnConnClose(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	closed := make(chan uint64, 1)
	var id atomic.Uint64
	srv.Handle(RegisterBroker, func(ctx context.Context, c *Conn, req *Command) *Command {
		c.SetAttr("broker", req.ExtString("brokerName"))
		id.Store(c.ID())
		return NewResponse(Success, "")
	})
	srv.OnConnClose(func(c *Conn) {
		if c.Attr("broker") == "b1" {
			closed <- c.ID()
		}
	})
	cli := NewClient(ClientConfig{}, testLogger(nil))
	if _, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(RegisterBroker, map[string]string{"brokerName": "b1"}, nil)); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	select {
	case got := <-closed:
		if got != id.Load() {
			t.Fatalf("closed conn %d, want %d", got, id.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnConnClose not called")
	}
}

func TestShutdownWaitsForHandlers(t *testing.T) {
	srv := NewServer(ServerConfig{}, testLogger(nil))
	release := make(chan struct{})
	started := make(chan struct{})
	srv.Handle(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		close(started)
		<-release
		return NewResponse(Success, "done")
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := srv.Addr().String()
	cli := newTestClient(t)
	got := make(chan *Command, 1)
	cli.InvokeAsync(ctxT(t, 10*time.Second), addr, NewRequest(PullMessage, nil, nil), func(c *Command, err error) {
		if err != nil {
			t.Error(err)
		}
		got <- c
	})
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctxT(t, 10*time.Second)) }()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	// New connections are refused while the handler still runs.
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		expectClosed(t, nc)
		nc.Close()
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the handler finished", err)
	default:
	}
	close(release)
	if r := <-got; r == nil || r.Remark != "done" {
		t.Fatalf("in-flight response lost: %v", r)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownDeadlineCancelsHandlers(t *testing.T) {
	srv := NewServer(ServerConfig{}, testLogger(nil))
	cancelled := make(chan struct{})
	started := make(chan struct{})
	srv.Handle(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	cli := newTestClient(t)
	errc := make(chan error, 1)
	cli.InvokeAsync(ctxT(t, 10*time.Second), srv.Addr().String(), NewRequest(PullMessage, nil, nil), func(c *Command, err error) { errc <- err })
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	<-cancelled
	if err := <-errc; !errors.Is(err, ErrConnClosed) {
		t.Fatalf("pending invoke: %v, want ErrConnClosed", err)
	}
}

func TestBinaryServerAndClient(t *testing.T) {
	_, addr := startServer(t, ServerConfig{SerializeType: SerializeRocketMQ}, nil)
	cli := NewClient(ClientConfig{SerializeType: SerializeRocketMQ}, testLogger(nil))
	defer cli.Close()
	resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, map[string]string{"k": "v"}, []byte("b")))
	if err != nil || resp.ExtString("k") != "v" || string(resp.Body) != "b" {
		t.Fatalf("resp %v err %v", resp, err)
	}
	// A binary-header request gets a binary-header response.
	nc, _ := net.Dial("tcp", addr)
	defer nc.Close()
	f, _ := EncodeFrame(NewRequest(HeartBeat, nil, nil), SerializeRocketMQ)
	_, _ = nc.Write(f)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := ReadFrame(nc, DefaultMaxFrameSize)
	if err != nil || SerializeType(p[0]) != SerializeRocketMQ {
		t.Fatalf("err %v type %d", err, p[0])
	}
}

func TestBodyPartsWrittenInOrder(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	srv.Handle(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		r := NewResponse(Success, "")
		for i := range 50 {
			r.BodyParts = append(r.BodyParts, []byte(fmt.Sprintf("[%02d]", i)))
		}
		return r
	})
	cli := newTestClient(t)
	resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(PullMessage, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range 50 {
		fmt.Fprintf(&want, "[%02d]", i)
	}
	if string(resp.Body) != want.String() {
		t.Fatalf("body %q", resp.Body)
	}
}

// flakyListener fails its first n Accept calls with err, then accepts normally.
type flakyListener struct {
	net.Listener
	mu  sync.Mutex
	n   int
	err error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.n > 0 {
		l.n--
		l.mu.Unlock()
		return nil, l.err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestServeSurvivesDescriptorExhaustion (QA R8I-1): running out of file descriptors
// (EMFILE/ENFILE from accept) pauses accepting and logs once; the server keeps serving and
// accepts again as soon as descriptors are free. Any other accept error still ends Serve.
func TestServeSurvivesDescriptorExhaustion(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		var logBuf logBuffer
		srv := NewServer(ServerConfig{}, testLogger(&logBuf))
		srv.Handle(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command { return NewResponse(Success, "ok") })
		inner, _ := net.Listen("tcp", "127.0.0.1:0")
		ln := &flakyListener{Listener: inner, n: 4, err: &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		cli := newTestClient(t)
		resp, err := cli.Invoke(ctxT(t, 10*time.Second), inner.Addr().String(), NewRequest(PullMessage, nil, nil))
		if err != nil || resp.Remark != "ok" {
			t.Fatalf("%v: request after accept errors: %v %v", errno, resp, err)
		}
		if n := strings.Count(logBuf.String(), "accept failed, retrying"); n != 1 {
			t.Errorf("%v: %d warnings for one episode, want 1:\n%s", errno, n, logBuf.String())
		}
		srv.Shutdown(ctxT(t, 5*time.Second))
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("%v: Serve: %v", errno, err)
		}
	}
	srv := NewServer(ServerConfig{}, testLogger(nil))
	inner, _ := net.Listen("tcp", "127.0.0.1:0")
	defer inner.Close()
	if err := srv.Serve(&flakyListener{Listener: inner, n: 1, err: errors.New("listener broken")}); err == nil || errors.Is(err, ErrServerClosed) {
		t.Fatalf("a permanent accept error: Serve returned %v", err)
	}
}

// TestPeerResetIsNotBadInput (QA R8I-8): a client that resets its connection is logged as
// such, not as a protocol error.
func TestPeerResetIsNotBadInput(t *testing.T) {
	var logBuf logBuffer
	_, addr := startServer(t, ServerConfig{}, &logBuf)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Half a frame header, so the server is mid-read, then an RST.
	if _, err := nc.Write([]byte{0, 0}); err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).SetLinger(0)
	nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logBuf.String(), "connection reset by peer") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := logBuf.String(); !strings.Contains(got, "remoting: connection reset by peer") || strings.Contains(got, "bad input") {
		t.Fatalf("log after a reset:\n%s", got)
	}
}
