package timer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// checkpoint is the durable summary of the service's progress (see docs/timer.md):
//
//   - IngestOffset: timer-queue records below it have their entry in the timer log below LogEnd;
//   - CursorDue/CursorOffset and Done: every entry with key <= cursor, and every entry named in
//     Done, has been delivered, and those deliveries are durable in the store;
//   - CommitLogEnd: the store's end when the checkpoint was taken; any delivery made after it
//     is at or beyond this offset, which is where recovery scans for delivery marks;
//   - LogEnd: the synced end of the timer log; entries past it are discarded at recovery.
type checkpoint struct {
	Version      int        `json:"version"`
	IngestOffset int64      `json:"ingestOffset"`
	CursorDue    int64      `json:"cursorDue"`
	CursorOffset int64      `json:"cursorOffset"`
	Done         [][2]int64 `json:"done,omitempty"` // {record offset, due}
	CommitLogEnd int64      `json:"commitLogEnd"`
	LogEnd       int64      `json:"logEnd"`
	// Pending counts the undelivered timers per real topic (for rocketmq_timing_messages;
	// bookkeeping only, never used to decide a delivery).
	Pending map[string]int64 `json:"pending,omitempty"`
	// Skip lists deliveries found by an earlier recovery whose entries were not met yet.
	Skip []skipJSON `json:"skip,omitempty"`
	// Recalled holds the recalls ingested below IngestOffset and not yet spent or pruned:
	// recallKey -> the due time the recall named.
	Recalled map[string]int64 `json:"recalled,omitempty"`
}

// skipJSON is one unresolved delivery mark.
type skipJSON struct {
	Offset  int64  `json:"offset"`
	Dequeue int64  `json:"dequeue"`
	Topic   string `json:"topic"`
}

const checkpointFile = "checkpoint.json"

func freshCheckpoint() checkpoint {
	return checkpoint{Version: 1, CursorDue: math.MinInt64, CursorOffset: math.MinInt64}
}

func readCheckpoint(dir string) (checkpoint, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return freshCheckpoint(), false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("timer: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return checkpoint{}, false, fmt.Errorf("timer: checkpoint %s: %w", filepath.Join(dir, checkpointFile), err)
	}
	if c.Version != 1 {
		return checkpoint{}, false, fmt.Errorf("timer: checkpoint version %d not supported", c.Version)
	}
	return c, true, nil
}

// writeCheckpoint replaces the checkpoint atomically (temp file, fsync, rename, fsync dir).
func writeCheckpoint(dir string, c checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("timer: %w", err)
	}
	tmp := filepath.Join(dir, checkpointFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("timer: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("timer: write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("timer: sync checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("timer: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointFile)); err != nil {
		return fmt.Errorf("timer: %w", err)
	}
	return syncDir(dir)
}
