package bench

import (
	"context"
	"time"
)

// Message is what a Sender sends.
type Message struct {
	Topic        string
	Body         []byte
	Tag          string            // "" = none
	Keys         []string          // message keys (indexed by the broker)
	MessageGroup string            // FIFO message group ("" = none)
	DeliverAt    time.Time         // zero = now; otherwise a delay/timer message
	Properties   map[string]string // user properties
}

// SendResult is a Sender's receipt.
type SendResult struct {
	MessageID     string
	Offset        int64
	TransactionID string
}

// Sender sends messages; implementations are safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m *Message) (SendResult, error)
	Close() error
}

// Received is one delivered message.
type Received struct {
	Topic           string
	MessageID       string
	Tag             string
	Keys            []string
	MessageGroup    string
	Properties      map[string]string
	Body            []byte
	BornTimestamp   time.Time
	BornHost        string
	DeliveryAttempt int32
	Offset          int64

	// handle is the implementation's acknowledgement state (the SDK's message view).
	handle any
}

// Receiver receives and acknowledges messages; safe for concurrent use.
type Receiver interface {
	// Receive waits up to the receiver's await duration and returns at most max messages;
	// nothing available is an empty slice and a nil error.
	Receive(ctx context.Context, max int32) ([]*Received, error)
	Ack(ctx context.Context, m *Received) error
	Close() error
}
