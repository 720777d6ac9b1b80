package remoting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrClientClosed is returned by invocations after Client.Close.
var ErrClientClosed = errors.New("remoting: client closed")

// ErrDial wraps a failure to connect: the request was not sent, so retrying it elsewhere
// cannot duplicate it.
var ErrDial = errors.New("remoting: dial failed")

// ClientConfig configures a Client. The zero value of a field means its default.
type ClientConfig struct {
	// DialTimeout bounds connecting (also bounded by the call's ctx). Default 3 s.
	DialTimeout time.Duration
	// MaxFrameSize is the largest accepted frame in bytes. Default 16 MiB.
	MaxFrameSize int
	// SerializeType is the header encoding of requests. Default JSON.
	SerializeType SerializeType
	// IdleTimeout closes a connection that received nothing for this long; 0 (default)
	// keeps connections open.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write. Default 30 s.
	WriteTimeout time.Duration
	// MaxInFlightPerConn bounds concurrently running handlers of server-initiated
	// requests per connection. Default 256.
	MaxInFlightPerConn int
}

// DefaultClientConfig returns the defaults documented on ClientConfig.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		DialTimeout:        3 * time.Second,
		MaxFrameSize:       DefaultMaxFrameSize,
		SerializeType:      SerializeJSON,
		WriteTimeout:       30 * time.Second,
		MaxInFlightPerConn: 256,
	}
}

// Client sends requests to remoting servers: one connection per address, dialled on first
// use and re-dialled on the next call after it fails. Concurrent invocations share the
// connection and are matched by opaque. Server-initiated requests (CHECK_TRANSACTION_STATE,
// NOTIFY_CONSUMER_IDS_CHANGED, ...) are served by the handlers registered with Handle.
type Client struct {
	cfg  ClientConfig
	log  *slog.Logger
	opts connOptions

	ctx    context.Context
	cancel context.CancelFunc

	hmu      sync.RWMutex
	handlers map[int32]Handler

	mu     sync.Mutex
	slots  map[string]*connSlot
	closed bool
	reqs   sync.WaitGroup // running handlers of server-initiated requests; Add under mu while !closed
}

// connSlot serialises dialling of one address.
type connSlot struct {
	mu   sync.Mutex
	conn *Conn
}

// NewClient returns a client; zero config fields take their defaults.
func NewClient(cfg ClientConfig, logger *slog.Logger) *Client {
	d := DefaultClientConfig()
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = d.DialTimeout
	}
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = d.MaxFrameSize
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = d.WriteTimeout
	}
	if cfg.MaxInFlightPerConn <= 0 {
		cfg.MaxInFlightPerConn = d.MaxInFlightPerConn
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg: cfg,
		log: logger.With("component", "remoting-client"),
		opts: connOptions{
			maxFrameSize:  cfg.MaxFrameSize,
			serializeType: cfg.SerializeType,
			idleTimeout:   cfg.IdleTimeout,
			writeTimeout:  cfg.WriteTimeout,
			maxInFlight:   cfg.MaxInFlightPerConn,
			// A timed-out call on a connection that received nothing since the request
			// was sent closes it, so that the next call re-dials (as RocketMQ's
			// clientCloseSocketIfTimeout) instead of trusting a half-open socket.
			closeSilentOnTimeout: true,
		},
		ctx:      ctx,
		cancel:   cancel,
		handlers: make(map[int32]Handler),
		slots:    make(map[string]*connSlot),
	}
}

// Handle registers the handler of a server-initiated request code.
func (c *Client) Handle(code int32, h Handler) {
	c.hmu.Lock()
	c.handlers[code] = h
	c.hmu.Unlock()
}

func (c *Client) handler(code int32) (Handler, pollKind) {
	c.hmu.RLock()
	h := c.handlers[code]
	c.hmu.RUnlock()
	return h, notPoll
}

func (c *Client) beginRequest() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.reqs.Add(1)
	return true
}

func (c *Client) endRequest()      { c.reqs.Done() }
func (c *Client) connClosed(*Conn) {}

// Conn returns the connection to addr, dialling it when there is none or it has closed.
func (c *Client) Conn(ctx context.Context, addr string) (*Conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClientClosed
	}
	slot := c.slots[addr]
	if slot == nil {
		slot = &connSlot{}
		c.slots[addr] = slot
	}
	c.mu.Unlock()

	slot.mu.Lock()
	defer slot.mu.Unlock()
	if slot.conn != nil && !slot.conn.Closed() {
		return slot.conn, nil
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDial, err) // err names the address (net.OpError)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	conn := newConn(c.ctx, nc, c.opts, c, c.log)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nc.Close()
		return nil, ErrClientClosed
	}
	c.mu.Unlock()
	conn.start()
	slot.conn = conn
	return conn, nil
}

// Invoke sends req to addr and waits for its response until ctx ends. It assigns
// req.Opaque. A connection error is returned as is; the next call re-dials. When ctx
// ends and nothing at all arrived on the connection since the request was sent, the
// connection is closed (its other pending calls fail) so that the next call re-dials.
func (c *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	conn, err := c.Conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return conn.Invoke(ctx, req)
}

// InvokeAsync runs Invoke in a new goroutine and calls cb with its result.
func (c *Client) InvokeAsync(ctx context.Context, addr string, req *Command, cb func(*Command, error)) {
	go func() { cb(c.Invoke(ctx, addr, req)) }()
}

// InvokeOneway sends req with the oneway flag; ctx bounds dialling only.
func (c *Client) InvokeOneway(ctx context.Context, addr string, req *Command) error {
	conn, err := c.Conn(ctx, addr)
	if err != nil {
		return err
	}
	return conn.InvokeOneway(req)
}

// CloseAddr closes the connection to addr, if any; pending invocations fail.
func (c *Client) CloseAddr(addr string) {
	c.mu.Lock()
	slot := c.slots[addr]
	delete(c.slots, addr)
	c.mu.Unlock()
	if slot == nil {
		return
	}
	slot.mu.Lock()
	conn := slot.conn
	slot.mu.Unlock()
	if conn != nil {
		conn.Close()
		conn.wait()
	}
}

// Close closes every connection and fails pending invocations; later calls fail with
// ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	slots := c.slots
	c.slots = map[string]*connSlot{}
	c.mu.Unlock()
	c.cancel()
	for _, slot := range slots {
		slot.mu.Lock()
		conn := slot.conn
		slot.mu.Unlock()
		if conn != nil {
			conn.Close()
			conn.wait()
		}
	}
	c.reqs.Wait()
	return nil
}
