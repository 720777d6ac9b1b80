package remoting

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrConnClosed is returned by sends and invocations on a closed connection.
var ErrConnClosed = errors.New("remoting: connection closed")

var connIDs atomic.Uint64

// connOptions are the per-connection settings shared by the server and client sides.
type connOptions struct {
	maxFrameSize      int
	serializeType     SerializeType
	idleTimeout       time.Duration // 0: none
	firstFrameTimeout time.Duration // 0: idleTimeout
	writeTimeout      time.Duration // 0: none
	maxInFlight       int           // concurrent request handlers per connection
	maxLongPolls      int           // parked long polls per connection; 0: no bound
	// closeSilentOnTimeout closes the connection when an Invoke times out and nothing at
	// all was read on it since the request was sent (client side: the peer is presumed
	// dead, so the next call re-dials instead of waiting on a half-open socket).
	closeSilentOnTimeout bool
}

// dispatcher is what a Conn needs from its owner (server or client).
type dispatcher interface {
	// handler returns the handler of a request code, nil when unsupported, and whether
	// the code is a long poll (takes no in-flight slot; see Server.MarkLongPoll).
	handler(code int32) (Handler, pollKind)
	// beginRequest admits one request handler; false rejects it (server draining).
	beginRequest() bool
	// endRequest balances a successful beginRequest.
	endRequest()
	// connClosed is called once, after the connection is closed.
	connClosed(c *Conn)
}

// Conn is one remoting connection, used by both Server and Client.
//
// Goroutines: one reader (reads frames, completes pending invocations, starts one handler
// goroutine per request, bounded by maxInFlight) and one writer, used when the reader
// must not write itself (see "writing" below). Both are owned by the Conn and end when it
// closes. writeMu guards the outgoing queue and is a leaf lock; pendingMu guards the
// pending map.
type Conn struct {
	id   uint64
	nc   net.Conn
	log  *slog.Logger
	opts connOptions
	d    dispatcher

	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	writeMu  sync.Mutex
	queue    net.Buffers // frames waiting for the socket owner
	spare    net.Buffers // recycled batch array
	hooks    []func()    // OnWritten of the frames in queue, in queue order
	spareHks []func()    // recycled hooks array
	writing  bool        // a goroutine owns the socket for writing
	flushReq bool        // graceful close requested: the owner closes after draining
	// writeGone: a write failed because the peer closed (reset, broken pipe). Nothing more
	// is written, but the reader goes on until EOF: frames the peer sent before closing may
	// still wait in the receive buffer (a producer's burst of oneway sends, QA F13).
	writeGone bool
	writeWake chan struct{}

	pendingMu sync.Mutex
	pending   map[int32]chan *Command
	opaque    atomic.Int32

	inflight chan struct{} // semaphore of running handlers
	// longPolls is the semaphore of long-polling handlers (capacity 0: unbounded); they do
	// not take an inflight slot, but each parks a goroutine (QA R10Q-2).
	longPolls chan struct{}
	lastRead  atomic.Int64 // unix nanos of the last complete frame read

	attrs sync.Map

	closeOnce  sync.Once
	closed     atomic.Bool
	done       chan struct{}
	closeErr   error
	goroutines sync.WaitGroup // reader + writer
}

func newConn(parent context.Context, nc net.Conn, opts connOptions, d dispatcher, log *slog.Logger) *Conn {
	ctx, cancel := context.WithCancel(parent)
	c := &Conn{
		id:        connIDs.Add(1),
		nc:        nc,
		opts:      opts,
		d:         d,
		ctx:       ctx,
		cancel:    cancel,
		writeWake: make(chan struct{}, 1),
		pending:   make(map[int32]chan *Command),
		inflight:  make(chan struct{}, max(opts.maxInFlight, 1)),
		longPolls: make(chan struct{}, opts.maxLongPolls),
		done:      make(chan struct{}),
	}
	c.log = log.With("conn", c.id, "remote", c.RemoteAddr())
	return c
}

// start launches the reader and writer goroutines.
func (c *Conn) start() {
	c.goroutines.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// ID returns a process-unique connection id.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the peer address as "ip:port".
func (c *Conn) RemoteAddr() string { return c.nc.RemoteAddr().String() }

// LocalAddr returns the local address of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Done is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Closed reports whether the connection has closed.
func (c *Conn) Closed() bool { return c.closed.Load() }

// Context is cancelled when the connection closes (or its server/client shuts down).
func (c *Conn) Context() context.Context { return c.ctx }

// SetAttr attaches a value to the connection (e.g. a client id); safe for concurrent use.
func (c *Conn) SetAttr(key, val any) { c.attrs.Store(key, val) }

// Attr returns a value set with SetAttr, or nil.
func (c *Conn) Attr(key any) any {
	v, _ := c.attrs.Load(key)
	return v
}

// Close closes the connection at once: queued frames are dropped, pending invocations
// fail with ErrConnClosed and handler contexts are cancelled.
func (c *Conn) Close() error {
	c.closeWith(nil)
	return nil
}

// closeGracefully flushes what is queued and then closes the connection.
func (c *Conn) closeGracefully() {
	c.writeMu.Lock()
	c.flushReq = true
	if c.writing {
		c.writeMu.Unlock() // the owner closes after draining
		return
	}
	c.writing = true
	c.writeMu.Unlock()
	c.wakeWriter()
}

func (c *Conn) closeWith(err error) {
	c.closeOnce.Do(func() {
		c.closeErr = err
		c.closed.Store(true)
		c.cancel()
		_ = c.nc.Close()
		c.pendingMu.Lock()
		pend := c.pending
		c.pending = nil
		c.pendingMu.Unlock()
		for _, ch := range pend {
			close(ch)
		}
		c.writeMu.Lock()
		c.queue = nil
		dropped := c.hooks
		c.hooks = nil
		c.writeMu.Unlock()
		runHooks(dropped) // the frames were never written; the in-flight batch is its owner's
		close(c.done)
		c.d.connClosed(c)
	})
}

// wait blocks until the reader and writer goroutines have exited.
func (c *Conn) wait() { c.goroutines.Wait() }

// ---- writing ----
//
// One goroutine at a time owns the socket for writing (writing == true). A sender that
// finds the socket free becomes the owner and writes inline (no goroutine hand-off on the
// common, uncontended path); senders that find it busy append their frame to queue and
// return, and the owner writes everything queued in one writev before releasing it
// (coalescing). The reader goroutine never writes inline (it must never block on a peer
// that does not read): it queues and, when the socket is free, hands ownership to the
// writer goroutine.

// Send writes one command, or queues it behind a write in progress. It returns
// ErrConnClosed when the connection is closed; a write failure closes the connection.
// Send may block for up to the write timeout while it owns the socket.
func (c *Conn) Send(cmd *Command) error { return c.send(cmd, true) }

func (c *Conn) send(cmd *Command, inline bool) error {
	bufs, err := Encode(cmd, c.opts.serializeType)
	if err != nil {
		cmd.written()
		return err
	}
	hook := cmd.OnWritten
	cmd.OnWritten = nil // the Conn owns the hook from here on
	c.writeMu.Lock()
	if c.closed.Load() || c.flushReq || c.writeGone {
		c.writeMu.Unlock()
		if hook != nil {
			hook()
		}
		return ErrConnClosed
	}
	c.queue = append(c.queue, bufs...)
	if hook != nil {
		c.hooks = append(c.hooks, hook)
	}
	if c.writing {
		c.writeMu.Unlock()
		return nil
	}
	c.writing = true
	if !inline {
		c.writeMu.Unlock()
		c.wakeWriter()
		return nil
	}
	c.drainLocked()
	return nil
}

// drainLocked is called by the socket owner with writeMu held; it writes until the queue
// is empty, releases ownership and returns with writeMu released. After a graceful close
// request it closes the connection once everything is written. The OnWritten hooks of a
// batch run after its write returned (written or failed), outside writeMu.
func (c *Conn) drainLocked() {
	for {
		batch := c.queue
		c.queue = c.spare[:0]
		hooks := c.hooks
		c.hooks = c.spareHks[:0]
		flush := c.flushReq
		if len(batch) == 0 {
			c.spareHks = hooks[:0] // no frames, so no hooks either
			c.writing = false
			c.spare = batch[:0]
			c.writeMu.Unlock()
			if flush {
				c.closeWith(nil)
			}
			return
		}
		c.writeMu.Unlock()
		if c.opts.writeTimeout > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.writeTimeout))
		}
		keep := batch // WriteTo consumes its receiver; keep the array for reuse
		_, err := batch.WriteTo(c.nc)
		clear(keep) // drop every reference to the bodies before their hooks release them
		runHooks(hooks)
		clear(hooks)
		c.writeMu.Lock()
		c.spare = keep[:0]
		c.spareHks = hooks[:0]
		if err != nil {
			c.writing = false
			c.queue = nil
			dropped := c.hooks
			c.hooks = nil
			gone := peerClosed(err) && !c.flushReq
			c.writeGone = c.writeGone || gone
			c.writeMu.Unlock()
			runHooks(dropped)
			if gone && !c.closed.Load() {
				// Keep reading what the peer sent before it closed; the reader closes the
				// connection at EOF (or its error, or the idle timeout).
				c.log.Debug("remoting: peer closed; reading what it sent before", "err", err)
				return
			}
			if !c.closed.Load() {
				c.log.Debug("remoting: write failed, closing connection", "err", err)
			}
			c.closeWith(err)
			return
		}
	}
}

// peerClosed reports whether a write failed because the peer closed the connection.
func peerClosed(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// runHooks calls OnWritten hooks in order; callers hold no lock.
func runHooks(hooks []func()) {
	for _, f := range hooks {
		f()
	}
}

func (c *Conn) wakeWriter() {
	select {
	case c.writeWake <- struct{}{}:
	default:
	}
}

// writeLoop drains the queue whenever ownership of the socket is handed to it.
func (c *Conn) writeLoop() {
	defer c.goroutines.Done()
	for {
		select {
		case <-c.writeWake:
		case <-c.done:
			return
		}
		c.writeMu.Lock()
		if !c.writing {
			// Not handed over (a stale wake-up); nothing to do.
			c.writeMu.Unlock()
			continue
		}
		c.drainLocked()
	}
}

// ---- reading ----

func (c *Conn) readLoop() {
	defer c.goroutines.Done()
	br := bufio.NewReaderSize(c.nc, 64<<10)
	first := true
	for {
		if first && c.opts.firstFrameTimeout > 0 {
			// A new connection must start its first frame (the 4-byte length) within the
			// short first-frame timeout; once it has, the rest of the frame gets the idle
			// timeout like any other (a large first message over a slow link, as Apache,
			// whose only deadline is the idle one).
			_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.firstFrameTimeout))
			if _, err := br.Peek(4); err != nil {
				c.readFailed(err)
				return
			}
		}
		if c.opts.idleTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.idleTimeout))
		} else if first {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		payload, err := ReadFrame(br, c.opts.maxFrameSize)
		if err != nil {
			c.readFailed(err)
			return
		}
		first = false
		c.lastRead.Store(time.Now().UnixNano())
		cmd, err := DecodePayload(payload)
		if err != nil {
			c.readFailed(err)
			return
		}
		if cmd.IsResponse() {
			c.complete(cmd)
			continue
		}
		c.dispatch(cmd)
	}
}

func (c *Conn) readFailed(err error) {
	switch {
	case c.closed.Load():
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("remoting: connection closed by peer")
	case isTimeout(err):
		c.log.Info("remoting: closing idle connection", "err", err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// An abrupt close by the peer (a client killed or shut down with unread
		// replies), not a protocol error (QA R8I-8).
		c.log.Info("remoting: connection reset by peer", "err", err)
	default:
		c.log.Warn("remoting: closing connection after bad input", "err", err)
	}
	c.closeWith(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// complete hands a response to the invocation waiting for its opaque; responses nobody
// waits for (timed out, or unknown) are dropped.
func (c *Conn) complete(resp *Command) {
	c.pendingMu.Lock()
	ch, ok := c.pending[resp.Opaque]
	if ok {
		delete(c.pending, resp.Opaque)
	}
	c.pendingMu.Unlock()
	if ok {
		ch <- resp // buffered, capacity 1
		return
	}
	c.log.Debug("remoting: dropping response with unknown opaque", "opaque", resp.Opaque, "code", resp.Code)
}

// dispatch runs a request's handler in its own goroutine, within the in-flight limit.
func (c *Conn) dispatch(req *Command) {
	h, kind := c.d.handler(req.Code)
	longPoll := kind != notPoll
	if h == nil {
		c.reply(req, NewResponse(RequestCodeNotSupported, fmt.Sprintf(" request type %d not supported", req.Code)), false)
		return
	}
	sem := c.inflight
	switch kind {
	case pollPerConn:
		sem = c.longPolls
	case pollSelfBounded:
		sem = nil // bounded by its handler (cap(nil) == 0: no semaphore)
	}
	if cap(sem) > 0 {
		select {
		case sem <- struct{}{}:
		default:
			what := "requests in flight"
			if longPoll {
				what = "long-polling requests parked"
			}
			c.reply(req, NewResponse(SystemBusy, fmt.Sprintf("[OVERLOAD] more than %d %s on this connection", cap(sem), what)), false)
			return
		}
	}
	release := func() {
		if cap(sem) > 0 {
			<-sem
		}
	}
	if !c.d.beginRequest() {
		release()
		c.reply(req, NewResponse(ServiceNotAvailable, "server is shutting down"), false)
		return
	}
	go func() {
		defer c.d.endRequest()
		defer release()
		resp := c.runHandler(h, req)
		if resp != nil {
			c.reply(req, resp, true)
		}
	}()
}

func (c *Conn) runHandler(h Handler, req *Command) (resp *Command) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("remoting: handler panicked", "code", req.Code, "panic", r)
			resp = NewResponse(SystemError, fmt.Sprintf("internal error handling request %d", req.Code))
		}
	}()
	return h(c.ctx, c, req)
}

// reply sends resp as the answer to req unless req is oneway. The reader goroutine
// passes inline=false so that it never blocks on the socket.
func (c *Conn) reply(req, resp *Command, inline bool) {
	if req.IsOneway() {
		resp.written() // never sent
		return
	}
	resp.Opaque = req.Opaque
	resp.MarkResponse()
	if resp.Language == "" {
		resp.Language = LanguageGo
	}
	if err := c.send(resp, inline); err != nil && !errors.Is(err, ErrConnClosed) {
		c.log.Warn("remoting: cannot encode response", "code", resp.Code, "err", err)
	}
}

// ---- invocations on this connection ----

// Invoke sends req on this connection and waits for the response with the same opaque,
// until ctx ends or the connection closes. It assigns req.Opaque.
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	req.Flag &^= FlagResponse | FlagOneway
	req.Opaque = c.opaque.Add(1)
	ch := make(chan *Command, 1)
	c.pendingMu.Lock()
	if c.pending == nil {
		c.pendingMu.Unlock()
		return nil, ErrConnClosed
	}
	c.pending[req.Opaque] = ch
	c.pendingMu.Unlock()
	sent := time.Now().UnixNano()
	if err := c.Send(req); err != nil {
		c.forget(req.Opaque)
		return nil, err
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrConnClosed, c.RemoteAddr())
		}
		return resp, nil
	case <-ctx.Done():
		c.forget(req.Opaque)
		if c.opts.closeSilentOnTimeout && c.lastRead.Load() < sent {
			c.log.Info("remoting: request timed out and the connection stayed silent, closing it", "code", req.Code)
			c.closeWith(ctx.Err())
		}
		return nil, fmt.Errorf("remoting: invoke code %d on %s: %w", req.Code, c.RemoteAddr(), ctx.Err())
	}
}

// InvokeOneway sends req with the oneway flag and does not wait for anything.
func (c *Conn) InvokeOneway(req *Command) error {
	req.Flag &^= FlagResponse
	req.MarkOneway()
	req.Opaque = c.opaque.Add(1)
	return c.Send(req)
}

func (c *Conn) forget(opaque int32) {
	c.pendingMu.Lock()
	if c.pending != nil {
		delete(c.pending, opaque)
	}
	c.pendingMu.Unlock()
}
