package remoting

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/tlsmux"
)

// Handler serves one request. It runs in its own goroutine and may block (long polling);
// ctx is cancelled when the connection closes or the server stops. Returning nil sends no
// response; otherwise the response gets the request's opaque and the response flag, and
// is dropped when the request was oneway.
type Handler func(ctx context.Context, c *Conn, req *Command) *Command

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("remoting: server closed")

// ServerConfig configures a Server. The zero value of a field means its default.
type ServerConfig struct {
	// MaxFrameSize is the largest accepted frame in bytes. Default 16 MiB.
	MaxFrameSize int
	// SerializeType is the header encoding of responses and server requests. Default JSON.
	SerializeType SerializeType
	// IdleTimeout closes a connection with no complete frame for this long. Default 120 s.
	IdleTimeout time.Duration
	// FirstFrameTimeout bounds the wait for the start (length prefix) of a new connection's
	// first frame; the rest of it gets IdleTimeout. Default 10 s.
	FirstFrameTimeout time.Duration
	// WriteTimeout bounds one write; a peer that stops reading is closed. Default 30 s.
	WriteTimeout time.Duration
	// MaxInFlightPerConn bounds concurrently running handlers per connection; requests
	// beyond it are answered SYSTEM_BUSY. Default 4096.
	MaxInFlightPerConn int
	// MaxLongPollsPerConn bounds the long-polling requests (MarkLongPoll: suspended pulls,
	// pops) parked at once per connection, beyond which they are answered SYSTEM_BUSY: each
	// parks a goroutine (about 11 KB), and one connection pipelining 50,000 of them took
	// 540 MB (QA R10Q-2). A client parks one per queue it consumes from this server, so the
	// default 16384 is far above any real client. Default 16384.
	MaxLongPollsPerConn int
	// MaxConns bounds open connections in total. Default 10000.
	MaxConns int
	// MaxConnsPerIP bounds open connections per remote IP; 0 (default) means no per-IP
	// bound, as Apache: many clients behind one NAT or node address are normal, and MaxConns
	// still bounds the total.
	MaxConnsPerIP int
	// TLSMode is Apache's tls.server.mode: disabled, permissive (TLS and plaintext clients on
	// the same port, told apart by their first byte) or enforcing (TLS only). It applies
	// only with TLS set; without it the port is plaintext only. Default "" = disabled.
	TLSMode string
	// TLS is the server certificate configuration used by TLSMode. Default nil.
	TLS *tls.Config
}

// DefaultServerConfig returns the defaults documented on ServerConfig.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		MaxFrameSize:        DefaultMaxFrameSize,
		SerializeType:       SerializeJSON,
		IdleTimeout:         120 * time.Second,
		FirstFrameTimeout:   10 * time.Second,
		WriteTimeout:        30 * time.Second,
		MaxInFlightPerConn:  4096,
		MaxLongPollsPerConn: 16384,
		MaxConns:            10000,
	}
}

// withDefaults fills zero fields with defaults.
func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultServerConfig()
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = d.MaxFrameSize
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.FirstFrameTimeout <= 0 {
		c.FirstFrameTimeout = d.FirstFrameTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.MaxInFlightPerConn <= 0 {
		c.MaxInFlightPerConn = d.MaxInFlightPerConn
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MaxLongPollsPerConn <= 0 {
		c.MaxLongPollsPerConn = d.MaxLongPollsPerConn
	}
	return c
}

// Validate reports configuration errors.
func (c ServerConfig) Validate() error {
	if c.SerializeType != SerializeJSON && c.SerializeType != SerializeRocketMQ {
		return fmt.Errorf("%w: %d", ErrUnknownSerializeType, c.SerializeType)
	}
	if c.MaxFrameSize < 0 || c.MaxFrameSize > 1<<30 {
		return fmt.Errorf("remoting: MaxFrameSize %d out of range (0..1 GiB)", c.MaxFrameSize)
	}
	return nil
}

// Server accepts remoting connections and dispatches requests by code.
//
// Handlers are registered before Serve. Each connection owns its reader and writer
// goroutines; Shutdown stops the listeners, waits for running handlers, flushes their
// responses and closes every connection. Lock order: Server.mu, then Conn internals.
type Server struct {
	cfg  ServerConfig
	log  *slog.Logger
	opts connOptions

	hmu      sync.RWMutex
	handlers map[int32]Handler
	longPoll map[int32]pollKind // hmu: codes registered with MarkLongPoll / MarkSelfBoundedLongPoll
	onClose  []func(*Conn)

	baseCtx    context.Context
	baseCancel context.CancelFunc

	mu        sync.Mutex
	lns       map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	perIP     map[string]int
	draining  bool
	requests  sync.WaitGroup // running handlers; Add only while !draining under mu
	accepting sync.WaitGroup // accept loops
	addr      net.Addr
	addrReady chan struct{}
	addrOnce  sync.Once

	refusedN   atomic.Int64 // connections refused since the last log line
	refusedLog atomic.Int64 // unix nanos of the last refusal log line
}

// NewServer returns a server; zero config fields take their defaults.
func NewServer(cfg ServerConfig, logger *slog.Logger) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg,
		log: logger.With("component", "remoting-server"),
		opts: connOptions{
			maxFrameSize:      cfg.MaxFrameSize,
			serializeType:     cfg.SerializeType,
			idleTimeout:       cfg.IdleTimeout,
			firstFrameTimeout: cfg.FirstFrameTimeout,
			writeTimeout:      cfg.WriteTimeout,
			maxInFlight:       cfg.MaxInFlightPerConn,
			maxLongPolls:      cfg.MaxLongPollsPerConn,
		},
		handlers:   make(map[int32]Handler),
		baseCtx:    ctx,
		baseCancel: cancel,
		lns:        make(map[net.Listener]struct{}),
		conns:      make(map[*Conn]struct{}),
		perIP:      make(map[string]int),
		addrReady:  make(chan struct{}),
	}
}

// Handle registers the handler of a request code, replacing any previous one.
func (s *Server) Handle(code int32, h Handler) {
	s.hmu.Lock()
	s.handlers[code] = h
	s.hmu.Unlock()
}

// OnConnClose registers a callback run (in its own goroutine context of the closing
// connection) after any connection closes, e.g. to unregister a broker.
func (s *Server) OnConnClose(f func(*Conn)) {
	s.hmu.Lock()
	s.onClose = append(s.onClose, f)
	s.hmu.Unlock()
}

func (s *Server) handler(code int32) (Handler, pollKind) {
	s.hmu.RLock()
	h, lp := s.handlers[code], s.longPoll[code]
	s.hmu.RUnlock()
	return h, lp
}

// pollKind tells how a request code's handler is bounded.
type pollKind int8

const (
	notPoll         pollKind = iota // one in-flight slot (MaxInFlightPerConn)
	pollPerConn                     // long poll: MaxLongPollsPerConn parked per connection
	pollSelfBounded                 // long poll bounded by its handler (no per-connection bound)
)

// MarkLongPoll declares request codes whose handlers may park for long (long-polling pull
// and pop). Their requests take no in-flight slot (MaxInFlightPerConn): a parked poll costs
// a goroutine, not work, and a client with thousands of queues parks one per queue on a
// single connection, whose sends and heartbeats must still get in (Apache parks them
// outside its request executor, with no per-connection bound).
func (s *Server) MarkLongPoll(codes ...int32) { s.markPoll(pollPerConn, codes) }

// MarkSelfBoundedLongPoll declares long-polling codes whose handler bounds the parked
// requests itself (pop: per topic, group and queue, and in total, as Apache): they take
// neither an in-flight slot nor a MaxLongPollsPerConn slot, since one connection may carry
// the polls of many clients (a cluster proxy's, QA R10T-4).
func (s *Server) MarkSelfBoundedLongPoll(codes ...int32) { s.markPoll(pollSelfBounded, codes) }

func (s *Server) markPoll(kind pollKind, codes []int32) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.longPoll == nil {
		s.longPoll = make(map[int32]pollKind)
	}
	for _, c := range codes {
		s.longPoll[c] = kind
	}
}

func (s *Server) beginRequest() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.requests.Add(1)
	return true
}

func (s *Server) endRequest() { s.requests.Done() }

func (s *Server) connClosed(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	ip := hostOf(c.nc.RemoteAddr())
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.mu.Unlock()
	s.hmu.RLock()
	cbs := s.onClose
	s.hmu.RUnlock()
	for _, f := range cbs {
		f(c)
	}
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// ListenAndServe listens on addr (e.g. ":9876") and serves until Shutdown.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("remoting: listen %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// Addr returns the address of the first listener, blocking until Serve has started.
func (s *Server) Addr() net.Addr {
	<-s.addrReady
	return s.addr
}

// Serve accepts connections on ln until Shutdown; it returns ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	if s.cfg.TLS != nil && s.cfg.TLSMode != "" && s.cfg.TLSMode != tlsmux.Disabled {
		// Classified in their own goroutines within FirstFrameTimeout (the TLS handshake
		// must finish in it too), so a slow client never blocks Accept.
		ln = tlsmux.NewListener(ln, s.cfg.TLSMode, s.cfg.TLS, s.cfg.FirstFrameTimeout, s.log)
	}
	s.lns[ln] = struct{}{}
	s.accepting.Add(1)
	s.mu.Unlock()
	defer s.accepting.Done()
	s.addrOnce.Do(func() { s.addr = ln.Addr(); close(s.addrReady) })
	s.log.Info("remoting: serving", "addr", ln.Addr().String())
	var backoff tlsmux.AcceptBackoff
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining {
				return ErrServerClosed
			}
			if tlsmux.TemporaryAcceptError(err) {
				backoff.Wait(err, s.log, ln.Addr())
				continue
			}
			return fmt.Errorf("remoting: accept: %w", err)
		}
		backoff.Reset()
		s.admit(nc)
	}
}

// admit registers a new connection unless a connection limit is reached.
func (s *Server) admit(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	ip := hostOf(nc.RemoteAddr())
	s.mu.Lock()
	switch {
	case s.draining:
		s.mu.Unlock()
		_ = nc.Close()
		return
	case len(s.conns) >= s.cfg.MaxConns:
		s.mu.Unlock()
		s.refused("remoting: connection limit reached, refusing connections", nc, s.cfg.MaxConns)
		return
	case s.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnsPerIP:
		s.mu.Unlock()
		s.refused("remoting: per-IP connection limit reached, refusing connections", nc, s.cfg.MaxConnsPerIP)
		return
	}
	c := newConn(s.baseCtx, nc, s.opts, s, s.log)
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	s.mu.Unlock()
	c.start()
}

// refused closes a connection over a limit; it logs at most once per second (with the
// count refused since the last line) so that a connection flood cannot flood the log.
func (s *Server) refused(msg string, nc net.Conn, limit int) {
	_ = nc.Close()
	n := s.refusedN.Add(1)
	now := time.Now().UnixNano()
	last := s.refusedLog.Load()
	if now-last < int64(time.Second) || !s.refusedLog.CompareAndSwap(last, now) {
		return
	}
	s.refusedN.Add(-n)
	s.log.Warn(msg, "remote", nc.RemoteAddr().String(), "limit", limit, "refused", n)
}

// Conns returns a snapshot of the open connections.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Shutdown stops accepting, lets running handlers finish and flushes their responses,
// then closes every connection. When ctx ends first, handler contexts are cancelled,
// connections are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for ln := range s.lns {
		_ = ln.Close()
	}
	s.mu.Unlock()
	s.addrOnce.Do(func() { close(s.addrReady) })
	s.accepting.Wait()

	handlersDone := make(chan struct{})
	go func() { s.requests.Wait(); close(handlersDone) }()
	var err error
	select {
	case <-handlersDone:
	case <-ctx.Done():
		err = ctx.Err()
	}
	conns := s.Conns()
	for _, c := range conns {
		if err != nil {
			c.Close()
		} else {
			c.closeGracefully()
		}
	}
	allClosed := make(chan struct{})
	go func() {
		for _, c := range conns {
			c.wait()
		}
		close(allClosed)
	}()
	select {
	case <-allClosed:
	case <-ctx.Done():
		err = ctx.Err()
		for _, c := range conns {
			c.Close()
		}
		<-allClosed
	}
	s.baseCancel()
	if err != nil {
		// Handlers still running see cancelled contexts; their responses are dropped.
		return fmt.Errorf("remoting: shutdown: %w", err)
	}
	return nil
}

// TLSSettings are a remoting port's TLS settings (Apache's tls.server.* keys), shared by the
// broker's and the NameServer's configs.
type TLSSettings struct {
	// Mode is tls.server.mode: "permissive" (TLS and plaintext clients on the same port,
	// told apart by their first byte) or "disabled" ("" = disabled). "enforcing" is refused
	// (Check): Rocketry's own remoting clients (brokers registering, proxies in cluster mode,
	// the admin CLI) connect in plaintext and would be locked out.
	Mode string
	// CertFile and KeyFile are the PEM certificate and key (tls.server.certPath,
	// tls.server.keyPath). "": a self-signed certificate generated at start (Apache's
	// tls.test.mode.enable default).
	CertFile, KeyFile string
}

// DefaultTLSSettings is Apache's default: permissive with a generated certificate.
func DefaultTLSSettings() TLSSettings { return TLSSettings{Mode: tlsmux.Permissive} }

// ApplyKey sets the setting a tls.server.* properties key names and reports whether k was
// one of them.
func (t *TLSSettings) ApplyKey(k, v string) bool {
	switch k {
	case "tls.server.mode":
		t.Mode = strings.ToLower(v)
	case "tls.server.certPath":
		t.CertFile = v
	case "tls.server.keyPath":
		t.KeyFile = v
	default:
		return false
	}
	return true
}

// Check validates the settings.
func (t TLSSettings) Check() error {
	switch t.Mode {
	case "", tlsmux.Disabled, tlsmux.Permissive:
	case tlsmux.Enforcing:
		return fmt.Errorf("TLS mode %q is not supported on remoting ports: Rocketry's brokers, proxies and admin CLI connect in plaintext (use permissive)", t.Mode)
	default:
		return fmt.Errorf("unknown TLS mode %q (want disabled or permissive)", t.Mode)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("tls.server.certPath and tls.server.keyPath must be given together")
	}
	return nil
}

// ServerConfig returns the ServerConfig.TLS of the settings: nil when disabled, else the
// certificate files' pair or, without files, a self-signed certificate for hosts
// (selfSigned reports it).
func (t TLSSettings) ServerConfig(hosts []string) (conf *tls.Config, selfSigned bool, err error) {
	if t.Mode == "" || t.Mode == tlsmux.Disabled {
		return nil, false, nil
	}
	return tlsmux.ServerConfig(t.CertFile, t.KeyFile, hosts, nil)
}
