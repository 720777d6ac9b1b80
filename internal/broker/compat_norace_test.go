//go:build !race

package broker

// Compatibility tests whose go2 code paths have data races inside the client library
// itself, so they run only without -race (the broker side of the same paths is covered by
// race-enabled handler tests):
//   - the pull consumer: PullFrom writes what its own rebalance goroutine (doBalance, started
//     by Start and by NOTIFY_CONSUMER_IDS_CHANGED) reads;
//   - the orderly push consumer: processQueue.putMessage and takeMessages share an
//     unsynchronised tree map.

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

func TestCompatPullConsumerByOffsets(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("PullT", 1)
	p := c.producer()
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if _, err := p.SendSync(ctx, primitive.NewMessage("PullT", []byte("m"+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	c.b.settle()
	// go2's pull consumer races with its own rebalance (PullFrom vs doBalance on
	// NOTIFY_CONSUMER_IDS_CHANGED, a client bug seen under -race); this group opts out of
	// notifications.
	quiet("PullG", c)
	pc, err := rocketmq.NewPullConsumer(consumer.WithNsResolver(c.resolver()), consumer.WithGroupName("PullG"),
		consumer.WithInstance(instance(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe("PullT", consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	mq := &primitive.MessageQueue{Topic: "PullT", BrokerName: c.cfg.BrokerName, QueueId: 0}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pr, err := pc.PullFrom(pctx, mq, 3, 4)
	if err != nil || pr.Status != primitive.PullFound {
		t.Fatalf("pull: %+v %v", pr, err)
	}
	msgs := pr.GetMessageExts()
	if len(msgs) != 4 || string(msgs[0].Body) != "m3" || msgs[0].QueueOffset != 3 || pr.NextBeginOffset != 7 || pr.MaxOffset != 10 {
		t.Fatalf("pulled %d messages, first %q at %d, next %d max %d", len(msgs), msgs[0].Body, msgs[0].QueueOffset, pr.NextBeginOffset, pr.MaxOffset)
	}
	// At the end of the queue the pull is held by the broker and answered on arrival.
	sent := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := p.SendSync(ctx, primitive.NewMessage("PullT", []byte("m10")))
		sent <- err
	}()
	defer func() {
		if err := <-sent; err != nil {
			t.Errorf("send m10: %v", err)
		}
	}()
	start := time.Now()
	pr, err = pc.PullFrom(pctx, mq, 10, 4)
	if err != nil || pr.Status != primitive.PullFound || string(pr.GetMessageExts()[0].Body) != "m10" || time.Since(start) > 5*time.Second {
		t.Fatalf("long-polled pull at end: %+v %v after %v", pr, err, time.Since(start))
	}
}

func TestCompatOrderlyConsumer(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Orderly", 4)
	p := c.producer(producer.WithQueueSelector(producer.NewHashQueueSelector()))
	var mu sync.Mutex
	seen := map[string][]int{}
	var total atomic.Int64
	c.pushConsumer("OrderlyG", "Orderly", "*", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			key, seq, _ := strings.Cut(string(m.Body), ":")
			n, _ := strconv.Atoi(seq)
			seen[key] = append(seen[key], n)
			total.Add(1)
		}
		return consumer.ConsumeSuccess, nil
	}, consumer.WithConsumerOrder(true))
	const keys, per = 6, 25
	ctx := context.Background()
	for i := 0; i < per; i++ {
		for k := 0; k < keys; k++ {
			key := "key" + strconv.Itoa(k)
			m := primitive.NewMessage("Orderly", []byte(key+":"+strconv.Itoa(i)))
			m.WithShardingKey(key)
			if _, err := p.SendSync(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 60*time.Second, "orderly consumption", func() bool { return total.Load() >= keys*per })
	mu.Lock()
	defer mu.Unlock()
	for key, seqs := range seen {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				t.Fatalf("%s out of order: %v", key, seqs)
			}
		}
	}
	if len(seen) != keys {
		t.Fatalf("saw %d keys", len(seen))
	}
	// The broker granted queue locks to the orderly consumer.
	ids := c.b.Clients.ConsumerIDs("OrderlyG")
	if len(ids) != 1 || c.b.Locks.Owner("OrderlyG", "Orderly", 0, time.Now()) != ids[0] {
		t.Fatalf("queue 0 lock owner %q, consumers %v", c.b.Locks.Owner("OrderlyG", "Orderly", 0, time.Now()), ids)
	}
}

// TestCompatRequestReply: go2 request-reply. The requester's Request returns the reply the
// replier sent with SEND_REPLY_MESSAGE, which the broker pushed to the requester's connection
// with PUSH_REPLY_MESSAGE_TO_CLIENT (QA F27).
func TestCompatRequestReply(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("RpcT", 2)
	replier := c.producer()
	replied := make(chan string, 4)
	c.pushConsumer("RpcG", "RpcT", "*", func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			reply, err := consumer.CreateReplyMessage(m, []byte("pong"))
			if err != nil {
				t.Errorf("CreateReplyMessage: %v", err)
				continue
			}
			if _, err := replier.SendSync(ctx, reply); err != nil {
				t.Errorf("send reply: %v", err)
				continue
			}
			replied <- m.GetProperty(primitive.PropertyCorrelationID)
		}
		return consumer.ConsumeSuccess, nil
	})
	requester := c.producer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reply, err := requester.Request(ctx, 20*time.Second, primitive.NewMessage("RpcT", []byte("ping")))
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	select {
	case id := <-replied:
		if got := reply.GetProperty(primitive.PropertyCorrelationID); got != id {
			t.Fatalf("reply correlation id %q, want %q", got, id)
		}
	case <-ctx.Done():
		t.Fatal("the replier never replied")
	}
	// Stored as well (storeReplyMessageEnable): the reply topic holds it.
	waitFor(t, 10*time.Second, "the reply stored in "+c.b.replyTopic(), func() bool { return c.b.Store.MaxOffset(c.b.replyTopic(), 0) == 1 })
}
