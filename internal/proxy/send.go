package proxy

import (
	"context"
	"errors"
	"hash/fnv"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// queueRef is one writable queue.
type queueRef struct {
	broker string
	id     int32
}

// writableQueues flattens the route's writable queues in route order.
func writableQueues(r *TopicRoute) []queueRef {
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

// fifoQueue maps a message group to a queue: stable for a stable route.
func fifoQueue(qs []queueRef, group string) queueRef {
	h := fnv.New32a()
	h.Write([]byte(group))
	return qs[h.Sum32()%uint32(len(qs))]
}

// SendMessage validates and stores messages; the proxy picks the queue (FIFO: by message
// group; otherwise round robin). Each entry echoes the client's message id.
func (s *Server) SendMessage(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	entries, err := s.sendMessage(ctx, req)
	if err != nil {
		return &pb.SendMessageResponse{Status: toStatus(err)}, nil
	}
	return &pb.SendMessageResponse{Status: aggregate(entries, func(e *pb.SendResultEntry) *pb.Status { return e.Status }), Entries: entries}, nil
}

// aggregate returns the single distinct status of a batch, or MULTIPLE_RESULTS.
func aggregate[T any](entries []T, st func(T) *pb.Status) *pb.Status {
	if len(entries) == 0 {
		return okStatus()
	}
	first := st(entries[0])
	for _, e := range entries[1:] {
		if st(e).GetCode() != first.GetCode() {
			return &pb.Status{Code: pb.Code_MULTIPLE_RESULTS, Message: "multiple results"}
		}
	}
	return &pb.Status{Code: first.GetCode(), Message: first.GetMessage()}
}

func (s *Server) sendMessage(ctx context.Context, req *pb.SendMessageRequest) ([]*pb.SendResultEntry, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	msgs := req.GetMessages()
	if len(msgs) == 0 {
		return nil, statusErrorf(pb.Code_MESSAGE_CORRUPTED, "no message to send")
	}
	for _, m := range msgs[1:] {
		if m.GetTopic().GetName() != msgs[0].GetTopic().GetName() {
			return nil, statusErrorf(pb.Code_MESSAGE_CORRUPTED, "topic in message is not same")
		}
	}
	topic, err := validateTopic(msgs[0].GetTopic(), true)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, auth.ResourceTopic, topic, auth.ActionPub); err != nil {
		return nil, err
	}
	r, err := s.route(ctx, topic)
	if err != nil {
		return nil, err
	}
	qs := writableQueues(r)
	if len(qs) == 0 {
		return nil, statusErrorf(pb.Code_FORBIDDEN, "topic %s has no writable queue", topic)
	}
	topicType, err := s.topicType(ctx, topic)
	if err != nil {
		if !errors.Is(err, ErrTopicNotFound) {
			return nil, err
		}
		topicType = MessageTypeNormal
	}

	entries := make([]*pb.SendResultEntry, 0, len(msgs))
	for _, m := range msgs {
		entries = append(entries, s.sendOne(ctx, c, m, topic, topicType, qs))
	}
	return entries, nil
}

func (s *Server) sendOne(ctx context.Context, c *call, m *pb.Message, topic string, topicType MessageType, qs []queueRef) *pb.SendResultEntry {
	id := m.GetSystemProperties().GetMessageId()
	fail := func(err error) *pb.SendResultEntry {
		return &pb.SendResultEntry{Status: toStatus(err), MessageId: id}
	}
	out, err := s.cfg.buildMessage(m, topic, s.now())
	if err != nil {
		return fail(err)
	}
	if topicType != MessageTypeUnspecified && !topicType.Accepts(out.typ) {
		return fail(statusErrorf(pb.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
			"current message type %s does not match topic %s message type %s", out.typ, topic, topicType))
	}
	var q queueRef
	if out.typ == MessageTypeFIFO {
		q = fifoQueue(qs, out.group)
	} else {
		q = qs[s.rr.Add(1)%uint64(len(qs))]
	}
	if out.typ == MessageTypeTransaction {
		// Check-backs for this topic can now be routed to this producer even if it did not
		// list the topic in its settings.
		s.clients.addTopic(c.clientID, topic)
	}
	res, err := s.backend.Send(ctx, &SendRequest{Broker: q.broker, QueueID: q.id, ProducerGroup: topic, Message: out.msg})
	if err != nil {
		return fail(err)
	}
	e := &pb.SendResultEntry{
		Status:    &pb.Status{Code: sendStatusCode(res.Status), Message: "OK"},
		MessageId: out.clientID,
		Offset:    res.QueueOffset,
	}
	if e.Status.Code != pb.Code_OK {
		e.Status.Message = "stored, but not persisted/replicated in time"
	}
	if out.typ == MessageTypeTransaction {
		e.TransactionId = encodeTxnID(txnRef{
			Broker: q.broker, CommitLogOffset: res.CommitLogOffset,
			TranStateTableOffset: res.QueueOffset, TransactionID: res.TransactionID,
		})
	}
	return e
}
