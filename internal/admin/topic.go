package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// TopicType is a topic's message type (attribute message.type).
type TopicType string

// Topic types.
const (
	TopicNormal      TopicType = "NORMAL"
	TopicFIFO        TopicType = "FIFO"
	TopicDelay       TopicType = "DELAY"
	TopicTransaction TopicType = "TRANSACTION"
	// TopicMixed accepts messages of every type (RocketMQ 5's MIXED).
	TopicMixed TopicType = "MIXED"
)

// ParseTopicType accepts a type name in any case ("" = NORMAL).
func ParseTopicType(s string) (TopicType, error) {
	switch t := TopicType(strings.ToUpper(s)); t {
	case "":
		return TopicNormal, nil
	case TopicNormal, TopicFIFO, TopicDelay, TopicTransaction, TopicMixed:
		return t, nil
	}
	return "", fmt.Errorf("unknown topic type %q (want NORMAL, FIFO, DELAY, TRANSACTION or MIXED)", s)
}

// Permission bits (RocketMQ PermName).
const (
	PermRead      = 4
	PermWrite     = 2
	PermReadWrite = PermRead | PermWrite
)

// TopicSpec describes a topic to create or update.
type TopicSpec struct {
	Name    string
	Type    TopicType // default NORMAL
	Queues  int       // read and write queues per broker; default 8
	Cluster string    // "" = every cluster
	Perm    int       // default PermReadWrite
}

// CreateTopicResult reports where a topic was created.
type CreateTopicResult struct {
	Topic   string    `json:"topic"`
	Type    TopicType `json:"type"`
	Queues  int       `json:"queues"`
	Brokers []string  `json:"brokers"`
	// Routed is true once the NameServer serves the topic's route (CreateTopic waits for it
	// for up to the request timeout).
	Routed bool `json:"routed"`
}

// CreateTopic creates (or updates) the topic on every master broker of the cluster with
// UPDATE_AND_CREATE_TOPIC (attribute +message.type=<type>), then waits (bounded by the
// request timeout) until the NameServer routes it.
func (a *Admin) CreateTopic(ctx context.Context, spec TopicSpec) (*CreateTopicResult, error) {
	if err := message.ValidateTopic(spec.Name); err != nil {
		return nil, err
	}
	if message.IsSystemTopic(spec.Name) {
		return nil, fmt.Errorf("topic %q is a system topic", spec.Name)
	}
	if spec.Type == "" {
		spec.Type = TopicNormal
	}
	if _, err := ParseTopicType(string(spec.Type)); err != nil {
		return nil, err
	}
	if spec.Queues == 0 {
		spec.Queues = 8
	}
	if spec.Queues < 1 || spec.Queues > 1024 {
		return nil, fmt.Errorf("queues must be within 1..1024, not %d", spec.Queues)
	}
	if spec.Perm == 0 {
		spec.Perm = PermReadWrite
	}
	brokers, err := a.masters(ctx, spec.Cluster)
	if err != nil {
		return nil, err
	}
	q := strconv.Itoa(spec.Queues)
	ext := map[string]string{
		"topic": spec.Name, "defaultTopic": "TBW102", "readQueueNums": q, "writeQueueNums": q,
		"perm": strconv.Itoa(spec.Perm), "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false",
		"attributes": "+message.type=" + string(spec.Type),
	}
	var (
		mu   sync.Mutex
		done []string
	)
	err = parallel(ctx, a.cfg.Parallelism, brokers, func(ctx context.Context, b brokerGroup) error {
		if _, err := a.invoke(ctx, b.Master, remoting.UpdateAndCreateTopic, ext, nil); err != nil {
			return err
		}
		mu.Lock()
		done = append(done, b.Name)
		mu.Unlock()
		return nil
	})
	if err != nil {
		// Say what did happen, so the operator knows what to retry (QA R8J-5).
		if len(done) > 0 {
			sort.Strings(done)
			return nil, fmt.Errorf("topic %s created on %s only: %w", spec.Name, strings.Join(done, ", "), err)
		}
		return nil, err
	}
	res := &CreateTopicResult{Topic: spec.Name, Type: spec.Type, Queues: spec.Queues}
	for _, b := range brokers {
		res.Brokers = append(res.Brokers, b.Name)
	}
	// Brokers re-register with the NameServer after a topic change; wait for the route so
	// that a script can produce right after `topic create`.
	deadline := time.Now().Add(a.cfg.Timeout)
	for {
		r, err := a.route(ctx, spec.Name)
		if err == nil && len(r.QueueDatas) >= len(brokers) {
			res.Routed = true
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return res, nil
}

// TopicSummary is one line of `topic list`.
type TopicSummary struct {
	Name   string `json:"name"`
	System bool   `json:"system"` // system topics (%RETRY%, %DLQ%, RMQ_SYS_*, TBW102, ...)
}

type wireTopicList struct {
	TopicList []string `json:"topicList"`
}

// ListTopics lists the topics the NameServer knows (GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
// sorted; system topics only with all.
func (a *Admin) ListTopics(ctx context.Context, all bool) ([]TopicSummary, error) {
	resp, err := a.invokeNamesrv(ctx, remoting.GetAllTopicListFromNameserver, nil)
	if err != nil {
		return nil, err
	}
	var tl wireTopicList
	if err := decodeJSON(resp.Body, &tl); err != nil {
		return nil, fmt.Errorf("GET_ALL_TOPIC_LIST_FROM_NAMESERVER: %w", err)
	}
	// Every broker also creates a topic named after its cluster and one after itself; they
	// are the broker's own, not the user's (QA F18). Best effort: without cluster info they
	// are listed as ordinary topics.
	internal := map[string]bool{}
	if ci, err := a.clusterInfo(ctx); err == nil {
		for name := range ci.BrokerAddrTable {
			internal[name] = true
		}
		for cluster := range ci.ClusterAddrTable {
			internal[cluster] = true
			internal[cluster+"_REPLY_TOPIC"] = true // request-reply replies
		}
	}
	out := make([]TopicSummary, 0, len(tl.TopicList))
	for _, t := range tl.TopicList {
		sys := isSystemTopic(t) || internal[t]
		if sys && !all {
			continue
		}
		out = append(out, TopicSummary{Name: t, System: sys})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func isSystemTopic(t string) bool {
	return message.IsSystemTopic(t) || message.IsRetryTopic(t) || message.IsDLQTopic(t) || t == "TBW102" ||
		strings.HasPrefix(t, "rmq_sys_") || strings.HasPrefix(t, "RMQ_SYS_")
}

// QueueStatus is one queue of a topic on one broker.
type QueueStatus struct {
	Broker    string `json:"broker"`
	QueueID   int32  `json:"queueId"`
	MinOffset int64  `json:"minOffset"`
	MaxOffset int64  `json:"maxOffset"`
	Messages  int64  `json:"messages"` // max - min
	// LastStoreTime is the store time of the newest message (Unix ms; 0 when empty or unknown).
	LastStoreTime int64  `json:"lastStoreTime,omitempty"`
	Error         string `json:"error,omitempty"`
}

// MarshalJSON writes the offsets only for a queue that answered: one whose broker did not
// carries error instead (docs/cli.md), never offsets that read as an empty queue.
func (q QueueStatus) MarshalJSON() ([]byte, error) {
	if q.Error != "" {
		return json.Marshal(struct {
			Broker  string `json:"broker"`
			QueueID int32  `json:"queueId"`
			Error   string `json:"error"`
		}{q.Broker, q.QueueID, q.Error})
	}
	type plain QueueStatus
	return json.Marshal(plain(q))
}

// TopicBroker is the topic's configuration on one broker group.
type TopicBroker struct {
	Broker      string `json:"broker"`
	Cluster     string `json:"cluster"`
	Addr        string `json:"addr"`
	ReadQueues  int32  `json:"readQueues"`
	WriteQueues int32  `json:"writeQueues"`
	Perm        int32  `json:"perm"`
}

// TopicDetail is `topic describe`.
type TopicDetail struct {
	Name       string            `json:"name"`
	Type       TopicType         `json:"type"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Brokers    []TopicBroker     `json:"brokers"`
	Queues     []QueueStatus     `json:"queues"`
	Messages   int64             `json:"messages"` // sum over the queues that answered of max - min
	// Unanswered counts queues whose broker did not answer (their entries carry error and
	// no offsets): Messages is then a lower bound.
	Unanswered int `json:"unanswered,omitempty"`
}

type wireTopicConfig struct {
	TopicName      string            `json:"topicName"`
	ReadQueueNums  int32             `json:"readQueueNums"`
	WriteQueueNums int32             `json:"writeQueueNums"`
	Perm           int32             `json:"perm"`
	Order          bool              `json:"order"`
	Attributes     map[string]string `json:"attributes"`
}

// topicConfig fetches GET_TOPIC_CONFIG. The body may be a TopicConfig or a wrapper
// {"topicConfig":{...}} (RocketMQ 5 TopicConfigAndQueueMapping); both are accepted.
func (a *Admin) topicConfig(ctx context.Context, addr, topic string) (*wireTopicConfig, error) {
	resp, err := a.invoke(ctx, addr, remoting.GetTopicConfig, map[string]string{"topic": topic}, nil)
	if err != nil {
		return nil, err
	}
	var tc wireTopicConfig
	if err := decodeJSON(resp.Body, &tc); err != nil {
		return nil, fmt.Errorf("GET_TOPIC_CONFIG: %w", err)
	}
	if tc.TopicName == "" {
		var w struct {
			TopicConfig wireTopicConfig `json:"topicConfig"`
		}
		if decodeJSON(resp.Body, &w) == nil && w.TopicConfig.TopicName != "" {
			tc = w.TopicConfig
		}
	}
	return &tc, nil
}

// DescribeTopic returns the topic's route, type and per-queue offsets (GET_ROUTEINFO_BY_TOPIC,
// GET_TOPIC_CONFIG, GET_MIN_OFFSET/GET_MAX_OFFSET per queue). Unknown topic: ErrNotFound.
func (a *Admin) DescribeTopic(ctx context.Context, topic string) (*TopicDetail, error) {
	r, err := a.route(ctx, topic)
	if err != nil {
		return nil, err
	}
	d := &TopicDetail{Name: topic, Type: TopicNormal}
	masters := r.masters()
	clusters := map[string]string{}
	for _, b := range r.BrokerDatas {
		clusters[b.BrokerName] = b.Cluster
	}
	type qref struct {
		broker, addr string
		qid          int32
	}
	var queues []qref
	for _, qd := range r.QueueDatas {
		d.Brokers = append(d.Brokers, TopicBroker{Broker: qd.BrokerName, Cluster: clusters[qd.BrokerName], Addr: masters[qd.BrokerName],
			ReadQueues: qd.ReadQueueNums, WriteQueues: qd.WriteQueueNums, Perm: qd.Perm})
		for q := range max(qd.ReadQueueNums, qd.WriteQueueNums) {
			queues = append(queues, qref{qd.BrokerName, masters[qd.BrokerName], q})
		}
	}
	sort.Slice(d.Brokers, func(i, j int) bool { return d.Brokers[i].Broker < d.Brokers[j].Broker })
	// Last store times come from GET_TOPIC_STATS_INFO (one request per broker, Apache's
	// topicStatus), not from pulling the last message: a describe is not a consumption and
	// must not count in delivery metrics or create a tools group (QA R7H-4). A broker that
	// does not answer it is not asked anything else: its queues carry its error, so a hung
	// broker costs one --timeout, not one per phase (QA R11C-1).
	lastStore, failed := a.lastStoreTimes(ctx, topic, d.Brokers)
	for _, b := range d.Brokers {
		if b.Addr == "" || failed[b.Broker] != nil {
			continue
		}
		if tc, err := a.topicConfig(ctx, b.Addr, topic); err == nil {
			d.Attributes = tc.Attributes
			if t := tc.Attributes["message.type"]; t != "" {
				d.Type = TopicType(strings.ToUpper(t))
			}
		} else if !errors.Is(err, ErrNotFound) {
			a.log.Debug("topic config", "topic", topic, "err", err)
		}
		break
	}
	var mu sync.Mutex
	d.Queues = make([]QueueStatus, 0, len(queues))
	_ = parallel(ctx, a.cfg.Parallelism, queues, func(ctx context.Context, q qref) error {
		st := QueueStatus{Broker: q.broker, QueueID: q.qid}
		ext := map[string]string{"topic": topic, "queueId": strconv.Itoa(int(q.qid)), "bname": q.broker}
		err := failed[q.broker]
		if err == nil && q.addr == "" {
			err = fmt.Errorf("broker %s has no master address", q.broker)
		}
		if err == nil {
			if st.MinOffset, err = a.offset(ctx, q.addr, remoting.GetMinOffset, ext); err == nil {
				st.MaxOffset, err = a.offset(ctx, q.addr, remoting.GetMaxOffset, ext)
			}
		}
		if err != nil {
			st = QueueStatus{Broker: q.broker, QueueID: q.qid, Error: err.Error()}
		} else if st.MaxOffset > 0 {
			st.Messages = st.MaxOffset - st.MinOffset
			if st.Messages > 0 {
				st.LastStoreTime = lastStore[q.broker][q.qid]
			}
		}
		mu.Lock()
		d.Queues = append(d.Queues, st)
		mu.Unlock()
		return nil
	})
	sort.Slice(d.Queues, func(i, j int) bool {
		if d.Queues[i].Broker != d.Queues[j].Broker {
			return d.Queues[i].Broker < d.Queues[j].Broker
		}
		return d.Queues[i].QueueID < d.Queues[j].QueueID
	})
	for _, q := range d.Queues {
		if q.Error != "" {
			d.Unanswered++
		}
	}
	for _, q := range d.Queues {
		d.Messages += q.Messages
	}
	return d, nil
}

// offset reads the "offset" ext field of a GET_MIN/MAX_OFFSET-style response.
func (a *Admin) offset(ctx context.Context, addr string, code int32, ext map[string]string) (int64, error) {
	resp, err := a.invoke(ctx, addr, code, ext, nil)
	if err != nil {
		return 0, err
	}
	return resp.ExtInt64("offset")
}

// lastStoreTimes returns, per broker and queue, the store time (Unix ms) of the queue's last
// message from GET_TOPIC_STATS_INFO; a broker that answers with an error code is left out
// (describe shows 0), and one that does not answer at all is in failed with its error.
func (a *Admin) lastStoreTimes(ctx context.Context, topic string, brokers []TopicBroker) (times map[string]map[int32]int64, failed map[string]error) {
	out := map[string]map[int32]int64{}
	failed = map[string]error{}
	var mu sync.Mutex
	_ = parallel(ctx, a.cfg.Parallelism, brokers, func(ctx context.Context, b TopicBroker) error {
		if b.Addr == "" {
			return nil
		}
		resp, err := a.invoke(ctx, b.Addr, remoting.GetTopicStatsInfo, map[string]string{"topic": topic, "bname": b.Broker}, nil)
		if err != nil {
			a.log.Debug("topic stats", "broker", b.Broker, "err", err)
			if !errors.As(err, new(*CodeError)) { // no answer (an answer with a code is an answer)
				mu.Lock()
				failed[b.Broker] = err
				mu.Unlock()
			}
			return nil
		}
		var ts struct {
			OffsetTable map[string]struct {
				LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"`
			} `json:"offsetTable"`
		}
		if err := decodeJSON(resp.Body, &ts); err != nil {
			a.log.Debug("topic stats", "broker", b.Broker, "err", err)
			return nil
		}
		m := map[int32]int64{}
		for k, v := range ts.OffsetTable {
			if q, err := parseQueueKey(k); err == nil {
				m[q.QueueID] = v.LastUpdateTimestamp
			}
		}
		mu.Lock()
		out[b.Broker] = m
		mu.Unlock()
		return nil
	})
	return out, failed
}

// DeleteTopicResult reports where a topic was deleted.
type DeleteTopicResult struct {
	Topic   string   `json:"topic"`
	Brokers []string `json:"brokers"`
}

// DeleteTopic deletes the topic from every master broker of the cluster ("" = all) with
// DELETE_TOPIC_IN_BROKER, then from every NameServer with DELETE_TOPIC_IN_NAMESRV.
// A topic no NameServer or broker knows is ErrNotFound.
func (a *Admin) DeleteTopic(ctx context.Context, topic, cluster string) (*DeleteTopicResult, error) {
	if isSystemTopic(topic) && !message.IsRetryTopic(topic) && !message.IsDLQTopic(topic) {
		return nil, fmt.Errorf("topic %q is a system topic", topic)
	}
	r, err := a.route(ctx, topic)
	if errors.Is(err, ErrNotFound) {
		// The NameServers do not route it right now, but a broker may still hold it (its
		// registration lags, or a delete raced an auto-create that registered it): ask every
		// master, as Apache's deleteTopic does from the cluster info (QA R13G-1).
		return a.deleteUnroutedTopic(ctx, topic, cluster, err)
	}
	if err != nil {
		return nil, err
	}
	brokers, err := a.masters(ctx, cluster)
	if err != nil {
		return nil, err
	}
	hosting := map[string]bool{}
	for _, q := range r.QueueDatas {
		hosting[q.BrokerName] = true
	}
	res := &DeleteTopicResult{Topic: topic}
	var targets []brokerGroup
	for _, b := range brokers {
		if hosting[b.Name] {
			targets = append(targets, b)
			res.Brokers = append(res.Brokers, b.Name)
		}
	}
	if err := a.deleteTopicEverywhere(ctx, topic, cluster, targets); err != nil {
		return nil, err
	}
	return res, nil
}

// deleteUnroutedTopic deletes topic from every master of cluster that holds it, then from the
// NameServers; notFound is returned when no broker held it.
func (a *Admin) deleteUnroutedTopic(ctx context.Context, topic, cluster string, notFound error) (*DeleteTopicResult, error) {
	brokers, err := a.masters(ctx, cluster)
	if err != nil {
		return nil, err
	}
	res := &DeleteTopicResult{Topic: topic}
	res.Brokers, err = a.deleteWhereHeld(ctx, brokers,
		func(ctx context.Context, b brokerGroup) (bool, error) {
			// Brokers answer SUCCESS to deleting what they lack: ask first.
			_, err := a.topicConfig(ctx, b.Master, topic)
			if errors.Is(err, ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		func(ctx context.Context, b brokerGroup) error {
			_, err := a.invoke(ctx, b.Master, remoting.DeleteTopicInBroker, map[string]string{"topic": topic}, nil)
			return err
		})
	if err != nil {
		return nil, err
	}
	if len(res.Brokers) == 0 {
		return nil, notFound
	}
	if err := a.deleteTopicEverywhere(ctx, topic, cluster, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// deleteWhereHeld runs del on every broker where holds reports the object present and
// returns the names of those brokers, sorted. A del answered "not found" (the object went
// meanwhile) is not an error and the broker is not listed.
func (a *Admin) deleteWhereHeld(ctx context.Context, brokers []brokerGroup,
	holds func(context.Context, brokerGroup) (bool, error), del func(context.Context, brokerGroup) error) ([]string, error) {
	var (
		mu    sync.Mutex
		names []string
	)
	err := parallel(ctx, a.cfg.Parallelism, brokers, func(ctx context.Context, b brokerGroup) error {
		ok, err := holds(ctx, b)
		if err != nil || !ok {
			return err
		}
		if err := del(ctx, b); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		mu.Lock()
		names = append(names, b.Name)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (a *Admin) deleteTopicEverywhere(ctx context.Context, topic, cluster string, brokers []brokerGroup) error {
	err := parallel(ctx, a.cfg.Parallelism, brokers, func(ctx context.Context, b brokerGroup) error {
		_, err := a.invoke(ctx, b.Master, remoting.DeleteTopicInBroker, map[string]string{"topic": topic}, nil)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	ext := map[string]string{"topic": topic}
	if cluster != "" {
		ext["clusterName"] = cluster
	}
	return parallel(ctx, a.cfg.Parallelism, a.cfg.NameServers, func(ctx context.Context, ns string) error {
		_, err := a.invoke(ctx, ns, remoting.DeleteTopicInNamesrv, ext, nil)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
}
