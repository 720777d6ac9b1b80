package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// wireGroupConfig is RocketMQ's SubscriptionGroupConfig.
type wireGroupConfig struct {
	GroupName                      string            `json:"groupName"`
	ConsumeEnable                  bool              `json:"consumeEnable"`
	ConsumeFromMinEnable           bool              `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool              `json:"consumeBroadcastEnable"`
	ConsumeMessageOrderly          bool              `json:"consumeMessageOrderly"`
	RetryQueueNums                 int32             `json:"retryQueueNums"`
	RetryMaxTimes                  int32             `json:"retryMaxTimes"`
	BrokerID                       int64             `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64             `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool              `json:"notifyConsumerIdsChangedEnable"`
	GroupSysFlag                   int32             `json:"groupSysFlag"`
	ConsumeTimeoutMinute           int32             `json:"consumeTimeoutMinute"`
	Attributes                     map[string]string `json:"attributes,omitempty"`
}

// GroupSpec describes a subscription group to create or update.
type GroupSpec struct {
	Name string
	// FIFO makes the group consume orderly (consumeMessageOrderly): FIFO topics deliver one
	// message group at a time, in order.
	FIFO bool
	// MaxAttempts is RocketMQ's retryMaxTimes: redeliveries before a message goes to
	// %DLQ%<group>, taken as given: 0 means no redelivery (the first failure goes to the
	// DLQ), as mqadmin updateSubGroup -r 0. The CLI's flag defaults to 16 (RocketMQ's).
	MaxAttempts int
	Cluster     string // "" = every cluster
}

// GroupSummary is one line of `group list` and the result of `group create`.
type GroupSummary struct {
	Name          string   `json:"name"`
	FIFO          bool     `json:"fifo"`
	MaxAttempts   int32    `json:"maxAttempts"`   // retryMaxTimes: redeliveries after the first delivery
	MaxDeliveries int32    `json:"maxDeliveries"` // MaxAttempts + 1: deliveries before the DLQ (what gRPC clients see)
	ConsumeEnable bool     `json:"consumeEnable"`
	Brokers       []string `json:"brokers"`
	System        bool     `json:"system"`
}

// CreateGroup creates (or updates) the group on every master broker of the cluster with
// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP.
func (a *Admin) CreateGroup(ctx context.Context, spec GroupSpec) (*GroupSummary, error) {
	if err := message.ValidateGroup(spec.Name); err != nil {
		return nil, err
	}
	if spec.MaxAttempts < 0 || spec.MaxAttempts > 1000 {
		return nil, fmt.Errorf("max attempts must be within 0..1000, not %d", spec.MaxAttempts)
	}
	brokers, err := a.masters(ctx, spec.Cluster)
	if err != nil {
		return nil, err
	}
	cfg := wireGroupConfig{GroupName: spec.Name, ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
		ConsumeMessageOrderly: spec.FIFO, RetryQueueNums: 1, RetryMaxTimes: int32(spec.MaxAttempts), WhichBrokerWhenConsumeSlowly: 1,
		NotifyConsumerIdsChangedEnable: true, ConsumeTimeoutMinute: 15}
	body, _ := json.Marshal(cfg)
	err = parallel(ctx, a.cfg.Parallelism, brokers, func(ctx context.Context, b brokerGroup) error {
		_, err := a.invoke(ctx, b.Master, remoting.UpdateAndCreateSubscriptionGroup, nil, body)
		return err
	})
	if err != nil {
		return nil, err
	}
	res := &GroupSummary{Name: spec.Name, FIFO: spec.FIFO, MaxAttempts: cfg.RetryMaxTimes, MaxDeliveries: cfg.RetryMaxTimes + 1, ConsumeEnable: true}
	for _, b := range brokers {
		res.Brokers = append(res.Brokers, b.Name)
	}
	return res, nil
}

// groupTable fetches a broker's subscription groups by name (GET_ALL_SUBSCRIPTIONGROUP_CONFIG;
// unlike GET_SUBSCRIPTIONGROUP_CONFIG it never auto-creates a group).
func (a *Admin) groupTable(ctx context.Context, addr string) (map[string]wireGroupConfig, error) {
	resp, err := a.invoke(ctx, addr, remoting.GetAllSubscriptionGroupConfig, nil, nil)
	if err != nil {
		return nil, err
	}
	var w struct {
		SubscriptionGroupTable map[string]wireGroupConfig `json:"subscriptionGroupTable"`
	}
	if err := decodeJSON(resp.Body, &w); err != nil {
		return nil, fmt.Errorf("GET_ALL_SUBSCRIPTIONGROUP_CONFIG from %s: %w", addr, err)
	}
	out := make(map[string]wireGroupConfig, len(w.SubscriptionGroupTable))
	for name, g := range w.SubscriptionGroupTable {
		if name == "" {
			name = g.GroupName
		}
		out[name] = g
	}
	return out, nil
}

// ListGroups lists the subscription groups of every master broker of the cluster
// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG), merged by name and sorted; reserved groups only with all.
func (a *Admin) ListGroups(ctx context.Context, cluster string, all bool) ([]GroupSummary, error) {
	brokers, err := a.masters(ctx, cluster)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	byName := map[string]*GroupSummary{}
	failed := map[string]error{}
	err = parallel(ctx, a.cfg.Parallelism, brokers, func(ctx context.Context, b brokerGroup) error {
		table, err := a.groupTable(ctx, b.Master)
		if err != nil {
			// One unresponsive broker must not hide the others' groups (QA R7H-6).
			mu.Lock()
			failed[b.Name] = err
			mu.Unlock()
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		for name, g := range table {
			s := byName[name]
			if s == nil {
				s = &GroupSummary{Name: name, FIFO: g.ConsumeMessageOrderly, MaxAttempts: g.RetryMaxTimes, MaxDeliveries: g.RetryMaxTimes + 1,
					ConsumeEnable: g.ConsumeEnable, System: message.IsReservedGroup(name) || name == ResendTrackingGroup}
				byName[name] = s
			}
			s.Brokers = append(s.Brokers, b.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := partialFailure(a, brokerNames(brokers), failed, "group list"); err != nil {
		return nil, err
	}
	out := make([]GroupSummary, 0, len(byName))
	for _, s := range byName {
		if s.System && !all {
			continue
		}
		sort.Strings(s.Brokers)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GroupQueue is one queue's consumption progress.
type GroupQueue struct {
	Topic          string `json:"topic"`
	Broker         string `json:"broker"`
	QueueID        int32  `json:"queueId"`
	BrokerOffset   int64  `json:"brokerOffset"`   // queue max offset
	ConsumerOffset int64  `json:"consumerOffset"` // committed (acknowledged) offset
	Lag            int64  `json:"lag"`            // brokerOffset - consumerOffset
	Inflight       int64  `json:"inflight"`       // delivered, not yet acknowledged (pop in-flight, or pulled beyond committed)
	LastTimestamp  int64  `json:"lastTimestamp,omitempty"`
}

// GroupClient is one online consumer client.
type GroupClient struct {
	ClientID string `json:"clientId"`
	Addr     string `json:"addr"`
	Language string `json:"language"`
	Version  string `json:"version"`
	Broker   string `json:"broker"`
}

// GroupSubscription is one topic a group's online clients subscribe to.
type GroupSubscription struct {
	Topic      string `json:"topic"`
	Expression string `json:"expression"`
	Type       string `json:"type"`
}

// GroupDetail is `group describe`.
type GroupDetail struct {
	Name          string              `json:"name"`
	FIFO          bool                `json:"fifo"`
	MaxAttempts   int32               `json:"maxAttempts"`   // retryMaxTimes
	MaxDeliveries int32               `json:"maxDeliveries"` // MaxAttempts + 1
	ConsumeEnable bool                `json:"consumeEnable"`
	Lag           int64               `json:"lag"`      // sum over queues
	Inflight      int64               `json:"inflight"` // sum over queues
	ConsumeTPS    float64             `json:"consumeTps"`
	Queues        []GroupQueue        `json:"queues"`
	Online        bool                `json:"online"`
	ConsumeType   string              `json:"consumeType,omitempty"`
	MessageModel  string              `json:"messageModel,omitempty"`
	Clients       []GroupClient       `json:"clients"`
	Subscriptions []GroupSubscription `json:"subscriptions"`
	// BrokerErrors names the brokers that did not answer (their queues and clients are
	// missing above); omitted when every broker answered.
	BrokerErrors map[string]string `json:"brokerErrors,omitempty"`
}

type wireOffsetWrapper struct {
	BrokerOffset   int64  `json:"brokerOffset"`
	ConsumerOffset int64  `json:"consumerOffset"`
	PullOffset     int64  `json:"pullOffset"`
	LastTimestamp  int64  `json:"lastTimestamp"`
	Inflight       *int64 `json:"inflight"`
	InflightAlt    *int64 `json:"inFlight"`
	InflightCount  *int64 `json:"inflightCount"`
}

type wireConsumeStats struct {
	OffsetTable map[string]wireOffsetWrapper `json:"offsetTable"`
	ConsumeTps  float64                      `json:"consumeTps"`
}

type wireConnection struct {
	ClientID   string `json:"clientId"`
	ClientAddr string `json:"clientAddr"`
	Language   any    `json:"language"`
	Version    any    `json:"version"`
}

type wireSubscription struct {
	Topic          string `json:"topic"`
	SubString      string `json:"subString"`
	ExpressionType string `json:"expressionType"`
}

type wireConsumerConnection struct {
	ConnectionSet     []wireConnection            `json:"connectionSet"`
	SubscriptionTable map[string]wireSubscription `json:"subscriptionTable"`
	ConsumeType       string                      `json:"consumeType"`
	MessageModel      string                      `json:"messageModel"`
}

// DescribeGroup returns the group's configuration, per-queue lag and in-flight counts
// (GET_CONSUME_STATS on every master) and its online clients (GET_CONSUMER_CONNECTION_LIST).
// Works for pull (remoting) and pop (gRPC) consumers, online or offline. Unknown group:
// ErrNotFound.
func (a *Admin) DescribeGroup(ctx context.Context, group string) (*GroupDetail, error) {
	brokers, err := a.masters(ctx, "")
	if err != nil {
		return nil, err
	}
	d := &GroupDetail{Name: group, Queues: []GroupQueue{}, Clients: []GroupClient{}, Subscriptions: []GroupSubscription{}}
	var (
		mu      sync.Mutex
		found   bool
		clients = map[string]GroupClient{}
		subs    = map[string]GroupSubscription{}
	)
	failed := map[string]error{}
	err = parallel(ctx, a.cfg.Parallelism, brokers, func(ctx context.Context, b brokerGroup) error {
		if err := a.describeGroupOn(ctx, b, group, d, &mu, &found, clients, subs); err != nil {
			mu.Lock()
			failed[b.Name] = err
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := partialFailure(a, brokerNames(brokers), failed, "group describe"); err != nil {
		return nil, err
	}
	for name, e := range failed {
		if d.BrokerErrors == nil {
			d.BrokerErrors = map[string]string{}
		}
		d.BrokerErrors[name] = e.Error()
	}
	if found {
		a.fillMissingBrokers(ctx, group, brokers, failed, d)
	} else if err := notFoundWhere(failed); err != nil {
		// Not on the brokers that answered; it may be on the ones that did not (QA R13G-2).
		return nil, fmt.Errorf("group %s not found on the brokers that answered: %w", group, err)
	}
	return a.finishGroupDetail(d, group, found, clients, subs)
}

// describeGroupOn adds one broker's view of group to d (under mu).
func (a *Admin) describeGroupOn(ctx context.Context, b brokerGroup, group string, d *GroupDetail, mu *sync.Mutex, found *bool,
	clients map[string]GroupClient, subs map[string]GroupSubscription) error {
	// configuration (from the full table: GET_SUBSCRIPTIONGROUP_CONFIG would create the
	// group on brokers with autoCreateSubscriptionGroup)
	table, err := a.groupTable(ctx, b.Master)
	if err != nil {
		return err
	}
	if g, ok := table[group]; ok {
		mu.Lock()
		*found = true
		d.FIFO, d.MaxAttempts, d.MaxDeliveries, d.ConsumeEnable = g.ConsumeMessageOrderly, g.RetryMaxTimes, g.RetryMaxTimes+1, g.ConsumeEnable
		mu.Unlock()
	}
	// progress
	resp, err := a.invoke(ctx, b.Master, remoting.GetConsumeStats, map[string]string{"consumerGroup": group}, nil)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		n, err := addConsumeStats(resp.Body, b, d, mu, true)
		if err != nil {
			return err
		}
		mu.Lock()
		*found = *found || n > 0 // a group with offsets but no config (auto-created elsewhere)
		mu.Unlock()
	}
	// online clients
	resp, err = a.invoke(ctx, b.Master, remoting.GetConsumerConnectionList, map[string]string{"consumerGroup": group}, nil)
	if err != nil {
		var ce *CodeError
		if errors.As(err, &ce) && (ce.Code == remoting.ConsumerNotOnline || errors.Is(err, ErrNotFound)) {
			return nil
		}
		return err
	}
	var cc wireConsumerConnection
	if err := decodeJSON(resp.Body, &cc); err != nil {
		return fmt.Errorf("GET_CONSUMER_CONNECTION_LIST from %s: %w", b.Master, err)
	}
	mu.Lock()
	defer mu.Unlock()
	d.ConsumeType, d.MessageModel = cc.ConsumeType, cc.MessageModel
	for _, c := range cc.ConnectionSet {
		if _, ok := clients[c.ClientID]; !ok {
			clients[c.ClientID] = GroupClient{ClientID: c.ClientID, Addr: c.ClientAddr, Language: anyString(c.Language),
				Version: versionName(c.Version), Broker: b.Name}
		}
	}
	for t, s := range cc.SubscriptionTable {
		if s.Topic == "" {
			s.Topic = t
		}
		subs[s.Topic] = GroupSubscription{Topic: s.Topic, Expression: s.SubString, Type: s.ExpressionType}
	}
	return nil
}

// addConsumeStats adds the queues of a GET_CONSUME_STATS body from broker b to d (under mu)
// and returns how many it added; withTps adds the body's consumeTps too.
func addConsumeStats(body []byte, b brokerGroup, d *GroupDetail, mu *sync.Mutex, withTps bool) (int, error) {
	var cs wireConsumeStats
	if err := decodeJSON(body, &cs); err != nil {
		return 0, fmt.Errorf("GET_CONSUME_STATS from %s: %w", b.Master, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if withTps {
		d.ConsumeTPS += cs.ConsumeTps
	}
	for k, w := range cs.OffsetTable {
		q, err := parseQueueKey(k)
		if err != nil {
			return 0, fmt.Errorf("GET_CONSUME_STATS from %s: %w", b.Master, err)
		}
		if q.BrokerName == "" {
			q.BrokerName = b.Name
		}
		gq := GroupQueue{Topic: q.Topic, Broker: q.BrokerName, QueueID: q.QueueID, BrokerOffset: w.BrokerOffset,
			ConsumerOffset: max(w.ConsumerOffset, 0), LastTimestamp: w.LastTimestamp}
		gq.Lag = max(gq.BrokerOffset-gq.ConsumerOffset, 0)
		switch {
		case w.Inflight != nil:
			gq.Inflight = *w.Inflight
		case w.InflightAlt != nil:
			gq.Inflight = *w.InflightAlt
		case w.InflightCount != nil:
			gq.Inflight = *w.InflightCount
		case w.PullOffset > gq.ConsumerOffset:
			gq.Inflight = w.PullOffset - gq.ConsumerOffset
		}
		gq.Inflight = min(max(gq.Inflight, 0), gq.Lag)
		d.Queues = append(d.Queues, gq)
	}
	return len(cs.OffsetTable), nil
}

// fillMissingBrokers asks every answering broker that reported no queue of a topic the
// group consumes elsewhere for that topic explicitly (GET_CONSUME_STATS with topic): a broker
// where the group never committed an offset reports nothing on its own (as Apache's), but
// its messages wait for the group all the same (QA R7H-7).
func (a *Admin) fillMissingBrokers(ctx context.Context, group string, brokers []brokerGroup, failed map[string]error, d *GroupDetail) {
	topics := map[string]bool{}
	have := map[string]map[string]bool{}
	for _, q := range d.Queues {
		topics[q.Topic] = true
		if have[q.Broker] == nil {
			have[q.Broker] = map[string]bool{}
		}
		have[q.Broker][q.Topic] = true
	}
	type ask struct {
		b     brokerGroup
		topic string
	}
	var asks []ask
	for _, b := range brokers {
		if failed[b.Name] != nil {
			continue
		}
		for t := range topics {
			if !have[b.Name][t] {
				asks = append(asks, ask{b, t})
			}
		}
	}
	var mu sync.Mutex
	_ = parallel(ctx, a.cfg.Parallelism, asks, func(ctx context.Context, q ask) error {
		resp, err := a.invoke(ctx, q.b.Master, remoting.GetConsumeStats, map[string]string{"consumerGroup": group, "topic": q.topic}, nil)
		if err != nil {
			return nil // the topic is not on that broker, or it stopped answering
		}
		if _, err := addConsumeStats(resp.Body, q.b, d, &mu, false); err != nil {
			a.log.Debug("consume stats", "broker", q.b.Name, "err", err)
		}
		return nil
	})
}

// finishGroupDetail sorts and sums what describeGroupOn collected.
func (a *Admin) finishGroupDetail(d *GroupDetail, group string, found bool, clients map[string]GroupClient, subs map[string]GroupSubscription) (*GroupDetail, error) {
	if !found {
		return nil, &CodeError{Op: "GET_CONSUME_STATS", Addr: "every broker", Code: remoting.SubscriptionGroupNotExist, Remark: "group " + group + " not found"}
	}
	sort.Slice(d.Queues, func(i, j int) bool {
		x, y := d.Queues[i], d.Queues[j]
		if x.Topic != y.Topic {
			return x.Topic < y.Topic
		}
		if x.Broker != y.Broker {
			return x.Broker < y.Broker
		}
		return x.QueueID < y.QueueID
	})
	for _, q := range d.Queues {
		d.Lag += q.Lag
		d.Inflight += q.Inflight
	}
	for _, c := range clients {
		d.Clients = append(d.Clients, c)
	}
	sort.Slice(d.Clients, func(i, j int) bool { return d.Clients[i].ClientID < d.Clients[j].ClientID })
	for _, s := range subs {
		d.Subscriptions = append(d.Subscriptions, s)
	}
	sort.Slice(d.Subscriptions, func(i, j int) bool { return d.Subscriptions[i].Topic < d.Subscriptions[j].Topic })
	d.Online = len(d.Clients) > 0
	return d, nil
}

func anyString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return remoting.LanguageName(byte(x))
	default:
		return fmt.Sprint(x)
	}
}

// versionName renders a client version: RocketMQ ordinals as numbers, strings as is.
func versionName(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return remoting.VersionName(int32(x)) // the ordinal's name, as mqadmin prints it (V4_5_2)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// DeleteGroupResult reports where a group was deleted.
type DeleteGroupResult struct {
	Group   string   `json:"group"`
	Brokers []string `json:"brokers"`
}

// DeleteGroup deletes the group (and its offsets) from every master broker of the cluster
// with DELETE_SUBSCRIPTIONGROUP, then its %RETRY% and %DLQ% topics (as mqadmin
// deleteSubGroup does). A group no broker knows is ErrNotFound.
func (a *Admin) DeleteGroup(ctx context.Context, group, cluster string) (*DeleteGroupResult, error) {
	if message.IsReservedGroup(group) {
		return nil, fmt.Errorf("group %q is reserved", group)
	}
	brokers, err := a.masters(ctx, cluster)
	if err != nil {
		return nil, err
	}
	res := &DeleteGroupResult{Group: group}
	res.Brokers, err = a.deleteWhereHeld(ctx, brokers,
		func(ctx context.Context, b brokerGroup) (bool, error) {
			table, err := a.groupTable(ctx, b.Master)
			_, ok := table[group]
			return ok, err
		},
		func(ctx context.Context, b brokerGroup) error {
			_, err := a.invoke(ctx, b.Master, remoting.DeleteSubscriptionGroup, map[string]string{"groupName": group, "cleanOffset": "true", "removeOffset": "true"}, nil)
			return err
		})
	if err != nil {
		return nil, err
	}
	if len(res.Brokers) == 0 {
		return nil, &CodeError{Op: "DELETE_SUBSCRIPTIONGROUP", Addr: "every broker", Code: remoting.SubscriptionGroupNotExist, Remark: "group " + group + " not found"}
	}
	for _, t := range []string{message.RetryTopic(group), message.DLQTopic(group)} {
		if err := a.deleteTopicEverywhere(ctx, t, cluster, brokers); err != nil {
			return nil, fmt.Errorf("group deleted; deleting %s: %w", t, err)
		}
	}
	return res, nil
}

// ResetTarget says where ResetOffset moves a group.
type ResetTarget struct {
	Earliest bool      // the first retained message
	Latest   bool      // past the last message (skip the backlog)
	Time     time.Time // the first message stored at or after Time
}

func (t ResetTarget) validate() error {
	n := 0
	if t.Earliest {
		n++
	}
	if t.Latest {
		n++
	}
	if !t.Time.IsZero() {
		n++
	}
	if n != 1 {
		return errors.New("choose exactly one of earliest, latest or a time")
	}
	return nil
}

// timestamp is the INVOKE_BROKER_TO_RESET_OFFSET timestamp: 0 = earliest, -1 = latest
// (RocketMQ Broker2Client.resetOffset), else Unix ms.
func (t ResetTarget) timestamp() int64 {
	switch {
	case t.Earliest:
		return 0
	case t.Latest:
		return -1
	}
	return t.Time.UnixMilli()
}

// QueueReset is one queue's offset change.
type QueueReset struct {
	Topic     string `json:"topic"`
	Broker    string `json:"broker"`
	QueueID   int32  `json:"queueId"`
	OldOffset int64  `json:"oldOffset"` // -1 when the group had no offset
	NewOffset int64  `json:"newOffset"`
}

// ResetOffset moves the group's committed offsets on topic ("" = every topic the group has
// offsets for, retry topics excluded). It asks each broker with INVOKE_BROKER_TO_RESET_OFFSET
// (online clients are told to reset too); when the broker answers CONSUMER_NOT_ONLINE or does
// not support it, the offsets are computed (GET_MIN/MAX_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP)
// and committed directly with UPDATE_CONSUMER_OFFSET, so offline groups can be reset too.
func (a *Admin) ResetOffset(ctx context.Context, group, topic string, target ResetTarget) ([]QueueReset, error) {
	if err := target.validate(); err != nil {
		return nil, err
	}
	topics := []string{topic}
	if topic == "" {
		d, err := a.DescribeGroup(ctx, group)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		topics = topics[:0]
		for _, q := range d.Queues {
			if !seen[q.Topic] && !message.IsRetryTopic(q.Topic) && !message.IsDLQTopic(q.Topic) {
				seen[q.Topic] = true
				topics = append(topics, q.Topic)
			}
		}
		if len(topics) == 0 {
			return nil, fmt.Errorf("group %s has no offsets on any topic; name one with --topic", group)
		}
	}
	var out []QueueReset
	for _, t := range topics {
		rs, err := a.resetTopic(ctx, group, t, target)
		if err != nil {
			return out, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func (a *Admin) resetTopic(ctx context.Context, group, topic string, target ResetTarget) ([]QueueReset, error) {
	r, err := a.route(ctx, topic)
	if err != nil {
		return nil, err
	}
	masters := r.masters()
	type qref struct {
		broker, addr string
		qid          int32
	}
	var queues []qref
	for _, qd := range r.QueueDatas {
		for q := range qd.ReadQueueNums {
			queues = append(queues, qref{qd.BrokerName, masters[qd.BrokerName], q})
		}
	}
	var mu sync.Mutex
	out := make([]QueueReset, 0, len(queues))
	// Old offsets first (for the report).
	old := map[qref]int64{}
	_ = parallel(ctx, a.cfg.Parallelism, queues, func(ctx context.Context, q qref) error {
		off := int64(-1)
		resp, err := a.invoke(ctx, q.addr, remoting.QueryConsumerOffset, map[string]string{"consumerGroup": group, "topic": topic,
			"queueId": strconv.Itoa(int(q.qid)), "setZeroIfNotFound": "false", "bname": q.broker}, nil)
		if err == nil {
			off = resp.ExtInt64Or("offset", -1)
		}
		mu.Lock()
		old[q] = off
		mu.Unlock()
		return nil
	})
	// Per broker: the broker-side reset, else the direct commit.
	byBroker := map[string][]qref{}
	for _, q := range queues {
		byBroker[q.broker] = append(byBroker[q.broker], q)
	}
	names := make([]string, 0, len(byBroker))
	for n := range byBroker {
		names = append(names, n)
	}
	err = parallel(ctx, a.cfg.Parallelism, names, func(ctx context.Context, name string) error {
		qs := byBroker[name]
		addr := qs[0].addr
		resp, err := a.invoke(ctx, addr, remoting.InvokeBrokerToResetOffset, map[string]string{"topic": topic, "group": group,
			"timestamp": strconv.FormatInt(target.timestamp(), 10), "isForce": "true", "queueId": "-1"}, nil)
		if err == nil {
			var body struct {
				OffsetTable map[string]int64 `json:"offsetTable"`
			}
			if len(resp.Body) > 0 {
				if derr := decodeJSON(resp.Body, &body); derr != nil {
					return fmt.Errorf("INVOKE_BROKER_TO_RESET_OFFSET from %s: %w", addr, derr)
				}
			}
			if len(body.OffsetTable) > 0 {
				mu.Lock()
				defer mu.Unlock()
				for k, off := range body.OffsetTable {
					mq, err := parseQueueKey(k)
					if err != nil {
						return err
					}
					if mq.BrokerName == "" {
						mq.BrokerName = name
					}
					out = append(out, QueueReset{Topic: topic, Broker: mq.BrokerName, QueueID: mq.QueueID,
						OldOffset: old[qref{name, addr, mq.QueueID}], NewOffset: off})
				}
				return nil
			}
			// Success without a table: fall through and commit directly so the report is exact.
		} else {
			var ce *CodeError
			if !errors.As(err, &ce) || (ce.Code != remoting.ConsumerNotOnline && ce.Code != remoting.RequestCodeNotSupported) {
				return err
			}
		}
		return parallel(ctx, a.cfg.Parallelism, qs, func(ctx context.Context, q qref) error {
			off, err := a.targetOffset(ctx, q.addr, topic, q.broker, q.qid, target)
			if err != nil {
				return err
			}
			_, err = a.invoke(ctx, q.addr, remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": group, "topic": topic,
				"queueId": strconv.Itoa(int(q.qid)), "commitOffset": strconv.FormatInt(off, 10), "bname": q.broker}, nil)
			if err != nil {
				return err
			}
			mu.Lock()
			out = append(out, QueueReset{Topic: topic, Broker: q.broker, QueueID: q.qid, OldOffset: old[q], NewOffset: off})
			mu.Unlock()
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Broker != out[j].Broker {
			return out[i].Broker < out[j].Broker
		}
		return out[i].QueueID < out[j].QueueID
	})
	return out, err
}

// targetOffset computes the queue offset a reset target names.
func (a *Admin) targetOffset(ctx context.Context, addr, topic, broker string, qid int32, t ResetTarget) (int64, error) {
	ext := map[string]string{"topic": topic, "queueId": strconv.Itoa(int(qid)), "bname": broker}
	switch {
	case t.Earliest:
		return a.offset(ctx, addr, remoting.GetMinOffset, ext)
	case t.Latest:
		return a.offset(ctx, addr, remoting.GetMaxOffset, ext)
	}
	ext["timestamp"] = strconv.FormatInt(t.Time.UnixMilli(), 10)
	return a.offset(ctx, addr, remoting.SearchOffsetByTimestamp, ext)
}

// partialFailure decides what per-broker failures mean for a cluster-wide read over the
// brokers named: every one failed -> the first error; some failed -> a warning naming them
// (the caller shows what the others answered, as mqadmin does); none -> nil.
func partialFailure(a *Admin, names []string, failed map[string]error, op string) error {
	if len(failed) == 0 {
		return nil
	}
	if len(failed) == len(names) {
		for _, n := range names {
			if err := failed[n]; err != nil {
				return err
			}
		}
	}
	for name, err := range failed {
		a.log.Warn(op+": a broker did not answer; its part is missing", "broker", name, "err", err)
	}
	return nil
}

// brokerNames lists the names of brokers.
func brokerNames(brokers []brokerGroup) []string {
	names := make([]string, len(brokers))
	for i, b := range brokers {
		names[i] = b.Name
	}
	return names
}
