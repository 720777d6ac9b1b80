package pop

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a Service. Zero fields are not defaults: start from DefaultConfig.
type Config struct {
	// Dir holds the pop state: handle secret, pop log files and snapshot. Required; the
	// broker uses <dataDir>/pop.
	Dir string
	// BrokerName is written into every receipt handle; handles naming another broker are
	// rejected. Required.
	BrokerName string
	// MinInvisibleTime is the shortest invisible time a pop may ask for (RocketMQ
	// popMinInvisibleTime / minInvisibleTimeMillsForRecv). Default 10s; tests lower it.
	MinInvisibleTime time.Duration
	// MaxInvisibleTime is the longest invisible time of a pop or a change (popMaxInvisibleTime).
	// Default 12h.
	MaxInvisibleTime time.Duration
	// MaxBatch is the most messages one pop returns. Default 32.
	MaxBatch int
	// MaxPollTime caps a pop's long-poll budget (popPollingTimeout). Default 20s.
	MaxPollTime time.Duration
	// PollingSize bounds the pops parked at once per topic, group and queue (popPollingSize);
	// MaxPollingSize bounds them in total (maxPopPollingSize). Beyond either a long-polling
	// pop is answered ErrPollingFull (POLLING_FULL 209) instead of parking. Defaults 1024
	// and 100000, as RocketMQ.
	PollingSize, MaxPollingSize int
	// SyncFlush makes every pop, ack and change durable (group-committed fdatasync of the pop
	// log) before it is answered. Default true.
	SyncFlush bool
	// SnapshotInterval is how often the state is snapshotted and older log files deleted when
	// the log grew. Default 30s.
	SnapshotInterval time.Duration
	// SnapshotLogBytes snapshots early once the current log file reaches this size. Default
	// 64 MiB.
	SnapshotLogBytes int64
	// ScanLimit bounds how many queue entries one pop examines per queue when a tag filter
	// skips messages. Default 2048.
	ScanLimit int
	// DefaultRetryMaxTimes is the retry budget of a group whose config cannot be read
	// (RocketMQ retryMaxTimes). Default 16: 17 deliveries, then the DLQ.
	DefaultRetryMaxTimes int32
	// DLQRetryInterval is how long the revive loop waits before retrying a failed move to the
	// dead-letter queue. Default 1s.
	DLQRetryInterval time.Duration
}

// DefaultConfig returns the defaults (Dir and BrokerName must still be set).
func DefaultConfig() Config {
	return Config{
		MinInvisibleTime:     10 * time.Second,
		MaxInvisibleTime:     12 * time.Hour,
		MaxBatch:             32,
		MaxPollTime:          20 * time.Second,
		PollingSize:          1024,
		MaxPollingSize:       100000,
		SyncFlush:            true,
		SnapshotInterval:     30 * time.Second,
		SnapshotLogBytes:     64 << 20,
		ScanLimit:            2048,
		DefaultRetryMaxTimes: 16,
		DLQRetryInterval:     time.Second,
	}
}

// maxBatchLimit is the hard ceiling of MaxBatch (keeps a pop record far below maxFrame).
const maxBatchLimit = 1024

// ErrConfig is wrapped by every Validate error.
var ErrConfig = errors.New("pop: invalid config")

// Validate checks c.
func (c *Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: Dir is required", ErrConfig)
	case c.BrokerName == "":
		return fmt.Errorf("%w: BrokerName is required", ErrConfig)
	case c.MinInvisibleTime <= 0 || c.MaxInvisibleTime < c.MinInvisibleTime:
		return fmt.Errorf("%w: need 0 < MinInvisibleTime <= MaxInvisibleTime", ErrConfig)
	case c.MaxBatch <= 0 || c.MaxBatch > maxBatchLimit:
		return fmt.Errorf("%w: MaxBatch must be in 1..%d", ErrConfig, maxBatchLimit)
	case c.MaxPollTime < 0:
		return fmt.Errorf("%w: MaxPollTime must be >= 0", ErrConfig)
	case c.PollingSize <= 0 || c.MaxPollingSize <= 0:
		return fmt.Errorf("%w: PollingSize and MaxPollingSize must be > 0", ErrConfig)
	case c.SnapshotInterval <= 0 || c.SnapshotLogBytes <= 0:
		return fmt.Errorf("%w: SnapshotInterval and SnapshotLogBytes must be > 0", ErrConfig)
	case c.ScanLimit <= 0:
		return fmt.Errorf("%w: ScanLimit must be > 0", ErrConfig)
	case c.DefaultRetryMaxTimes < 0:
		return fmt.Errorf("%w: DefaultRetryMaxTimes must be >= 0", ErrConfig)
	case c.DLQRetryInterval <= 0:
		return fmt.Errorf("%w: DLQRetryInterval must be > 0", ErrConfig)
	}
	return nil
}
