package broker

import (
	"maps"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// offsetKeySep joins topic and group in consumerOffset.json keys ("topic@group"); neither
// may contain it (name validation).
const offsetKeySep = "@"

type offsetsJSON struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
}

// OffsetTable holds committed consumer offsets per (group, topic, queue). Commits are in
// memory; the broker persists the table to config/consumerOffset.json every
// FlushConsumerOffsetInterval and at shutdown (Persist). Safe for concurrent use; mu is a
// leaf lock, persistMu serialises file writes and is never taken while holding mu.
type OffsetTable struct {
	path      string
	dirty     dirtyFlag
	persistMu sync.Mutex

	mu sync.RWMutex
	m  map[string]map[int32]int64 // "topic@group" -> queue id -> next offset to consume
	// resets counts the admin resets of each queue (Reset), in memory: the pop service
	// adopts a committed offset only when this moved, never because a consumer committed
	// (QA R9N-1).
	resets map[string]map[int32]uint64
}

func loadOffsetTable(dir string) (*OffsetTable, error) {
	o := &OffsetTable{path: filepath.Join(dir, consumerOffFile), m: map[string]map[int32]int64{}, resets: map[string]map[int32]uint64{}}
	var f offsetsJSON
	if _, err := readJSON(o.path, &f); err != nil {
		return nil, err
	}
	for k, v := range f.OffsetTable {
		if v != nil {
			o.m[k] = v
		}
	}
	return o, nil
}

func offsetKey(group, topic string) string { return topic + offsetKeySep + group }

// Query returns the committed offset of a queue and whether one exists.
func (o *OffsetTable) Query(group, topic string, qid int32) (int64, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	off, ok := o.m[offsetKey(group, topic)][qid]
	return off, ok
}

// QueryAll returns a copy of every committed offset of (group, topic).
func (o *OffsetTable) QueryAll(group, topic string) map[int32]int64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return maps.Clone(o.m[offsetKey(group, topic)])
}

// Commit records off as the next offset group will consume from (topic, qid). Negative
// offsets are ignored.
func (o *OffsetTable) Commit(group, topic string, qid int32, off int64) {
	if off < 0 {
		return
	}
	k := offsetKey(group, topic)
	o.mu.Lock()
	q := o.m[k]
	if q == nil {
		q = make(map[int32]int64, 8)
		o.m[k] = q
	}
	if cur, ok := q[qid]; !ok || cur != off {
		q[qid] = off
		o.dirty.mark()
	}
	o.mu.Unlock()
}

// Reset replaces every committed offset of (group, topic) with offsets (admin reset) and
// moves the reset generation of each queue in offsets.
func (o *OffsetTable) Reset(group, topic string, offsets map[int32]int64) {
	k := offsetKey(group, topic)
	o.mu.Lock()
	o.m[k] = maps.Clone(offsets)
	g := o.resets[k]
	if g == nil {
		g = make(map[int32]uint64, len(offsets))
		o.resets[k] = g
	}
	for q := range offsets {
		g[q]++
	}
	o.dirty.mark()
	o.mu.Unlock()
}

// ResetGeneration changes each time an admin Reset sets the offset of (group, topic, qid);
// consumers' commits never change it. It starts at 0 in each process.
func (o *OffsetTable) ResetGeneration(group, topic string, qid int32) uint64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.resets[offsetKey(group, topic)][qid]
}

// DeleteGroup forgets every offset of group.
func (o *OffsetTable) DeleteGroup(group string) {
	o.mu.Lock()
	for k := range o.m {
		if _, g, _ := strings.Cut(k, offsetKeySep); g == group {
			delete(o.m, k)
			o.dirty.mark()
		}
	}
	o.mu.Unlock()
}

// DeleteTopic forgets every offset on topic.
func (o *OffsetTable) DeleteTopic(topic string) {
	o.mu.Lock()
	for k := range o.m {
		if t, _, _ := strings.Cut(k, offsetKeySep); t == topic {
			delete(o.m, k)
			o.dirty.mark()
		}
	}
	o.mu.Unlock()
}

// GroupsOf returns the groups with offsets on topic, sorted.
func (o *OffsetTable) GroupsOf(topic string) []string {
	var out []string
	o.mu.RLock()
	for k := range o.m {
		if t, g, _ := strings.Cut(k, offsetKeySep); t == topic {
			out = append(out, g)
		}
	}
	o.mu.RUnlock()
	sort.Strings(out)
	return out
}

// TopicsOf returns the topics group has offsets on, sorted.
func (o *OffsetTable) TopicsOf(group string) []string {
	var out []string
	o.mu.RLock()
	for k := range o.m {
		if t, g, _ := strings.Cut(k, offsetKeySep); g == group {
			out = append(out, t)
		}
	}
	o.mu.RUnlock()
	sort.Strings(out)
	return out
}

// snapshot returns a deep copy of the table.
func (o *OffsetTable) snapshot() map[string]map[int32]int64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	snap := make(map[string]map[int32]int64, len(o.m))
	for k, v := range o.m {
		snap[k] = maps.Clone(v)
	}
	return snap
}

// Persist writes the table when it changed since the last successful write.
func (o *OffsetTable) Persist() error {
	o.persistMu.Lock()
	defer o.persistMu.Unlock()
	mark, dirty := o.dirty.begin()
	if !dirty {
		return nil
	}
	if err := writeJSONAtomic(o.path, offsetsJSON{OffsetTable: o.snapshot()}); err != nil {
		return err
	}
	o.dirty.done(mark)
	return nil
}
