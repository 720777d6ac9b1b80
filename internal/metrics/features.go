package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Series of the broker's features (transactions, timer, admin) and its permission, with
// RocketMQ 5's names, labels and units (BrokerMetricsConstant, DefaultStoreMetricsConstant):
// the two latencies that span a message's life are in seconds, as RocketMQ records them;
// the admin execution times in milliseconds.
const (
	NameBrokerPermission        = "rocketmq_broker_permission"
	NameFinishMessageLatency    = "rocketmq_finish_message_latency"
	NameTimerEnqueue            = "rocketmq_timer_enqueue_total"
	NameTimerDequeue            = "rocketmq_timer_dequeue_total"
	NameDelayMessageLatency     = "rocketmq_delay_message_latency"
	NameTopicCreateTime         = "rocketmq_topic_create_execution_time"
	NameConsumerGroupCreateTime = "rocketmq_consumer_group_create_execution_time"

	LabelInvocationStatus = "invocation_status" // "success" or "failure"
)

// LifeLatencyBuckets are the upper bounds (seconds) of rocketmq_finish_message_latency and
// rocketmq_delay_message_latency: from a second to RocketMQ's longest timer delay (3 days).
var LifeLatencyBuckets = []float64{1, 5, 10, 30, 60, 300, 600, 1800, 3600, 6 * 3600, 12 * 3600, 86400, 3 * 86400}

// AdminLatencyBuckets are the upper bounds (milliseconds) of the admin execution times.
var AdminLatencyBuckets = []float64{1, 5, 10, 50, 100, 500, 1000, 3000, 10000}

// featureSeries is part of Node: created and registered with it.
type featureSeries struct {
	finishLatency   *prometheus.HistogramVec // topic
	timerEnqueue    *prometheus.CounterVec   // topic
	timerDequeue    *prometheus.CounterVec   // topic
	delayLatency    *prometheus.HistogramVec // topic
	topicCreateTime *prometheus.HistogramVec // invocation_status, is_system
	groupCreateTime *prometheus.HistogramVec // invocation_status, is_system
}

func newFeatureSeries() featureSeries {
	return featureSeries{
		finishLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameFinishMessageLatency, Buckets: LifeLatencyBuckets,
			Help: "Seconds from a transactional half message's birth to its commit, per topic.",
		}, []string{LabelTopic}),
		timerEnqueue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameTimerEnqueue, Help: "Delay and timer messages taken into the timer, per real topic.",
		}, []string{LabelTopic}),
		timerDequeue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameTimerDequeue, Help: "Delay and timer messages delivered to their real topic when due, per topic.",
		}, []string{LabelTopic}),
		delayLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameDelayMessageLatency, Buckets: LifeLatencyBuckets,
			Help: "Seconds from a delay or timer message's birth to its delivery time (the delay asked for), per real topic.",
		}, []string{LabelTopic}),
		topicCreateTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameTopicCreateTime, Buckets: AdminLatencyBuckets,
			Help: "Milliseconds an admin topic create or update took, by outcome.",
		}, []string{LabelInvocationStatus, LabelIsSystem}),
		groupCreateTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameConsumerGroupCreateTime, Buckets: AdminLatencyBuckets,
			Help: "Milliseconds an admin consumer group create or update took, by outcome.",
		}, []string{LabelInvocationStatus, LabelIsSystem}),
	}
}

func (f *featureSeries) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.finishLatency, f.timerEnqueue, f.timerDequeue, f.delayLatency, f.topicCreateTime, f.groupCreateTime}
}

// forgetTopic deletes the feature series of a deleted topic.
func (f *featureSeries) forgetTopic(l prometheus.Labels) {
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		f.finishLatency, f.timerEnqueue, f.timerDequeue, f.delayLatency,
	} {
		v.DeletePartialMatch(l)
	}
}

// OnBrokerPermission exports rocketmq_broker_permission, the broker's permission bits as
// RocketMQ defines them (2 write, 4 read, 6 both; a drained broker reads 4), read from f at
// each scrape. Call it once per node.
func (n *Node) OnBrokerPermission(f func() int) {
	if n == nil {
		return
	}
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: NameBrokerPermission, Help: "The broker's permission: 2 write, 4 read, 6 read and write.",
	}, func() float64 { return float64(f()) }))
}

// TimerEnqueued records a delay or timer message of realTopic taken into the timer, asked
// to be delivered delay after its birth.
func (n *Node) TimerEnqueued(realTopic string, delay time.Duration) {
	if n == nil {
		return
	}
	n.features.timerEnqueue.WithLabelValues(realTopic).Inc()
	n.features.delayLatency.WithLabelValues(realTopic).Observe(max(delay, 0).Seconds())
}

// TimerDequeued records count due messages delivered to topic.
func (n *Node) TimerDequeued(topic string, count int) {
	if n == nil || count <= 0 {
		return
	}
	n.features.timerDequeue.WithLabelValues(topic).Add(float64(count))
}

// AdminCreated records how long an admin topic (group=false) or consumer group (group=true)
// create or update took, whether it succeeded, and whether the name is a system one.
func (n *Node) AdminCreated(group, ok, system bool, took time.Duration) {
	if n == nil {
		return
	}
	h := n.features.topicCreateTime
	if group {
		h = n.features.groupCreateTime
	}
	status := "failure"
	if ok {
		status = "success"
	}
	h.WithLabelValues(status, strconv.FormatBool(system)).Observe(float64(took) / float64(time.Millisecond))
}
