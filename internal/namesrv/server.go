package namesrv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

type atomicBool = atomic.Bool

// Server is a NameServer: the remoting listener, the route table, broker liveness and,
// optionally, the HTTP listener for /healthz and /metrics.
//
// Goroutines (all started by Run and stopped before it returns): the remoting accept loop
// and its connections, the expiry scanner, and the HTTP server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	table  *Table
	kv     *kvStore
	rs     *remoting.Server
	routes routeCache

	ln     net.Listener
	httpLn net.Listener

	reg     *metrics.Registry
	health  *metrics.Health
	ready   *metrics.Flag
	metrics *serverMetrics

	orderMessageEnable     atomicBool
	returnOrderTopicConfig atomicBool
	enableAllTopicList     atomicBool
	enableTopicList        atomicBool

	mu      sync.Mutex
	running bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

// Option customises New.
type Option func(*Server)

// WithMetrics registers the NameServer's metrics in reg and its readiness in health
// (standalone mode shares one registry); by default a NameServer with an HTTP listener
// creates its own.
func WithMetrics(reg *metrics.Registry, health *metrics.Health) Option {
	return func(s *Server) { s.reg, s.health = reg, health }
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New validates cfg, loads the KV configuration and binds the listeners (so Addr is known
// before Run).
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := logger.With("component", "namesrv")
	s := &Server{cfg: cfg, log: log, now: time.Now, table: NewTable(), done: make(chan struct{})}
	s.table.SetSupportActingMaster(cfg.SupportActingMaster)
	s.table.SetDeleteTopicWithBrokerRegistration(cfg.DeleteTopicWithBrokerRegistration)
	for _, o := range opts {
		o(s)
	}
	s.orderMessageEnable.Store(cfg.OrderMessageEnable)
	s.returnOrderTopicConfig.Store(cfg.ReturnOrderTopicConfigToBroker)
	s.enableAllTopicList.Store(cfg.EnableAllTopicList)
	s.enableTopicList.Store(cfg.EnableTopicList)
	kv, err := openKV(cfg.KVConfigPath)
	if err != nil {
		return nil, err
	}
	s.kv = kv
	if s.reg == nil {
		s.reg = metrics.NewRegistry()
	}
	if s.health == nil {
		s.health = metrics.NewHealth()
	}
	s.ready = s.health.Flag("namesrv")
	rcfg := cfg.Remoting
	if rcfg.TLS == nil {
		conf, selfSigned, err := cfg.TLS.ServerConfig([]string{"localhost", "127.0.0.1"})
		if err != nil {
			return nil, fmt.Errorf("namesrv: remoting TLS: %w", err)
		}
		rcfg.TLSMode, rcfg.TLS = cfg.TLS.Mode, conf
		if selfSigned {
			log.Info("remoting port accepts TLS clients with a generated self-signed certificate (tls.server.mode=permissive)")
		}
	}
	s.rs = remoting.NewServer(rcfg, log)
	s.registerHandlers()
	s.rs.OnConnClose(s.connClosed)

	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("namesrv: listen %s: %w", cfg.Listen, err)
	}
	if cfg.HTTPListen != "" {
		s.httpLn, err = net.Listen("tcp", cfg.HTTPListen)
		if err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("namesrv: http listen %s: %w", cfg.HTTPListen, err)
		}
	}
	s.metrics = newServerMetrics(s)
	return s, nil
}

// Addr is the bound remoting address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// HTTPAddr is the bound HTTP address, nil when HTTP is off.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// Table exposes the route table (read-only use: tests, standalone wiring).
func (s *Server) Table() *Table { return s.table }

// Run serves until ctx is cancelled or Close is called, then shuts down: listeners stop,
// running requests finish (up to 10 s), connections close. It returns nil after a clean
// shutdown.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.closed {
		s.mu.Unlock()
		return errors.New("namesrv: Run called twice or after Close")
	}
	s.running = true
	ctx, s.stop = context.WithCancel(ctx)
	s.mu.Unlock()
	defer close(s.done)

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.rs.Serve(s.ln); err != nil && !errors.Is(err, remoting.ErrServerClosed) {
			errc <- err
		}
	}()
	if s.httpLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := metrics.Serve(ctx, s.httpLn, metrics.NewMux(s.reg, s.health), s.log); err != nil {
				errc <- fmt.Errorf("namesrv: http: %w", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.scanLoop(ctx)
	}()
	s.ready.Set()
	s.log.Info("namesrv: started", "addr", s.Addr().String(), "http", addrString(s.HTTPAddr()))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.stop()
	}
	s.ready.Clear()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.rs.Shutdown(sctx); err != nil && runErr == nil {
		runErr = err
	}
	wg.Wait()
	s.metrics.unregister()
	s.log.Info("namesrv: stopped")
	return runErr
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Close stops a running server and waits for Run to return, or releases the listeners of
// a server that never ran. Safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	wasClosed := s.closed
	s.closed = true
	running, stop := s.running, s.stop
	s.mu.Unlock()
	if running {
		stop()
		<-s.done
		return nil
	}
	if !wasClosed {
		s.ln.Close()
		if s.httpLn != nil {
			s.httpLn.Close()
		}
		_ = s.rs.Shutdown(context.Background())
		s.metrics.unregister()
	}
	return nil
}

// scanLoop expires silent brokers every ScanNotActiveBrokerInterval.
func (s *Server) scanLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ScanNotActiveBrokerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, e := range s.table.ScanExpired(s.now()) {
			s.log.Warn("namesrv: broker expired, no registration or heartbeat within its timeout",
				"cluster", e.Cluster, "broker", e.BrokerName, "addr", e.BrokerAddr)
			if e.Conn != nil {
				_ = e.Conn.Close()
			}
		}
	}
}

// connClosed unregisters the brokers registered over a closed connection.
func (s *Server) connClosed(c *remoting.Conn) {
	for _, e := range s.table.ConnClosed(c) {
		s.log.Info("namesrv: broker connection closed, unregistered",
			"cluster", e.Cluster, "broker", e.BrokerName, "addr", e.BrokerAddr)
	}
}

// serverMetrics are the NameServer's series: rocketmq_rpc_latency (catalogue) per request
// and response code, rocketmq_namesrv_requests_total, and scrape-time gauges of live
// brokers, topics and connections.
type serverMetrics struct {
	node       *metrics.Node
	requests   *prometheus.CounterVec
	counters   sync.Map               // [2]string -> prometheus.Counter
	collectors []prometheus.Collector // registered by this server, unregistered on stop
}

func newServerMetrics(s *Server) *serverMetrics {
	node := s.reg.Node(metrics.NodeInfo{Type: metrics.NodeNamesrv, ID: nodeID(s.Addr())})
	m := &serverMetrics{node: node}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rocketmq_namesrv_requests_total",
		Help: "Remoting requests served by the NameServer, per request code and response code.",
	}, []string{metrics.LabelRequestCode, metrics.LabelResponseCode})
	brokers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rocketmq_namesrv_brokers",
		Help: "Broker addresses currently registered and alive.",
	}, func() float64 { b, _ := s.table.Stats(); return float64(b) })
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rocketmq_namesrv_connections",
		Help: "Open remoting connections.",
	}, func() float64 { return float64(len(s.rs.Conns())) })
	reg := node.Registerer()
	for _, c := range []prometheus.Collector{m.requests, brokers, conns} {
		if err := reg.Register(c); err != nil {
			// A NameServer restarted on the same address and registry before the previous
			// one stopped: keep serving, without this series.
			s.log.Warn("namesrv: metric not registered", "err", err)
			continue
		}
		m.collectors = append(m.collectors, c)
	}
	node.OnTables(func() (int, int) { _, t := s.table.Stats(); return t, -1 }) // a NameServer does not know consumer groups
	return m
}

// unregister removes this server's own collectors (a later NameServer on the same
// address and registry can register them again).
func (m *serverMetrics) unregister() {
	reg := m.node.Registerer()
	for _, c := range m.collectors {
		reg.Unregister(c)
	}
	m.collectors = nil
}

func (m *serverMetrics) observe(reqCode, respCode string, d time.Duration) {
	m.node.ObserveRPC(metrics.ProtocolRemoting, reqCode, respCode, d)
	k := [2]string{reqCode, respCode}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.requests.WithLabelValues(reqCode, respCode))
	}
	c.(prometheus.Counter).Inc()
}

// nodeID is the NameServer's metrics node_id: its address, with a wildcard listen host (the
// default ":9876") replaced by the machine's first non-loopback IPv4, as Apache names a node
// by its local address; "[::]:9876" was the same on every host (QA R10X-9).
func nodeID(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || (ta.IP != nil && !ta.IP.IsUnspecified()) {
		return a.String()
	}
	host := "127.0.0.1"
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				host = ipn.IP.String()
				break
			}
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}
