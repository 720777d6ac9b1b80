package proxy

import (
	"context"
	"errors"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// queueRef is one writable queue.
type queueRef struct {
	broker string
	id     int32
}

// writableCount is the number of writable queues of r: for each broker with write permission,
// in route order, ids 0..WriteQueues-1.
func writableCount(r *TopicRoute) int {
	n := 0
	for _, b := range r.Brokers {
		if b.Perm&PermWrite != 0 && b.WriteQueues > 0 {
			n += b.WriteQueues
		}
	}
	return n
}

// writableAt returns the i-th writable queue in the order writableCount counts them
// (0 <= i < writableCount(r)). It walks the brokers instead of materialising the list, so a
// send allocates nothing to pick its queue.
func writableAt(r *TopicRoute, i int) queueRef {
	for _, b := range r.Brokers {
		if b.Perm&PermWrite == 0 || b.WriteQueues <= 0 {
			continue
		}
		if i < b.WriteQueues {
			return queueRef{b.Name, int32(i)}
		}
		i -= b.WriteQueues
	}
	panic("proxy: writableAt index out of range")
}

// writableSpread returns the i-th writable queue in an order that alternates brokers (the
// first queue of each broker, then the second of each, ...), so consecutive sends, and a
// client's consecutive attempts at one message, go to different brokers (QA R8J-3: with the
// broker-sorted order three attempts could all hit the same dead broker). skip, when not "",
// names a broker to leave out (nil when no other broker is writable).
func writableSpread(r *TopicRoute, i int, skip string) (queueRef, bool) {
	ok := func(b *BrokerQueues) bool { return b.Perm&PermWrite != 0 && b.WriteQueues > 0 && b.Name != skip }
	n := 0
	for j := range r.Brokers {
		if ok(&r.Brokers[j]) {
			n++
		}
	}
	if n == 0 {
		return queueRef{}, false
	}
	k := i % n // the k-th eligible broker (no allocation on the send path)
	for j := range r.Brokers {
		b := &r.Brokers[j]
		if !ok(b) {
			continue
		}
		if k == 0 {
			return queueRef{b.Name, int32((i / n) % b.WriteQueues)}, true
		}
		k--
	}
	return queueRef{}, false // unreachable: n counted the same brokers
}

// FNV-1a, 32 bits (hash/fnv New32a), inlined to hash a string without copying it.
const (
	fnv32Offset = 2166136261
	fnv32Prime  = 16777619
)

// fifoIndex maps a message group to one of n queues: FNV-1a of the group modulo n, stable for
// a stable route (the mapping FIFO ordering relies on; pinned by TestFIFOQueueMapping).
func fifoIndex(group string, n int) int {
	h := uint32(fnv32Offset)
	for i := 0; i < len(group); i++ {
		h ^= uint32(group[i])
		h *= fnv32Prime
	}
	return int(h % uint32(n))
}

// SendMessage validates and stores messages; the proxy picks the queue (by message group when
// one is set, whatever the type; otherwise round robin). Each entry echoes the client's message id.
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
	r, err := s.route(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	nq := writableCount(r)
	if nq == 0 {
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
		entries = append(entries, s.sendOne(ctx, c, m, topic, topicType, r, nq))
	}
	return entries, nil
}

func (s *Server) sendOne(ctx context.Context, c *call, m *pb.Message, topic string, topicType MessageType, r *TopicRoute, nq int) *pb.SendResultEntry {
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
	rr := 0
	// A message group picks its queue whatever the type (Apache's SendMessageQueueSelector
	// uses the group when set): a delayed message with a group lands on the group's queue.
	grouped := out.group != ""
	if grouped {
		q = writableAt(r, fifoIndex(out.group, nq))
	} else {
		rr = int(s.rr.Add(1) % uint64(nq))
		q, _ = writableSpread(r, rr, "")
	}
	if out.typ == MessageTypeTransaction {
		// Check-backs for this topic can now be routed to this producer even if it did not
		// list the topic in its settings.
		s.clients.addTopic(c.clientID, topic)
	}
	res, err := s.backend.Send(ctx, &SendRequest{Broker: q.broker, QueueID: q.id, ProducerGroup: topic, Message: out.msg})
	if err != nil && errors.Is(err, ErrNotSent) && !grouped {
		// The broker refused the connection (it died and the route does not know yet): the
		// message never left, so another broker may take it. Messages of a group stay on
		// their queue: moving a group would break its order.
		if alt, ok := writableSpread(r, rr, q.broker); ok {
			s.logger.Debug("send retried on another broker", "topic", topic, "from", q.broker, "to", alt.broker, "err", err)
			q = alt
			res, err = s.backend.Send(ctx, &SendRequest{Broker: q.broker, QueueID: q.id, ProducerGroup: topic, Message: out.msg})
		}
	}
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
	} else {
		// Apache's broker answers every send with transactionId = the message's unique key
		// and the proxy passes it on (QA R7G-5).
		e.TransactionId = res.TransactionID
	}
	if res.RecallHandle != "" {
		setRecallHandle(e, res.RecallHandle)
	}
	return e
}
