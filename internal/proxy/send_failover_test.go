package proxy

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// twoBrokers routes every topic over two brokers, "alive" and "dead"; sends to "dead" fail as
// a refused connection does (nothing sent).
type twoBrokers struct {
	*memBackend
	mu   sync.Mutex
	sent map[string]int // broker -> sends accepted
	dead map[string]int // broker -> refused sends
}

func (b *twoBrokers) QueryRoute(ctx context.Context, topic string) (*TopicRoute, error) {
	r, err := b.memBackend.QueryRoute(ctx, topic)
	if err != nil {
		return nil, err
	}
	q := r.Brokers[0]
	return &TopicRoute{Topic: topic, Brokers: []BrokerQueues{
		{Name: "alive", ReadQueues: q.ReadQueues, WriteQueues: q.WriteQueues, Perm: q.Perm},
		{Name: "dead", ReadQueues: q.ReadQueues, WriteQueues: q.WriteQueues, Perm: q.Perm},
	}}, nil
}

func (b *twoBrokers) Send(ctx context.Context, req *SendRequest) (*SendResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if req.Broker == "dead" {
		b.dead[req.Broker]++
		return nil, fmt.Errorf("cluster: 127.0.0.1:1: %w: %w: connection refused", ErrUnavailable, ErrNotSent)
	}
	b.sent[req.Broker]++
	return &SendResult{Status: SendOK, QueueID: req.QueueID}, nil
}

// TestSendFailsOverFromARefusedBroker (QA R8J-3): a normal message whose broker refuses the
// connection is sent to another broker of the route; a FIFO message is not moved (its group's
// order lives in its queue); round robin alternates brokers.
func TestSendFailsOverFromARefusedBroker(t *testing.T) {
	b := &twoBrokers{memBackend: newMemBackend(), sent: map[string]int{}, dead: map[string]int{}}
	b.addTopic("N", MessageTypeNormal, 4)
	b.addTopic("F", MessageTypeFIFO, 4)
	s := startProxy(t, b, nil)
	c := dial(t, s.Addr().String(), false)
	for i := range 10 {
		m := baseMsg()
		m.Topic = &pb.Resource{Name: "N"}
		m.SystemProperties.MessageId = fmt.Sprintf("N%d", i)
		r, err := c.SendMessage(cctx(t, "c", 5*time.Second), &pb.SendMessageRequest{Messages: []*pb.Message{m}})
		if err != nil || r.GetStatus().GetCode() != pb.Code_OK {
			t.Fatalf("normal send %d: %v %v", i, r.GetStatus(), err)
		}
	}
	b.mu.Lock()
	alive, refused := b.sent["alive"], b.dead["dead"]
	b.mu.Unlock()
	if alive != 10 || refused < 4 || refused > 6 {
		t.Fatalf("10 normal sends: %d stored on alive, %d refused by dead (want 10 and about 5: brokers alternate)", alive, refused)
	}
	// FIFO: the groups hashed to the dead broker fail instead of moving.
	failed := 0
	for i := range 20 {
		m := baseMsg()
		m.Topic = &pb.Resource{Name: "F"}
		m.SystemProperties.MessageType = pb.MessageType_FIFO
		m.SystemProperties.MessageGroup = strp(fmt.Sprintf("g%d", i))
		m.SystemProperties.MessageId = fmt.Sprintf("F%d", i)
		r, _ := c.SendMessage(cctx(t, "c", 5*time.Second), &pb.SendMessageRequest{Messages: []*pb.Message{m}})
		if r.GetStatus().GetCode() != pb.Code_OK {
			failed++
		}
	}
	if failed == 0 || failed == 20 {
		t.Fatalf("FIFO sends: %d of 20 failed, want only the groups of the dead broker", failed)
	}
}

func (b *twoBrokers) Pop(ctx context.Context, req *PopRequest) (*PopResult, error) {
	if req.Broker == "dead" {
		return nil, fmt.Errorf("cluster: 127.0.0.1:1: %w: %w: connection refused", ErrUnavailable, ErrNotSent)
	}
	alive := *req
	alive.Broker = memBroker
	return b.memBackend.Pop(ctx, &alive)
}

// TestReceiveFailsOverFromARefusedBroker (QA R8R-3): a receive aimed at a broker that refuses
// the connection is served by another readable broker of the route.
func TestReceiveFailsOverFromARefusedBroker(t *testing.T) {
	b := &twoBrokers{memBackend: newMemBackend(), sent: map[string]int{}, dead: map[string]int{}}
	b.addTopic("R", MessageTypeNormal, 2)
	for i := range 3 {
		b.memBackend.Send(context.Background(), &SendRequest{Broker: memBroker, Message: &Message{Topic: "R", Body: []byte{byte(i)}, Properties: map[string]string{PropUniqKey: fmt.Sprint("R", i)}}})
	}
	s := startProxy(t, b, nil)
	c := dial(t, s.Addr().String(), false)
	resps := receiveAll(t, c, &pb.ReceiveMessageRequest{
		Group: &pb.Resource{Name: "g"}, MessageQueue: &pb.MessageQueue{Topic: &pb.Resource{Name: "R"}, Broker: &pb.Broker{Name: "dead"}},
		BatchSize: 8, InvisibleDuration: durationpb.New(10 * time.Second),
	}, 3*time.Second)
	got := 0
	for _, r := range resps {
		if r.GetMessage() != nil {
			got++
		}
		if st := r.GetStatus(); st != nil && st.GetCode() != pb.Code_OK && st.GetCode() != pb.Code_MESSAGE_NOT_FOUND {
			t.Fatalf("receive aimed at the dead broker: %v", st)
		}
	}
	if got != 3 {
		t.Fatalf("received %d of 3 messages via the live broker", got)
	}
}

// TestGroupPicksTheQueueWhateverTheType: a message group picks the queue for every type, as
// Apache's SendMessageQueueSelector does: delayed messages of one group land on one queue.
func TestGroupPicksTheQueueWhateverTheType(t *testing.T) {
	b := newMemBackend()
	b.addTopic("M", MessageTypeMixed, 8)
	s := startProxy(t, b, nil)
	c := dial(t, s.Addr().String(), false)
	for i := range 6 {
		m := baseMsg()
		m.Topic = &pb.Resource{Name: "M"}
		m.SystemProperties.MessageType = pb.MessageType_FIFO // go5's label for group + delay
		m.SystemProperties.MessageGroup = strp("order-7")
		m.SystemProperties.DeliveryTimestamp = timestamppb.New(time.Now().Add(time.Minute))
		m.SystemProperties.MessageId = fmt.Sprintf("M%d", i)
		r, err := c.SendMessage(cctx(t, "c", 5*time.Second), &pb.SendMessageRequest{Messages: []*pb.Message{m}})
		if err != nil || r.GetStatus().GetCode() != pb.Code_OK {
			t.Fatalf("send %d: %v %v", i, r.GetStatus(), err)
		}
	}
	qs := b.sentQueues()
	if len(qs) != 6 || qs[0] != qs[5] {
		t.Fatalf("queues of one group's delayed messages: %v, want one queue", qs)
	}
}
