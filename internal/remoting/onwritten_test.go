package remoting

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nopDispatcher is a dispatcher for bare Conns in tests: no handlers.
type nopDispatcher struct{}

func (nopDispatcher) handler(int32) (Handler, pollKind) { return nil, notPoll }
func (nopDispatcher) beginRequest() bool                { return true }
func (nopDispatcher) endRequest()                       {}
func (nopDispatcher) connClosed(*Conn)                  {}

// pipeConn returns a started Conn over one end of a synchronous net.Pipe and the other
// end: writes block until the peer reads, which lets tests hold the socket busy.
func pipeConn(t *testing.T, st SerializeType) (*Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	c := newConn(context.Background(), a, connOptions{maxFrameSize: DefaultMaxFrameSize, serializeType: st, maxInFlight: 4}, nopDispatcher{}, testLogger(nil))
	c.start()
	t.Cleanup(func() {
		_ = b.Close()
		c.Close()
		c.wait()
	})
	return c, b
}

// hookCounter hands out OnWritten hooks and counts their calls; a second call of the same
// hook fails the test.
type hookCounter struct {
	t     *testing.T
	mu    sync.Mutex
	calls []int
}

func (h *hookCounter) hook() func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := len(h.calls)
	h.calls = append(h.calls, 0)
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls[i]++
		if h.calls[i] > 1 {
			h.t.Errorf("OnWritten hook %d called %d times", i, h.calls[i])
		}
	}
}

// called returns how many distinct hooks have run.
func (h *hookCounter) called() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.calls {
		if c > 0 {
			n++
		}
	}
	return n
}

func (h *hookCounter) wasCalled(i int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[i] > 0
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *Conn) isWriting() bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writing
}

func (c *Conn) queuedFrames() int {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return len(c.hooks)
}

func partsCmd(h func(), parts ...string) *Command {
	cmd := NewRequest(HeartBeat, nil, nil)
	cmd.MarkOneway()
	for _, p := range parts {
		cmd.BodyParts = append(cmd.BodyParts, []byte(p))
	}
	cmd.OnWritten = h
	return cmd
}

func readCmd(t *testing.T, nc net.Conn) *Command {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := ReadFrame(nc, DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	cmd, err := DecodePayload(p)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

func TestOnWrittenDirectWrite(t *testing.T) {
	c, peer := pipeConn(t, SerializeJSON)
	hc := &hookCounter{t: t}
	got := make(chan *Command, 1)
	go func() { got <- readCmd(t, peer) }()
	cmd := partsCmd(hc.hook(), "ab", "cd")
	if err := c.Send(cmd); err != nil {
		t.Fatal(err)
	}
	// Inline write: the hook has run by the time Send returns.
	if !hc.wasCalled(0) {
		t.Fatal("hook not called after an inline write")
	}
	if cmd.OnWritten != nil {
		t.Fatal("OnWritten retained on the command")
	}
	if r := <-got; string(r.Body) != "abcd" {
		t.Fatalf("body %q", r.Body)
	}
}

func TestOnWrittenCoalescedBatch(t *testing.T) {
	c, peer := pipeConn(t, SerializeJSON)
	hc := &hookCounter{t: t}
	sent := make(chan error, 1)
	go func() { sent <- c.Send(partsCmd(hc.hook(), "first")) }()
	waitCond(t, "the first send to own the socket", c.isWriting)
	for _, s := range []string{"x1", "x2", "x3"} {
		if err := c.Send(partsCmd(hc.hook(), s, "-tail")); err != nil {
			t.Fatal(err)
		}
	}
	if c.queuedFrames() != 3 {
		t.Fatalf("queued %d frames, want 3", c.queuedFrames())
	}
	if n := hc.called(); n != 0 {
		t.Fatalf("%d hooks ran before anything was written", n)
	}
	if r := readCmd(t, peer); string(r.Body) != "first" {
		t.Fatalf("first body %q", r.Body)
	}
	for _, s := range []string{"x1", "x2", "x3"} {
		if r := readCmd(t, peer); string(r.Body) != s+"-tail" {
			t.Fatalf("body %q, want %q", r.Body, s+"-tail")
		}
	}
	// The owner wrote the queued frames too before returning.
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	waitCond(t, "all four hooks", func() bool { return hc.called() == 4 })
	// Remoting keeps no reference to the written bodies.
	waitCond(t, "the socket to be released", func() bool { return !c.isWriting() })
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	for _, b := range c.spare[:cap(c.spare)] {
		if b != nil {
			t.Fatalf("recycled batch array still references %q", b)
		}
	}
	for _, h := range c.spareHks[:cap(c.spareHks)] {
		if h != nil {
			t.Fatal("recycled hooks array still references a hook")
		}
	}
}

func TestOnWrittenCloseWithQueuedFrames(t *testing.T) {
	c, _ := pipeConn(t, SerializeJSON)
	hc := &hookCounter{t: t}
	sent := make(chan error, 1)
	go func() { sent <- c.Send(partsCmd(hc.hook(), "blocked")) }()
	waitCond(t, "the first send to own the socket", c.isWriting)
	for range 2 {
		if err := c.Send(partsCmd(hc.hook(), "queued")); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	waitCond(t, "the dropped frames' hooks", func() bool { return hc.called() == 3 })
	<-sent
	// A send after the close is dropped at once.
	h := hc.hook()
	if err := c.Send(partsCmd(h, "late")); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if !hc.wasCalled(3) {
		t.Fatal("hook of a send on a closed connection not called")
	}
}

func TestOnWrittenWriteFailure(t *testing.T) {
	c, peer := pipeConn(t, SerializeJSON)
	hc := &hookCounter{t: t}
	sent := make(chan error, 1)
	go func() { sent <- c.Send(partsCmd(hc.hook(), "blocked")) }()
	waitCond(t, "the first send to own the socket", c.isWriting)
	if err := c.Send(partsCmd(hc.hook(), "queued")); err != nil {
		t.Fatal(err)
	}
	_ = peer.Close() // the blocked write fails
	waitCond(t, "both hooks", func() bool { return hc.called() == 2 })
	<-sent
	<-c.Done()
}

func TestOnWrittenEncodeFailure(t *testing.T) {
	c, _ := pipeConn(t, SerializeType(9))
	hc := &hookCounter{t: t}
	if err := c.Send(partsCmd(hc.hook(), "x")); !errors.Is(err, ErrUnknownSerializeType) {
		t.Fatalf("send: %v", err)
	}
	if !hc.wasCalled(0) {
		t.Fatal("hook not called on an encoding failure")
	}
}

// TestOnWrittenHandlerResponses covers responses: written, oneway (never sent), and
// dropped or flushed at server shutdown.
func TestOnWrittenHandlerResponses(t *testing.T) {
	hc := &hookCounter{t: t}
	srv := NewServer(ServerConfig{}, testLogger(nil))
	release := make(chan struct{})
	srv.Handle(HeartBeat, func(ctx context.Context, c *Conn, req *Command) *Command {
		resp := NewResponse(Success, "")
		resp.BodyParts = [][]byte{[]byte("pong")}
		resp.OnWritten = hc.hook()
		return resp
	})
	started := make(chan struct{}, 1)
	srv.Handle(UnregisterClient, func(ctx context.Context, c *Conn, req *Command) *Command {
		started <- struct{}{}
		<-release
		resp := NewResponse(Success, "")
		resp.BodyParts = [][]byte{[]byte("late")}
		resp.OnWritten = hc.hook()
		return resp
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	cli := newTestClient(t)
	addr := ln.Addr().String()

	resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, nil))
	if err != nil || string(resp.Body) != "pong" {
		t.Fatalf("invoke: %v %v", resp, err)
	}
	waitCond(t, "the written response's hook", func() bool { return hc.called() == 1 })

	if err := cli.InvokeOneway(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "the oneway response's hook", func() bool { return hc.called() == 2 })

	// A handler still running when Shutdown gives up: its response is dropped.
	pending := make(chan error, 1)
	go func() {
		_, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(UnregisterClient, nil, nil))
		pending <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-pending; err == nil {
		t.Fatal("invoke answered after a forced shutdown")
	}
	close(release)
	waitCond(t, "the dropped response's hook", func() bool { return hc.called() == 3 })
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("serve: %v", err)
	}
}

// TestOnWrittenGracefulShutdownFlushes: a response produced while Shutdown drains is
// written, then its hook runs.
func TestOnWrittenGracefulShutdownFlushes(t *testing.T) {
	hc := &hookCounter{t: t}
	srv := NewServer(ServerConfig{}, testLogger(nil))
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	srv.Handle(HeartBeat, func(ctx context.Context, c *Conn, req *Command) *Command {
		started <- struct{}{}
		<-release
		resp := NewResponse(Success, "")
		resp.BodyParts = [][]byte{[]byte("flushed")}
		resp.OnWritten = hc.hook()
		return resp
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	cli := newTestClient(t)
	got := make(chan *Command, 1)
	go func() {
		resp, _ := cli.Invoke(ctxT(t, 5*time.Second), ln.Addr().String(), NewRequest(HeartBeat, nil, nil))
		got <- resp
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctxT(t, 5*time.Second)) }()
	close(release)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if r := <-got; r == nil || string(r.Body) != "flushed" {
		t.Fatalf("response %v", r)
	}
	if !hc.wasCalled(0) {
		t.Fatal("hook not called after the flush")
	}
	<-served
}

// TestOnWrittenConcurrentSendsAndClose: many senders with hooks while the connection
// closes mid-way; every hook runs exactly once (run with -race).
func TestOnWrittenConcurrentSendsAndClose(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	_ = srv
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(context.Background(), nc, connOptions{maxFrameSize: DefaultMaxFrameSize, serializeType: SerializeJSON, maxInFlight: 4}, nopDispatcher{}, testLogger(nil))
	c.start()
	defer c.wait()
	var calls, sends atomic.Int64
	var wg sync.WaitGroup
	body := bytes.Repeat([]byte("z"), 4096)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if g == 0 && i == 100 {
					c.Close()
				}
				cmd := partsCmd(nil)
				cmd.BodyParts = [][]byte{body[:100], body}
				var once atomic.Int32
				cmd.OnWritten = func() {
					if once.Add(1) != 1 {
						t.Error("hook called twice")
					}
					calls.Add(1)
				}
				sends.Add(1)
				_ = c.Send(cmd)
			}
		}()
	}
	wg.Wait()
	waitCond(t, "every hook", func() bool { return calls.Load() == sends.Load() })
}
