package admin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/bench"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/standalone"
	"github.com/rocketry-mq/rocketry/internal/testcluster"
)

// TestDeadLettersOfPopConsumersAreReplayed runs the whole path on a real cluster: a gRPC
// (pop) consumer never acknowledges, the broker moves the message to %DLQ%<group> after the
// group's retries, DescribeGroup shows the in-flight message on the way, and ResendDLQ puts
// it back on the original topic where the group receives it again.
func TestDeadLettersOfPopConsumersAreReplayed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for invisible times to expire")
	}
	c := testcluster.Start(t, testcluster.Options{Configure: func(cfg *standalone.Config) {
		cfg.Broker.PopMinInvisibleTime = time.Second
		cfg.Proxy.MinInvisible = time.Second
		cfg.Proxy.DefaultInvisible = time.Second
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := New(Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "dlq-src", Queues: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateGroup(ctx, GroupSpec{Name: "dlq-g", MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	// Produce over remoting: the go5 SDK producer has an internal data race (its settings
	// sync marshals retryPolicy while the telemetry reader applies the server's) that the race
	// detector reports once a producer lives for more than a second.
	props := map[string]string{message.PropertyTags: "t1", message.PropertyKeys: "poison-1", message.PropertyUniqKey: message.NewUniqID()}
	if _, err := a.send(ctx, c.BrokerAddr(), "broker-a", 0, &message.Message{Topic: "dlq-src", Body: []byte("poison"), Properties: props}); err != nil {
		t.Fatal(err)
	}
	cc := bench.ClientConfig{Endpoint: c.GRPCEndpoint()}
	cons, err := bench.NewSDKConsumer(cc, bench.ConsumerOptions{Group: "dlq-g", Topics: map[string]string{"dlq-src": "*"},
		Await: time.Second, Invisible: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()

	sawInflight := false
	for ctx.Err() == nil {
		msgs, err := cons.Receive(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 0 && !sawInflight {
			d, err := a.DescribeGroup(ctx, "dlq-g")
			if err != nil {
				t.Fatal(err)
			}
			sawInflight = d.Inflight == 1
		}
		if _, err := a.route(ctx, message.DLQTopic("dlq-g")); err == nil {
			if d, err := a.DescribeTopic(ctx, message.DLQTopic("dlq-g")); err == nil && d.Messages == 1 {
				break
			}
		} else if !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the message never reached the DLQ")
	}
	if !sawInflight {
		t.Error("DescribeGroup never showed the popped message in flight")
	}

	res, err := a.ResendDLQ(ctx, "dlq-g", ResendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resent != 1 || res.Failed != 0 || res.Messages[0].OriginTopic != "dlq-src" {
		t.Fatalf("resend %+v", res)
	}
	if again, err := a.ResendDLQ(ctx, "dlq-g", ResendOptions{}); err != nil || len(again.Messages) != 0 {
		t.Fatalf("a second resend replayed %+v (%v)", again, err)
	}
	for ctx.Err() == nil {
		msgs, err := cons.Receive(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 1 {
			m := msgs[0]
			if string(m.Body) != "poison" || m.Tag != "t1" || len(m.Keys) != 1 || m.Keys[0] != "poison-1" || m.DeliveryAttempt != 1 {
				t.Fatalf("replayed message %+v", m)
			}
			// The replay is the same message to its consumers: the id they saw fail (R10X-12).
			if m.MessageID != props[message.PropertyUniqKey] || res.Messages[0].NewMsgID != m.MessageID {
				t.Fatalf("replayed message id %s, resend reported %s, original %s", m.MessageID, res.Messages[0].NewMsgID, props[message.PropertyUniqKey])
			}
			if err := cons.Ack(ctx, m); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("the replayed message was not delivered")
}
