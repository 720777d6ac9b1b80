package proxy

import (
	"context"
	"hash/fnv"
	"strconv"
	"testing"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rocketry-mq/rocketry/internal/logging"
)

// refWritableQueues is the previous queue selection (a fresh slice of every writable queue per
// send); kept as the reference the allocation-free walk must match.
func refWritableQueues(r *TopicRoute) []queueRef {
	var out []queueRef
	for _, b := range r.Brokers {
		if b.Perm&PermWrite == 0 {
			continue
		}
		for id := 0; id < b.WriteQueues; id++ {
			out = append(out, queueRef{b.Name, int32(id)})
		}
	}
	return out
}

func refFIFOQueue(qs []queueRef, group string) queueRef {
	h := fnv.New32a()
	h.Write([]byte(group))
	return qs[h.Sum32()%uint32(len(qs))]
}

func testRoutes() []*TopicRoute {
	return []*TopicRoute{
		{Brokers: []BrokerQueues{{Name: "a", WriteQueues: 8, Perm: PermRead | PermWrite}}},
		{Brokers: []BrokerQueues{
			{Name: "a", WriteQueues: 4, Perm: PermRead | PermWrite},
			{Name: "b", WriteQueues: 3, Perm: PermRead},
			{Name: "c", WriteQueues: 0, Perm: PermWrite},
			{Name: "d", WriteQueues: 5, Perm: PermWrite},
		}},
		{Brokers: []BrokerQueues{{Name: "a", WriteQueues: 2, Perm: PermRead}}},
	}
}

// TestFIFOQueueMapping pins the queue a send picks (round robin position and FIFO message group
// hash) to the previous implementation: FIFO ordering depends on the mapping staying stable.
func TestFIFOQueueMapping(t *testing.T) {
	groups := []string{"", "g", "order-1", "order-2", "ümlaut", "a-much-longer-message-group-name-0123456789"}
	for i := 0; i < 200; i++ {
		groups = append(groups, "group-"+strconv.Itoa(i))
	}
	for ri, r := range testRoutes() {
		qs := refWritableQueues(r)
		if n := writableCount(r); n != len(qs) {
			t.Fatalf("route %d: writableCount %d, want %d", ri, n, len(qs))
		}
		for i := range qs {
			if got := writableAt(r, i); got != qs[i] {
				t.Fatalf("route %d: writableAt(%d) = %v, want %v", ri, i, got, qs[i])
			}
		}
		if len(qs) == 0 {
			continue
		}
		for _, g := range groups {
			if got, want := writableAt(r, fifoIndex(g, len(qs))), refFIFOQueue(qs, g); got != want {
				t.Fatalf("route %d group %q: %v, want %v", ri, g, got, want)
			}
		}
	}
}

// BenchmarkPickQueue: choosing the queue of one send, before (slice of all writable queues) and
// after (walk of the route).
//
//	go test ./internal/proxy -run '^$' -bench PickQueue -benchmem
func BenchmarkPickQueue(b *testing.B) {
	r := testRoutes()[1]
	b.Run("ref-slice", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			qs := refWritableQueues(r)
			_ = qs[i%len(qs)]
			_ = refFIFOQueue(qs, "order-1")
		}
	})
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			n := writableCount(r)
			_ = writableAt(r, i%n)
			_ = writableAt(r, fifoIndex("order-1", n))
		}
	})
}

// sinkBackend is the in-memory backend with a Send that stores nothing, so a benchmark
// measures the proxy's own per-send work.
type sinkBackend struct{ *memBackend }

func (sinkBackend) Send(_ context.Context, req *SendRequest) (*SendResult, error) {
	return &SendResult{QueueID: req.QueueID, QueueOffset: 7, CommitLogOffset: 4096}, nil
}

// BenchmarkSendMessageHandler: the SendMessage handler for one go5-shaped 1 KiB message with
// go5's request metadata, no gRPC transport and a backend that stores nothing: the proxy's own
// allocations and CPU per send.
//
//	go test ./internal/proxy -run '^$' -bench SendMessageHandler -benchmem
func BenchmarkSendMessageHandler(b *testing.B) {
	mb := newMemBackend()
	mb.addTopic("bench", MessageTypeNormal, 8)
	s, err := New(testConfig(), sinkBackend{mb}, logging.Discard())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	md := metadata.Pairs(
		"x-mq-client-id", "host@1234@0@abcdef", "x-mq-language", "GOLANG", "x-mq-protocol", "v2",
		"x-mq-client-version", "5.1.2", "x-mq-date-time", "20261126T005200Z",
		"x-mq-request-id", "5e1f3b6a-0000-4000-8000-000000000000", "x-mq-namespace", "",
	)
	ctx := metadata.NewIncomingContext(context.Background(), md)
	body := make([]byte, 1024)
	req := &pb.SendMessageRequest{Messages: []*pb.Message{{
		Topic: &pb.Resource{Name: "bench"},
		SystemProperties: &pb.SystemProperties{
			MessageId: "0A0B0C0D00002A9F000000000000000A", BornHost: "10.0.0.1",
			BornTimestamp: timestamppb.New(time.Now()), MessageType: pb.MessageType_NORMAL,
			BodyEncoding: pb.Encoding_IDENTITY,
		},
		Body: body,
	}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := s.SendMessage(ctx, req)
		if err != nil || resp.GetStatus().GetCode() != pb.Code_OK {
			b.Fatalf("%v %v", resp.GetStatus(), err)
		}
	}
}
