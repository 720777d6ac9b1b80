package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Consume types and message models as RocketMQ spells them in heartbeats.
const (
	ConsumeActively  = "CONSUME_ACTIVELY"  // pull consumer
	ConsumePassively = "CONSUME_PASSIVELY" // push consumer
	ConsumePop       = "CONSUME_POP"
	ModelClustering  = "CLUSTERING"
	ModelBroadcast   = "BROADCASTING"
)

// ClientChannel is one registered client of a group: a remoting connection, or (Conn nil)
// an in-process client such as the local-mode proxy.
type ClientChannel struct {
	ClientID   string
	Conn       *remoting.Conn // nil for in-process clients
	RemoteAddr string
	Language   string
	Version    int32
	LastUpdate time.Time
}

// CheckRequest is a CHECK_TRANSACTION_STATE to deliver to a producer of the half message's
// group. Record is the stored half record (it carries property PGROUP); when nil, Message is
// encoded instead.
type CheckRequest struct {
	TranStateTableOffset int64
	CommitLogOffset      int64
	MsgID                string
	TransactionID        string
	OffsetMsgID          string
	Message              *message.Ext
	Record               []byte
}

// CheckSink receives transaction checks for an in-process producer (the local-mode proxy).
// CheckTransaction must not block for long; its answer arrives later as END_TRANSACTION.
type CheckSink interface {
	CheckTransaction(ctx context.Context, req CheckRequest) error
}

// ProducerChannel is one producer of a group able to answer transaction checks.
type ProducerChannel struct {
	Group string
	ClientChannel
	sink CheckSink
}

// ErrNoChannel means a producer channel has neither a connection nor a sink.
var ErrNoChannel = errors.New("broker: producer channel has no connection")

// CheckTransactionState delivers req to this producer: a oneway CHECK_TRANSACTION_STATE
// (39) on its connection, or a call of its in-process sink.
func (p ProducerChannel) CheckTransactionState(ctx context.Context, req CheckRequest) error {
	if p.sink != nil {
		return p.sink.CheckTransaction(ctx, req)
	}
	if p.Conn == nil {
		return ErrNoChannel
	}
	body := req.Record
	if body == nil && req.Message != nil {
		var err error
		if body, err = message.AppendRecord(nil, req.Message); err != nil {
			return fmt.Errorf("broker: encode half message: %w", err)
		}
	}
	cmd := remoting.NewRequest(remoting.CheckTransactionState, map[string]string{
		"tranStateTableOffset": strconv.FormatInt(req.TranStateTableOffset, 10),
		"commitLogOffset":      strconv.FormatInt(req.CommitLogOffset, 10),
		"msgId":                req.MsgID,
		"transactionId":        req.TransactionID,
		"offsetMsgId":          req.OffsetMsgID,
	}, body)
	return p.Conn.InvokeOneway(cmd)
}

// SubscriptionData is one topic subscription of a consumer group (heartbeat
// subscriptionDataSet element).
type SubscriptionData struct {
	Topic           string   `json:"topic"`
	SubString       string   `json:"subString"`
	Tags            []string `json:"tagsSet"`
	Codes           []int64  `json:"codeSet"`
	SubVersion      int64    `json:"subVersion"`
	ExpressionType  string   `json:"expressionType"`
	ClassFilterMode bool     `json:"classFilterMode"`
}

// ConsumerGroupInfo is a consumer group's live registration.
type ConsumerGroupInfo struct {
	Group            string
	ConsumeType      string
	MessageModel     string
	ConsumeFromWhere string
	Subscriptions    map[string]SubscriptionData
	Channels         []ClientChannel // sorted by client id
	LastUpdate       time.Time
}

type consumerGroup struct {
	consumeType, model, from string
	subs                     map[string]SubscriptionData
	channels                 map[string]*ClientChannel
	lastUpdate               time.Time
}

type producerEntry struct {
	ch   ClientChannel
	sink CheckSink
}

// ClientManager tracks producer and consumer registrations from heartbeats (and in-process
// sinks). A registration lives while its client heartbeats (ChannelExpiredTimeout) and its
// connection is open. mu is a leaf lock; callbacks run outside it.
type ClientManager struct {
	// onConsumersChanged is called (outside the lock) with a group and its remaining
	// channels when the group's membership changed.
	onConsumersChanged func(group string, channels []ClientChannel)
	// logger, when set, gets a warning for each subscription change of a group (nil: none).
	logger *slog.Logger

	mu        sync.RWMutex
	producers map[string]map[string]*producerEntry // group -> client id -> entry
	consumers map[string]*consumerGroup
}

func newClientManager(onConsumersChanged func(string, []ClientChannel)) *ClientManager {
	return &ClientManager{onConsumersChanged: onConsumersChanged,
		producers: map[string]map[string]*producerEntry{}, consumers: map[string]*consumerGroup{}}
}

// RegisterProducer adds or refreshes a producer of group.
func (m *ClientManager) RegisterProducer(group string, ch ClientChannel) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.producers[group]
	if g == nil {
		g = map[string]*producerEntry{}
		m.producers[group] = g
	}
	if e, ok := g[ch.ClientID]; ok && e.sink == nil {
		e.ch = ch
		return
	}
	g[ch.ClientID] = &producerEntry{ch: ch}
}

// RegisterProducerSink registers an in-process producer of group (local-mode proxy) that
// receives transaction checks through sink. ch describes the client (id, language, version,
// address); LastUpdate is set now. It never expires; remove it with UnregisterProducer.
func (m *ClientManager) RegisterProducerSink(group string, ch ClientChannel, sink CheckSink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.producers[group]
	if g == nil {
		g = map[string]*producerEntry{}
		m.producers[group] = g
	}
	if ch.Language == "" {
		ch.Language = remoting.LanguageGo
	}
	if ch.Version == 0 {
		ch.Version = remoting.Version
	}
	ch.LastUpdate = time.Now()
	g[ch.ClientID] = &producerEntry{ch: ch, sink: sink}
}

// UnregisterProducer removes one producer of group.
func (m *ClientManager) UnregisterProducer(group, clientID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.producers[group]; g != nil {
		delete(g, clientID)
		if len(g) == 0 {
			delete(m.producers, group)
		}
	}
}

// ProducerChannels returns the producers of group, most recently seen first.
func (m *ClientManager) ProducerChannels(group string) []ProducerChannel {
	m.mu.RLock()
	g := m.producers[group]
	out := make([]ProducerChannel, 0, len(g))
	for _, e := range g {
		out = append(out, ProducerChannel{Group: group, ClientChannel: e.ch, sink: e.sink})
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].LastUpdate.After(out[j].LastUpdate) })
	return out
}

// ProducerGroups returns the names of groups with live producers, sorted.
func (m *ClientManager) ProducerGroups() []string {
	m.mu.RLock()
	out := slices.Collect(maps.Keys(m.producers))
	m.mu.RUnlock()
	sort.Strings(out)
	return out
}

// ProducerByClientID returns the connection-backed producer channel of client id, in any
// group (the requester of a request-reply exchange).
func (m *ClientManager) ProducerByClientID(id string) (ClientChannel, bool) {
	if id == "" {
		return ClientChannel{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, g := range m.producers {
		if e, ok := g[id]; ok && e.ch.Conn != nil && !e.ch.Conn.Closed() {
			return e.ch, true
		}
	}
	return ClientChannel{}, false
}

// RegisterConsumer adds or refreshes a consumer of group with its subscriptions. It reports
// whether the group's membership changed (a new client) and calls onConsumersChanged then.
func (m *ClientManager) RegisterConsumer(group, consumeType, model, from string, subs []SubscriptionData, ch ClientChannel) bool {
	m.mu.Lock()
	g := m.consumers[group]
	if g == nil {
		g = &consumerGroup{channels: map[string]*ClientChannel{}, subs: map[string]SubscriptionData{}}
		m.consumers[group] = g
	}
	g.consumeType, g.model, g.from = consumeType, model, from
	g.lastUpdate = ch.LastUpdate
	newSubs := make(map[string]SubscriptionData, len(subs))
	for _, s := range subs {
		newSubs[s.Topic] = s
	}
	// As Apache's ConsumerGroupInfo.updateSubscription: a topic added to or removed from the
	// group's subscriptions is logged and the group's clients are told to rebalance at once
	// (QA R10R-2: consumers of one group with different subscriptions flip the table).
	var added, removed []string
	if len(g.channels) > 0 {
		for t := range newSubs {
			if _, ok := g.subs[t]; !ok {
				added = append(added, t)
			}
		}
		for t := range g.subs {
			if _, ok := newSubs[t]; !ok {
				removed = append(removed, t)
			}
		}
	}
	g.subs = newSubs
	_, existed := g.channels[ch.ClientID]
	c := ch
	g.channels[ch.ClientID] = &c
	changed := !existed || len(added) > 0 || len(removed) > 0
	var chans []ClientChannel
	if changed {
		chans = g.channelList()
	}
	m.mu.Unlock()
	if m.logger != nil && (len(added) > 0 || len(removed) > 0) {
		m.logger.Warn("subscription changed", "group", group, "client", ch.ClientID, "addTopics", added, "removeTopics", removed)
	}
	if changed && m.onConsumersChanged != nil {
		m.onConsumersChanged(group, chans)
	}
	return !existed
}

// UnregisterConsumer removes one consumer of group (UNREGISTER_CLIENT).
func (m *ClientManager) UnregisterConsumer(group, clientID string) bool {
	m.mu.Lock()
	g := m.consumers[group]
	if g == nil {
		m.mu.Unlock()
		return false
	}
	if _, ok := g.channels[clientID]; !ok {
		m.mu.Unlock()
		return false
	}
	delete(g.channels, clientID)
	chans := g.channelList()
	if len(g.channels) == 0 {
		delete(m.consumers, group)
	}
	m.mu.Unlock()
	if m.onConsumersChanged != nil {
		m.onConsumersChanged(group, chans)
	}
	return true
}

func (g *consumerGroup) channelList() []ClientChannel {
	out := make([]ClientChannel, 0, len(g.channels))
	for _, c := range g.channels {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// ConsumerIDs returns the client ids of group's consumers, sorted.
func (m *ClientManager) ConsumerIDs(group string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return nil
	}
	out := slices.Collect(maps.Keys(g.channels))
	sort.Strings(out)
	return out
}

// ConsumerGroup returns a snapshot of group's registration.
func (m *ClientManager) ConsumerGroup(group string) (ConsumerGroupInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return ConsumerGroupInfo{}, false
	}
	return ConsumerGroupInfo{Group: group, ConsumeType: g.consumeType, MessageModel: g.model,
		ConsumeFromWhere: g.from, Subscriptions: maps.Clone(g.subs), Channels: g.channelList(),
		LastUpdate: g.lastUpdate}, true
}

// ConsumerGroups returns the names of groups with live consumers, sorted.
func (m *ClientManager) ConsumerGroups() []string {
	m.mu.RLock()
	out := slices.Collect(maps.Keys(m.consumers))
	m.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Subscription returns group's live subscription to topic.
func (m *ClientManager) Subscription(group, topic string) (SubscriptionData, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return SubscriptionData{}, false
	}
	s, ok := g.subs[topic]
	return s, ok
}

// GroupsSubscribing returns the live groups subscribed to topic, sorted.
func (m *ClientManager) GroupsSubscribing(topic string) []string {
	var out []string
	m.mu.RLock()
	for name, g := range m.consumers {
		if _, ok := g.subs[topic]; ok {
			out = append(out, name)
		}
	}
	m.mu.RUnlock()
	sort.Strings(out)
	return out
}

// removeWhere drops every channel matching drop; it returns the consumer groups whose
// membership changed with their remaining channels.
func (m *ClientManager) removeWhere(drop func(*ClientChannel) bool) map[string][]ClientChannel {
	changed := map[string][]ClientChannel{}
	m.mu.Lock()
	for group, g := range m.producers {
		for id, e := range g {
			if e.sink == nil && drop(&e.ch) {
				delete(g, id)
			}
		}
		if len(g) == 0 {
			delete(m.producers, group)
		}
	}
	for group, g := range m.consumers {
		n := len(g.channels)
		for id, c := range g.channels {
			if drop(c) {
				delete(g.channels, id)
			}
		}
		if len(g.channels) != n {
			changed[group] = g.channelList()
		}
		if len(g.channels) == 0 {
			delete(m.consumers, group)
		}
	}
	m.mu.Unlock()
	if m.onConsumersChanged != nil {
		for group, chans := range changed {
			m.onConsumersChanged(group, chans)
		}
	}
	return changed
}

// ConnClosed removes every registration made over conn.
func (m *ClientManager) ConnClosed(conn *remoting.Conn) {
	m.removeWhere(func(c *ClientChannel) bool { return c.Conn == conn })
}

// Expire removes registrations not refreshed since before now-timeout (in-process sinks
// excepted); it returns the number of changed consumer groups.
func (m *ClientManager) Expire(now time.Time, timeout time.Duration) int {
	limit := now.Add(-timeout)
	return len(m.removeWhere(func(c *ClientChannel) bool { return c.LastUpdate.Before(limit) }))
}

// heartbeatData is the HEART_BEAT body (RocketMQ HeartbeatData).
type heartbeatData struct {
	ClientID        string `json:"clientID"`
	ProducerDataSet []struct {
		GroupName string `json:"groupName"`
	} `json:"producerDataSet"`
	ConsumerDataSet []struct {
		GroupName           string            `json:"groupName"`
		ConsumeType         string            `json:"consumeType"`
		MessageModel        string            `json:"messageModel"`
		ConsumeFromWhere    string            `json:"consumeFromWhere"`
		SubscriptionDataSet []json.RawMessage `json:"subscriptionDataSet"`
		UnitMode            bool              `json:"unitMode"`
	} `json:"consumerDataSet"`
}

// rawSubscription accepts codeSet as numbers (Java) or strings (go2).
type rawSubscription struct {
	Topic           string            `json:"topic"`
	SubString       string            `json:"subString"`
	Tags            []string          `json:"tagsSet"`
	Codes           []json.RawMessage `json:"codeSet"`
	SubVersion      int64             `json:"subVersion"`
	ExpressionType  string            `json:"expressionType"`
	ClassFilterMode bool              `json:"classFilterMode"`
}

func decodeSubscription(raw json.RawMessage) (SubscriptionData, error) {
	var r rawSubscription
	if err := json.Unmarshal(raw, &r); err != nil {
		return SubscriptionData{}, err
	}
	s := SubscriptionData{Topic: r.Topic, SubString: r.SubString, Tags: r.Tags, SubVersion: r.SubVersion,
		ExpressionType: r.ExpressionType, ClassFilterMode: r.ClassFilterMode}
	for _, c := range r.Codes {
		v := strings.Trim(string(c), `"`)
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			s.Codes = append(s.Codes, n)
		}
	}
	if s.ExpressionType == "" {
		s.ExpressionType = "TAG"
	}
	return s, nil
}
