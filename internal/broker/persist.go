package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/store"
)

// Metadata file names under <DataDir>/config/ (RocketMQ's names).
const (
	topicsFile        = "topics.json"
	groupsFile        = "subscriptionGroup.json"
	consumerOffFile   = "consumerOffset.json"
	configDirName     = "config"
	metadataFilePerms = 0o644
)

// DataVersion is RocketMQ's DataVersion: it changes whenever a table changes, so NameServers
// and admin tools can tell a new table from an old one.
type DataVersion struct {
	StateVersion int64 `json:"stateVersion"`
	Timestamp    int64 `json:"timestamp"`
	Counter      int64 `json:"counter"`
}

// next returns the following version (counter+1, timestamp now).
func (d DataVersion) next() DataVersion {
	return DataVersion{StateVersion: d.StateVersion, Timestamp: time.Now().UnixMilli(), Counter: d.Counter + 1}
}

// writeJSONAtomic marshals v and replaces path atomically (temp file, fsync, rename, fsync
// dir) through the store's helper, so a crash leaves either the old or the new file.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return fmt.Errorf("broker: encode %s: %w", filepath.Base(path), err)
	}
	if err := store.WriteFileAtomic(path, data, metadataFilePerms); err != nil {
		return fmt.Errorf("broker: write %s: %w", path, err)
	}
	return nil
}

// readJSON loads path into v; a missing file leaves v untouched and reports false.
func readJSON(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("broker: read %s: %w", path, err)
	}
	if len(data) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("broker: decode %s: %w", path, err)
	}
	return true, nil
}

// dirtyFlag is a monotonically increasing change counter with a "persisted up to" mark.
type dirtyFlag struct {
	changed   atomic.Int64
	persisted atomic.Int64
}

func (d *dirtyFlag) mark() { d.changed.Add(1) }

// begin returns the change count to persist and whether anything changed since the last
// successful persist.
func (d *dirtyFlag) begin() (int64, bool) {
	c := d.changed.Load()
	return c, c != d.persisted.Load()
}

func (d *dirtyFlag) done(c int64) { d.persisted.Store(c) }
