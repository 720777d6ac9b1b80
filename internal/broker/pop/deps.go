package pop

import (
	"context"
	"errors"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// The small interfaces the Service needs from the broker. The broker's feature_pop.go adapts
// its store and tables to them; tests use in-memory fakes or the real store.

// Reader reads a queue of the message store.
type Reader interface {
	// Read returns up to max stored records of (topic, queue) from queue offset offset on, in
	// offset order, skipping entries whose tags code match rejects (nil matches all) and
	// entries retention removed. Next is where the following read should start: after the
	// last examined entry, or, when offset is no longer retained, the queue's minimum offset;
	// at the end, Next = offset; past the end, Next = the end. A queue that does not exist
	// reads as empty with Max 0. The records may alias store memory until
	// ReadResult.Release is called.
	Read(topic string, queue int32, offset int64, max int, match func(tagsCode int64) bool) (*ReadResult, error)
}

// ReadResult is what Reader.Read returns.
type ReadResult struct {
	Records []StoredRecord
	Next    int64
	Max     int64 // the queue's max offset (one past its last message)
	// Release returns the record memory to the store; nil when nothing to release.
	Release func()
}

// StoredRecord is one message as the store holds it.
type StoredRecord struct {
	Data        []byte // the commit-log record (message.DecodeRecord layout)
	QueueOffset int64
	TagsCode    int64 // ConsumeQueue tag hash
}

// GroupInfo is what pop needs of a subscription group.
type GroupInfo struct {
	RetryMaxTimes int32 // deliveries = RetryMaxTimes+1, then the DLQ
	Orderly       bool  // consumeMessageOrderly: FIFO delivery per queue
	Disabled      bool  // consumeEnable=false: pops are refused (ErrNoPermission)
}

// Topics answers whether a topic exists and how many readable queues it has.
type Topics interface {
	ReadQueues(topic string) (n int32, ok bool)
}

// Groups looks up (or, with auto-create on, creates) subscription groups. The Service never
// calls it while holding its own lock.
type Groups interface {
	Group(name string) (GroupInfo, bool)
}

// Offsets is the broker's committed consumer offset table.
type Offsets interface {
	// Query returns the committed offset of (group, topic, queue), if any.
	Query(group, topic string, queue int32) (int64, bool)
	// Commit records the committed offset of (group, topic, queue).
	Commit(group, topic string, queue int32, offset int64)
	// ResetGeneration changes each time an admin reset sets (group, topic, queue)'s
	// committed offset; commits (by pull or push consumers sharing the group, or by this
	// service) never change it.
	ResetGeneration(group, topic string, queue int32) uint64
	// Initial is where a group without a committed offset starts: the queue's first message
	// while it is still retained, otherwise the latest (the broker's InitialOffset).
	Initial(group, topic string, queue int32) int64
}

// DeadLetter stores m (already addressed to %DLQ%<group>, queue 0), creating the DLQ topic
// on demand.
type DeadLetter func(ctx context.Context, m *message.Ext) error

// Deps are the Service's collaborators. All are required.
type Deps struct {
	Store      Reader
	Topics     Topics
	Groups     Groups
	Offsets    Offsets
	DeadLetter DeadLetter
	// Delivered, optional, is told about every pop that hands out messages: the topic asked
	// for, the group, how many messages and their stored size in bytes (headers included,
	// as the pull path counts them). The broker feeds rocketmq_messages_out_total and
	// rocketmq_throughput_out_total with it. It must not block.
	Delivered func(topic, group string, messages, bytes int)
}

func (d *Deps) validate() error {
	if d.Store == nil || d.Topics == nil || d.Groups == nil || d.Offsets == nil || d.DeadLetter == nil {
		return errors.New("pop: Deps: Store, Topics, Groups, Offsets and DeadLetter are required")
	}
	return nil
}
