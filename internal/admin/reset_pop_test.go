package admin

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/bench"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/testcluster"
)

// TestResetTakesEffectForPopConsumers: after a gRPC (pop) consumer has acknowledged
// everything, ResetOffset to the earliest message makes the same group receive every message
// again (RocketMQ 5.1 ignored resets for gRPC clients, apache/rocketmq#9038).
func TestResetTakesEffectForPopConsumers(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := New(Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "replay", Queues: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		props := map[string]string{message.PropertyUniqKey: message.NewUniqID()}
		if _, err := a.send(ctx, c.BrokerAddr(), "broker-a", int32(i%2), &message.Message{Topic: "replay", Body: []byte(strconv.Itoa(i)), Properties: props}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := bench.NewSDKConsumer(bench.ClientConfig{Endpoint: c.GRPCEndpoint()}, bench.ConsumerOptions{Group: "replay-g",
		Topics: map[string]string{"replay": "*"}, Await: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	drain := func(want int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		n := 0
		for n < want && ctx.Err() == nil {
			msgs, err := cons.Receive(ctx, 16)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				seen[string(m.Body)]++
				n++
				if err := cons.Ack(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n != want {
			t.Fatalf("received %d messages, want %d", n, want)
		}
		return seen
	}
	if first := drain(6); len(first) != 6 {
		t.Fatalf("first pass %v", first)
	}
	for ctx.Err() == nil { // acks reach the committed offsets
		if d, err := a.DescribeGroup(ctx, "replay-g"); err == nil && d.Lag == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs, err := a.ResetOffset(ctx, "replay-g", "replay", ResetTarget{Earliest: true})
	if err != nil || len(rs) != 2 || rs[0].NewOffset != 0 || rs[0].OldOffset != 3 {
		t.Fatalf("reset %+v %v", rs, err)
	}
	if again := drain(6); len(again) != 6 {
		t.Fatalf("after the reset the group received %v, want all 6 again", again)
	}
}
