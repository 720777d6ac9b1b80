package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerStat is one (consumer group, topic) pair's consumption state, summed over the
// topic's queues on the reporting node. Definitions (as RocketMQ's):
//   - Lag: messages not yet acknowledged = max offset - committed (acked) offset.
//   - Inflight: delivered (pulled or popped) but not yet acknowledged.
//   - Ready: stored and not yet delivered = Lag - Inflight.
//   - LagLatency: age of the oldest unacknowledged message (0 when unknown or no lag).
//   - QueueingLatency: age of the oldest message not yet delivered (0 when nothing is ready):
//     how long the first ready message has been waiting for a consumer.
type ConsumerStat struct {
	Group, Topic    string
	Lag             int64
	Inflight        int64
	Ready           int64
	LagLatency      time.Duration
	QueueingLatency time.Duration
}

// StorageStat is the store's state at scrape time. A negative field means "not known by this
// source": it is left out of the sum, and a gauge no source knows is not exported at all
// (never a made-up zero).
type StorageStat struct {
	SizeBytes           int64         // bytes of commit log, consume queue and index files on disk
	FlushBehindBytes    int64         // bytes appended but not yet fsynced
	DispatchBehindBytes int64         // bytes appended but not yet dispatched to consume queues/index
	ReserveTime         time.Duration // age of the oldest stored message (retention horizon)
}

// ConnectionStat counts client connections of one kind. Producers are labelled by language
// and version; consumers additionally by group and consume mode (pull, push or pop).
type ConnectionStat struct {
	Producer    bool
	Group       string // consumers only
	Language    string // "JAVA", "GO", ...
	Version     string // client version as reported
	ConsumeMode string // consumers only: ConsumeModePull, ConsumeModePush, ConsumeModePop
	Count       int
}

// TopicCount is a per-topic gauge value (half messages, timing messages).
type TopicCount struct {
	Topic string
	Count int64
}

// Scrape-time sources. Each On* call adds one callback; several callbacks of one kind are
// summed per label set (so a broker core reporting pull lag and a pop feature reporting pop
// in-flight never produce duplicate series). Callbacks run on each scrape: keep them cheap,
// never block on the network, never call On* from inside one.

// OnConsumers adds a source of rocketmq_consumer_{lag,inflight,ready}_messages and
// rocketmq_consumer_lag_latency. f calls emit once per (group, topic).
func (n *Node) OnConsumers(f func(emit func(ConsumerStat))) {
	if n == nil {
		return
	}
	n.sources.mu.Lock()
	n.sources.consumers = append(n.sources.consumers, f)
	n.sources.mu.Unlock()
}

// OnStorage adds a source of rocketmq_storage_* gauges.
func (n *Node) OnStorage(f func() StorageStat) {
	if n == nil {
		return
	}
	n.sources.mu.Lock()
	n.sources.storage = append(n.sources.storage, f)
	n.sources.mu.Unlock()
}

// OnConnections adds a source of rocketmq_{producer,consumer}_connections.
func (n *Node) OnConnections(f func(emit func(ConnectionStat))) {
	if n == nil {
		return
	}
	n.sources.mu.Lock()
	n.sources.connections = append(n.sources.connections, f)
	n.sources.mu.Unlock()
}

// OnTables adds a source of rocketmq_topic_number and rocketmq_consumer_group_number. A
// negative count means "not known by this source" (a NameServer knows topics, not groups);
// a gauge no source knows is not exported.
func (n *Node) OnTables(f func() (topics, groups int)) {
	if n == nil {
		return
	}
	n.sources.mu.Lock()
	n.sources.tables = append(n.sources.tables, f)
	n.sources.mu.Unlock()
}

// OnHalfMessages adds a source of rocketmq_half_messages (pending transactional messages per
// real topic).
func (n *Node) OnHalfMessages(f func(emit func(TopicCount))) {
	if n == nil {
		return
	}
	n.sources.mu.Lock()
	n.sources.half = append(n.sources.half, f)
	n.sources.mu.Unlock()
}

// OnTimingMessages adds a source of rocketmq_timing_messages (delay/timer messages waiting
// for their delivery time, per real topic).
func (n *Node) OnTimingMessages(f func(emit func(TopicCount))) {
	if n == nil {
		return
	}
	n.sources.mu.Lock()
	n.sources.timing = append(n.sources.timing, f)
	n.sources.mu.Unlock()
}

// TimerStat is the timer service's progress at scrape time (RocketMQ's timer gauges):
//   - EnqueueLag: timer records stored but not yet taken into the timing wheel;
//   - EnqueueLatency: age of the oldest of those (0 when none);
//   - DequeueLatency: how late the oldest due, undelivered timer is (0 when none is due).
type TimerStat struct {
	EnqueueLag     int64
	EnqueueLatency time.Duration
	DequeueLatency time.Duration
}

// OnTimer adds a source of rocketmq_timer_enqueue_lag, rocketmq_timer_enqueue_latency and
// rocketmq_timer_dequeue_latency (summed / max over sources).
func (n *Node) OnTimer(f func() TimerStat) {
	if n == nil {
		return
	}
	n.sources.mu.Lock()
	n.sources.timer = append(n.sources.timer, f)
	n.sources.mu.Unlock()
}

// sourceCollector turns the registered callbacks into const metrics at scrape time.
type sourceCollector struct {
	mu          sync.Mutex // guards the slices (appends vs. scrapes); never held while calling out
	consumers   []func(emit func(ConsumerStat))
	storage     []func() StorageStat
	connections []func(emit func(ConnectionStat))
	tables      []func() (int, int)
	half        []func(emit func(TopicCount))
	timing      []func(emit func(TopicCount))
	timer       []func() TimerStat

	lag, inflight, ready, lagLatency, queueing     *prometheus.Desc
	size, flushBehind, dispatchBehind, reserve     *prometheus.Desc
	producerConns, consumerConns                   *prometheus.Desc
	topicNumber, groupNumber, halfMsgs, timingMsgs *prometheus.Desc
	timerEnqLag, timerEnqLatency, timerDeqLatency  *prometheus.Desc
}

func newSourceCollector(info NodeInfo) *sourceCollector {
	gt := []string{LabelConsumerGroup, LabelTopic}
	t := []string{LabelTopic}
	return &sourceCollector{
		lag:             prometheus.NewDesc(NameConsumerLag, "Messages not yet acknowledged by the group (max offset - committed offset), per group and topic.", gt, nil),
		inflight:        prometheus.NewDesc(NameConsumerInflight, "Messages delivered to the group but not yet acknowledged, per group and topic.", gt, nil),
		ready:           prometheus.NewDesc(NameConsumerReady, "Messages stored and not yet delivered to the group, per group and topic.", gt, nil),
		lagLatency:      prometheus.NewDesc(NameConsumerLagLatency, "Age in milliseconds of the group's oldest unacknowledged message, per group and topic.", gt, nil),
		queueing:        prometheus.NewDesc(NameConsumerQueueingLatency, "Age in milliseconds of the group's oldest message not yet delivered, per group and topic.", gt, nil),
		size:            prometheus.NewDesc(NameStorageSize, "Bytes of store files on disk (commit log, consume queues, index).", nil, nil),
		flushBehind:     prometheus.NewDesc(NameStorageFlushBehind, "Bytes appended to the commit log but not yet flushed to disk.", nil, nil),
		dispatchBehind:  prometheus.NewDesc(NameStorageDispatchBehind, "Bytes appended to the commit log but not yet dispatched to consume queues.", nil, nil),
		reserve:         prometheus.NewDesc(NameStorageReserveTime, "Age in milliseconds of the oldest stored message.", nil, nil),
		producerConns:   prometheus.NewDesc(NameProducerConnections, "Connected producers, per client language and version.", []string{LabelLanguage, LabelVersion}, nil),
		consumerConns:   prometheus.NewDesc(NameConsumerConnections, "Connected consumers, per group, client language, version and consume mode.", []string{LabelConsumerGroup, LabelLanguage, LabelVersion, LabelConsumeMode}, nil),
		topicNumber:     prometheus.NewDesc(NameTopicNumber, "Topics known to the node.", nil, nil),
		groupNumber:     prometheus.NewDesc(NameConsumerGroupNumber, "Subscription groups known to the node.", nil, nil),
		halfMsgs:        prometheus.NewDesc(NameHalfMessages, "Transactional half messages waiting for commit or rollback, per topic.", t, nil),
		timingMsgs:      prometheus.NewDesc(NameTimingMessages, "Delay/timer messages waiting for their delivery time, per topic.", t, nil),
		timerEnqLag:     prometheus.NewDesc(NameTimerEnqueueLag, "Timer messages stored but not yet taken into the timing wheel.", nil, nil),
		timerEnqLatency: prometheus.NewDesc(NameTimerEnqueueLatency, "Age in milliseconds of the oldest timer message not yet taken into the timing wheel.", nil, nil),
		timerDeqLatency: prometheus.NewDesc(NameTimerDequeueLatency, "Milliseconds the oldest due, undelivered timer message is late.", nil, nil),
	}
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.inflight, c.ready, c.lagLatency, c.queueing, c.size, c.flushBehind,
		c.dispatchBehind, c.reserve, c.producerConns, c.consumerConns, c.topicNumber, c.groupNumber, c.halfMsgs, c.timingMsgs,
		c.timerEnqLag, c.timerEnqLatency, c.timerDeqLatency} {
		ch <- d
	}
}

type gtKey struct{ group, topic string }
type connKey struct {
	producer                              bool
	group, language, version, consumeMode string
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	consumers := c.consumers
	storage := c.storage
	connections := c.connections
	tables := c.tables
	half := c.half
	timing := c.timing
	timer := c.timer
	c.mu.Unlock()

	if len(consumers) > 0 {
		agg := make(map[gtKey]*ConsumerStat)
		for _, f := range consumers {
			f(func(s ConsumerStat) {
				k := gtKey{s.Group, s.Topic}
				a := agg[k]
				if a == nil {
					a = &ConsumerStat{Group: s.Group, Topic: s.Topic}
					agg[k] = a
				}
				a.Lag += s.Lag
				a.Inflight += s.Inflight
				a.Ready += s.Ready
				a.LagLatency = max(a.LagLatency, s.LagLatency)
				a.QueueingLatency = max(a.QueueingLatency, s.QueueingLatency)
			})
		}
		for _, a := range agg {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(a.Lag), a.Group, a.Topic)
			ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(a.Inflight), a.Group, a.Topic)
			ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(a.Ready), a.Group, a.Topic)
			ch <- prometheus.MustNewConstMetric(c.lagLatency, prometheus.GaugeValue, float64(a.LagLatency.Milliseconds()), a.Group, a.Topic)
			ch <- prometheus.MustNewConstMetric(c.queueing, prometheus.GaugeValue, float64(a.QueueingLatency.Milliseconds()), a.Group, a.Topic)
		}
	}
	if len(storage) > 0 {
		var size, flush, dispatch int64
		var reserve time.Duration
		var hasSize, hasFlush, hasDispatch, hasReserve bool
		for _, f := range storage {
			v := f()
			if v.SizeBytes >= 0 {
				size, hasSize = size+v.SizeBytes, true
			}
			if v.FlushBehindBytes >= 0 {
				flush, hasFlush = flush+v.FlushBehindBytes, true
			}
			if v.DispatchBehindBytes >= 0 {
				dispatch, hasDispatch = dispatch+v.DispatchBehindBytes, true
			}
			if v.ReserveTime >= 0 {
				reserve, hasReserve = max(reserve, v.ReserveTime), true
			}
		}
		if hasSize {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(size))
		}
		if hasFlush {
			ch <- prometheus.MustNewConstMetric(c.flushBehind, prometheus.GaugeValue, float64(flush))
		}
		if hasDispatch {
			ch <- prometheus.MustNewConstMetric(c.dispatchBehind, prometheus.GaugeValue, float64(dispatch))
		}
		if hasReserve {
			ch <- prometheus.MustNewConstMetric(c.reserve, prometheus.GaugeValue, float64(reserve.Milliseconds()))
		}
	}
	if len(connections) > 0 {
		agg := make(map[connKey]int)
		for _, f := range connections {
			f(func(s ConnectionStat) {
				k := connKey{producer: s.Producer, language: s.Language, version: s.Version}
				if !s.Producer {
					k.group, k.consumeMode = s.Group, s.ConsumeMode
				}
				agg[k] += s.Count
			})
		}
		for k, v := range agg {
			if k.producer {
				ch <- prometheus.MustNewConstMetric(c.producerConns, prometheus.GaugeValue, float64(v), k.language, k.version)
			} else {
				ch <- prometheus.MustNewConstMetric(c.consumerConns, prometheus.GaugeValue, float64(v), k.group, k.language, k.version, k.consumeMode)
			}
		}
	}
	if len(tables) > 0 {
		var topics, groups int
		var hasTopics, hasGroups bool
		for _, f := range tables {
			t, g := f()
			if t >= 0 {
				topics, hasTopics = topics+t, true
			}
			if g >= 0 {
				groups, hasGroups = groups+g, true
			}
		}
		if hasTopics {
			ch <- prometheus.MustNewConstMetric(c.topicNumber, prometheus.GaugeValue, float64(topics))
		}
		if hasGroups {
			ch <- prometheus.MustNewConstMetric(c.groupNumber, prometheus.GaugeValue, float64(groups))
		}
	}
	emitTopicCounts(ch, c.halfMsgs, half)
	emitTopicCounts(ch, c.timingMsgs, timing)
	if len(timer) > 0 {
		var agg TimerStat
		for _, f := range timer {
			v := f()
			agg.EnqueueLag += v.EnqueueLag
			agg.EnqueueLatency = max(agg.EnqueueLatency, v.EnqueueLatency)
			agg.DequeueLatency = max(agg.DequeueLatency, v.DequeueLatency)
		}
		ch <- prometheus.MustNewConstMetric(c.timerEnqLag, prometheus.GaugeValue, float64(agg.EnqueueLag))
		ch <- prometheus.MustNewConstMetric(c.timerEnqLatency, prometheus.GaugeValue, float64(agg.EnqueueLatency.Milliseconds()))
		ch <- prometheus.MustNewConstMetric(c.timerDeqLatency, prometheus.GaugeValue, float64(agg.DequeueLatency.Milliseconds()))
	}
}

func emitTopicCounts(ch chan<- prometheus.Metric, d *prometheus.Desc, fs []func(emit func(TopicCount))) {
	if len(fs) == 0 {
		return
	}
	agg := make(map[string]int64)
	for _, f := range fs {
		f(func(tc TopicCount) { agg[tc.Topic] += tc.Count })
	}
	for t, v := range agg {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), t)
	}
}
