package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
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

// errMetadataPersist wraps a failed write of a metadata table whose change is live in memory
// already (and is written again with the table's next change).
var errMetadataPersist = errors.New("broker: metadata change live but not persisted")

// writeJSONAtomic marshals v and replaces path atomically (temp file, fsync, rename, fsync
// dir) through the store's helper, so a crash leaves either the old or the new file.
//
// The version it replaces is kept as path.bak (a hard link, no copy), as RocketMQ's
// MixAll.string2File keeps one: readJSON falls back to it when path is empty or does not
// decode (QA R10Q-5).
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return fmt.Errorf("broker: encode %s: %w", filepath.Base(path), err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		tmp := path + ".bak.tmp"
		_ = os.Remove(tmp)
		if os.Link(path, tmp) == nil {
			_ = os.Rename(tmp, path+".bak") // best effort: the backup is a convenience
		}
	}
	if err := store.WriteFileAtomic(path, data, metadataFilePerms); err != nil {
		return fmt.Errorf("broker: write %s: %w", path, err)
	}
	return nil
}

// readJSON loads path into v; a missing file leaves v untouched and reports false. An empty
// file, or one that does not decode, is replaced by its backup path.bak when that decodes (as
// RocketMQ's ConfigManager.loadBak); an empty file without a usable backup loads nothing, a
// corrupt one is an error. checkMetadataFiles logs which case applied.
func readJSON(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("broker: read %s: %w", path, err)
	}
	if len(data) == 0 || !json.Valid(data) {
		if bak, berr := os.ReadFile(path + ".bak"); berr == nil && len(bak) > 0 && json.Unmarshal(bak, v) == nil {
			return true, nil
		}
		if len(data) == 0 {
			return false, nil
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("broker: decode %s: %w", path, err)
	}
	return true, nil
}

// checkMetadataFiles logs, before the tables load, each metadata file that is empty or does
// not decode: loaded from its backup, or (empty, no backup) started empty. A table that
// silently starts empty loses topic types or committed offsets (QA R10Q-5).
func checkMetadataFiles(dir string, logger *slog.Logger) {
	for _, name := range []string{topicsFile, groupsFile, consumerOffFile} {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil || (len(data) > 0 && json.Valid(data)) {
			continue
		}
		what := "is empty"
		if len(data) > 0 {
			what = "does not decode"
		}
		if bak, berr := os.ReadFile(path + ".bak"); berr == nil && len(bak) > 0 && json.Valid(bak) {
			logger.Warn("metadata file "+what+"; loading its backup", "file", path, "backup", path+".bak")
			continue
		}
		if len(data) == 0 {
			logger.Error("metadata file is empty and has no usable backup; the table starts empty", "file", path)
		}
	}
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
