package embedded_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/rocketry-mq/rocketry/embedded"
)

// Example starts a cluster, sends a message with the official Go SDK v5 and receives it
// with a simple consumer.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Keep the SDK's own log file out of the way (it defaults to $user.home/logs).
	os.Setenv("rocketmq.client.logRoot", filepath.Join(os.TempDir(), "rocketry-example-sdk-logs"))
	os.Setenv("mq.consoleAppender.enabled", "false")
	rmq.ResetLogger()

	c, err := embedded.Start(ctx, embedded.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	cfg := &rmq.Config{Endpoint: c.GRPCEndpoint(), Credentials: &credentials.SessionCredentials{}}
	producer, err := rmq.NewProducer(cfg, rmq.WithTopics("orders"))
	if err != nil {
		log.Fatal(err)
	}
	if err := producer.Start(); err != nil {
		log.Fatal(err)
	}
	msg := &rmq.Message{Topic: "orders", Body: []byte("hello, rocketry")}
	msg.SetTag("created")
	msg.SetKeys("order-1")
	if _, err := producer.Send(ctx, msg); err != nil {
		log.Fatal(err)
	}
	producer.GracefulStop()

	consumer, err := rmq.NewSimpleConsumer(&rmq.Config{Endpoint: c.GRPCEndpoint(), ConsumerGroup: "billing",
		Credentials: &credentials.SessionCredentials{}},
		rmq.WithAwaitDuration(5*time.Second),
		rmq.WithSubscriptionExpressions(map[string]*rmq.FilterExpression{"orders": rmq.SUB_ALL}))
	if err != nil {
		log.Fatal(err)
	}
	if err := consumer.Start(); err != nil {
		log.Fatal(err)
	}
	defer consumer.GracefulStop()
	for ctx.Err() == nil {
		mvs, err := consumer.Receive(ctx, 16, 30*time.Second)
		if st, ok := rmq.AsErrRpcStatus(err); ok && st.GetCode() == int32(v2.Code_MESSAGE_NOT_FOUND) {
			continue // nothing yet: poll again
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, mv := range mvs {
			fmt.Printf("%s [%s] %s\n", mv.GetTopic(), *mv.GetTag(), mv.GetBody())
			if err := consumer.Ack(ctx, mv); err != nil {
				log.Fatal(err)
			}
		}
		if len(mvs) > 0 {
			break
		}
	}
	// Output: orders [created] hello, rocketry
}
