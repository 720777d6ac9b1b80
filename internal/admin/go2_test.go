package admin

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/testcluster"
)

func init() { rlog.SetLogLevel("error") }

// TestPullConsumerOnlineAndLag: a 4.x push consumer (official rocketmq-client-go/v2, pull
// requests over remoting) shows up in DescribeGroup as an online GO client with its
// subscription, and its lag drops to zero once it has committed its offsets.
func TestPullConsumerOnlineAndLag(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := New(Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "legacy", Queues: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateGroup(ctx, GroupSpec{Name: "legacy-g", MaxAttempts: 16}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		props := map[string]string{message.PropertyUniqKey: message.NewUniqID()}
		if _, err := a.send(ctx, c.BrokerAddr(), "broker-a", int32(i%2), &message.Message{Topic: "legacy", Body: []byte(strconv.Itoa(i)), Properties: props}); err != nil {
			t.Fatal(err)
		}
	}

	var got atomic.Int64
	pc, err := rocketmq.NewPushConsumer(consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{c.NameServerAddr()})),
		consumer.WithGroupName("legacy-g"), consumer.WithInstance("admin-test-"+strconv.FormatInt(time.Now().UnixNano(), 36)),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe("legacy", consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			got.Add(int64(len(msgs)))
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			pc.Shutdown()
		}
	}()

	wait := func(what string, cond func() error) {
		t.Helper()
		for {
			err := cond()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait("online client", func() error {
		d, err := a.DescribeGroup(ctx, "legacy-g")
		if err != nil {
			return err
		}
		if !d.Online || len(d.Clients) != 1 || d.Clients[0].Language != "GO" || len(d.Subscriptions) == 0 {
			return fmt.Errorf("group %+v", d)
		}
		return nil
	})
	wait("all consumed and committed (go2 commits every 5 s)", func() error {
		d, err := a.DescribeGroup(ctx, "legacy-g")
		if err != nil {
			return err
		}
		if got.Load() < 6 || d.Lag != 0 {
			return fmt.Errorf("received %d, lag %d", got.Load(), d.Lag)
		}
		return nil
	})
	pc.Shutdown()
	stopped = true
	wait("offline after shutdown", func() error {
		d, err := a.DescribeGroup(ctx, "legacy-g")
		if err != nil {
			return err
		}
		if d.Online {
			return fmt.Errorf("still online: %+v", d.Clients)
		}
		return nil
	})
}
