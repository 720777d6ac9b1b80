package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/peer"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/broker/pop"
	"github.com/rocketry-mq/rocketry/internal/broker/txn"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/proxy/cluster"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// SyncInterval is how often producer sinks are re-synchronised with the proxy's producers.
const SyncInterval = time.Second

// Backend implements proxy.Backend over an in-process broker.
type Backend struct {
	b        *broker.Broker
	logger   *slog.Logger
	clientID string
	checker  atomic.Pointer[checkerBox]

	mu         sync.Mutex               // guards registered and consumers
	registered map[producerKey]struct{} // producer registrations made with the broker
	consumers  map[string]string        // gRPC consumer client id -> group registered with the broker
	kick       chan struct{}            // RosterChanged: sync consumers now

	// topics caches, per topic name, the route and config derived from the broker's topic
	// table (*topicView), tagged with the table's DataVersion they were built from. The table
	// bumps its version on every change, so an entry whose version differs from the table's
	// current one is rebuilt: answers are always those of the table at the time of the call,
	// without copying the topic's attributes (TopicTable.Get clones them) on every send.
	topics sync.Map
}

// topicView is one cached topic; route and cfg are shared and read-only.
type topicView struct {
	dv    broker.DataVersion
	route *proxy.TopicRoute
	cfg   *proxy.TopicConfig
}

type checkerBox struct{ c proxy.TransactionChecker }

var _ proxy.Backend = (*Backend)(nil)

// New returns a backend over b.
func New(b *broker.Broker, logger *slog.Logger) *Backend {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	return &Backend{
		b: b, logger: logger.With("component", "proxy-local"),
		clientID:   fmt.Sprintf("rocketry-proxy-local@%s@%d", host, os.Getpid()),
		registered: map[producerKey]struct{}{},
		consumers:  map[string]string{},
		kick:       make(chan struct{}, 1),
	}
}

// AutoCreateTopic implements proxy.AutoCreatePolicy: the broker's live autoCreateTopicEnable.
func (l *Backend) AutoCreateTopic() bool { return l.b.LiveConfig().AutoCreateTopicEnable }

// RosterChanged implements proxy.RosterWatcher.
func (l *Backend) RosterChanged() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run keeps the broker's in-process producer registrations in sync until ctx ends, then
// removes them.
func (l *Backend) Run(ctx context.Context) error {
	t := time.NewTicker(SyncInterval)
	defer t.Stop()
	for {
		l.syncProducers()
		l.syncConsumers()
		select {
		case <-ctx.Done():
			l.mu.Lock()
			for k := range l.registered {
				l.b.Clients.UnregisterProducer(k.group, k.clientID)
			}
			l.registered = map[producerKey]struct{}{}
			for id, g := range l.consumers {
				l.b.Clients.UnregisterConsumer(g, id)
			}
			l.consumers = map[string]string{}
			l.mu.Unlock()
			return nil
		case <-t.C:
		case <-l.kick:
		}
	}
}

// syncConsumers registers every live gRPC consumer with the broker's client manager as an
// in-process channel (refreshing it, so the broker's 120 s expiry never drops a live one) and
// unregisters the ones that went away: `admin group describe` then lists gRPC consumers as
// online, as RocketMQ's proxy does.
func (l *Backend) syncConsumers() {
	box := l.checker.Load()
	if box == nil {
		return
	}
	roster, ok := box.c.(proxy.ConsumerRoster)
	if !ok {
		return
	}
	live := roster.Consumers()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	want := make(map[string]string, len(live))
	for _, c := range live {
		want[c.ClientID] = c.Group
		if g, ok := l.consumers[c.ClientID]; ok && g != c.Group {
			l.b.Clients.UnregisterConsumer(g, c.ClientID)
		}
		l.b.Clients.RegisterConsumer(c.Group, c.ConsumeType(), broker.ModelClustering, "CONSUME_FROM_LAST_OFFSET",
			subscriptionData(c.Subscriptions, now),
			broker.ClientChannel{ClientID: c.ClientID, RemoteAddr: c.RemoteAddr, Language: c.Language, Version: c.VersionOrdinal(), LastUpdate: now})
		l.consumers[c.ClientID] = c.Group
	}
	for id, g := range l.consumers {
		if _, ok := want[id]; !ok {
			l.b.Clients.UnregisterConsumer(g, id)
			delete(l.consumers, id)
		}
	}
}

// subscriptionData converts gRPC filter expressions into the broker's subscription records.
func subscriptionData(subs []proxy.ConsumerSubscription, now time.Time) []broker.SubscriptionData {
	out := make([]broker.SubscriptionData, 0, len(subs))
	for _, s := range subs {
		tags, codes, typ := s.Parsed()
		out = append(out, broker.SubscriptionData{Topic: s.Topic, SubString: s.Expression, SubVersion: now.UnixMilli(),
			ExpressionType: typ, Tags: tags, Codes: codes})
	}
	return out
}

// producerKey is one producer registration with the broker.
type producerKey struct{ group, clientID string }

// syncProducers registers every live gRPC producer with the broker's client manager under
// each producer group (topic) it publishes to, with its own client id, language and SDK
// version, as RocketMQ's proxy does: producer lists and the producer_connections metric then
// name the applications' clients. Every registration delivers transaction checks to this
// backend, which hands them to a connected producer of the group. Registrations of producers
// that went away are removed.
func (l *Backend) syncProducers() {
	box := l.checker.Load()
	if box == nil {
		return
	}
	want := map[producerKey]broker.ClientChannel{}
	if roster, ok := box.c.(proxy.ProducerRoster); ok {
		for _, p := range roster.Producers() {
			for _, g := range p.Groups {
				want[producerKey{g, p.ClientID}] = broker.ClientChannel{ClientID: p.ClientID, RemoteAddr: p.RemoteAddr,
					Language: p.Language, Version: p.VersionOrdinal()}
			}
		}
	} else {
		for _, g := range box.c.ProducerGroups() {
			want[producerKey{g, l.clientID}] = broker.ClientChannel{ClientID: l.clientID}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, ch := range want {
		if _, ok := l.registered[k]; !ok {
			l.b.Clients.RegisterProducerSink(k.group, ch, l)
			l.registered[k] = struct{}{}
		}
	}
	for k := range l.registered {
		if _, ok := want[k]; !ok {
			l.b.Clients.UnregisterProducer(k.group, k.clientID)
			delete(l.registered, k)
		}
	}
}

// SetTransactionChecker implements proxy.Backend.
func (l *Backend) SetTransactionChecker(c proxy.TransactionChecker) {
	l.checker.Store(&checkerBox{c})
	l.syncProducers()
}

// CheckTransaction implements broker.CheckSink: the broker asks about a half message.
func (l *Backend) CheckTransaction(_ context.Context, req broker.CheckRequest) error {
	box := l.checker.Load()
	if box == nil {
		return errors.New("local: no transaction checker")
	}
	e := req.Message
	if e == nil {
		var err error
		if e, _, err = message.DecodeRecord(req.Record, false); err != nil {
			return fmt.Errorf("local: transaction check record: %w", err)
		}
	}
	m := proxy.MessageFromExt(e)
	m.Body = append([]byte(nil), m.Body...)
	props := make(map[string]string, len(m.Properties))
	for k, v := range m.Properties {
		props[k] = v
	}
	m.Properties = props
	if rt := props[message.PropertyRealTopic]; rt != "" {
		m.Topic = rt
	}
	check := &proxy.TransactionCheck{
		Broker: l.b.Name(), ProducerGroup: props[message.PropertyProducerGroup], Message: m,
		CommitLogOffset: req.CommitLogOffset, TranStateTableOffset: req.TranStateTableOffset,
		MsgID: req.MsgID, TransactionID: req.TransactionID,
	}
	if check.MsgID == "" {
		check.MsgID = e.UniqKey()
	}
	box.c.CheckTransaction(check)
	return nil
}

// brokerError converts a broker Go-API error to the proxy's form (remoting code + remark).
func brokerError(err error) error {
	if err == nil {
		return nil
	}
	code, remark := broker.ResponseFor(err)
	return &proxy.BrokerError{Code: int(code), Remark: remark}
}

func (l *Backend) checkBroker(name string) error {
	if name != l.b.Name() {
		return fmt.Errorf("local: broker %q (this is %q): %w", name, l.b.Name(), proxy.ErrBrokerNotFound)
	}
	return nil
}

// topic returns the current view of a topic (nil, false when the topic does not exist).
// The version is read before the config, so a concurrent change can only make the cached
// entry older than the table, never newer: the next call sees a version mismatch and rebuilds.
func (l *Backend) topic(name string) (*topicView, bool) {
	dv := l.b.Topics.DataVersion()
	if v, ok := l.topics.Load(name); ok {
		if tv := v.(*topicView); tv.dv == dv {
			return tv, true
		}
	}
	tc, ok := l.b.Topics.Get(name)
	if !ok {
		l.topics.Delete(name)
		return nil, false
	}
	typ, err := proxy.ParseMessageType(tc.MessageType())
	if err != nil {
		typ = proxy.MessageTypeUnspecified
	}
	// As registered with the NameServers: masked by brokerPermission (a change of it bumps
	// the table's version, so this entry is rebuilt).
	tc.Perm = l.b.EffectivePerm(tc.Perm)
	tv := &topicView{
		dv: dv,
		route: &proxy.TopicRoute{Topic: name, Brokers: []proxy.BrokerQueues{{
			Name: l.b.Name(), ReadQueues: int(tc.ReadQueueNums), WriteQueues: int(tc.WriteQueueNums), Perm: int(tc.Perm),
		}}},
		cfg: &proxy.TopicConfig{Name: name, ReadQueues: int(tc.ReadQueueNums), WriteQueues: int(tc.WriteQueueNums), Perm: int(tc.Perm), MessageType: typ},
	}
	l.topics.Store(name, tv)
	return tv, true
}

// QueryRoute implements proxy.Backend from the broker's topic table. The result is shared
// (cached until the table changes) and must not be modified.
func (l *Backend) QueryRoute(_ context.Context, topic string) (*proxy.TopicRoute, error) {
	tv, ok := l.topic(topic)
	if !ok {
		return nil, fmt.Errorf("local: %s: %w", topic, proxy.ErrTopicNotFound)
	}
	return tv.route, nil
}

// TopicConfig implements proxy.Backend. The result is shared (cached until the table
// changes) and must not be modified.
func (l *Backend) TopicConfig(_ context.Context, topic string) (*proxy.TopicConfig, error) {
	tv, ok := l.topic(topic)
	if !ok {
		return nil, fmt.Errorf("local: %s: %w", topic, proxy.ErrTopicNotFound)
	}
	return tv.cfg, nil
}

// CreateTopic implements proxy.Backend.
func (l *Backend) CreateTopic(_ context.Context, cfg proxy.TopicConfig) error {
	typ := cfg.MessageType
	if typ == proxy.MessageTypeUnspecified {
		typ = proxy.MessageTypeNormal
	}
	tc := broker.NewTopicConfig(cfg.Name, int32(cfg.WriteQueues))
	tc.ReadQueueNums = int32(cfg.ReadQueues)
	tc.Perm = int32(cfg.Perm)
	tc.Attributes["message.type"] = typ.String()
	return brokerError(l.b.CreateTopic(tc))
}

// GroupConfig implements proxy.Backend (auto-created when the broker allows it).
func (l *Backend) GroupConfig(_ context.Context, group string) (*proxy.GroupConfig, error) {
	gc, _, err := l.b.Groups.GetOrCreate(group)
	if err != nil {
		if errors.Is(err, broker.ErrGroupNotExist) {
			return nil, fmt.Errorf("local: %w: %w", proxy.ErrGroupNotFound, err)
		}
		return nil, brokerError(err)
	}
	return &proxy.GroupConfig{Name: group, ConsumeEnable: gc.ConsumeEnable, Orderly: gc.ConsumeMessageOrderly, RetryMaxTimes: int(gc.RetryMaxTimes)}, nil
}

// Send implements proxy.Backend through the broker's in-process send path.
func (l *Backend) Send(ctx context.Context, req *proxy.SendRequest) (*proxy.SendResult, error) {
	if err := l.checkBroker(req.Broker); err != nil {
		return nil, err
	}
	m := req.Message
	h := broker.SendHeader{
		ProducerGroup: req.ProducerGroup, Topic: m.Topic, DefaultTopic: "TBW102", DefaultTopicQueueNums: 4,
		QueueID: req.QueueID, SysFlag: m.SysFlag, BornTimestamp: m.BornTimestamp, Flag: m.Flag,
		Properties: string(message.EncodeProperties(m.Properties)), ReconsumeTimes: m.ReconsumeTimes,
		MaxReconsumeTimes: -1, BrokerName: req.Broker,
	}
	var born netip.AddrPort
	// go5 sends the host's IP without a port: skip the parse (and its error allocation) when
	// there is no port separator, which ParseAddrPort would reject anyway.
	if bh := m.Properties[message.PropertyBornHost]; strings.IndexByte(bh, ':') >= 0 {
		if ap, err := netip.ParseAddrPort(bh); err == nil {
			born = ap
		}
	}
	if !born.IsValid() {
		// As Apache's local mode (its in-process channel carries the gRPC client's address):
		// the record's born host is the application's connection, not the broker itself.
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
				born = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			}
		}
	}
	return cluster.SendResult(l.b.SendMessage(ctx, h, m.Body, born), req)
}

// popErr maps pop service errors.
func popErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pop.ErrHandleInvalid):
		return fmt.Errorf("%w: %w", proxy.ErrHandleInvalid, err)
	case errors.Is(err, pop.ErrHandleExpired):
		return fmt.Errorf("%w: %w", proxy.ErrHandleExpired, err)
	case errors.Is(err, pop.ErrTopicNotFound):
		return fmt.Errorf("%w: %w", proxy.ErrTopicNotFound, err)
	case errors.Is(err, pop.ErrGroupNotFound):
		return fmt.Errorf("%w: %w", proxy.ErrGroupNotFound, err)
	case errors.Is(err, pop.ErrNoPermission):
		return fmt.Errorf("%w: %w", proxy.ErrNoPermission, err)
	case errors.Is(err, pop.ErrInvalidFilter):
		return &proxy.BrokerError{Code: remoting.SubscriptionParseFailed, Remark: err.Error()}
	case errors.Is(err, pop.ErrInvalidParameter):
		return &proxy.BrokerError{Code: remoting.InvalidParameter, Remark: err.Error()}
	case errors.Is(err, pop.ErrPollingFull):
		return &proxy.BrokerError{Code: remoting.PollingFull, Remark: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	default:
		return brokerError(err)
	}
}

func (l *Backend) popService() (*pop.Service, error) {
	s := l.b.PopService()
	if s == nil {
		return nil, fmt.Errorf("local: pop service not running: %w", proxy.ErrUnavailable)
	}
	return s, nil
}

// Pop implements proxy.Backend with the broker's pop service.
func (l *Backend) Pop(ctx context.Context, req *proxy.PopRequest) (*proxy.PopResult, error) {
	if err := l.checkBroker(req.Broker); err != nil {
		return nil, err
	}
	// The client picks the queue from the route (any queue, readable or not), so the
	// topic's read permission is checked here, as the remoting POP handler does (R4X-1).
	if tv, ok := l.topic(req.Topic); ok && tv.cfg.Perm&proxy.PermRead == 0 {
		return nil, &proxy.BrokerError{Code: remoting.NoPermission, Remark: fmt.Sprintf("the topic[%s] peeking message is forbidden", req.Topic)}
	}
	svc, err := l.popService()
	if err != nil {
		return nil, err
	}
	res, err := svc.Pop(ctx, pop.PopRequest{
		Group: req.Group, Topic: req.Topic, QueueID: req.QueueID, MaxMessages: int(req.MaxMessages),
		InvisibleTime: req.InvisibleTime, PollTime: req.PollTime, FilterType: req.FilterType,
		FilterExpr: req.FilterExpr, Order: req.Order, AttemptID: req.AttemptID,
	})
	if err != nil {
		return nil, popErr(err)
	}
	out := &proxy.PopResult{Messages: make([]*proxy.Message, 0, len(res.Messages))}
	for _, pm := range res.Messages {
		m := proxy.MessageFromExt(pm.Ext)
		m.ReceiptHandle = pm.Handle
		out.Messages = append(out.Messages, m)
	}
	return out, nil
}

// Ack implements proxy.Backend.
func (l *Backend) Ack(ctx context.Context, req *proxy.AckRequest) error {
	if err := l.checkBroker(req.Handle.Broker); err != nil {
		return err
	}
	svc, err := l.popService()
	if err != nil {
		return err
	}
	return popErr(svc.Ack(ctx, req.Group, req.Topic, req.Handle.Raw))
}

// ChangeInvisible implements proxy.Backend.
func (l *Backend) ChangeInvisible(ctx context.Context, req *proxy.ChangeInvisibleRequest) (string, error) {
	if err := l.checkBroker(req.Handle.Broker); err != nil {
		return "", err
	}
	svc, err := l.popService()
	if err != nil {
		return "", err
	}
	res, err := svc.ChangeInvisible(ctx, req.Group, req.Topic, req.Handle.Raw, req.InvisibleTime)
	if err != nil {
		return "", popErr(err)
	}
	return res.Handle, nil
}

// ForwardToDLQ implements proxy.Backend: send back with delay level -1, then ack.
func (l *Backend) ForwardToDLQ(ctx context.Context, req *proxy.ForwardDLQRequest) error {
	if err := l.checkBroker(req.Handle.Broker); err != nil {
		return err
	}
	err := l.b.SendBack(ctx, broker.SendBackRequest{
		Group: req.Group, CommitLogOffset: req.Handle.CommitLogOffset, DelayLevel: -1,
		OriginMsgID: req.MessageID, OriginTopic: req.Topic, MaxReconsumeTimes: req.MaxReconsumeTimes,
	})
	if err != nil {
		return brokerError(err)
	}
	return l.Ack(ctx, &proxy.AckRequest{Group: req.Group, Topic: req.Topic, Handle: req.Handle})
}

// Recall implements proxy.Backend with the broker's in-process RecallMessage.
func (l *Backend) Recall(ctx context.Context, req *proxy.RecallRequest) (string, error) {
	if err := l.checkBroker(req.Broker); err != nil {
		return "", err
	}
	var born netip.AddrPort
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			born = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	id, err := l.b.RecallMessage(ctx, broker.RecallRequest{ProducerGroup: req.ProducerGroup, Topic: req.Topic, Handle: req.Handle}, born)
	return id, brokerError(err)
}

// EndTransaction implements proxy.Backend.
func (l *Backend) EndTransaction(ctx context.Context, req *proxy.EndTransactionRequest) error {
	if err := l.checkBroker(req.Broker); err != nil {
		return err
	}
	res := txn.ResolutionUnknown
	switch req.Resolution {
	case proxy.ResolutionCommit:
		res = txn.ResolutionCommit
	case proxy.ResolutionRollback:
		res = txn.ResolutionRollback
	}
	return brokerError(l.b.EndTransaction(ctx, &txn.EndRequest{
		ProducerGroup: req.ProducerGroup, TranStateTableOffset: req.TranStateTableOffset,
		CommitLogOffset: req.CommitLogOffset, Resolution: res, FromCheck: req.FromCheck,
		MsgID: req.MsgID, TransactionID: req.TransactionID,
	}))
}
