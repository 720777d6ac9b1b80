package proxy

import (
	"context"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// consumerCall validates the common part of Ack/ChangeInvisibleDuration/ForwardToDLQ.
func (s *Server) consumerCall(ctx context.Context, g, t *pb.Resource) (group, topic string, err error) {
	c, err := s.begin(ctx)
	if err != nil {
		return "", "", err
	}
	if group, err = validateGroup(g); err != nil {
		return "", "", err
	}
	if topic, err = validateTopic(t, false); err != nil {
		return "", "", err
	}
	if err := s.authorize(c, auth.ResourceTopic, topic, auth.ActionSub); err != nil {
		return "", "", err
	}
	if err := s.authorize(c, auth.ResourceGroup, group, auth.ActionSub); err != nil {
		return "", "", err
	}
	return group, topic, nil
}

// AckMessage acknowledges popped messages; each entry gets its own status and the top status
// is the single distinct code or MULTIPLE_RESULTS.
func (s *Server) AckMessage(ctx context.Context, req *pb.AckMessageRequest) (*pb.AckMessageResponse, error) {
	group, topic, err := s.consumerCall(ctx, req.GetGroup(), req.GetTopic())
	if err != nil {
		return &pb.AckMessageResponse{Status: toStatus(err)}, nil
	}
	if len(req.GetEntries()) == 0 {
		return &pb.AckMessageResponse{Status: &pb.Status{Code: pb.Code_BAD_REQUEST, Message: "no entries to ack"}}, nil
	}
	entries := make([]*pb.AckMessageResultEntry, 0, len(req.GetEntries()))
	for _, e := range req.GetEntries() {
		st := okStatus()
		if h, err := s.brokerHandle(e.GetReceiptHandle()); err != nil {
			st = toStatus(err)
		} else if err := s.backend.Ack(ctx, &AckRequest{Group: group, Topic: topic, Handle: h}); err != nil {
			st = toStatus(err)
		}
		entries = append(entries, &pb.AckMessageResultEntry{MessageId: e.GetMessageId(), ReceiptHandle: e.GetReceiptHandle(), Status: st})
	}
	return &pb.AckMessageResponse{
		Status:  aggregate(entries, func(e *pb.AckMessageResultEntry) *pb.Status { return e.Status }),
		Entries: entries,
	}, nil
}

// ChangeInvisibleDuration renews a handle; on success the response carries the new handle
// (the old one is stale), on failure it echoes the old one.
func (s *Server) ChangeInvisibleDuration(ctx context.Context, req *pb.ChangeInvisibleDurationRequest) (*pb.ChangeInvisibleDurationResponse, error) {
	fail := func(err error) (*pb.ChangeInvisibleDurationResponse, error) {
		return &pb.ChangeInvisibleDurationResponse{Status: toStatus(err), ReceiptHandle: req.GetReceiptHandle()}, nil
	}
	group, topic, err := s.consumerCall(ctx, req.GetGroup(), req.GetTopic())
	if err != nil {
		return fail(err)
	}
	if req.GetInvisibleDuration() == nil {
		return fail(statusErrorf(pb.Code_ILLEGAL_INVISIBLE_TIME, "invisible duration is required"))
	}
	d := req.GetInvisibleDuration().AsDuration()
	// Only the maximum applies here (Java ChangeInvisibleDurationActivity): push consumers
	// nack with the backoff from Settings (1 s, 5 s, ...) and 0 means "deliver again now".
	// The receive minimum (MinInvisible) bounds ReceiveMessage alone.
	if err := s.cfg.validateInvisible(d, 0); err != nil {
		return fail(err)
	}
	h, err := s.brokerHandle(req.GetReceiptHandle())
	if err != nil {
		return fail(err)
	}
	raw, err := s.backend.ChangeInvisible(ctx, &ChangeInvisibleRequest{Group: group, Topic: topic, Handle: h, InvisibleTime: d})
	if err != nil {
		return fail(err)
	}
	h.Raw = raw
	return &pb.ChangeInvisibleDurationResponse{Status: okStatus(), ReceiptHandle: encodeHandle(h)}, nil
}

// ForwardMessageToDeadLetterQueue moves a popped message to %DLQ%<group> (push consumers of
// other SDKs call it when client-side attempts are exhausted).
func (s *Server) ForwardMessageToDeadLetterQueue(ctx context.Context, req *pb.ForwardMessageToDeadLetterQueueRequest) (*pb.ForwardMessageToDeadLetterQueueResponse, error) {
	group, topic, err := s.consumerCall(ctx, req.GetGroup(), req.GetTopic())
	if err != nil {
		return &pb.ForwardMessageToDeadLetterQueueResponse{Status: toStatus(err)}, nil
	}
	h, err := s.brokerHandle(req.GetReceiptHandle())
	if err != nil {
		return &pb.ForwardMessageToDeadLetterQueueResponse{Status: toStatus(err)}, nil
	}
	err = s.backend.ForwardToDLQ(ctx, &ForwardDLQRequest{
		Group: group, Topic: topic, Handle: h, MessageID: req.GetMessageId(),
		ReconsumeTimes: max(req.GetDeliveryAttempt()-1, 0), MaxReconsumeTimes: req.GetMaxDeliveryAttempts(),
	})
	return &pb.ForwardMessageToDeadLetterQueueResponse{Status: toStatus(err)}, nil
}

// brokerHandle decodes a client-facing handle; an auto-renewed one is taken out of renewal and
// replaced by its newest broker handle (the client's operation ends the renewal).
func (s *Server) brokerHandle(clientHandle string) (Handle, error) {
	if h, ok := s.renew.take(clientHandle); ok {
		return h, nil
	}
	return decodeHandle(clientHandle)
}
