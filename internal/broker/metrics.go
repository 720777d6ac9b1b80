package broker

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Option customises New and NewWithListener.
type Option func(*Broker)

// WithMetrics registers the broker's metrics (RocketMQ 5 names, docs/metrics.md) in reg and
// its readiness ("broker") in health. Without it the broker keeps no Prometheus metrics
// (b.Metrics() is nil; every metrics method is a no-op on nil).
func WithMetrics(reg *metrics.Registry, health *metrics.Health) Option {
	return func(b *Broker) { b.reg, b.health = reg, health }
}

// Metrics returns the broker's metric node (nil when metrics are off). Feature files use it
// for their own series (pop, timer, transactions); its methods accept a nil receiver.
func (b *Broker) Metrics() *metrics.Node { return b.mnode }

// initMetrics creates the node and registers the scrape-time sources (consumer lag and
// in-flight, storage, connections, table sizes).
func (b *Broker) initMetrics() {
	if b.health != nil {
		b.ready = b.health.Flag("broker")
		if len(b.Cfg.NamesrvAddrs) > 0 {
			b.health.Add("broker-registration", b.registrationCheck)
		}
		// A store that refuses writes for good (an I/O failure: it needs an operator and a
		// restart) makes the broker not ready (QA R8I-7).
		b.health.Add("store", b.Store.Failed)
	}
	if b.reg == nil {
		return
	}
	b.mnode = b.reg.Node(metrics.NodeInfo{Cluster: b.Cfg.ClusterName, Type: metrics.NodeBroker, ID: b.Cfg.BrokerName})
	n := b.mnode
	n.OnBrokerPermission(func() int { return b.live().BrokerPermission })
	n.OnTables(func() (int, int) {
		return len(b.Topics.Names()), len(b.Groups.All())
	})
	n.OnStorage(func() metrics.StorageStat {
		st := b.Store.Stats()
		reserve := time.Duration(-1) // nothing stored: not exported
		if ts, ok := b.Store.OldestStoreTime(); ok {
			reserve = max(time.Since(time.UnixMilli(ts)), 0)
		}
		return metrics.StorageStat{
			SizeBytes:           st.CommitLogSize,
			FlushBehindBytes:    max(st.MaxPhysicalOffset-st.FlushedOffset, 0),
			DispatchBehindBytes: max(st.MaxPhysicalOffset-st.DispatchedOffset, 0),
			ReserveTime:         reserve,
		}
	})
	n.OnConnections(b.emitConnections)
	n.OnConsumers(b.emitConsumerStats)
}

// emitConnections reports producer connections by (language, version) and consumer
// connections by (group, language, version, mode), with Apache's label values: the language
// and the version's enum name in lower case ("go", "v4_5_2").
func (b *Broker) emitConnections(emit func(metrics.ConnectionStat)) {
	type key struct {
		producer                    bool
		group, lang, version, modes string
	}
	counts := map[key]int{}
	for _, g := range b.Clients.ProducerGroups() {
		for _, p := range b.Clients.ProducerChannels(g) {
			counts[key{producer: true, lang: strings.ToLower(p.Language), version: strings.ToLower(remoting.VersionName(p.Version))}]++
		}
	}
	for _, g := range b.Clients.ConsumerGroups() {
		info, ok := b.Clients.ConsumerGroup(g)
		if !ok {
			continue
		}
		mode := metrics.ConsumeModePush
		switch info.ConsumeType {
		case ConsumeActively:
			mode = metrics.ConsumeModePull
		case ConsumePop:
			mode = metrics.ConsumeModePop
		}
		for _, c := range info.Channels {
			counts[key{group: g, lang: strings.ToLower(c.Language), version: strings.ToLower(remoting.VersionName(c.Version)), modes: mode}]++
		}
	}
	for k, n := range counts {
		emit(metrics.ConnectionStat{Producer: k.producer, Group: k.group, Language: k.lang, Version: k.version,
			ConsumeMode: k.modes, Count: n})
	}
}

// emitConsumerStats reports, per (group, topic) with committed offsets or live
// subscriptions, lag (max - committed), in-flight (pop, from SetInflightCounter), ready and
// the age of the oldest unconsumed message.
func (b *Broker) emitConsumerStats(emit func(metrics.ConsumerStat)) {
	groups := map[string]bool{}
	for _, gc := range b.Groups.All() {
		groups[gc.GroupName] = true
	}
	for _, g := range b.Clients.ConsumerGroups() {
		groups[g] = true
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	now := time.Now()
	for _, g := range names {
		per := map[string]*metrics.ConsumerStat{}
		for mq, w := range b.ConsumeStats(g, "") {
			s := per[mq.Topic]
			if s == nil {
				s = &metrics.ConsumerStat{Group: g, Topic: mq.Topic}
				per[mq.Topic] = s
			}
			lag := max(w.BrokerOffset-w.ConsumerOffset, 0)
			inflight := min(w.Inflight, lag)
			s.Lag += lag
			s.Inflight += inflight
			if lag > 0 {
				if ts, err := b.Store.MessageStoreTime(mq.Topic, mq.QueueID, w.ConsumerOffset); err == nil {
					s.LagLatency = max(s.LagLatency, now.Sub(time.UnixMilli(ts)))
				}
			}
			// Queueing latency (Apache: now - store time of the earliest message not yet
			// pulled): deliveries go in queue order from the committed offset, so the first
			// ready message is the one after the in-flight ones.
			if lag > inflight {
				if ts, err := b.Store.MessageStoreTime(mq.Topic, mq.QueueID, w.ConsumerOffset+inflight); err == nil {
					s.QueueingLatency = max(s.QueueingLatency, now.Sub(time.UnixMilli(ts)))
				}
			}
		}
		for _, s := range per {
			s.Ready = s.Lag - s.Inflight
			emit(*s)
		}
	}
}

// instrument wraps h to record the RPC latency of code with its response code.
func (b *Broker) instrument(code int32, h remoting.Handler) remoting.Handler {
	if b.mnode == nil {
		return h
	}
	reqCode := remoting.RequestCodeName(code)
	return func(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
		start := time.Now()
		resp := h(ctx, c, req)
		respCode := "-" // oneway / no response
		if resp != nil {
			respCode = remoting.ResponseCodeName(resp.Code)
		}
		b.mnode.ObserveRPC("remoting", reqCode, respCode, time.Since(start))
		return resp
	}
}
