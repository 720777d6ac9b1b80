package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Backend is everything the proxy needs from the brokers. The gRPC layer above it is shared by
// both deployments:
//   - cluster mode (package proxy/cluster): routes from the NameServers, remoting to brokers
//     (docs/broker-proxy-protocol.md);
//   - local mode: the broker's Go API, called in process with no network hop.
//
// Contract for implementations:
//   - Methods are safe for concurrent use and honour ctx (deadline and cancellation).
//   - Errors are either one of the sentinels below (wrapped with %w is fine) or a *BrokerError
//     carrying the broker's remoting response code; codes.go maps both to gRPC codes.
//   - Receipt handles (Handle.Raw) are minted by the broker and opaque to the proxy.
type Backend interface {
	// QueryRoute returns the topic's queue layout per broker (masters only), brokers sorted
	// by name. Unknown topic -> ErrTopicNotFound.
	QueryRoute(ctx context.Context, topic string) (*TopicRoute, error)
	// TopicConfig returns the topic's configuration, notably its message type (attribute
	// message.type). Unknown topic -> ErrTopicNotFound.
	TopicConfig(ctx context.Context, topic string) (*TopicConfig, error)
	// CreateTopic creates (or updates) the topic on every master broker of the cluster; used
	// for auto-creation. After it returns, QueryRoute must find the topic.
	CreateTopic(ctx context.Context, cfg TopicConfig) error
	// GroupConfig returns a subscription group's configuration. Unknown group ->
	// ErrGroupNotFound (brokers with auto-create return a created default instead).
	GroupConfig(ctx context.Context, group string) (*GroupConfig, error)

	// Send stores one message on broker req.Broker, queue req.QueueID. Flush or replication
	// timeouts are not errors: they come back in SendResult.Status.
	Send(ctx context.Context, req *SendRequest) (*SendResult, error)
	// Pop long-polls broker req.Broker for up to req.PollTime and returns at most
	// req.MaxMessages messages, each with its receipt handle; nothing arrived -> an empty
	// result and nil error.
	Pop(ctx context.Context, req *PopRequest) (*PopResult, error)
	// Ack acknowledges a popped message. An already-acked handle is success; a forged one ->
	// ErrHandleInvalid; a superseded one -> ErrHandleExpired.
	Ack(ctx context.Context, req *AckRequest) error
	// ChangeInvisible resets the message's invisible time and returns the new raw handle; the
	// old one becomes stale. Errors as for Ack.
	ChangeInvisible(ctx context.Context, req *ChangeInvisibleRequest) (newRaw string, err error)
	// ForwardToDLQ moves a popped message straight to %DLQ%<group> and acks its handle.
	ForwardToDLQ(ctx context.Context, req *ForwardDLQRequest) error
	// EndTransaction commits or rolls back a half message (Unknown is a no-op).
	EndTransaction(ctx context.Context, req *EndTransactionRequest) error
	// Recall cancels the pending timer message named by req.Handle on broker req.Broker
	// (RECALL_MESSAGE) and returns its message id. Broker refusals are *BrokerError values.
	Recall(ctx context.Context, req *RecallRequest) (msgID string, err error)
	// SetTransactionChecker installs the receiver of broker transaction check-backs. Called
	// once, before the proxy serves; the backend calls c from its own goroutines.
	SetTransactionChecker(c TransactionChecker)
}

// TransactionChecker receives broker check-backs of orphaned half messages (broker -> proxy ->
// Telemetry RecoverOrphanedTransactionCommand -> producer -> EndTransaction).
type TransactionChecker interface {
	// ProducerGroups lists the producer groups (for gRPC producers: topic names) that have at
	// least one connected producer able to answer checks. Cluster backends advertise them in
	// their broker heartbeats so the brokers know where to send checks.
	ProducerGroups() []string
	// CheckTransaction forwards one check to a connected producer of check.ProducerGroup. It
	// must not block on the network; a check without a producer is dropped (the broker asks
	// again later).
	CheckTransaction(check *TransactionCheck)
}

// MessageType is a topic's (or message's) type, stored in topic attribute "message.type".
type MessageType int

// Message types in the order of apache.rocketmq.v2.MessageType.
const (
	MessageTypeUnspecified MessageType = iota
	MessageTypeNormal
	MessageTypeFIFO
	MessageTypeDelay
	MessageTypeTransaction
	MessageTypeMixed // topic attribute only: accepts every type
)

var messageTypeNames = [...]string{"UNSPECIFIED", "NORMAL", "FIFO", "DELAY", "TRANSACTION", "MIXED"}

func (t MessageType) String() string {
	if t < 0 || int(t) >= len(messageTypeNames) {
		return fmt.Sprintf("MessageType(%d)", int(t))
	}
	return messageTypeNames[t]
}

// ParseMessageType parses a topic attribute value; "" is NORMAL (RocketMQ's default).
func ParseMessageType(s string) (MessageType, error) {
	if s == "" {
		return MessageTypeNormal, nil
	}
	for i, n := range messageTypeNames {
		if strings.EqualFold(n, s) {
			return MessageType(i), nil
		}
	}
	return MessageTypeUnspecified, fmt.Errorf("proxy: unknown message type %q", s)
}

// Accepts reports whether a topic of type t accepts messages of type m.
func (t MessageType) Accepts(m MessageType) bool {
	return t == MessageTypeMixed || t == m
}

// RocketMQ permission bits (PermName).
const (
	PermInherit = 1
	PermWrite   = 2
	PermRead    = 4
)

// TopicRoute is the queue layout of one topic.
type TopicRoute struct {
	Topic   string
	Brokers []BrokerQueues // sorted by Name; masters (broker id 0) only
}

// BrokerQueues is one broker's QueueData for a topic.
type BrokerQueues struct {
	Name        string
	ReadQueues  int
	WriteQueues int
	Perm        int // PermRead|PermWrite bits
}

// TopicConfig is a topic's broker-side configuration.
type TopicConfig struct {
	Name        string
	ReadQueues  int
	WriteQueues int
	Perm        int
	MessageType MessageType
}

// GroupConfig is a subscription group's configuration.
type GroupConfig struct {
	Name          string
	ConsumeEnable bool
	Orderly       bool // consumeMessageOrderly: FIFO delivery per message group
	RetryMaxTimes int  // default 16; max delivery attempts = RetryMaxTimes+1
}

// Message is a message as stored by a broker. On send only Topic, Body, Flag, SysFlag,
// BornTimestamp, Properties and ReconsumeTimes are used; Pop fills every field.
type Message struct {
	Topic           string
	Body            []byte
	Flag            int32
	SysFlag         int32
	Properties      map[string]string
	QueueID         int32
	QueueOffset     int64
	CommitLogOffset int64
	BornTimestamp   int64 // ms
	BornHost        string
	StoreTimestamp  int64 // ms
	StoreHost       string
	ReconsumeTimes  int32
	OffsetMsgID     string // broker-assigned offset message id
	ReceiptHandle   string // raw broker handle (property POP_CK), Pop only
}

// SysFlag bits used by the proxy (MessageSysFlag).
const (
	SysFlagCompressed          = 0x1
	SysFlagTransactionPrepared = 0x4
)

// SendStatus is the outcome of a stored send.
type SendStatus int

// Send statuses (RocketMQ SendStatus).
const (
	SendOK SendStatus = iota
	SendFlushDiskTimeout
	SendFlushSlaveTimeout
	SendSlaveNotAvailable
)

// SendRequest stores Message on Broker/QueueID.
type SendRequest struct {
	Broker        string
	QueueID       int32
	ProducerGroup string // gRPC: the topic name
	Message       *Message
}

// SendResult is what the broker answered.
type SendResult struct {
	Status          SendStatus
	OffsetMsgID     string
	QueueID         int32
	QueueOffset     int64
	CommitLogOffset int64
	TransactionID   string // broker transaction id (half messages)
	RecallHandle    string // timer (timestamp-delayed) messages: the handle that recalls it
}

// RecallRequest recalls a timer message with the recall handle its send returned.
type RecallRequest struct {
	Broker        string // the broker named in the handle
	ProducerGroup string
	Topic         string
	Handle        string
}

// PopRequest asks Broker for messages of Topic for Group.
type PopRequest struct {
	Broker        string
	Group         string
	Topic         string
	QueueID       int32 // -1 = any readable queue
	MaxMessages   int32 // 1..32
	InvisibleTime time.Duration
	PollTime      time.Duration // long-poll budget; 0 = no wait
	FilterType    string        // "TAG"
	FilterExpr    string        // "*", "A||B"
	Order         bool          // FIFO group
	AttemptID     string        // receive attempt id ("" = none); see pop.PopRequest.AttemptID
}

// PopResult carries the popped messages (possibly none).
type PopResult struct {
	Messages []*Message
}

// Handle locates a popped message: the broker that minted it, its queue position and the
// broker's raw receipt handle.
type Handle struct {
	Broker          string
	QueueID         int32
	QueueOffset     int64
	CommitLogOffset int64
	Raw             string
}

// AckRequest acknowledges one handle.
type AckRequest struct {
	Group, Topic string
	Handle       Handle
}

// ChangeInvisibleRequest changes a handle's invisible time.
type ChangeInvisibleRequest struct {
	Group, Topic  string
	Handle        Handle
	InvisibleTime time.Duration
}

// ForwardDLQRequest moves a message to the group's dead-letter queue.
type ForwardDLQRequest struct {
	Group, Topic      string
	Handle            Handle
	MessageID         string // the message's unique id
	ReconsumeTimes    int32
	MaxReconsumeTimes int32
}

// Resolution is a transaction outcome.
type Resolution int

// Transaction resolutions.
const (
	ResolutionUnknown Resolution = iota
	ResolutionCommit
	ResolutionRollback
)

// EndTransactionRequest resolves a half message.
type EndTransactionRequest struct {
	Broker               string
	ProducerGroup        string
	Topic                string
	CommitLogOffset      int64
	TranStateTableOffset int64
	MsgID                string // unique id (UNIQ_KEY)
	TransactionID        string // broker transaction id
	Resolution           Resolution
	FromCheck            bool
}

// TransactionCheck is one broker check-back.
type TransactionCheck struct {
	Broker               string
	ProducerGroup        string
	Message              *Message // the half message (topic = real topic when known)
	CommitLogOffset      int64
	TranStateTableOffset int64
	MsgID                string
	TransactionID        string
}

// Sentinel errors shared by backends and the gRPC layer; codes.go maps each to a gRPC code.
var (
	ErrTopicNotFound  = errors.New("topic not found")
	ErrGroupNotFound  = errors.New("consumer group not found")
	ErrBrokerNotFound = errors.New("broker not found")
	ErrHandleInvalid  = errors.New("receipt handle is invalid")
	ErrHandleExpired  = errors.New("receipt handle is expired")
	ErrBusy           = errors.New("broker busy")
	ErrTimeout        = errors.New("backend timeout")
	ErrNoPermission   = errors.New("no permission")
	ErrUnavailable    = errors.New("backend unavailable")
	// ErrNotSent marks an ErrUnavailable failure in which the request never left (the
	// broker refused the connection): a send may be retried on another broker.
	ErrNotSent = errors.New("request not sent")
)

// BrokerError is a broker's non-success remoting response, surfaced as is.
type BrokerError struct {
	Code   int // remoting ResponseCode
	Remark string
}

func (e *BrokerError) Error() string {
	return fmt.Sprintf("broker: code %d: %s", e.Code, e.Remark)
}
