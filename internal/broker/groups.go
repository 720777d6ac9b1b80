package broker

import (
	"fmt"
	"maps"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// GroupConfig is a subscription (consumer) group, JSON-compatible with RocketMQ's
// SubscriptionGroupConfig.
type GroupConfig struct {
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
	Attributes                     map[string]string `json:"attributes"`
}

// DefaultRetryMaxTimes is SubscriptionGroupConfig.retryMaxTimes' default.
const DefaultRetryMaxTimes = 16

// NewGroupConfig returns a group with RocketMQ's defaults: consume and broadcast enabled,
// 1 retry queue, 16 retries, notification of membership changes on.
func NewGroupConfig(name string) GroupConfig {
	return GroupConfig{GroupName: name, ConsumeEnable: true, ConsumeBroadcastEnable: true,
		RetryQueueNums: 1, RetryMaxTimes: DefaultRetryMaxTimes, WhichBrokerWhenConsumeSlowly: 1,
		NotifyConsumerIdsChangedEnable: true, ConsumeTimeoutMinute: 15, Attributes: map[string]string{}}
}

func (g GroupConfig) clone() GroupConfig {
	g.Attributes = maps.Clone(g.Attributes)
	if g.Attributes == nil {
		g.Attributes = map[string]string{}
	}
	return g
}

type groupsJSON struct {
	SubscriptionGroupTable map[string]GroupConfig `json:"subscriptionGroupTable"`
	DataVersion            DataVersion            `json:"dataVersion"`
}

// GroupTable is the subscription-group table, persisted to config/subscriptionGroup.json on
// every change. Safe for concurrent use; same lock discipline as TopicTable.
type GroupTable struct {
	path       string
	autoCreate atomic.Bool
	persistMu  sync.Mutex

	mu sync.RWMutex
	m  map[string]GroupConfig
	dv DataVersion
}

func loadGroupTable(dir string, autoCreate bool) (*GroupTable, error) {
	g := &GroupTable{path: filepath.Join(dir, groupsFile), m: map[string]GroupConfig{}}
	g.autoCreate.Store(autoCreate)
	var f groupsJSON
	if _, err := readJSON(g.path, &f); err != nil {
		return nil, err
	}
	for name, gc := range f.SubscriptionGroupTable {
		if gc.GroupName == "" {
			gc.GroupName = name
		}
		g.m[name] = gc.clone()
	}
	g.dv = f.DataVersion
	return g, nil
}

// SetAutoCreate switches GetOrCreate's auto-creation (autoCreateSubscriptionGroup).
func (g *GroupTable) SetAutoCreate(on bool) { g.autoCreate.Store(on) }

// Get returns a copy of the group's config.
func (g *GroupTable) Get(name string) (GroupConfig, bool) {
	g.mu.RLock()
	gc, ok := g.m[name]
	g.mu.RUnlock()
	if !ok {
		return GroupConfig{}, false
	}
	return gc.clone(), true
}

// GetOrCreate returns the group, creating it with defaults when absent and
// autoCreateSubscriptionGroup is on; otherwise (or when the name breaks the naming rules) an
// unknown group is ErrGroupNotExist.
func (g *GroupTable) GetOrCreate(name string) (GroupConfig, bool, error) {
	if gc, ok := g.Get(name); ok {
		return gc, false, nil
	}
	if !g.autoCreate.Load() {
		return GroupConfig{}, false, fmt.Errorf("%w: subscription group [%s] does not exist", ErrGroupNotExist, name)
	}
	if err := message.ValidateGroup(name); err != nil {
		return GroupConfig{}, false, fmt.Errorf("%w: %w", ErrGroupNotExist, err)
	}
	gc := NewGroupConfig(name)
	g.mu.Lock()
	if cur, ok := g.m[name]; ok {
		g.mu.Unlock()
		return cur.clone(), false, nil
	}
	g.m[name] = gc
	g.dv = g.dv.next()
	g.mu.Unlock()
	return gc.clone(), true, g.persist()
}

// Update creates or replaces a group and persists the table.
func (g *GroupTable) Update(gc GroupConfig) error {
	if gc.GroupName == "" {
		return fmt.Errorf("%w: empty group name", ErrInvalidParameter)
	}
	g.mu.Lock()
	g.m[gc.GroupName] = gc.clone()
	g.dv = g.dv.next()
	g.mu.Unlock()
	return g.persist()
}

// Delete removes a group; it reports whether it existed.
func (g *GroupTable) Delete(name string) (bool, error) {
	g.mu.Lock()
	_, ok := g.m[name]
	if ok {
		delete(g.m, name)
		g.dv = g.dv.next()
	}
	g.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, g.persist()
}

// All returns copies of every group, sorted by name.
func (g *GroupTable) All() []GroupConfig {
	g.mu.RLock()
	out := make([]GroupConfig, 0, len(g.m))
	for _, gc := range g.m {
		out = append(out, gc.clone())
	}
	g.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].GroupName < out[j].GroupName })
	return out
}

// Snapshot returns a copy of the table and its data version.
func (g *GroupTable) Snapshot() (map[string]GroupConfig, DataVersion) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	m := make(map[string]GroupConfig, len(g.m))
	for k, v := range g.m {
		m[k] = v.clone()
	}
	return m, g.dv
}

func (g *GroupTable) persist() error {
	g.persistMu.Lock()
	defer g.persistMu.Unlock()
	m, dv := g.Snapshot()
	return writeJSONAtomic(g.path, groupsJSON{SubscriptionGroupTable: m, DataVersion: dv})
}
