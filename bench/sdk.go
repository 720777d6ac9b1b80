package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

// ClientConfig is how the SDK reaches a Proxy.
type ClientConfig struct {
	Endpoint  string // "host:port" of the Proxy's gRPC listener; default "127.0.0.1:8081"
	AccessKey string // optional (ACL)
	SecretKey string // optional (ACL)
	Namespace string // optional
}

func (c ClientConfig) sdk(group string) *rmq.Config {
	ep := c.Endpoint
	if ep == "" {
		ep = "127.0.0.1:8081"
	}
	return &rmq.Config{
		Endpoint:      ep,
		NameSpace:     c.Namespace,
		ConsumerGroup: group,
		Credentials:   &credentials.SessionCredentials{AccessKey: c.AccessKey, AccessSecret: c.SecretKey},
	}
}

var quietOnce sync.Once

// QuietSDKLogs stops the SDK from logging to the console and sends its log file to the
// temp directory at level error, unless the user set the SDK's own variables
// (rocketmq.client.logRoot, rocketmq.client.logLevel, mq.consoleAppender.enabled). The SDK
// otherwise writes to "$user.home/logs/rocketmqlogs", which is usually /logs at the root.
func QuietSDKLogs() {
	quietOnce.Do(func() {
		setDefault := func(k, v string) {
			if _, ok := os.LookupEnv(k); !ok {
				os.Setenv(k, v)
			}
		}
		setDefault(rmq.ENABLE_CONSOLE_APPENDER, "false")
		setDefault(rmq.CLIENT_LOG_ROOT, filepath.Join(os.TempDir(), "rocketry-sdk-logs"))
		setDefault(rmq.CLIENT_LOG_LEVEL, "error")
		rmq.ResetLogger()
	})
}

// SDKProducer is a Sender over the official SDK's producer.
type SDKProducer struct{ p rmq.Producer }

// NewSDKProducer starts an SDK producer; topics are pre-fetched (optional). A Start that
// fails with "size mismatch" is retried once with a new producer: go5 v5.1.2 races with itself
// while applying the server's Settings during Start (docs/qa F10); other failures (a proxy
// that does not answer) are returned at once.
func NewSDKProducer(cfg ClientConfig, topics ...string) (*SDKProducer, error) {
	QuietSDKLogs()
	var startErr error
	for range 2 {
		p, err := rmq.NewProducer(cfg.sdk(""), rmq.WithTopics(topics...))
		if err != nil {
			return nil, fmt.Errorf("producer: %w", err)
		}
		if startErr = p.Start(); startErr == nil {
			return &SDKProducer{p: p}, nil
		}
		if !strings.Contains(startErr.Error(), "size mismatch") {
			break
		}
	}
	return nil, fmt.Errorf("producer start (endpoint %s): %w", cfg.sdk("").Endpoint, startErr)
}

// Send sends one message synchronously.
func (s *SDKProducer) Send(ctx context.Context, m *Message) (SendResult, error) {
	msg := &rmq.Message{Topic: m.Topic, Body: m.Body}
	if m.Tag != "" {
		msg.SetTag(m.Tag)
	}
	if len(m.Keys) > 0 {
		msg.SetKeys(m.Keys...)
	}
	if m.MessageGroup != "" {
		msg.SetMessageGroup(m.MessageGroup)
	}
	if !m.DeliverAt.IsZero() {
		msg.SetDelayTimestamp(m.DeliverAt)
	}
	for k, v := range m.Properties {
		msg.AddProperty(k, v)
	}
	rs, err := s.p.Send(ctx, msg)
	if err != nil {
		return SendResult{}, err
	}
	if len(rs) == 0 {
		return SendResult{}, errors.New("send: empty receipt")
	}
	return SendResult{MessageID: rs[0].MessageID, Offset: rs[0].Offset, TransactionID: rs[0].TransactionId}, nil
}

// Close stops the producer.
func (s *SDKProducer) Close() error { return s.p.GracefulStop() }

// SDKConsumer is a Receiver over the official SDK's simple consumer (pop-based).
type SDKConsumer struct {
	c         rmq.SimpleConsumer
	invisible time.Duration
}

// ConsumerOptions configure NewSDKConsumer.
type ConsumerOptions struct {
	Group     string            // consumer group, required
	Topics    map[string]string // topic -> filter expression ("*" = all; tag expression or SQL92)
	SQL       bool              // filter expressions are SQL92 instead of tags
	Await     time.Duration     // long-poll budget of one Receive; default 5 s
	Invisible time.Duration     // invisible time of received messages; default 30 s
}

// NewSDKConsumer starts an SDK simple consumer.
func NewSDKConsumer(cfg ClientConfig, o ConsumerOptions) (*SDKConsumer, error) {
	QuietSDKLogs()
	if o.Group == "" {
		return nil, errors.New("consumer: a group is required")
	}
	if o.Await <= 0 {
		o.Await = 5 * time.Second
	}
	if o.Invisible <= 0 {
		o.Invisible = 30 * time.Second
	}
	subs := make(map[string]*rmq.FilterExpression, len(o.Topics))
	for t, f := range o.Topics {
		if f == "" {
			f = "*"
		}
		if o.SQL {
			subs[t] = rmq.NewFilterExpressionWithType(f, rmq.SQL92)
		} else {
			subs[t] = rmq.NewFilterExpression(f)
		}
	}
	c, err := rmq.NewSimpleConsumer(cfg.sdk(o.Group), rmq.WithAwaitDuration(o.Await), rmq.WithSubscriptionExpressions(subs))
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("consumer start (endpoint %s): %w", cfg.sdk("").Endpoint, err)
	}
	return &SDKConsumer{c: c, invisible: o.Invisible}, nil
}

// Receive long-polls once; MESSAGE_NOT_FOUND is an empty result.
func (s *SDKConsumer) Receive(ctx context.Context, max int32) ([]*Received, error) {
	mvs, err := s.c.Receive(ctx, max, s.invisible)
	if err != nil {
		if st, ok := rmq.AsErrRpcStatus(err); ok && st.GetCode() == int32(v2.Code_MESSAGE_NOT_FOUND) {
			return nil, nil
		}
		return nil, err
	}
	out := make([]*Received, 0, len(mvs))
	for _, mv := range mvs {
		r := &Received{Topic: mv.GetTopic(), MessageID: mv.GetMessageId(), Keys: mv.GetKeys(),
			Properties: mv.GetProperties(), Body: mv.GetBody(), DeliveryAttempt: mv.GetDeliveryAttempt(),
			Offset: mv.GetOffset(), handle: mv}
		if t := mv.GetTag(); t != nil {
			r.Tag = *t
		}
		if g := mv.GetMessageGroup(); g != nil {
			r.MessageGroup = *g
		}
		if b := mv.GetBornTimestamp(); b != nil {
			r.BornTimestamp = *b
		}
		if h := mv.GetBornHost(); h != nil {
			r.BornHost = *h
		}
		out = append(out, r)
	}
	return out, nil
}

// Ack acknowledges a received message.
func (s *SDKConsumer) Ack(ctx context.Context, m *Received) error {
	mv, ok := m.handle.(*rmq.MessageView)
	if !ok {
		return errors.New("ack: message was not received by this consumer")
	}
	return s.c.Ack(ctx, mv)
}

// Close stops the consumer.
func (s *SDKConsumer) Close() error { return s.c.GracefulStop() }
