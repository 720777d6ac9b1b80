package txn

import (
	"encoding/json"
	"errors"
	"fmt"
)

// CheckpointFile is the checkpoint's file name inside Config.Dir.
const CheckpointFile = "txn-checkpoint.json"

const checkpointVersion = 1

// checkpoint is the durable summary of the state table (see state.snapshot). Open lists the
// half messages read from the half queue (offset < HalfNext) whose op record was not read
// from the op queue (offset < OpNext) when it was taken, with their check counts.
type checkpoint struct {
	Version  int        `json:"version"`
	HalfNext int64      `json:"halfNext"`
	OpNext   int64      `json:"opNext"`
	Open     []openHalf `json:"open,omitempty"`
}

type openHalf struct {
	QueueOffset     int64 `json:"queueOffset"`
	CommitLogOffset int64 `json:"commitLogOffset"`
	Checks          int   `json:"checks"`
}

// ErrBadCheckpoint wraps every checkpoint decoding failure.
var ErrBadCheckpoint = errors.New("txn: bad checkpoint")

func encodeCheckpoint(cp checkpoint) ([]byte, error) {
	b, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("txn: encode checkpoint: %w", err)
	}
	return b, nil
}

// decodeCheckpoint parses and validates a checkpoint: known version, non-negative cursors and
// offsets, open offsets below HalfNext and strictly ascending, check counts >= 0.
func decodeCheckpoint(b []byte) (checkpoint, error) {
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return checkpoint{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	if cp.Version != checkpointVersion {
		return checkpoint{}, fmt.Errorf("%w: version %d, want %d", ErrBadCheckpoint, cp.Version, checkpointVersion)
	}
	if cp.HalfNext < 0 || cp.OpNext < 0 {
		return checkpoint{}, fmt.Errorf("%w: negative cursor", ErrBadCheckpoint)
	}
	prev := int64(-1)
	for _, o := range cp.Open {
		if o.QueueOffset <= prev || o.QueueOffset >= cp.HalfNext || o.CommitLogOffset < 0 || o.Checks < 0 {
			return checkpoint{}, fmt.Errorf("%w: open half %+v out of order or range", ErrBadCheckpoint, o)
		}
		prev = o.QueueOffset
	}
	return cp, nil
}
