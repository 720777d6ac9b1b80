package broker

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Permission bits of a topic or broker (RocketMQ PermName).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
)

// Topic names the core creates or treats specially (RocketMQ TopicValidator / MixAll).
const (
	TopicDefault         = "TBW102"
	TopicSelfTest        = "SELF_TEST_TOPIC"
	TopicOffsetMoved     = "OFFSET_MOVED_EVENT"
	RetryGroupTopicPref  = "%RETRY%"
	DLQGroupTopicPrefix  = "%DLQ%"
	TopicFilterSingleTag = "SINGLE_TAG"
)

// TopicConfig is one topic on this broker, JSON-compatible with RocketMQ's TopicConfig.
type TopicConfig struct {
	TopicName       string            `json:"topicName"`
	ReadQueueNums   int32             `json:"readQueueNums"`
	WriteQueueNums  int32             `json:"writeQueueNums"`
	Perm            int32             `json:"perm"`
	TopicFilterType string            `json:"topicFilterType"`
	TopicSysFlag    int32             `json:"topicSysFlag"`
	Order           bool              `json:"order"`
	Attributes      map[string]string `json:"attributes"`
}

// Readable reports whether the READ bit is set.
func (t TopicConfig) Readable() bool { return t.Perm&PermRead != 0 }

// Writable reports whether the WRITE bit is set.
func (t TopicConfig) Writable() bool { return t.Perm&PermWrite != 0 }

// QueueNums is max(read, write): the number of queue ids that exist.
func (t TopicConfig) QueueNums() int32 { return max(t.ReadQueueNums, t.WriteQueueNums) }

// MessageType returns the message.type attribute (NORMAL when absent).
func (t TopicConfig) MessageType() string {
	if v := t.Attributes["message.type"]; v != "" {
		return v
	}
	return "NORMAL"
}

func (t TopicConfig) clone() TopicConfig {
	t.Attributes = maps.Clone(t.Attributes)
	if t.Attributes == nil {
		t.Attributes = map[string]string{}
	}
	return t
}

// NewTopicConfig returns a read-write SINGLE_TAG topic with n read and write queues.
func NewTopicConfig(name string, n int32) TopicConfig {
	return TopicConfig{TopicName: name, ReadQueueNums: n, WriteQueueNums: n, Perm: PermRead | PermWrite,
		TopicFilterType: TopicFilterSingleTag, Attributes: map[string]string{}}
}

// topicsJSON is the topics.json layout (RocketMQ TopicConfigSerializeWrapper).
type topicsJSON struct {
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	DataVersion      DataVersion            `json:"dataVersion"`
}

// TopicTable is the broker's topic table, persisted to config/topics.json on every change.
// Safe for concurrent use. Lock order: mu is a leaf with respect to the other tables;
// persistMu serialises file writes and is taken before mu (never while holding mu).
type TopicTable struct {
	path      string
	onChange  func(topics []string)
	persistMu sync.Mutex

	mu sync.RWMutex
	m  map[string]TopicConfig
	dv DataVersion
}

// loadTopicTable reads <dir>/topics.json (absent = empty table). onChange, if set, is called
// after each change, outside the lock.
func loadTopicTable(dir string, onChange func(topics []string)) (*TopicTable, error) {
	t := &TopicTable{path: filepath.Join(dir, topicsFile), onChange: onChange, m: map[string]TopicConfig{}}
	var f topicsJSON
	if _, err := readJSON(t.path, &f); err != nil {
		return nil, err
	}
	for name, tc := range f.TopicConfigTable {
		if tc.TopicName == "" {
			tc.TopicName = name
		}
		t.m[name] = tc.clone()
	}
	t.dv = f.DataVersion
	return t, nil
}

// Get returns a copy of the topic's config.
func (t *TopicTable) Get(name string) (TopicConfig, bool) {
	t.mu.RLock()
	tc, ok := t.m[name]
	t.mu.RUnlock()
	if !ok {
		return TopicConfig{}, false
	}
	return tc.clone(), true
}

// peek is Get without the copy of Attributes, for read-only use on hot paths: entries are
// replaced, never modified in place, so the shared map is never written.
func (t *TopicTable) peek(name string) (TopicConfig, bool) {
	t.mu.RLock()
	tc, ok := t.m[name]
	t.mu.RUnlock()
	return tc, ok
}

// Update creates or replaces a topic and persists the table.
func (t *TopicTable) Update(tc TopicConfig) error {
	if tc.TopicName == "" {
		return fmt.Errorf("%w: empty topic name", ErrInvalidParameter)
	}
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = TopicFilterSingleTag
	}
	t.mu.Lock()
	t.m[tc.TopicName] = tc.clone()
	t.dv = t.dv.next()
	t.mu.Unlock()
	return t.changed(tc.TopicName)
}

// Ensure creates tc when no topic of that name exists; it returns the topic now in the table
// and whether it was created.
func (t *TopicTable) Ensure(tc TopicConfig) (TopicConfig, bool, error) {
	if cur, ok := t.Get(tc.TopicName); ok {
		return cur, false, nil
	}
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = TopicFilterSingleTag
	}
	t.mu.Lock()
	if cur, ok := t.m[tc.TopicName]; ok {
		t.mu.Unlock()
		return cur.clone(), false, nil
	}
	t.m[tc.TopicName] = tc.clone()
	t.dv = t.dv.next()
	t.mu.Unlock()
	return tc.clone(), true, t.changed(tc.TopicName)
}

// Touch bumps the data version without changing a topic, so that registrations and the
// caches keyed by the version see the change of something the table's answers depend on
// (brokerPermission).
func (t *TopicTable) Touch() error {
	t.mu.Lock()
	t.dv = t.dv.next()
	t.mu.Unlock()
	return t.changed()
}

// Delete removes a topic; it reports whether it existed.
func (t *TopicTable) Delete(name string) (bool, error) {
	t.mu.Lock()
	_, ok := t.m[name]
	if ok {
		delete(t.m, name)
		t.dv = t.dv.next()
	}
	t.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, t.changed()
}

// All returns copies of every topic, sorted by name.
func (t *TopicTable) All() []TopicConfig {
	t.mu.RLock()
	out := make([]TopicConfig, 0, len(t.m))
	for _, tc := range t.m {
		out = append(out, tc.clone())
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].TopicName < out[j].TopicName })
	return out
}

// Names returns every topic name, sorted.
func (t *TopicTable) Names() []string {
	t.mu.RLock()
	out := slices.Collect(maps.Keys(t.m))
	t.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Snapshot returns a copy of the table and its data version, taken atomically.
func (t *TopicTable) Snapshot() (map[string]TopicConfig, DataVersion) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m := make(map[string]TopicConfig, len(t.m))
	for k, v := range t.m {
		m[k] = v.clone()
	}
	return m, t.dv
}

// DataVersion returns the table's current data version.
func (t *TopicTable) DataVersion() DataVersion {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.dv
}

// changed persists the table and reports the change: the topics created or updated, or
// none for a change of the whole table (a deletion, a version bump).
func (t *TopicTable) changed(topics ...string) error {
	err := t.persist()
	if err != nil {
		err = fmt.Errorf("%w: %w", errMetadataPersist, err)
	}
	if t.onChange != nil {
		t.onChange(topics)
	}
	return err
}

// persist writes the current table. Concurrent callers are serialised, and each writes a
// snapshot taken after it got the persist lock, so the last write holds the newest table.
func (t *TopicTable) persist() error {
	t.persistMu.Lock()
	defer t.persistMu.Unlock()
	m, dv := t.Snapshot()
	return writeJSONAtomic(t.path, topicsJSON{TopicConfigTable: m, DataVersion: dv})
}

// ParseTopicAttributes parses UPDATE_AND_CREATE_TOPIC's attributes ext field ("+k=v,+k2=v2";
// "-k" deletes) onto base, returning the new map.
func ParseTopicAttributes(base map[string]string, s string) (map[string]string, error) {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	s = strings.TrimSpace(s)
	if s == "" || s == "{}" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		switch item[0] {
		case '+':
			k, v, ok := strings.Cut(item[1:], "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%w: attribute %q: want +key=value", ErrInvalidParameter, item)
			}
			out[k] = v
		case '-':
			if len(item) == 1 {
				return nil, fmt.Errorf("%w: attribute %q: want -key", ErrInvalidParameter, item)
			}
			delete(out, item[1:])
		default:
			return nil, fmt.Errorf("%w: attribute %q must start with + or -", ErrInvalidParameter, item)
		}
	}
	if mt, ok := out["message.type"]; ok {
		switch mt {
		case "NORMAL", "FIFO", "DELAY", "TRANSACTION", "MIXED":
		default:
			return nil, fmt.Errorf("%w: message.type %q (want NORMAL|FIFO|DELAY|TRANSACTION|MIXED)", ErrInvalidParameter, mt)
		}
	}
	return out, nil
}
