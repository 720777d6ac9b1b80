package namesrv

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// kvStore is the NameServer's namespaced key/value configuration (RocketMQ KVConfigManager).
// When path is set every change is persisted atomically (temp file, fsync, rename, fsync
// dir) as {"configTable":{namespace:{key:value}}}, RocketMQ's kvConfig.json layout.
type kvStore struct {
	mu    sync.RWMutex
	path  string
	table map[string]map[string]string
	gen   atomic.Uint64 // bumped on every change
}

func openKV(path string) (*kvStore, error) {
	kv := &kvStore{path: path, table: make(map[string]map[string]string)}
	if path == "" {
		return kv, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return kv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("namesrv: read kv config: %w", err)
	}
	var w struct {
		ConfigTable map[string]map[string]string `json:"configTable"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("namesrv: parse kv config %s: %w", path, err)
	}
	for ns, m := range w.ConfigTable {
		if len(m) > 0 {
			kv.table[ns] = m
		}
	}
	return kv, nil
}

func (kv *kvStore) put(ns, k, v string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	m := kv.table[ns]
	if m == nil {
		m = make(map[string]string)
		kv.table[ns] = m
	}
	m[k] = v
	kv.gen.Add(1)
	return kv.persistLocked()
}

func (kv *kvStore) get(ns, k string) (string, bool) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	v, ok := kv.table[ns][k]
	return v, ok
}

func (kv *kvStore) delete(ns, k string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	m := kv.table[ns]
	if _, ok := m[k]; !ok {
		return nil
	}
	delete(m, k)
	if len(m) == 0 {
		delete(kv.table, ns)
	}
	kv.gen.Add(1)
	return kv.persistLocked()
}

// list returns a copy of a namespace, nil when it is empty.
func (kv *kvStore) list(ns string) map[string]string {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	m := kv.table[ns]
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func (kv *kvStore) persistLocked() error {
	if kv.path == "" {
		return nil
	}
	b, err := json.Marshal(struct {
		ConfigTable map[string]map[string]string `json:"configTable"`
	}{kv.table})
	if err != nil {
		return err
	}
	return writeFileAtomic(kv.path, b)
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("namesrv: %w", err)
	}
	f, err := os.CreateTemp(dir, ".kvConfig-*.tmp")
	if err != nil {
		return fmt.Errorf("namesrv: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("namesrv: write %s: %w", path, werr)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
