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

// triggerRegister asks the register loop to register at once (topic table changed).
func (b *Broker) triggerRegister() {
	select {
	case b.registerNow <- struct{}{}:
	default:
	}
}

// registerSync registers with every NameServer before returning (bounded by registerTimeout).
// Admin requests that create a topic use it so that a client started right after the
// command's answer already finds the route (RocketMQ's registerIncrementBrokerData).
func (b *Broker) registerSync(ctx context.Context) {
	if len(b.Cfg.NamesrvAddrs) == 0 {
		return
	}
	b.registerAll(ctx)
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
	b.registerAll(ctx)
	t := time.NewTimer(b.live().RegisterNameServerPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.registerNow:
		case <-t.C:
		}
		b.registerAll(ctx)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(b.live().RegisterNameServerPeriod)
	}
}

// haAddr is the HA address RocketMQ derives from the listen port (listenPort+1).
func (b *Broker) haAddr() string {
	host, port, _ := net.SplitHostPort(b.addr)
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

// registerAll sends REGISTER_BROKER with the whole topic table to every NameServer in
// parallel (namesrv.RegisterBrokerAll). Failures are logged; the next period retries.
func (b *Broker) registerAll(ctx context.Context) {
	m, dv := b.Topics.Snapshot()
	table := make(map[string]route.TopicConfig, len(m))
	for name, tc := range m {
		tc.Perm = b.EffectivePerm(tc.Perm)
		table[name] = route.TopicConfig(tc)
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
