package standalone

import (
	"io/fs"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/metrics"
)

// registerMetrics adds the scrape-time gauges that standalone can compute from the broker's
// public state (tables, offsets, client registry, store directory). Counters on the hot
// paths (messages in/out, RPC latency) belong to the broker and the proxy themselves.
func (s *Server) registerMetrics() {
	b := s.Broker
	node := s.Metrics.Node(metrics.NodeInfo{Cluster: b.Cfg.ClusterName, Type: metrics.NodeBroker, ID: b.Name()})
	node.OnTables(func() (int, int) { return len(b.Topics.Names()), len(b.Groups.All()) })
	node.OnConsumers(func(emit func(metrics.ConsumerStat)) { consumerStats(b, emit) })
	storeDir := filepath.Join(s.cfg.DataDir, "broker")
	node.OnStorage(func() metrics.StorageStat {
		st := b.Store.Stats()
		return metrics.StorageStat{SizeBytes: dirSize(storeDir), FlushBehindBytes: max(st.MaxPhysicalOffset-st.FlushedOffset, 0),
			DispatchBehindBytes: max(st.MaxPhysicalOffset-st.DispatchedOffset, 0), ReserveTime: -1}
	})
	node.OnConnections(func(emit func(metrics.ConnectionStat)) {
		for _, g := range b.Clients.ConsumerGroups() {
			info, ok := b.Clients.ConsumerGroup(g)
			if !ok {
				continue
			}
			mode := metrics.ConsumeModePush
			if info.ConsumeType == "CONSUME_ACTIVELY" {
				mode = metrics.ConsumeModePull
			}
			for _, ch := range info.Channels {
				emit(metrics.ConnectionStat{Group: g, Language: ch.Language, Version: strconv.Itoa(int(ch.Version)), ConsumeMode: mode, Count: 1})
			}
		}
		for _, g := range b.Clients.ProducerGroups() {
			for _, ch := range b.Clients.ProducerChannels(g) {
				emit(metrics.ConnectionStat{Producer: true, Language: ch.Language, Version: strconv.Itoa(int(ch.Version)), Count: 1})
			}
		}
	})
}

// consumerStats reports lag, in-flight and ready messages of every (group, topic) the broker
// tracks, from GET_CONSUME_STATS' own computation.
func consumerStats(b *broker.Broker, emit func(metrics.ConsumerStat)) {
	now := time.Now()
	for _, g := range b.Groups.All() {
		if message.IsReservedGroup(g.GroupName) {
			continue
		}
		per := map[string]*metrics.ConsumerStat{}
		for mq, w := range b.ConsumeStats(g.GroupName, "") {
			st := per[mq.Topic]
			if st == nil {
				st = &metrics.ConsumerStat{Group: g.GroupName, Topic: mq.Topic}
				per[mq.Topic] = st
			}
			lag := max(w.BrokerOffset-w.ConsumerOffset, 0)
			inflight := min(max(w.Inflight, 0), lag)
			st.Lag += lag
			st.Inflight += inflight
			st.Ready += lag - inflight
			if lag > 0 {
				if ts, err := b.Store.MessageStoreTime(mq.Topic, mq.QueueID, w.ConsumerOffset); err == nil {
					st.LagLatency = max(st.LagLatency, now.Sub(time.UnixMilli(ts)))
				}
			}
		}
		for _, st := range per {
			emit(*st)
		}
	}
}

// dirSize sums the sizes of the regular files under dir (0 when it does not exist).
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
