package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
	"github.com/rocketry-mq/rocketry/internal/tlsmux"
)

// gRPC metadata keys sent by the official clients (reference A.1).
const (
	mdClientID = "x-mq-client-id"
	mdLanguage = "x-mq-language"
	mdVersion  = "x-mq-client-version"
)

// Server is the gRPC front door: apache.rocketmq.v2.MessagingService over a Backend.
type Server struct {
	pb.UnimplementedMessagingServiceServer

	cfg     Config
	logger  *slog.Logger
	backend Backend
	// receiveRR spreads receives whose named broker cannot serve them (readableBroker).
	receiveRR atomic.Uint32
	stopOnce  sync.Once // hardStop
	now       func() time.Time

	ln      *tlsmux.Listener
	grpc    *grpc.Server
	clients *registry
	renew   *renewer
	metrics *metrics.Node // nil: no metrics
	acl     *auth.Store
	authn   *auth.Authenticator

	rr atomic.Uint64 // round-robin cursor for NORMAL/DELAY/TRANSACTION sends

	mu      sync.Mutex // guards closed, cancel
	closed  bool
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// New validates cfg, loads TLS material and the ACL, listens on cfg.GRPCListen and installs
// the Server as backend's transaction checker. Serving starts with Run.
func New(cfg Config, backend Backend, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if backend == nil {
		return nil, errors.New("proxy: nil backend")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "proxy")
	s := &Server{cfg: cfg, logger: logger, backend: backend, now: time.Now}
	s.clients = newRegistry(func() time.Time { return s.now() })
	s.renew = newRenewer()
	for _, o := range opts {
		o(s)
	}

	if cfg.Auth {
		store, err := auth.NewStore(cfg.ACLFile, logger)
		if err != nil {
			return nil, err
		}
		s.acl = store
		s.authn = auth.NewAuthenticator(store, cfg.AuthClockSkew, func() time.Time { return s.now() })
		// The ACL guards this gRPC port only (QA R8K-2): say what stays open.
		logger.Warn("authentication covers the gRPC port only: broker and NameServer remoting ports (4.x clients, rocketry admin) are not authenticated; keep them on a private network or firewall them")
	} else if cfg.ACLFile != "" {
		// An ACL without authentication protects nothing: say so (QA F22).
		logger.Warn("an ACL file is set but authentication is off: every client is served anonymously and the ACL is not used; add --auth (authenticationEnabled=true) to enforce it",
			"aclFile", cfg.ACLFile)
	}

	var tlsConf *tls.Config
	if cfg.TLSMode != TLSDisabled {
		hosts := []string{"localhost", "127.0.0.1"}
		if h, _, err := net.SplitHostPort(cfg.AdvertiseAddr); err == nil {
			hosts = append(hosts, h)
		}
		conf, selfSigned, err := tlsmux.ServerConfig(cfg.TLSCertFile, cfg.TLSKeyFile, hosts, []string{"h2"})
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		if selfSigned {
			logger.Warn("TLS uses a generated self-signed certificate; pass --tls-cert/--tls-key in production")
		}
		tlsConf = conf
	}

	inner, err := net.Listen("tcp", cfg.GRPCListen)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen %s: %w", cfg.GRPCListen, err)
	}
	s.ln = tlsmux.NewListener(inner, cfg.TLSMode, tlsConf, cfg.HandshakeTimeout, logger)
	gopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Idle connections are closed as Apache's proxy does (maxConnectionIdle), and the
		// HTTP/2 preface must arrive within the handshake timeout (QA R6F-2).
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: cfg.IdleTimeout}),
		grpc.ConnectionTimeout(cfg.HandshakeTimeout),
	}
	if cfg.StreamWorkers > 0 {
		gopts = append(gopts, grpc.NumStreamWorkers(uint32(cfg.StreamWorkers)))
	}
	unary := []grpc.UnaryServerInterceptor{unaryNamespace}
	stream := []grpc.StreamServerInterceptor{streamNamespace}
	if s.metrics != nil {
		unary = append([]grpc.UnaryServerInterceptor{s.unaryMetrics}, unary...)
		stream = append([]grpc.StreamServerInterceptor{s.streamMetrics}, stream...)
	}
	gopts = append(gopts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	s.grpc = grpc.NewServer(gopts...)
	s.grpc.RegisterService(messagingServiceDesc(), s) // the generated service plus RecallMessage (recall.go)
	backend.SetTransactionChecker(s)
	return s, nil
}

// Addr is the bound gRPC address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is cancelled or Close is called, then stops gracefully.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("proxy: server closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.running.Add(1)
	s.mu.Unlock()
	defer s.running.Done()
	defer cancel()

	s.logger.Info("proxy serving", "addr", s.Addr().String(), "tls", s.cfg.TLSMode, "auth", s.cfg.Auth, "advertise", s.cfg.AdvertiseAddr)
	var wg sync.WaitGroup
	if s.acl != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.acl.Run(ctx, s.cfg.ACLReloadInterval) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); s.expireLoop(ctx) }()
	go func() { defer wg.Done(); s.renewLoop(ctx) }()

	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.ln) }()
	var err error
	select {
	case <-ctx.Done():
		s.logger.Info("proxy shutting down: draining gRPC streams") // QA R11C-7: a clean stop is visible
	case err = <-errc:
	}
	start := time.Now()
	s.stopGRPC()
	cancel()
	wg.Wait()
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) {
		s.logger.Error("proxy stopped", "err", err)
		return fmt.Errorf("proxy: serve: %w", err)
	}
	s.logger.Info("proxy stopped", "drain", time.Since(start).Round(time.Millisecond))
	return nil
}

// stopGRPC stops gracefully, forcing after a bound (long polls and telemetry streams hold
// graceful stop open otherwise).
func (s *Server) stopGRPC() {
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		s.hardStop()
		<-done
	}
	s.hardStop() // GracefulStop leaves the stream workers running; Stop ends them
	s.ln.Close()
}

// hardStop calls grpc.Server.Stop once: with stream workers, grpc-go v1.48 panics on a
// second Stop (it closes the worker channels again).
func (s *Server) hardStop() { s.stopOnce.Do(s.grpc.Stop) }

// Close stops a running Run and releases the listener.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.running.Wait()
	s.hardStop()
	return s.ln.Close()
}

func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(min(s.cfg.ClientExpiry/4, 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			gone, consumers := s.clients.expire(s.cfg.ClientExpiry)
			for _, id := range gone {
				s.logger.Info("client expired without heartbeat", "client", id)
			}
			if consumers {
				s.rosterChanged()
			}
		}
	}
}

// call is the per-request context derived from gRPC metadata.
type call struct {
	clientID string
	user     *auth.User // nil when auth is off
	ip       netip.Addr // the client's address (auth only; zero when unknown)
	language string
	version  string
}

func firstMD(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// begin checks the metadata every RPC needs: the client id, then authentication when on.
func (s *Server) begin(ctx context.Context) (*call, error) {
	md := incomingMD(ctx)
	c := &call{clientID: firstMD(md, mdClientID), language: firstMD(md, mdLanguage), version: firstMD(md, mdVersion)}
	if c.clientID == "" {
		return nil, statusErrorf(pb.Code_CLIENT_ID_REQUIRED, "client id cannot be empty")
	}
	if s.authn == nil {
		return c, nil
	}
	// go5 stamps its local wall time with a literal Z: its date-time may be off by the
	// client's zone offset (QA F16). go5 v5.1.2 sends x-mq-language "GO" (its
	// metadata.LanguageValue; QA R7G-1), the proto enum name is "GOLANG": accept both.
	u, err := s.authn.Authenticate(firstMD(md, auth.HeaderAuthorization), firstMD(md, auth.HeaderDateTime),
		strings.EqualFold(c.language, "GO") || strings.EqualFold(c.language, "GOLANG"))
	if err != nil {
		s.logger.Debug("authentication failed", "client", c.clientID, "err", err)
		return nil, statusErrorf(pb.Code_UNAUTHORIZED, "%s", auth.ClientMessage(err))
	}
	c.user = u
	if ap, err := netip.ParseAddrPort(peerAddr(ctx)); err == nil {
		c.ip = ap.Addr().Unmap()
	}
	return c, nil
}

// authorize checks that c may do act on (typ, name); always allowed when auth is off.
func (s *Server) authorize(c *call, typ auth.ResourceType, name string, act auth.Action) error {
	if s.authn == nil {
		return nil
	}
	if c.user == nil {
		return statusErrorf(pb.Code_UNAUTHORIZED, "authentication required")
	}
	// Policies name resources without the client's namespace, as Apache's proxy matches
	// them (QA R8K-5): a namespaced "orders" is Topic:orders.
	_, bare := withoutNamespace(name)
	if err := c.user.Authorize(typ, bare, act, c.ip); err != nil {
		return statusErrorf(pb.Code_FORBIDDEN, "no permission to %s %s %s", act, typ, bare)
	}
	return nil
}

// authorizeSettings checks a Telemetry Settings command as Apache's
// DefaultAuthorizationContextBuilder: a producer needs Pub on every topic it announces, a
// consumer Sub on its group and on every topic it subscribes (QA R8K-1, R8K-3). Without it a
// user could register as the producer of any topic and receive its transaction check-backs.
func (s *Server) authorizeSettings(c *call, st *pb.Settings) error {
	if s.authn == nil {
		return nil
	}
	for _, t := range st.GetPublishing().GetTopics() {
		if err := s.authorize(c, auth.ResourceTopic, wrapNamespace(t.GetResourceNamespace(), t.GetName()), auth.ActionPub); err != nil {
			return err
		}
	}
	if sub := st.GetSubscription(); sub != nil {
		g := sub.GetGroup()
		if err := s.authorize(c, auth.ResourceGroup, wrapNamespace(g.GetResourceNamespace(), g.GetName()), auth.ActionSub); err != nil {
			return err
		}
		for _, e := range sub.GetSubscriptions() {
			t := e.GetTopic()
			if err := s.authorize(c, auth.ResourceTopic, wrapNamespace(t.GetResourceNamespace(), t.GetName()), auth.ActionSub); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkOwner refuses a call naming a client id that another user registered: client ids
// are chosen by clients, so without this a user could heartbeat, re-register or terminate
// another user's client (QA R8K-3). Always true when auth is off.
func (s *Server) checkOwner(c *call) error {
	if s.authn == nil || c.user == nil {
		return nil
	}
	if owner, ok := s.clients.ownerOf(c.clientID); ok && owner != c.user.Username {
		return statusErrorf(pb.Code_FORBIDDEN, "client id %q belongs to another user", c.clientID)
	}
	return nil
}

// advertised returns the endpoints returned in routes: the configured address, else what the
// client dialled, else loopback with the listen port.
func (s *Server) advertised(req *pb.Endpoints) *pb.Endpoints {
	if s.cfg.AdvertiseAddr != "" {
		h, p, _ := net.SplitHostPort(s.cfg.AdvertiseAddr)
		port, _ := strconv.Atoi(p)
		return endpointsFor(h, port)
	}
	if req != nil && len(req.GetAddresses()) > 0 {
		return &pb.Endpoints{Scheme: req.GetScheme(), Addresses: req.GetAddresses()}
	}
	port := 0
	if ta, ok := s.Addr().(*net.TCPAddr); ok {
		port = ta.Port
	}
	return endpointsFor("127.0.0.1", port)
}

func endpointsFor(host string, port int) *pb.Endpoints {
	scheme := pb.AddressScheme_DOMAIN_NAME
	if ip := net.ParseIP(host); ip != nil {
		scheme = pb.AddressScheme_IPv4
		if ip.To4() == nil {
			scheme = pb.AddressScheme_IPv6
		}
	}
	return &pb.Endpoints{Scheme: scheme, Addresses: []*pb.Address{{Host: host, Port: int32(port)}}}
}
