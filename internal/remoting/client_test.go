package remoting

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

func TestClientReconnectsAfterConnectionLoss(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	cli := newTestClient(t)
	ctx := ctxT(t, 5*time.Second)
	if _, err := cli.Invoke(ctx, addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	first, _ := cli.Conn(ctx, addr)
	for _, c := range srv.Conns() {
		c.Close()
	}
	<-first.Done()
	resp, err := cli.Invoke(ctx, addr, NewRequest(HeartBeat, nil, []byte("again")))
	if err != nil || string(resp.Body) != "again" {
		t.Fatalf("after reconnect: %v %v", resp, err)
	}
	if second, _ := cli.Conn(ctx, addr); second == first {
		t.Fatal("closed connection reused")
	}
}

// switchListener owns one real listening socket and hands accepted connections to the
// currently attached virtual listener (or closes them while none is attached), so a test
// can stop and restart servers on one address without giving the port up to other
// processes in between.
type switchListener struct {
	real net.Listener
	mu   sync.Mutex
	cur  *virtualListener
	wg   sync.WaitGroup
}

type virtualListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (v *virtualListener) Accept() (net.Conn, error) {
	select {
	case c := <-v.ch:
		return c, nil
	case <-v.done:
		return nil, net.ErrClosed
	}
}

func (v *virtualListener) Close() error   { v.once.Do(func() { close(v.done) }); return nil }
func (v *virtualListener) Addr() net.Addr { return v.addr }

func newSwitchListener(t *testing.T) *switchListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &switchListener{real: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			v := s.cur
			s.mu.Unlock()
			if v == nil {
				c.Close()
				continue
			}
			select {
			case v.ch <- c:
			case <-v.done:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// attach returns a new virtual listener that receives the following connections.
func (s *switchListener) attach() net.Listener {
	v := &virtualListener{addr: s.real.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	s.mu.Lock()
	s.cur = v
	s.mu.Unlock()
	return v
}

func (s *switchListener) detach() {
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	sw := newSwitchListener(t)
	addr := sw.real.Addr().String()
	serve := func() *Server {
		s := NewServer(ServerConfig{}, testLogger(nil))
		s.Handle(HeartBeat, echoHandler)
		go s.Serve(sw.attach())
		return s
	}
	s1 := serve()
	cli := newTestClient(t)
	ctx := ctxT(t, 10*time.Second)
	if _, err := cli.Invoke(ctx, addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	sw.detach()
	if err := s1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Invoke(ctx, addr, NewRequest(HeartBeat, nil, nil)); err == nil {
		t.Fatal("invoke succeeded with the server down")
	}
	s2 := serve()
	defer s2.Shutdown(ctx)
	if _, err := cli.Invoke(ctx, addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestClientInvokeTimeoutAndLateResponse(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	release := make(chan struct{})
	srv.Handle(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		<-release
		return NewResponse(Success, "late")
	})
	cli := newTestClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := cli.Invoke(ctx, addr, NewRequest(PullMessage, nil, nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	close(release)
	// The late response is dropped; the next call works (over a new connection: the
	// silent one was closed at the timeout).
	resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, []byte("ok")))
	if err != nil || string(resp.Body) != "ok" {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestManyConcurrentInvokes(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	srv.Handle(SendMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		if req.ExtString("n")[0]%3 == 0 {
			time.Sleep(time.Millisecond) // reorder responses
		}
		r := NewResponse(Success, "")
		r.SetExt("n", req.ExtString("n"))
		return r
	})
	cli := newTestClient(t)
	ctx := ctxT(t, 30*time.Second)
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				n := fmt.Sprintf("%d-%d", g, i)
				resp, err := cli.Invoke(ctx, addr, NewRequest(SendMessage, map[string]string{"n": n}, nil))
				if err != nil {
					t.Error(err)
					return
				}
				if resp.ExtString("n") != n {
					t.Errorf("response for %s carries %s", n, resp.ExtString("n"))
					return
				}
			}
		}()
	}
	wg.Wait()
	if conns := srv.Conns(); len(conns) != 1 {
		t.Fatalf("%d server connections, want 1 shared", len(conns))
	}
}

func TestServerInitiatedRequest(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	cli := newTestClient(t)
	notified := make(chan string, 1)
	cli.Handle(CheckTransactionState, func(ctx context.Context, c *Conn, req *Command) *Command {
		r := NewResponse(Success, "")
		r.SetExt("transactionId", req.ExtString("transactionId"))
		return r
	})
	cli.Handle(NotifyConsumerIdsChanged, func(ctx context.Context, c *Conn, req *Command) *Command {
		notified <- req.ExtString("consumerGroup")
		return nil
	})
	got := make(chan *Command, 1)
	srv.Handle(EndTransaction, func(ctx context.Context, c *Conn, req *Command) *Command {
		check := NewRequest(CheckTransactionState, map[string]string{"transactionId": "tx1"}, nil)
		resp, err := c.Invoke(ctx, check)
		if err != nil {
			t.Error(err)
			return NewResponse(SystemError, err.Error())
		}
		got <- resp
		if err := c.InvokeOneway(NewRequest(NotifyConsumerIdsChanged, map[string]string{"consumerGroup": "g"}, nil)); err != nil {
			t.Error(err)
		}
		// An unknown server-initiated code is answered REQUEST_CODE_NOT_SUPPORTED.
		un, err := c.Invoke(ctx, NewRequest(4321, nil, nil))
		if err != nil || un.Code != RequestCodeNotSupported {
			t.Errorf("unknown code at client: %v %v", un, err)
		}
		return NewResponse(Success, "")
	})
	resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(EndTransaction, nil, nil))
	if err != nil || resp.Code != Success {
		t.Fatalf("%v %v", resp, err)
	}
	if r := <-got; r.ExtString("transactionId") != "tx1" || !r.IsResponse() {
		t.Fatalf("check response %v", r)
	}
	select {
	case g := <-notified:
		if g != "g" {
			t.Fatalf("group %q", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("oneway notification not delivered")
	}
}

func TestClientOnewayAndClose(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	got := make(chan string, 1)
	srv.Handle(UpdateConsumerOffset, func(ctx context.Context, c *Conn, req *Command) *Command {
		got <- req.ExtString("commitOffset")
		return NewResponse(Success, "")
	})
	cli := NewClient(ClientConfig{}, testLogger(nil))
	if err := cli.InvokeOneway(ctxT(t, 5*time.Second), addr, NewRequest(UpdateConsumerOffset, map[string]string{"commitOffset": "9"}, nil)); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "9" {
		t.Fatalf("got %q", v)
	}
	cli.CloseAddr(addr)
	cli.Close()
	if _, err := cli.Invoke(context.Background(), addr, NewRequest(HeartBeat, nil, nil)); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestClientDialFailure(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cli := newTestClient(t)
	if _, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, nil)); err == nil {
		t.Fatal("invoke to a closed port succeeded")
	}
}

func TestSilentConnectionClosedOnTimeout(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, nil)
	block := make(chan struct{})
	defer close(block)
	srv.Handle(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	})
	cli := newTestClient(t)
	first, err := cli.Conn(ctxT(t, 5*time.Second), addr)
	if err != nil {
		t.Fatal(err)
	}
	// Traffic on the connection while a call waits keeps it open.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	stop := make(chan struct{})
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		for {
			select {
			case <-stop:
				return
			default:
			}
			cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, nil))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err = cli.Invoke(ctx, addr, NewRequest(PullMessage, nil, nil))
	close(stop)
	<-beats
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if first.Closed() {
		t.Fatal("a connection that kept receiving was closed")
	}
	// A timeout with nothing received since the request closes it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := cli.Invoke(ctx2, addr, NewRequest(PullMessage, nil, nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	select {
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("silent connection not closed after the timeout")
	}
	if resp, err := cli.Invoke(ctxT(t, 5*time.Second), addr, NewRequest(HeartBeat, nil, []byte("x"))); err != nil || string(resp.Body) != "x" {
		t.Fatalf("re-dial: %v %v", resp, err)
	}
}
