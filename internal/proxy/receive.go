package proxy

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// ReceiveMessage long-polls one broker (the request queue's broker name) within the caller's
// deadline and streams: a status element (OK, then the messages; or MESSAGE_NOT_FOUND), then a
// trailing delivery_timestamp.
func (s *Server) ReceiveMessage(req *pb.ReceiveMessageRequest, stream pb.MessagingService_ReceiveMessageServer) error {
	ctx := stream.Context()
	msgs, invisible, clientID, err := s.receive(ctx, req)
	var st *pb.Status
	switch {
	case err != nil:
		st = toStatus(err)
	case len(msgs) == 0:
		st = &pb.Status{Code: pb.Code_MESSAGE_NOT_FOUND, Message: "no new message"}
	default:
		st = okStatus()
	}
	if err := stream.Send(&pb.ReceiveMessageResponse{Content: &pb.ReceiveMessageResponse_Status{Status: st}}); err != nil {
		s.release(req, msgs)
		return err
	}
	for i, m := range msgs {
		bh := Handle{Broker: m.broker, QueueID: m.msg.QueueID, QueueOffset: m.msg.QueueOffset, CommitLogOffset: m.msg.CommitLogOffset, Raw: m.msg.ReceiptHandle}
		h := encodeHandle(bh)
		if req.GetAutoRenew() {
			now := s.now()
			s.renew.add(h, &renewEntry{group: wrapNamespace(req.GetGroup().GetResourceNamespace(), req.GetGroup().GetName()), topic: m.msg.Topic, clientID: clientID, cur: bh,
				invisible: invisible, expires: now.Add(invisible), started: now})
		}
		out := toPBMessage(m.msg, h, invisible)
		if err := stream.Send(&pb.ReceiveMessageResponse{Content: &pb.ReceiveMessageResponse_Message{Message: out}}); err != nil {
			// The messages stay invisible and come back after their invisible time; none of
			// them is renewed, the client never saw their handles.
			if req.GetAutoRenew() {
				for _, m := range msgs {
					s.renew.take(encodeHandle(Handle{Broker: m.broker, QueueID: m.msg.QueueID, QueueOffset: m.msg.QueueOffset, CommitLogOffset: m.msg.CommitLogOffset, Raw: m.msg.ReceiptHandle}))
				}
			}
			s.release(req, msgs[i:])
			return err
		}
	}
	return stream.Send(&pb.ReceiveMessageResponse{Content: &pb.ReceiveMessageResponse_DeliveryTimestamp{DeliveryTimestamp: timestamppb.New(s.now())}})
}

// ReleaseDelay is the invisible time given to received messages the client never got (its
// stream ended first): they come back after it rather than after the whole invisible time,
// as Apache's proxy nacks what it cannot write (DEFAULT_NACK_INVISIBLE_TIME, QA R10S-1).
const ReleaseDelay = time.Second

// release makes msgs visible again after ReleaseDelay, in the background (a failure leaves
// them to their invisible time: nothing is lost).
func (s *Server) release(req *pb.ReceiveMessageRequest, msgs []popped) {
	if len(msgs) == 0 {
		return
	}
	group, gerr := validateGroup(req.GetGroup())
	topic, terr := validateTopic(req.GetMessageQueue().GetTopic(), false)
	if gerr != nil || terr != nil {
		return
	}
	go func() {
		for _, m := range msgs {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := s.backend.ChangeInvisible(ctx, &ChangeInvisibleRequest{Group: group, Topic: topic, InvisibleTime: ReleaseDelay,
				Handle: Handle{Broker: m.broker, QueueID: m.msg.QueueID, QueueOffset: m.msg.QueueOffset, CommitLogOffset: m.msg.CommitLogOffset, Raw: m.msg.ReceiptHandle}})
			cancel()
			if err != nil {
				s.logger.Debug("release of a message the client never received failed; it returns after its invisible time",
					"group", group, "topic", topic, "queueOffset", m.msg.QueueOffset, "err", err)
			}
		}
	}()
}

type popped struct {
	broker string
	msg    *Message
}

// pollBudget is how long the broker may hold the request: the request's
// long_polling_timeout when set (the SDK's awaitDuration; Apache's proxy honours it too),
// else MaxLongPolling; never more than MaxLongPolling nor than the caller's remaining
// deadline minus ReceiveMargin; never negative.
func (s *Server) pollBudget(ctx context.Context, req *pb.ReceiveMessageRequest) time.Duration {
	d := s.cfg.MaxLongPolling
	if lp, ok := longPollingTimeout(req); ok {
		d = min(lp, d)
	}
	if dl, ok := ctx.Deadline(); ok {
		d = min(time.Until(dl)-s.cfg.ReceiveMargin, d)
	}
	return max(d, 0)
}

func (s *Server) receive(ctx context.Context, req *pb.ReceiveMessageRequest) ([]popped, time.Duration, string, error) {
	msgs, invisible, c, err := s.receive0(ctx, req)
	id := ""
	if c != nil {
		id = c.clientID
	}
	return msgs, invisible, id, err
}

func (s *Server) receive0(ctx context.Context, req *pb.ReceiveMessageRequest) ([]popped, time.Duration, *call, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	group, err := validateGroup(req.GetGroup())
	if err != nil {
		return nil, 0, c, err
	}
	topic, err := validateTopic(req.GetMessageQueue().GetTopic(), false)
	if err != nil {
		return nil, 0, c, err
	}
	if err := s.authorize(c, auth.ResourceTopic, topic, auth.ActionSub); err != nil {
		return nil, 0, c, err
	}
	if err := s.authorize(c, auth.ResourceGroup, group, auth.ActionSub); err != nil {
		return nil, 0, c, err
	}
	fe := req.GetFilterExpression()
	expr, filterType := "*", "TAG"
	switch fe.GetType() {
	case pb.FilterType_FILTER_TYPE_UNSPECIFIED, pb.FilterType_TAG:
		if expr, err = parseTagFilter(fe.GetExpression()); err != nil {
			return nil, 0, c, err
		}
	case pb.FilterType_SQL:
		// Evaluated by the broker (enablePropertyFilter); a selector that does not parse, or
		// a broker without property filtering, answers SUBSCRIPTION_PARSE_FAILED ->
		// ILLEGAL_FILTER_EXPRESSION.
		expr, filterType = fe.GetExpression(), "SQL92"
		if strings.TrimSpace(expr) == "" {
			return nil, 0, c, statusErrorf(pb.Code_ILLEGAL_FILTER_EXPRESSION, "SQL92 expression is empty")
		}
	default:
		return nil, 0, c, statusErrorf(pb.Code_ILLEGAL_FILTER_EXPRESSION, "filter type %s is not supported", fe.GetType())
	}
	invisible := s.cfg.DefaultInvisible
	if req.InvisibleDuration != nil {
		invisible = req.GetInvisibleDuration().AsDuration()
	}
	if err := s.cfg.validateInvisible(invisible, s.cfg.MinInvisible); err != nil {
		return nil, 0, c, err
	}
	batch := req.GetBatchSize()
	if batch <= 0 {
		return nil, 0, c, statusErrorf(pb.Code_BAD_REQUEST, "batch size must be positive")
	}
	batch = min(batch, maxBatchSize)

	// The client's queue names a broker; it is a preference, as in Apache's receive queue
	// selector: when the proxy's current route has no readable queue on that broker (unknown
	// to this proxy, dropped from the route because it died, or not readable), another
	// readable broker of the route serves the receive.
	r, err := s.route(ctx, c, topic)
	if err != nil {
		return nil, 0, c, err
	}
	broker := readableBroker(r, req.GetMessageQueue().GetBroker().GetName(), &s.receiveRR)
	if broker == "" {
		return nil, 0, c, statusErrorf(pb.Code_FORBIDDEN, "no readable queue")
	}
	gc, err := s.backend.GroupConfig(ctx, group)
	if err != nil {
		return nil, 0, c, err
	}
	if !gc.ConsumeEnable {
		return nil, 0, c, statusErrorf(pb.Code_FORBIDDEN, "consumer group %s is disabled", group)
	}
	pr := &PopRequest{
		Broker: broker, Group: group, Topic: topic, QueueID: -1, MaxMessages: batch,
		InvisibleTime: invisible, PollTime: s.pollBudget(ctx, req), FilterType: filterType, FilterExpr: expr, Order: gc.Orderly,
		AttemptID: attemptID(req),
	}
	res, err := s.backend.Pop(ctx, pr)
	if err != nil && errors.Is(err, ErrNotSent) {
		// The broker refused the connection (it died; the route does not know yet): nothing
		// was popped there, so another readable broker serves this receive, as sends do
		// (QA R8R-3).
		others := &TopicRoute{Topic: r.Topic}
		for _, b := range r.Brokers {
			if b.Name != broker {
				others.Brokers = append(others.Brokers, b)
			}
		}
		if alt := readableBroker(others, "", &s.receiveRR); alt != "" {
			broker, pr.Broker = alt, alt
			res, err = s.backend.Pop(ctx, pr)
		}
	}
	if err != nil {
		return nil, 0, c, err
	}
	out := make([]popped, 0, len(res.Messages))
	for _, m := range res.Messages {
		out = append(out, popped{broker: broker, msg: m})
	}
	return out, invisible, c, nil
}

// readableBroker returns want when the route has readable queues on it, else the next
// readable broker of the route in round-robin order (rr), or "" when there is none.
func readableBroker(r *TopicRoute, want string, rr *atomic.Uint32) string {
	readable := func(b BrokerQueues) bool { return b.Perm&PermRead != 0 && b.ReadQueues > 0 }
	n := 0
	for _, b := range r.Brokers {
		if readable(b) {
			if b.Name == want {
				return want
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	k := int(rr.Add(1) % uint32(n))
	for _, b := range r.Brokers {
		if readable(b) {
			if k == 0 {
				return b.Name
			}
			k--
		}
	}
	return ""
}

// attemptIDField is ReceiveMessageRequest.attempt_id (apache/rocketmq-apis service.proto,
// field 8, string), newer than the v5.1.2 stubs the proxy is built on: it arrives as an
// unknown field.
const attemptIDField protowire.Number = 8

// attemptID reads attempt_id from req's unknown fields ("" when absent or malformed). A
// Node.js / Java 5.x push consumer resends a failed receive with the same attempt id, and
// a FIFO queue then hands the same messages out again at once (pop.PopRequest.AttemptID).
func attemptID(req *pb.ReceiveMessageRequest) string {
	v, _ := unknownBytes(req, attemptIDField)
	return string(v)
}

// unknownBytes returns the value of the length-delimited field num among m's unknown fields
// (fields newer than the stubs; the last occurrence wins). ok is false when the field is
// absent or the unknown fields are malformed.
func unknownBytes(m proto.Message, num protowire.Number) (val []byte, ok bool) {
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, false
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil, false
			}
			val, ok = v, true
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return nil, false
		}
		b = b[l:]
	}
	return val, ok
}

// longPollingTimeoutField is ReceiveMessageRequest.long_polling_timeout (a
// google.protobuf.Duration), newer than the v5.1.2 stubs: Node.js 1.0.8 and Java 5.x send it
// (their awaitDuration); go5 v5.1.2 does not, and its deadline bounds the poll instead.
const longPollingTimeoutField protowire.Number = 7

// longPollingTimeout reads long_polling_timeout from the request's unknown fields.
func longPollingTimeout(req *pb.ReceiveMessageRequest) (time.Duration, bool) {
	v, ok := unknownBytes(req, longPollingTimeoutField)
	if !ok {
		return 0, false
	}
	var dur durationpb.Duration
	if err := proto.Unmarshal(v, &dur); err != nil || !dur.IsValid() || dur.AsDuration() < 0 {
		return 0, false
	}
	return dur.AsDuration(), true
}
