package standalone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/proxy/cluster"
	"github.com/rocketry-mq/rocketry/internal/proxy/local"
)

// Proxy modes (Config.ProxyMode).
const (
	// ProxyLocal: the proxy calls the in-process broker directly (no network hop).
	ProxyLocal = "local"
	// ProxyCluster: the proxy talks remoting to the broker over loopback, with routes from
	// the in-process NameServer, exactly as a separate `rocketry proxy` would.
	ProxyCluster = "cluster"
)

// brokerDir is the broker's data directory: BrokerDataDir, else DataDir/broker.
func (c Config) brokerDir() string {
	if c.BrokerDataDir != "" {
		return c.BrokerDataDir
	}
	return filepath.Join(c.DataDir, "broker")
}

// Config configures a standalone deployment. The component configs are used as given except
// for the fields standalone owns (listen addresses, data directories, NameServer addresses).
type Config struct {
	// DataDir holds everything: DataDir/broker (store and metadata), DataDir/namesrv
	// (kvConfig.json). Default "./rocketry-data".
	DataDir string
	// BrokerDataDir, when set, is the broker's directory instead of DataDir/broker (a
	// broker.conf storePathRootDir given to `standalone --config`).
	BrokerDataDir string
	// NamesrvListen is the NameServer's remoting address. Default ":9876".
	NamesrvListen string
	// BrokerListen is the Broker's remoting address. Default ":10911".
	BrokerListen string
	// GRPCListen is the Proxy's gRPC address. Default ":8081".
	GRPCListen string
	// HTTPListen serves /healthz, /metrics and /debug/pprof/; "" disables it. Default ":8080".
	HTTPListen string
	// ProxyMode is ProxyLocal (default) or ProxyCluster.
	ProxyMode string
	// AdvertiseHost is the host the Broker registers and the Proxy returns in routes.
	// Default "127.0.0.1" (clients on this machine); set it to a reachable address when
	// clients run elsewhere (containers).
	AdvertiseHost string
	// Broker is the broker configuration (broker.conf keys). Default: broker.DefaultConfig
	// with BrokerName "broker-a", auto-creation of topics and groups on, and 64 MiB commit-log
	// segments (mappedFileSizeCommitLog; RocketMQ's 1 GiB reserves a gigabyte of disk on the
	// first start, heavy for a development node; set it in --config to change it).
	Broker broker.Config
	// Proxy is the gRPC proxy configuration. Default: proxy.DefaultConfig with topic
	// auto-creation on.
	Proxy proxy.Config
	// Namesrv is the NameServer configuration. Default: namesrv.DefaultConfig.
	Namesrv namesrv.Config
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	b := broker.DefaultConfig()
	b.BrokerName = "broker-a"
	b.AutoCreateTopicEnable = true
	b.AutoCreateSubscriptionGroup = true
	b.MappedFileSizeCommitLog = 64 << 20
	p := proxy.DefaultConfig()
	p.AutoCreateTopic = true
	return Config{
		DataDir:       "./rocketry-data",
		NamesrvListen: ":9876",
		BrokerListen:  ":10911",
		GRPCListen:    ":8081",
		HTTPListen:    ":8080",
		ProxyMode:     ProxyLocal,
		AdvertiseHost: "127.0.0.1",
		Broker:        b,
		Proxy:         p,
		Namesrv:       namesrv.DefaultConfig(),
	}
}

// Validate reports a config that cannot work (component configs are validated by New).
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("standalone: empty data dir")
	}
	for name, a := range map[string]string{"namesrv": c.NamesrvListen, "broker": c.BrokerListen, "grpc": c.GRPCListen} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("standalone: %s listen address %q: %w", name, a, err)
		}
	}
	if c.HTTPListen != "" {
		if _, _, err := net.SplitHostPort(c.HTTPListen); err != nil {
			return fmt.Errorf("standalone: http listen address %q: %w", c.HTTPListen, err)
		}
	}
	if c.AdvertiseHost == "" {
		return errors.New("standalone: empty advertise host")
	}
	if c.ProxyMode != ProxyLocal && c.ProxyMode != ProxyCluster {
		return fmt.Errorf("standalone: proxy mode %q (want %s or %s)", c.ProxyMode, ProxyLocal, ProxyCluster)
	}
	// Every component's configuration is checked before any of them touches the data
	// directory: a typo in a proxy flag must not open (or create) the store first.
	pc := proxyConfig(c)
	if err := pc.Validate(); err != nil {
		return fmt.Errorf("standalone: %w", err)
	}
	ns := c.Namesrv
	ns.Listen = c.NamesrvListen
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("standalone: %w", err)
	}
	bc := c.Broker
	bc.ListenAddr, bc.NamesrvAddrs, bc.DataDir = c.BrokerListen, []string{"127.0.0.1:9876"}, c.brokerDir()
	if err := bc.Validate(); err != nil {
		return fmt.Errorf("standalone: %w", err)
	}
	return nil
}

// proxyConfig is the in-process proxy's configuration: the proxy accepts invisible times
// down to the broker's popMinInvisibleTime when broker.conf lowers it (one knob, not two).
func proxyConfig(c Config) proxy.Config {
	pc := c.Proxy
	pc.GRPCListen = c.GRPCListen
	if m := c.Broker.PopMinInvisibleTime; m > 0 && m < pc.MinInvisible {
		pc.MinInvisible = m
	}
	return pc
}

// Backend is the proxy backend standalone runs: the proxy's Backend plus its own loop.
type Backend interface {
	proxy.Backend
	Run(ctx context.Context) error
}

// Server is a running (or ready to run) standalone deployment.
type Server struct {
	cfg Config
	log *slog.Logger

	Metrics *metrics.Registry
	Health  *metrics.Health

	Namesrv *namesrv.Server
	Broker  *broker.Broker
	Backend Backend // *local.Backend or *cluster.Backend
	Proxy   *proxy.Server

	httpLn     net.Listener
	proxyReady *metrics.Flag
	startedAt  time.Time

	mu          sync.Mutex // guards running, closedEarly and stop
	running     bool
	closedEarly bool // Close ran before Run: Run returns nil at once
	stop        context.CancelFunc
	closeOnce   sync.Once
	runDone     chan struct{}
}

// New validates cfg, creates the components and binds every listener (ports given as 0 are
// resolved: the Addr methods report them). Nothing is served until Run. On error everything
// already created is released.
func New(cfg Config, logger *slog.Logger) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: logger.With("component", "standalone"), Metrics: metrics.NewRegistry(),
		Health: metrics.NewHealth(), runDone: make(chan struct{}), startedAt: time.Now()}
	defer func() {
		if err != nil {
			s.release()
		}
	}()

	ns := cfg.Namesrv
	ns.Listen = cfg.NamesrvListen
	ns.HTTPListen = "" // one HTTP listener: ours
	if ns.KVConfigPath == "" {
		ns.KVConfigPath = filepath.Join(cfg.DataDir, "namesrv", "kvConfig.json")
	}
	if s.Namesrv, err = namesrv.New(ns, logger, namesrv.WithMetrics(s.Metrics, s.Health)); err != nil {
		return nil, fmt.Errorf("standalone: %w", err)
	}
	nsAddr := loopback(s.Namesrv.Addr(), cfg.AdvertiseHost)

	bc := cfg.Broker
	bc.ListenAddr = cfg.BrokerListen
	bc.NamesrvAddrs = []string{nsAddr}
	bc.DataDir = cfg.brokerDir()
	bln, err := net.Listen("tcp", cfg.BrokerListen)
	if err != nil {
		return nil, fmt.Errorf("standalone: broker listen %s: %w", cfg.BrokerListen, err)
	}
	if bc.AdvertiseAddr == "" {
		bc.AdvertiseAddr = net.JoinHostPort(cfg.AdvertiseHost, strconv.Itoa(bln.Addr().(*net.TCPAddr).Port))
	}
	if s.Broker, err = broker.NewWithListener(bc, logger, bln, broker.WithMetrics(s.Metrics, s.Health)); err != nil {
		bln.Close()
		return nil, fmt.Errorf("standalone: %w", err)
	}

	if cfg.ProxyMode == ProxyLocal {
		s.Backend = local.New(s.Broker, logger)
	} else {
		cc := cluster.DefaultConfig()
		cc.NamesrvAddrs = []string{nsAddr}
		be, err := cluster.New(cc, logger)
		if err != nil {
			return nil, fmt.Errorf("standalone: %w", err)
		}
		s.Backend = be
	}
	pc := proxyConfig(cfg)
	proxyNode := s.Metrics.Node(metrics.NodeInfo{Cluster: bc.ClusterName, Type: metrics.NodeProxy, ID: proxyID(cfg)})
	if s.Proxy, err = proxy.New(pc, s.Backend, logger, proxy.WithMetrics(proxyNode)); err != nil {
		return nil, fmt.Errorf("standalone: %w", err)
	}

	if cfg.HTTPListen != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
			return nil, fmt.Errorf("standalone: http listen %s: %w", cfg.HTTPListen, err)
		}
	}
	s.registerReadiness()
	return s, nil
}

// proxyID is the proxy's node_id: the advertised host and the gRPC listen port (RocketMQ
// uses the proxy's serving address).
func proxyID(cfg Config) string {
	_, port, _ := net.SplitHostPort(cfg.GRPCListen)
	return net.JoinHostPort(cfg.AdvertiseHost, port)
}

// loopback turns a bound address into one a local client can dial: an unspecified host
// (":9876", "[::]:9876") becomes host.
func loopback(a net.Addr, host string) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ta.IP == nil || ta.IP.IsUnspecified() {
		return net.JoinHostPort(host, strconv.Itoa(ta.Port))
	}
	return ta.String()
}

// registerReadiness adds the proxy check (the NameServer and the broker register their own
// "namesrv", "broker" and "broker-registration" checks).
func (s *Server) registerReadiness() {
	s.proxyReady = &metrics.Flag{}
	grpcAddr := loopback(s.Proxy.Addr(), "127.0.0.1")
	s.Health.Add("proxy", func() error {
		if !s.proxyReady.Ready() {
			return metrics.ErrNotReady
		}
		c, err := net.DialTimeout("tcp", grpcAddr, time.Second)
		if err != nil {
			return fmt.Errorf("gRPC listener: %w", err)
		}
		c.Close()
		return nil
	})
}

// NamesrvAddr is the NameServer's dialable address.
func (s *Server) NamesrvAddr() string { return loopback(s.Namesrv.Addr(), s.cfg.AdvertiseHost) }

// BrokerAddr is the Broker's advertised address.
func (s *Server) BrokerAddr() string { return s.Broker.Addr() }

// GRPCAddr is the Proxy's dialable gRPC address ("host:port", what SDK endpoints take).
func (s *Server) GRPCAddr() string { return loopback(s.Proxy.Addr(), s.cfg.AdvertiseHost) }

// HTTPAddr is the HTTP listener's dialable address, "" when disabled.
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return loopback(s.httpLn.Addr(), "127.0.0.1")
}

// Ready reports whether every component is ready (what /healthz reports).
func (s *Server) Ready() bool {
	ok, _ := s.Health.Check()
	return ok
}

// WaitReady blocks until Ready or ctx ends.
func (s *Server) WaitReady(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if s.Ready() {
			return nil
		}
		select {
		case <-ctx.Done():
			_, res := s.Health.Check()
			return fmt.Errorf("standalone: not ready (%v): %w", res, ctx.Err())
		case <-t.C:
		}
	}
}

// Run serves every component until ctx is cancelled (or one of them fails), then shuts down
// in order (see package doc). It returns the first component error, nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.closedEarly {
		s.mu.Unlock()
		return nil // Close came first and released everything: nothing to run (QA F26)
	}
	if s.running {
		s.mu.Unlock()
		return errors.New("standalone: Run called twice")
	}
	s.running, s.stop = true, cancel
	s.mu.Unlock()
	defer close(s.runDone)

	// Each component has its own context so that shutdown runs in order.
	type comp struct {
		name   string
		cancel context.CancelFunc
		done   chan error
	}
	var errOnce sync.Once
	var firstErr error
	start := func(name string, run func(context.Context) error) *comp {
		cctx, ccancel := context.WithCancel(context.Background())
		c := &comp{name: name, cancel: ccancel, done: make(chan error, 1)}
		go func() {
			err := run(cctx)
			if err != nil && cctx.Err() == nil { // failed on its own: stop everything
				errOnce.Do(func() { firstErr = fmt.Errorf("%s: %w", name, err) })
				cancel()
			}
			c.done <- err
		}()
		return c
	}
	var httpC *comp
	if s.httpLn != nil {
		mux := metrics.NewMux(s.Metrics, s.Health)
		httpC = start("http", func(c context.Context) error { return metrics.Serve(c, s.httpLn, mux, s.log) })
	}
	nsC := start("namesrv", s.Namesrv.Run)
	brC := start("broker", s.Broker.Run)
	beC := start("proxy-backend", s.Backend.Run)
	pxC := start("proxy", func(c context.Context) error {
		s.proxyReady.Set()
		return s.Proxy.Run(c)
	})
	// The addresses clients use, then the sockets actually bound (a wildcard listen such as
	// ":9876" accepts on every interface, QA R11C-6).
	listening := []string{s.Namesrv.Addr().String(), s.Broker.ListenAddr().String(), s.Proxy.Addr().String()}
	if s.httpLn != nil {
		listening = append(listening, s.httpLn.Addr().String())
	}
	s.log.Info("standalone: started", "namesrv", s.NamesrvAddr(), "broker", s.BrokerAddr(), "grpc", s.GRPCAddr(),
		"http", s.HTTPAddr(), "listening", strings.Join(listening, ","), "data", s.cfg.DataDir)
	go func() {
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		defer wcancel()
		if s.WaitReady(wctx) == nil {
			s.log.Info("standalone: ready", "startup", time.Since(s.startedAt).Round(time.Millisecond))
		}
	}()

	<-ctx.Done()
	s.log.Info("standalone: shutting down")
	s.proxyReady.Clear()
	order := []*comp{pxC, beC, brC, nsC}
	if httpC != nil {
		order = append(order, httpC)
	}
	for _, c := range order {
		c.cancel()
		if err := <-c.done; err != nil && !errors.Is(err, context.Canceled) {
			errOnce.Do(func() { firstErr = fmt.Errorf("%s: %w", c.name, err) })
			s.log.Warn("standalone: component stopped with an error", "component", c.name, "err", err)
		}
	}
	s.release()
	s.log.Info("standalone: stopped")
	return firstErr
}

// release closes every component (idempotent; also valid when Run never ran).
func (s *Server) release() {
	if s.Proxy != nil {
		s.Proxy.Close()
	}
	if c, ok := s.Backend.(interface{ Close() error }); ok {
		c.Close()
	}
	if s.Broker != nil {
		s.Broker.Close()
	}
	if s.Namesrv != nil {
		s.Namesrv.Close()
	}
	if s.httpLn != nil {
		s.httpLn.Close()
	}
}

// Close stops a running server and waits for Run to return, or releases a server that never
// ran. Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		running, stop := s.running, s.stop
		if !running {
			s.closedEarly = true // a later Run returns at once
		}
		s.mu.Unlock()
		if running {
			stop()
			<-s.runDone
			return
		}
		s.release()
	})
	return nil
}
