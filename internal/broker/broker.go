package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// PutHook may take over a put (rewrite topic/queue, e.g. to a timer or half topic). Hooks run
// in registration order; the first that returns handled=true wins. A hook that stores the
// message itself must use PutMessageDirect.
type PutHook func(ctx context.Context, m *message.Ext) (res store.PutResult, handled bool, err error)

// featureInits are run by New after the core is built (store open, tables loaded), in order.
// A feature file appends to it from its init function.
var featureInits []func(b *Broker) error

// featureStarts are run by Run after the remoting server is listening; each gets the broker's
// run context and must return promptly (start goroutines through b.Go, stopped when ctx is
// cancelled; Close waits for them).
var featureStarts []func(ctx context.Context, b *Broker) error

// Broker is the composition root of a RocketMQ-compatible broker: the store, the metadata
// tables, the client registry, the remoting handlers and NameServer registration.
//
// Lifecycle: New (opens the store, loads tables, binds the listener, runs featureInits) ->
// Run(ctx) (serves until ctx ends, then shuts down) -> Close (idempotent; also valid without
// Run). Goroutines are started only through b.Go and are awaited by Close.
type Broker struct {
	Cfg     Config
	Log     *slog.Logger
	Store   *store.Store
	Topics  *TopicTable
	Groups  *GroupTable
	Offsets *OffsetTable
	Clients *ClientManager
	Locks   *QueueLocks
	Server  *remoting.Server // nil until Run; register handlers with b.Handle

	ln        net.Listener
	addr      string // advertised ip:port
	storeHost netip.AddrPort
	nsClient  *remoting.Client

	cfgMu   sync.Mutex             // serialises UpdateConfig
	liveCfg atomic.Pointer[Config] // runtime view of Cfg (UPDATE_BROKER_CONFIG changes it)

	hmu      sync.Mutex
	handlers map[int32]remoting.Handler
	putHooks []PutHook
	inflight atomic.Pointer[func(group, topic string, qid int32) int64]

	polls      *pollTable
	stats      brokerStats
	sendActive atomic.Int64  // sends holding a slot (<= SendThreadPoolNums)
	sendQ      atomic.Int64  // sends waiting for a slot
	sendFree   chan struct{} // capacity 1: "a slot was released" for waiting sends

	registerNow chan struct{}
	// pendingTopics / pendingWhole: what changed since the last registration (pendingMu).
	pendingMu     sync.Mutex
	pendingTopics map[string]struct{}
	pendingWhole  bool
	incrementSeq  atomic.Int64 // numbers incremental registrations (register.go)
	startedAt     time.Time
	// registeredAt is when a REGISTER_BROKER last reached at least one NameServer (unix
	// nanoseconds; 0 = never): the "broker-registration" readiness check.
	registeredAt atomic.Int64

	reg    *metrics.Registry // nil: metrics off
	health *metrics.Health
	mnode  *metrics.Node // nil when metrics are off
	ready  *metrics.Flag // set while serving; nil without health

	life       context.Context // cancelled by Close
	lifeCancel context.CancelFunc
	wg         sync.WaitGroup

	running   atomic.Bool
	runDone   chan struct{}
	closeOnce sync.Once
	closeErr  error

	// requesters maps the client id of a request-reply requester (REPLY_TO_CLIENT of a
	// request it sent) to the connection it sent it on (reply.go).
	requesters sync.Map
}

// New builds a broker listening on cfg.ListenAddr (port 0 picks a free port). The store is
// opened and the metadata tables loaded before it returns.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", cfg.ListenAddr, err)
	}
	b, err := NewWithListener(cfg, logger, ln, opts...)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return b, nil
}

// NewWithListener builds a broker that will serve on ln (in-process callers: standalone
// mode, tests). The broker owns ln from now on. cfg.ListenAddr is informational only.
func NewWithListener(cfg Config, logger *slog.Logger, ln net.Listener, opts ...Option) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	port := 0
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		port = ta.Port
	}
	b := &Broker{
		Cfg:         cfg,
		Log:         logger.With("component", "broker", "broker", cfg.BrokerName),
		ln:          ln,
		addr:        advertisedAddr(cfg.AdvertiseAddr, port),
		handlers:    map[int32]remoting.Handler{},
		sendFree:    make(chan struct{}, 1),
		registerNow: make(chan struct{}, 1),
		runDone:     make(chan struct{}),
		startedAt:   time.Now(),
	}
	for _, o := range opts {
		o(b)
	}
	b.life, b.lifeCancel = context.WithCancel(context.Background())
	live := cfg
	b.liveCfg.Store(&live)
	b.storeHost = resolveStoreHost(b.addr)

	cfgDir := filepath.Join(cfg.DataDir, configDirName)
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: create %s: %w", cfgDir, err)
	}
	var err error
	checkMetadataFiles(cfgDir, b.Log)
	if b.Topics, err = loadTopicTable(cfgDir, b.triggerRegister); err != nil {
		return nil, err
	}
	if b.Groups, err = loadGroupTable(cfgDir, cfg.AutoCreateSubscriptionGroup); err != nil {
		return nil, err
	}
	if b.Offsets, err = loadOffsetTable(cfgDir); err != nil {
		return nil, err
	}
	b.Clients = newClientManager(b.notifyConsumersChanged)
	b.Clients.logger = b.Log
	b.Locks = newQueueLocks(cfg.RebalanceLockMaxLiveTime)
	b.polls = newPollTable()

	st, err := store.Open(b.storeConfig(), b.Log)
	if err != nil {
		return nil, fmt.Errorf("broker: open store: %w", err)
	}
	b.Store = st
	b.Store.OnDispatch(b.polls.onDispatch)
	b.nsClient = remoting.NewClient(remoting.DefaultClientConfig(), b.Log)

	fail := func(err error) (*Broker, error) {
		b.lifeCancel() // stops goroutines a feature init may have started with b.Go
		b.polls.closeAll()
		b.wg.Wait()
		_ = b.nsClient.Close()
		_ = b.Store.Close()
		return nil, err
	}
	if err := b.ensureSystemTopics(); err != nil {
		return fail(err)
	}
	b.initMetrics()
	b.registerCoreHandlers()
	for _, f := range featureInits {
		if err := f(b); err != nil {
			return fail(fmt.Errorf("broker: feature init: %w", err))
		}
	}
	return b, nil
}

func resolveStoreHost(addr string) netip.AddrPort {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if ips, err := net.LookupIP(host); err == nil {
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				return netip.AddrPortFrom(netip.AddrFrom4([4]byte(v4)), uint16(p))
			}
		}
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(p))
}

func (b *Broker) storeConfig() store.Config {
	c := store.DefaultConfig()
	c.StorePathRootDir = b.Cfg.DataDir
	c.MappedFileSizeCommitLog = b.Cfg.MappedFileSizeCommitLog
	c.FlushDiskType = b.Cfg.FlushDiskType
	c.FlushIntervalCommitLog = b.Cfg.FlushIntervalCommitLog
	c.SyncFlushTimeout = b.Cfg.SyncFlushTimeout
	c.FileReservedTime = b.Cfg.FileReservedTime
	c.DeleteWhen = b.Cfg.DeleteWhen
	c.DiskMaxUsedSpaceRatio = b.Cfg.DiskMaxUsedSpaceRatio
	if b.Cfg.DiskSpaceWarningLevelRatio > 0 {
		c.DiskSpaceWarningLevelRatio = b.Cfg.DiskSpaceWarningLevelRatio
	}
	if b.Cfg.DiskSpaceCleanForciblyRatio > 0 {
		c.DiskSpaceCleanForciblyRatio = b.Cfg.DiskSpaceCleanForciblyRatio
	}
	c.MaxMessageSize = b.Cfg.MaxMessageSize
	c.MessageIndexEnable = b.Cfg.MessageIndexEnable
	c.AccessMessageInMemoryMaxRatio = b.Cfg.AccessMessageInMemoryMaxRatio
	c.TransientStorePoolEnable = b.Cfg.TransientStorePoolEnable
	c.RecoverTruncateCorrupt = b.Cfg.RecoverTruncateCorrupt
	c.StoreHost = b.storeHost
	if b.Cfg.storeTweak != nil {
		b.Cfg.storeTweak(&c)
	}
	return c
}

// ensureSystemTopics creates the topics every RocketMQ broker has: TBW102 (the auto-create
// template, perm RW+INHERIT while autoCreateTopicEnable), SELF_TEST_TOPIC, the cluster and
// broker name topics and OFFSET_MOVED_EVENT.
func (b *Broker) ensureSystemTopics() error {
	def := NewTopicConfig(message.TopicDefault, b.Cfg.DefaultTopicQueueNums)
	if b.Cfg.AutoCreateTopicEnable {
		def.Perm |= PermInherit
	}
	if cur, ok := b.Topics.Get(message.TopicDefault); !ok || cur.Perm != def.Perm || cur.WriteQueueNums != def.WriteQueueNums {
		if err := b.Topics.Update(def); err != nil {
			return err
		}
	}
	for _, tc := range []TopicConfig{
		NewTopicConfig(message.TopicSelfTest, 1),
		NewTopicConfig(b.Cfg.ClusterName, 16),
		NewTopicConfig(b.Cfg.BrokerName, 1),
		NewTopicConfig(message.TopicOffsetMovedEvent, 1),
		NewTopicConfig(b.replyTopic(), 1), // request-reply (reply.go), as Apache's TopicConfigManager
	} {
		if _, _, err := b.Topics.Ensure(tc); err != nil {
			return err
		}
	}
	if b.Cfg.TraceTopicEnable && b.Cfg.MsgTraceTopicName != "" {
		// Apache TopicConfigManager: the trace topic with one read and one write queue.
		if _, _, err := b.Topics.Ensure(NewTopicConfig(b.Cfg.MsgTraceTopicName, 1)); err != nil {
			return fmt.Errorf("trace topic %s: %w", b.Cfg.MsgTraceTopicName, err)
		}
	}
	return nil
}

// live returns the runtime configuration (Cfg plus UPDATE_BROKER_CONFIG changes). Never
// modify the returned value.
func (b *Broker) live() *Config { return b.liveCfg.Load() }

// EffectivePerm is a topic's permission as the broker announces it: perm &
// brokerPermission while the broker is not read-write (Apache registerBrokerAll), else perm.
func (b *Broker) EffectivePerm(perm int32) int32 {
	bp := int32(b.live().BrokerPermission)
	if bp&PermRead == 0 || bp&PermWrite == 0 {
		return perm & bp
	}
	return perm
}

// brokerWritable and brokerReadable report the broker-wide permission (brokerPermission).
func (b *Broker) brokerWritable() bool { return b.live().BrokerPermission&PermWrite != 0 }
func (b *Broker) brokerReadable() bool { return b.live().BrokerPermission&PermRead != 0 }

// Name returns brokerName.
func (b *Broker) Name() string { return b.Cfg.BrokerName }

// Addr returns the advertised "ip:port" (registered with NameServers).
func (b *Broker) Addr() string { return b.addr }

// ListenAddr returns the address the broker's listener is bound to.
func (b *Broker) ListenAddr() net.Addr { return b.ln.Addr() }

// StoreHost is the address written into stored records and offset message ids.
func (b *Broker) StoreHost() netip.AddrPort { return b.storeHost }

// Context is cancelled when the broker closes; goroutines started from featureInits select
// on it.
func (b *Broker) Context() context.Context { return b.life }

// Handle registers a remoting handler for code; it must be called before Run. A later
// registration for the same code replaces the earlier one.
func (b *Broker) Handle(code int32, h remoting.Handler) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.handlers[code] = h
}

// AddPutHook appends a put hook (see PutHook); call it from a featureInit.
func (b *Broker) AddPutHook(h PutHook) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.putHooks = append(b.putHooks, h)
}

// SetInflightCounter installs the provider of in-flight (popped, unacked) message counts shown
// by GET_CONSUME_STATS.
func (b *Broker) SetInflightCounter(f func(group, topic string, qid int32) int64) {
	b.inflight.Store(&f)
}

func (b *Broker) inflightCount(group, topic string, qid int32) int64 {
	if f := b.inflight.Load(); f != nil {
		return (*f)(group, topic, qid)
	}
	return 0
}

// PutMessage stores m through the put hooks (the first hook that handles it wins), falling
// back to the store. Send handlers and internal re-puts (retry, DLQ) use it.
func (b *Broker) PutMessage(ctx context.Context, m *message.Ext) (store.PutResult, error) {
	b.hmu.Lock()
	hooks := b.putHooks
	b.hmu.Unlock()
	for _, h := range hooks {
		res, handled, err := h(ctx, m)
		if handled || err != nil {
			if err == nil {
				b.stats.put.Add(1)
			}
			return res, err
		}
	}
	res, err := b.PutMessageDirect(ctx, m)
	if err == nil {
		b.stats.put.Add(1)
	}
	return res, err
}

// PutMessageDirect stores m without running hooks (used by hooks themselves and by the
// re-delivery of due timers). StoreHost is filled in when unset.
func (b *Broker) PutMessageDirect(ctx context.Context, m *message.Ext) (store.PutResult, error) {
	if !m.StoreHost.IsValid() {
		m.StoreHost = b.storeHost
	}
	return b.Store.Put(ctx, m)
}

// Go runs f in a goroutine owned by the broker; Close waits for it. f must return once
// b.Context() (or the run context it was given) is cancelled.
func (b *Broker) Go(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// Run serves requests until ctx is cancelled, then shuts the broker down (unregister from
// NameServers, drain requests, persist offsets, close the store) and returns.
func (b *Broker) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("broker: Run called twice")
	}
	defer close(b.runDone)
	if b.life.Err() != nil {
		return errors.New("broker: closed")
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // Close cancels the run context through the lifetime context.
		select {
		case <-b.life.Done():
			cancel()
		case <-runCtx.Done():
		}
	}()

	rcfg := remoting.DefaultServerConfig()
	host, _, _ := net.SplitHostPort(b.addr)
	conf, selfSigned, terr := b.Cfg.TLS.ServerConfig([]string{"localhost", "127.0.0.1", host})
	if terr != nil {
		return fmt.Errorf("broker: remoting TLS: %w", terr)
	}
	rcfg.TLSMode, rcfg.TLS = b.Cfg.TLS.Mode, conf
	if selfSigned {
		b.Log.Info("remoting port accepts TLS clients with a generated self-signed certificate (tls.server.mode=permissive); set tls.server.certPath/keyPath for your own")
	}
	srv := remoting.NewServer(rcfg, b.Log)
	// Suspended pulls and pops park for up to their poll time: they must not fill a
	// connection's in-flight slots (QA R4A-6).
	srv.MarkLongPoll(remoting.PullMessage)
	srv.MarkSelfBoundedLongPoll(remoting.PopMessage) // popPollingSize / maxPopPollingSize
	b.hmu.Lock()
	for code, h := range b.handlers {
		srv.Handle(code, b.instrument(code, h))
	}
	b.hmu.Unlock()
	srv.OnConnClose(b.Clients.ConnClosed)
	b.Server = srv

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(b.ln) }()

	b.Log.Info("broker started", "listen", b.ln.Addr().String(), "advertise", b.addr,
		"cluster", b.Cfg.ClusterName, "flush", b.Cfg.FlushDiskType, "namesrv", b.Cfg.NamesrvAddrs)

	var startErr error
	for _, f := range featureStarts {
		if err := f(runCtx, b); err != nil {
			startErr = fmt.Errorf("broker: feature start: %w", err)
			cancel()
			break
		}
	}
	if startErr == nil {
		if b.ready != nil {
			b.ready.Set()
		}
		b.Go(func() { b.registerLoop(runCtx) })
		b.Go(func() { b.offsetFlushLoop(runCtx) })
		b.Go(func() { b.clientScanLoop(runCtx) })
		b.Go(func() { b.statsLoop(runCtx) })
	}

	var err error
	select {
	case <-runCtx.Done():
		if startErr == nil {
			// QA R11C-7: the operator sees the stop begin, not only its end.
			b.Log.Info("broker shutting down: unregistering, draining connections, flushing the store")
		}
	case err = <-serveErr:
		if errors.Is(err, remoting.ErrServerClosed) {
			err = nil
		} else if err != nil {
			err = fmt.Errorf("broker: serve: %w", err)
		}
	}
	cancel()
	if b.ready != nil {
		b.ready.Clear()
	}
	b.polls.closeAll() // answer parked long polls so the server can drain
	b.unregisterAll()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		b.Log.Warn("broker: remoting shutdown", "err", serr)
	}
	scancel()
	if cerr := b.shutdown(); err == nil {
		err = cerr
	}
	if startErr != nil {
		return startErr
	}
	return err
}

// Close stops the broker: it ends Run (and waits for it) when running, then releases
// everything. Safe to call more than once.
func (b *Broker) Close() error {
	b.lifeCancel()
	if b.running.Load() {
		<-b.runDone
	}
	return b.shutdown()
}

// shutdown releases resources once: waits for owned goroutines, persists offsets and
// closes the store.
func (b *Broker) shutdown() error {
	b.closeOnce.Do(func() {
		b.lifeCancel()
		if !b.running.Load() {
			_ = b.ln.Close()
		}
		b.polls.closeAll()
		b.wg.Wait()
		var errs []error
		if err := b.Offsets.Persist(); err != nil {
			errs = append(errs, err)
		}
		if err := b.nsClient.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := b.Store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("broker: close store: %w", err))
		}
		b.closeErr = errors.Join(errs...)
		b.Log.Info("broker stopped")
	})
	return b.closeErr
}

func (b *Broker) offsetFlushLoop(ctx context.Context) {
	t := time.NewTicker(b.Cfg.FlushConsumerOffsetInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.Offsets.Persist(); err != nil {
				b.Log.Error("persist consumer offsets", "err", err)
			}
		}
	}
}

// clientScanLoop drops clients silent for ChannelExpiredTimeout and expired locks.
func (b *Broker) clientScanLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n := b.Clients.Expire(now, b.live().ChannelExpiredTimeout); n > 0 {
				b.Log.Info("expired idle client registrations", "groups", n)
			}
		}
	}
}

// notifyConsumersChanged sends NOTIFY_CONSUMER_IDS_CHANGED (oneway) to the remaining
// consumers of group when the group allows it.
func (b *Broker) notifyConsumersChanged(group string, chans []ClientChannel) {
	if gc, ok := b.Groups.Get(group); ok && !gc.NotifyConsumerIdsChangedEnable {
		return
	}
	for _, ch := range chans {
		if ch.Conn == nil || ch.Conn.Closed() {
			continue
		}
		req := remoting.NewRequest(remoting.NotifyConsumerIdsChanged, map[string]string{"consumerGroup": group}, nil)
		if err := ch.Conn.InvokeOneway(req); err != nil {
			b.Log.Debug("notify consumer ids changed", "group", group, "client", ch.ClientID, "err", err)
		}
	}
}
