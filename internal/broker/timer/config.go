package timer

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the timer service. Zero values are invalid; start from DefaultConfig.
type Config struct {
	// Dir holds the bucket files and the checkpoint (created if missing). Default "" (must be
	// set; the broker uses <dataDir>/timer).
	Dir string
	// MaxDelay is the longest delay a timer message may ask for (broker.conf
	// timerMaxDelaySec). Default 72h (259200 s). 4.x delay levels are not subject to it.
	MaxDelay time.Duration
	// DelayLevels is the 4.x level table (broker.conf messageDelayLevel). Default
	// "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h".
	DelayLevels string
	// SlotWidth is the width of one on-disk bucket of the wheel: every pending timer lives in
	// the bucket file of floor(due/SlotWidth). Default 10s.
	SlotWidth time.Duration
	// Lookahead is how far ahead of the clock buckets are paged into memory. Memory holds the
	// timers due before now+Lookahead rounded up to a slot (plus overdue ones). Default 10s.
	Lookahead time.Duration
	// MaxInMemory caps the timers paged into memory: past it, further buckets stay on disk
	// until deliveries make room (a backlog after downtime, a burst due at one moment).
	// Memory stays below MaxInMemory plus one bucket. Default 1048576 (about 50 MiB).
	MaxInMemory int
	// CheckpointInterval is how often the delivery cursor is persisted while timers are being
	// delivered. It bounds how much of the commit log recovery scans. Default 1s.
	CheckpointInterval time.Duration
	// DeliverBatch is the most due timers taken per loop iteration (delivered in chunks of at most
	// 32 messages and 1 MiB, one append each). Default 256.
	DeliverBatch int
	// IngestBatch is how many timer-topic records are read per store call. Default 256.
	IngestBatch int
	// RetryBackoff is the wait before retrying a failed delivery or ingest. Default 100ms.
	RetryBackoff time.Duration
}

// DefaultConfig returns the defaults written on each field.
func DefaultConfig() Config {
	return Config{
		MaxDelay:           72 * time.Hour,
		DelayLevels:        DefaultDelayLevels,
		SlotWidth:          10 * time.Second,
		Lookahead:          10 * time.Second,
		MaxInMemory:        1 << 20,
		CheckpointInterval: time.Second,
		DeliverBatch:       256,
		IngestBatch:        256,
		RetryBackoff:       100 * time.Millisecond,
	}
}

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("timer: invalid config")

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: Dir is empty", ErrInvalidConfig)
	case c.MaxDelay <= 0:
		return fmt.Errorf("%w: MaxDelay %v <= 0", ErrInvalidConfig, c.MaxDelay)
	case c.SlotWidth < time.Millisecond:
		return fmt.Errorf("%w: SlotWidth %v < 1ms", ErrInvalidConfig, c.SlotWidth)
	case c.Lookahead < 0:
		return fmt.Errorf("%w: Lookahead %v < 0", ErrInvalidConfig, c.Lookahead)
	case c.MaxInMemory < 0:
		return fmt.Errorf("%w: MaxInMemory %d < 0", ErrInvalidConfig, c.MaxInMemory)
	case c.CheckpointInterval <= 0:
		return fmt.Errorf("%w: CheckpointInterval %v <= 0", ErrInvalidConfig, c.CheckpointInterval)
	case c.DeliverBatch <= 0:
		return fmt.Errorf("%w: DeliverBatch %d <= 0", ErrInvalidConfig, c.DeliverBatch)
	case c.IngestBatch <= 0:
		return fmt.Errorf("%w: IngestBatch %d <= 0", ErrInvalidConfig, c.IngestBatch)
	case c.RetryBackoff <= 0:
		return fmt.Errorf("%w: RetryBackoff %v <= 0", ErrInvalidConfig, c.RetryBackoff)
	}
	if _, err := ParseLevels(c.DelayLevels); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}
