package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
)

// registerTimeout bounds one REGISTER_BROKER / UNREGISTER_BROKER round trip.
const registerTimeout = 10 * time.Second

// triggerRegister asks the register loop to register at once after a topic table change:
// the named topics incrementally, or the whole table when topics is empty (a deletion, a
// permission change). Changes that arrive while a registration runs are merged into the next.
func (b *Broker) triggerRegister(topics []string) {
	b.pendingMu.Lock()
	if len(topics) == 0 {
		b.pendingWhole = true
	} else {
		if b.pendingTopics == nil {
			b.pendingTopics = map[string]struct{}{}
		}
		for _, t := range topics {
			b.pendingTopics[t] = struct{}{}
		}
	}
	b.pendingMu.Unlock()
	select {
	case b.registerNow <- struct{}{}:
	default:
	}
}

// takePending returns and clears what triggerRegister collected.
func (b *Broker) takePending() (topics []string, whole bool) {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	for t := range b.pendingTopics {
		topics = append(topics, t)
	}
	whole = b.pendingWhole
	b.pendingTopics, b.pendingWhole = nil, false
	return topics, whole
}

// registerSync registers the named topics with every NameServer before returning (bounded
// by registerTimeout), as RocketMQ's registerIncrementBrokerData: the registration carries
// only those topics (see register for its version), so creating thousands of topics costs
// thousands of small registrations, not thousands of whole-table ones (QA R8I-3: 12,152
// registrations of up to 1.5 MB for 7,000 creates). Admin requests that create a topic use
// it so that a client started right after the command's answer already finds the route. The
// topics are taken out of what the change trigger left pending: registered here, the loop
// need not send them again.
func (b *Broker) registerSync(ctx context.Context, topics ...string) {
	if len(b.Cfg.NamesrvAddrs) == 0 {
		return
	}
	b.pendingMu.Lock()
	for _, t := range topics {
		delete(b.pendingTopics, t)
	}
	b.pendingMu.Unlock()
	b.register(ctx, topics)
}

// registerLoop registers with every NameServer at start, every RegisterNameServerPeriod,
// and right after topic changes.
func (b *Broker) registerLoop(ctx context.Context) {
	if len(b.Cfg.NamesrvAddrs) == 0 {
		return
	}
	select { // table changes made before Run are covered by the first registration
	case <-b.registerNow:
	default:
	}
	b.takePending()
	// A registration that did not reach every NameServer is retried soon with the whole
	// table (1 s, doubling up to the period), not at the next period: after a stall longer
	// than the NameServers' expiry the first registration may go out on a connection the
	// NameServer has closed, and only the topics of a later increment would be routable
	// until the period came round (QA R9L-2). Apache's overdue fixed-rate registration
	// likewise runs at once on a fresh channel.
	var backoff time.Duration
	next := func(ok bool) time.Duration {
		period := b.live().RegisterNameServerPeriod
		if ok {
			backoff = 0
			return period
		}
		backoff = min(max(2*backoff, time.Second), period)
		return backoff
	}
	t := time.NewTimer(next(b.registerAll(ctx)))
	defer t.Stop()
	reset := func(d time.Duration) {
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(d)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.registerNow:
			// At once (clients may look the route up right after the change), and
			// incrementally when only topics were created or updated: a burst of thousands
			// of creations must not become thousands of whole-table registrations (QA R8I-3).
			// (Delaying these to one per second was tried; it made
			// TestTxnCompatGo2TransactionProducer flaky.)
			if topics, whole := b.takePending(); !whole {
				if len(topics) > 0 && !b.register(ctx, topics) && backoff == 0 {
					reset(next(false)) // the whole table soon covers what did not arrive
				}
				continue
			}
		case <-t.C:
			b.takePending() // the whole table covers them
		}
		reset(next(b.registerAll(ctx)))
	}
}

// haAddr is the HA address RocketMQ derives from the listen port (listenPort+1).
func (b *Broker) haAddr() string {
	host, port, _ := net.SplitHostPort(b.addr)
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

// registerAll sends REGISTER_BROKER with the whole topic table to every NameServer in
// parallel (namesrv.RegisterBrokerAll). Failures are logged; it reports whether every
// NameServer took it (registerLoop retries soon when not).
func (b *Broker) registerAll(ctx context.Context) bool { return b.register(ctx, nil) }

// register sends REGISTER_BROKER with the named topics (all when only is empty) and reports
// whether every NameServer took it.
func (b *Broker) register(ctx context.Context, only []string) bool {
	table := make(map[string]route.TopicConfig, len(only))
	add := func(name string, tc TopicConfig) {
		tc.Perm = b.EffectivePerm(tc.Perm)
		table[name] = route.TopicConfig(tc)
	}
	var dv DataVersion
	if len(only) > 0 {
		// An incremental registration carries a version of its own: a negative counter no
		// whole table ever has, unique to this registration. The NameServer skips a
		// registration whose version equals the one it holds, so two increments (or an
		// increment and a whole table) must never share one: with the table's version,
		// concurrent creations that read the same version had all but the first
		// increment skipped, and the next whole-table registration too.
		dv = b.Topics.DataVersion()
		dv.Counter = -b.incrementSeq.Add(1)
		dv.Timestamp = time.Now().UnixMilli()
		for _, name := range only {
			if tc, ok := b.Topics.Get(name); ok {
				add(name, tc)
			}
		}
	} else {
		var m map[string]TopicConfig
		m, dv = b.Topics.Snapshot()
		for name, tc := range m {
			add(name, tc)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	ok, err := namesrv.RegisterBrokerAll(cctx, b.nsClient, b.Cfg.NamesrvAddrs, namesrv.RegisterRequest{
		ClusterName:      b.Cfg.ClusterName,
		BrokerName:       b.Cfg.BrokerName,
		BrokerAddr:       b.addr,
		BrokerID:         b.Cfg.BrokerID,
		HAServerAddr:     b.haAddr(),
		HeartbeatTimeout: b.live().ChannelExpiredTimeout,
		Topics:           route.TopicConfigSerializeWrapper{TopicConfigTable: table, DataVersion: route.DataVersion(dv)},
	})
	if len(ok) > 0 {
		b.registeredAt.Store(time.Now().UnixNano())
	}
	if err != nil && ctx.Err() == nil {
		b.Log.Warn("register broker failed", "err", err)
	}
	return err == nil && len(ok) == len(b.Cfg.NamesrvAddrs)
}

// registrationCheck is the "broker-registration" readiness check: clients can discover the
// broker only while some NameServer holds its registration, i.e. one succeeded within the
// NameServers' expiry (ChannelExpiredTimeout, sent as the registration's heartbeat timeout).
func (b *Broker) registrationCheck() error {
	at := b.registeredAt.Load()
	if at == 0 {
		return errors.New("not registered with any NameServer yet")
	}
	if age := time.Since(time.Unix(0, at)); age > b.live().ChannelExpiredTimeout {
		return fmt.Errorf("no NameServer reached for %s", age.Round(time.Second))
	}
	return nil
}

// unregisterAll sends UNREGISTER_BROKER to every NameServer (shutdown).
func (b *Broker) unregisterAll() {
	if len(b.Cfg.NamesrvAddrs) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, ns := range b.Cfg.NamesrvAddrs {
		wg.Add(1)
		go func(ns string) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := namesrv.UnregisterBroker(ctx, b.nsClient, ns, b.Cfg.ClusterName, b.Cfg.BrokerName, b.addr, b.Cfg.BrokerID); err != nil {
				b.Log.Warn("unregister broker failed", "namesrv", ns, "err", err)
			}
		}(ns)
	}
	wg.Wait()
}
