package metrics

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rocketry-mq/rocketry/internal/message"
)

// Registry is the process's metric registry. It is explicit (never the prometheus default
// registry) so that tests and embedded clusters can run several side by side.
type Registry struct {
	reg *prometheus.Registry

	mu    sync.Mutex
	nodes map[NodeInfo]*Node
}

// NewRegistry returns a registry holding the Go runtime and process collectors.
func NewRegistry() *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), nodes: make(map[NodeInfo]*Node)}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Gatherer returns what /metrics serves.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Registerer returns the raw registerer (no node labels). Prefer Node(...).Registerer().
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// NodeInfo identifies one component; it becomes the constant labels cluster, node_type and
// node_id of every series the component's Node registers.
type NodeInfo struct {
	Cluster string // e.g. "DefaultCluster"
	Type    string // NodeBroker, NodeProxy or NodeNamesrv
	ID      string // broker name, proxy instance id, or listen address
}

// Node returns the metric set of one component, creating and registering it on first use.
// Calling it again with the same NodeInfo returns the same *Node, so two parts of one
// component (a broker's core and its pop feature) can share it.
func (r *Registry) Node(info NodeInfo) *Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.nodes[info]; ok {
		return n
	}
	n := newNode(info, prometheus.WrapRegistererWith(prometheus.Labels{
		LabelCluster: info.Cluster, LabelNodeType: info.Type, LabelNodeID: info.ID,
	}, r.reg))
	r.nodes[info] = n
	return n
}

// Node holds the catalogue's series of one component (see docs/metrics.md). The zero value
// is not usable; a nil *Node is: every method on a nil *Node is a no-op, so components can
// run without metrics (tests) without nil checks on their hot paths.
type Node struct {
	info NodeInfo
	reg  prometheus.Registerer

	messagesIn    *prometheus.CounterVec   // topic, message_type
	throughputIn  *prometheus.CounterVec   // topic, message_type
	messageSize   *prometheus.HistogramVec // topic, message_type
	messagesOut   *prometheus.CounterVec   // topic, consumer_group
	throughputOut *prometheus.CounterVec   // topic, consumer_group
	sendToDLQ     *prometheus.CounterVec   // topic, consumer_group
	commits       *prometheus.CounterVec   // topic
	rollbacks     *prometheus.CounterVec   // topic
	rpcLatency    *prometheus.HistogramVec // protocol_type, request_code, response_code

	inCache  sync.Map // inKey -> *In
	outCache sync.Map // outKey -> *Out
	rpcCache sync.Map // rpcKey -> prometheus.Observer

	sources  *sourceCollector
	features featureSeries
}

type inKey struct{ topic, messageType string }
type outKey struct{ topic, group string }
type rpcKey struct{ protocol, req, resp string }

func newNode(info NodeInfo, reg prometheus.Registerer) *Node {
	n := &Node{info: info, reg: reg}
	n.messagesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameMessagesIn, Help: "Messages stored (produced), per topic and message type.",
	}, []string{LabelTopic, LabelMessageType, LabelIsSystem})
	n.throughputIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameThroughputIn, Help: "Bytes of message bodies stored (produced), per topic and message type.",
	}, []string{LabelTopic, LabelMessageType, LabelIsSystem})
	n.messageSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: NameMessageSize, Help: "Size in bytes of produced message bodies.", Buckets: MessageSizeBuckets,
	}, []string{LabelTopic, LabelMessageType})
	n.messagesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameMessagesOut, Help: "Messages delivered to consumers, per topic and consumer group.",
	}, []string{LabelTopic, LabelConsumerGroup, LabelIsRetry, LabelIsSystem})
	n.throughputOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameThroughputOut, Help: "Bytes of message bodies delivered to consumers, per topic and consumer group.",
	}, []string{LabelTopic, LabelConsumerGroup, LabelIsRetry, LabelIsSystem})
	n.sendToDLQ = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSendToDLQ, Help: "Messages moved to the dead-letter queue %DLQ%<group>, per original topic and group.",
	}, []string{LabelTopic, LabelConsumerGroup})
	n.commits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameCommitMessages, Help: "Transactional half messages committed, per topic.",
	}, []string{LabelTopic})
	n.rollbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameRollbackMessages, Help: "Transactional half messages rolled back, per topic.",
	}, []string{LabelTopic})
	n.rpcLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: NameRPCLatency, Help: "Server-side RPC latency in milliseconds, per protocol, request code and response code.",
		Buckets: RPCLatencyBuckets,
	}, []string{LabelProtocolType, LabelRequestCode, LabelResponseCode})
	n.sources = newSourceCollector(info)
	reg.MustRegister(n.messagesIn, n.throughputIn, n.messageSize, n.messagesOut, n.throughputOut,
		n.sendToDLQ, n.commits, n.rollbacks, n.rpcLatency, n.sources)
	n.features = newFeatureSeries() // exported by brokers only; other nodes never feed it
	if info.Type == NodeBroker {
		reg.MustRegister(n.features.collectors()...)
	}
	if info.Type == NodeProxy {
		up := prometheus.NewGauge(prometheus.GaugeOpts{Name: NameProxyUp, Help: "1 while the proxy process runs."})
		up.Set(1)
		reg.MustRegister(up)
	}
	return n
}

// Info returns the node's identity.
func (n *Node) Info() NodeInfo {
	if n == nil {
		return NodeInfo{}
	}
	return n.info
}

// Registerer returns a registerer that adds the node's cluster/node_type/node_id labels, for
// feature-specific metrics outside the catalogue (name them rocketmq_<feature>_..., and list
// them in docs/metrics.md). Nil for a nil node.
func (n *Node) Registerer() prometheus.Registerer {
	if n == nil {
		return nil
	}
	return n.reg
}

// In is the pre-resolved produce-side series of one (topic, message type). Safe for
// concurrent use; a nil *In is a no-op.
type In struct {
	messages prometheus.Counter
	bytes    prometheus.Counter
	size     prometheus.Observer
}

// In returns the produce-side series of (topic, messageType); messageType is NORMAL, FIFO,
// DELAY, TRANSACTION (or "" for unknown). The result is cached: hot paths may call In per
// message (one sync.Map load) or keep the pointer.
func (n *Node) In(topic, messageType string) *In {
	if n == nil {
		return nil
	}
	k := inKey{topic, messageType}
	if v, ok := n.inCache.Load(k); ok {
		return v.(*In)
	}
	sys := strconv.FormatBool(message.IsSystemTopic(topic))
	in := &In{
		messages: n.messagesIn.WithLabelValues(topic, messageType, sys),
		bytes:    n.throughputIn.WithLabelValues(topic, messageType, sys),
		size:     n.messageSize.WithLabelValues(topic, messageType),
	}
	v, _ := n.inCache.LoadOrStore(k, in)
	return v.(*In)
}

// Message records one stored message whose body is bodySize bytes.
func (in *In) Message(bodySize int) {
	if in == nil {
		return
	}
	in.messages.Inc()
	in.bytes.Add(float64(bodySize))
	in.size.Observe(float64(bodySize))
}

// Out is the pre-resolved consume-side series of one (topic, consumer group).
type Out struct {
	messages prometheus.Counter
	bytes    prometheus.Counter
}

// Out returns the consume-side series of (topic, group), cached like In.
func (n *Node) Out(topic, group string) *Out {
	if n == nil {
		return nil
	}
	k := outKey{topic, group}
	if v, ok := n.outCache.Load(k); ok {
		return v.(*Out)
	}
	// Apache's labels: is_retry for %RETRY% topics, is_system for system topics or groups.
	retry := strconv.FormatBool(message.IsRetryTopic(topic))
	sys := strconv.FormatBool(message.IsSystemTopic(topic) || message.IsReservedGroup(group))
	o := &Out{
		messages: n.messagesOut.WithLabelValues(topic, group, retry, sys),
		bytes:    n.throughputOut.WithLabelValues(topic, group, retry, sys),
	}
	v, _ := n.outCache.LoadOrStore(k, o)
	return v.(*Out)
}

// Add records msgs delivered messages carrying bodyBytes bytes of bodies in total.
func (o *Out) Add(msgs, bodyBytes int) {
	if o == nil || msgs <= 0 {
		return
	}
	o.messages.Add(float64(msgs))
	o.bytes.Add(float64(bodyBytes))
}

// SendToDLQ records n messages of topic moved to group's dead-letter queue.
func (n *Node) SendToDLQ(topic, group string, count int) {
	if n == nil || count <= 0 {
		return
	}
	n.sendToDLQ.WithLabelValues(topic, group).Add(float64(count))
}

// TransactionEnded records a committed (commit=true) or rolled-back half message of topic;
// age is the time since the half message was born (rocketmq_finish_message_latency, which
// RocketMQ records for commits only).
func (n *Node) TransactionEnded(topic string, commit bool, age time.Duration) {
	if n == nil {
		return
	}
	if commit {
		n.commits.WithLabelValues(topic).Inc()
		n.features.finishLatency.WithLabelValues(topic).Observe(max(age, 0).Seconds())
	} else {
		n.rollbacks.WithLabelValues(topic).Inc()
	}
}

// RPC returns the latency observer of (protocol, request code, response code), cached.
// Remoting uses the numeric codes ("310", "0"); gRPC uses the method name and the
// apache.rocketmq.v2.Code name ("SendMessage", "OK"). Observe milliseconds, or use
// ObserveRPC.
func (n *Node) RPC(protocol, requestCode, responseCode string) prometheus.Observer {
	if n == nil {
		return nopObserver{}
	}
	k := rpcKey{protocol, requestCode, responseCode}
	if v, ok := n.rpcCache.Load(k); ok {
		return v.(prometheus.Observer)
	}
	o := n.rpcLatency.WithLabelValues(protocol, requestCode, responseCode)
	v, _ := n.rpcCache.LoadOrStore(k, o)
	return v.(prometheus.Observer)
}

// ObserveRPC records one served RPC that took d.
func (n *Node) ObserveRPC(protocol, requestCode, responseCode string, d time.Duration) {
	if n == nil {
		return
	}
	n.RPC(protocol, requestCode, responseCode).Observe(float64(d) / float64(time.Millisecond))
}

type nopObserver struct{}

func (nopObserver) Observe(float64) {}

// ForgetTopic deletes every series labelled with topic (call it when a topic is deleted, so
// stale series do not linger). Callers holding *In/*Out of the topic keep working but their
// updates are no longer exported until the next In/Out call re-creates the series.
func (n *Node) ForgetTopic(topic string) {
	if n == nil {
		return
	}
	l := prometheus.Labels{LabelTopic: topic}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		n.messagesIn, n.throughputIn, n.messageSize, n.messagesOut, n.throughputOut, n.sendToDLQ, n.commits, n.rollbacks,
	} {
		v.DeletePartialMatch(l)
	}
	n.features.forgetTopic(l)
	n.inCache.Range(func(k, _ any) bool {
		if k.(inKey).topic == topic {
			n.inCache.Delete(k)
		}
		return true
	})
	n.outCache.Range(func(k, _ any) bool {
		if k.(outKey).topic == topic {
			n.outCache.Delete(k)
		}
		return true
	})
}

// ForgetGroup deletes every counter series labelled with consumer group (group deleted).
func (n *Node) ForgetGroup(group string) {
	if n == nil {
		return
	}
	l := prometheus.Labels{LabelConsumerGroup: group}
	n.messagesOut.DeletePartialMatch(l)
	n.throughputOut.DeletePartialMatch(l)
	n.sendToDLQ.DeletePartialMatch(l)
	n.outCache.Range(func(k, _ any) bool {
		if k.(outKey).group == group {
			n.outCache.Delete(k)
		}
		return true
	})
}

// String formats the node identity for logs.
func (i NodeInfo) String() string { return fmt.Sprintf("%s/%s/%s", i.Cluster, i.Type, i.ID) }
