package broker

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestCompatDelayLevel needs the timer feature (feature_timer.go): a delay-level-2 message
// (5 s) must not arrive before ~5 s.
func TestCompatDelayLevel(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Delay", 1)
	p := c.producer()
	arrived := make(chan time.Time, 1)
	c.pushConsumer("DelayG", "Delay", "*", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		select {
		case arrived <- time.Now():
		default:
		}
		return consumer.ConsumeSuccess, nil
	})
	time.Sleep(2 * time.Second) // consumer assigned before the send
	m := primitive.NewMessage("Delay", []byte("later"))
	m.WithDelayTimeLevel(2)
	sent := time.Now()
	if _, err := p.SendSync(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-arrived:
		if d := at.Sub(sent); d < 4500*time.Millisecond || d > 15*time.Second {
			t.Fatalf("delay level 2 arrived after %v, want about 5s", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("delayed message never arrived")
	}
}
