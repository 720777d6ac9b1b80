package txn

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the transaction service. Field names follow broker.conf keys where RocketMQ has
// one; the default is written on each field.
type Config struct {
	// Dir is where the checkpoint file lives (required; the broker passes <dataDir>/txn).
	Dir string
	// TransactionTimeout (broker.conf transactionTimeOut, ms): a half message is first checked
	// back once it is this old (or CHECK_IMMUNITY_TIME_IN_SECONDS when the producer set one, shorter or longer). Default 6s.
	TransactionTimeout time.Duration
	// CheckInterval (transactionCheckInterval, ms): time between two check-backs of the same
	// half message. Default 30s; tests use ~1s.
	CheckInterval time.Duration
	// CheckMax (transactionCheckMax): a half message is checked at most this many times; when
	// it is due once more it moves to TRANS_CHECK_MAX_TIME_TOPIC. Default 15.
	CheckMax int
	// ScanInterval is how often the scanner tails the half/op queues and looks for due checks.
	// Default min(1s, CheckInterval). It bounds check-time precision, not throughput.
	ScanInterval time.Duration
	// KeepPreparedFlagOnCommit keeps property TRAN_MSG=true on the committed message so
	// consumers (and the gRPC proxy) see message type TRANSACTION, as RocketMQ 4.x stored it.
	// RocketMQ 5.3 clears it. Default true.
	KeepPreparedFlagOnCommit bool
	// ResolvedRetention is how long the outcome of a finished transaction stays in memory to
	// answer duplicate END_TRANSACTION requests without an index lookup (after it, the key
	// index answers). Default 30s (about 50 bytes per transaction).
	ResolvedRetention time.Duration
	// Clock returns the current time; nil means time.Now. Tests inject a fake clock.
	Clock func() time.Time
	// OnEnd, when set, is called once per half message that END_TRANSACTION committed or
	// rolled back (metrics rocketmq_commit/rollback_messages_total and
	// rocketmq_finish_message_latency), with its real topic and its born time. It runs on the
	// caller's goroutine and must not block.
	OnEnd func(realTopic string, o Outcome, born time.Time)
}

// DefaultConfig returns RocketMQ's defaults (BrokerConfig transactionTimeOut=6000,
// transactionCheckInterval=30000, transactionCheckMax=15) with Dir left empty.
func DefaultConfig() Config {
	return Config{
		TransactionTimeout:       6 * time.Second,
		CheckInterval:            30 * time.Second,
		CheckMax:                 15,
		ScanInterval:             time.Second,
		KeepPreparedFlagOnCommit: true,
		ResolvedRetention:        30 * time.Second,
	}
}

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("txn: invalid config")

// Validate checks the fields and fills ScanInterval when zero.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: Dir is empty", ErrInvalidConfig)
	}
	if c.TransactionTimeout <= 0 {
		return fmt.Errorf("%w: TransactionTimeout %v must be > 0", ErrInvalidConfig, c.TransactionTimeout)
	}
	if c.CheckInterval <= 0 {
		return fmt.Errorf("%w: CheckInterval %v must be > 0", ErrInvalidConfig, c.CheckInterval)
	}
	if c.CheckMax < 0 {
		return fmt.Errorf("%w: CheckMax %d must be >= 0", ErrInvalidConfig, c.CheckMax)
	}
	if c.ScanInterval < 0 || c.ResolvedRetention < 0 {
		return fmt.Errorf("%w: negative ScanInterval or ResolvedRetention", ErrInvalidConfig)
	}
	if c.ScanInterval == 0 {
		c.ScanInterval = min(time.Second, c.CheckInterval)
	}
	return nil
}

func (c *Config) now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}
