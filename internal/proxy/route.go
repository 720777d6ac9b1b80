package proxy

import (
	"context"
	"errors"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// route returns the topic's route, creating the topic first when it is unknown and
// auto-creation is on (NORMAL, AutoCreateQueues queues). With authentication on, only a
// caller allowed to publish to the topic creates it (QA R8K-12: a route lookup by a
// subscribe-only user, or a mistyped consumer topic, must not create topics).
func (s *Server) route(ctx context.Context, c *call, topic string) (*TopicRoute, error) {
	r, err := s.backend.QueryRoute(ctx, topic)
	if err == nil || !errors.Is(err, ErrTopicNotFound) || !s.autoCreateTopic() {
		return r, err
	}
	if s.authorize(c, auth.ResourceTopic, topic, auth.ActionPub) != nil {
		return r, err
	}
	n := s.cfg.AutoCreateQueues
	if err := s.backend.CreateTopic(ctx, TopicConfig{
		Name: topic, ReadQueues: n, WriteQueues: n, Perm: PermRead | PermWrite, MessageType: MessageTypeNormal,
	}); err != nil {
		return nil, err
	}
	s.logger.Info("topic auto-created (or routed to the brokers already holding it)", "topic", topic, "queues", n)
	return s.backend.QueryRoute(ctx, topic)
}

// AutoCreatePolicy is an optional Backend interface: a backend inside a broker (local mode)
// answers with the broker's live autoCreateTopicEnable, so a change at run time (admin broker
// config set) applies to gRPC clients too (QA F19); Config.AutoCreateTopic is then unused.
type AutoCreatePolicy interface {
	AutoCreateTopic() bool
}

func (s *Server) autoCreateTopic() bool {
	if p, ok := s.backend.(AutoCreatePolicy); ok {
		return p.AutoCreateTopic()
	}
	return s.cfg.AutoCreateTopic
}

// topicType returns the topic's message type; a topic whose config cannot be read is treated
// as NORMAL (RocketMQ's attribute default) only when the route exists.
func (s *Server) topicType(ctx context.Context, topic string) (MessageType, error) {
	tc, err := s.backend.TopicConfig(ctx, topic)
	if err != nil {
		return MessageTypeUnspecified, err
	}
	return tc.MessageType, nil
}

func acceptTypes(t MessageType) []pb.MessageType {
	switch t {
	case MessageTypeMixed:
		return []pb.MessageType{pb.MessageType_NORMAL, pb.MessageType_FIFO, pb.MessageType_DELAY, pb.MessageType_TRANSACTION}
	case MessageTypeNormal, MessageTypeFIFO, MessageTypeDelay, MessageTypeTransaction:
		return []pb.MessageType{pb.MessageType(t)}
	default:
		return []pb.MessageType{pb.MessageType_MESSAGE_TYPE_UNSPECIFIED}
	}
}

// routeQueues expands a route into gRPC queues: per broker (in route order) ids 0..n-1 with
// n = max(read, write); ids below both counts are READ_WRITE, others READ or WRITE only;
// brokers without permission get NONE. The order is stable across calls.
func routeQueues(r *TopicRoute, topic *pb.Resource, eps *pb.Endpoints, types []pb.MessageType) []*pb.MessageQueue {
	var out []*pb.MessageQueue
	for _, b := range r.Brokers {
		broker := &pb.Broker{Name: b.Name, Id: 0, Endpoints: eps}
		readable, writable := b.Perm&PermRead != 0, b.Perm&PermWrite != 0
		n := max(b.ReadQueues, b.WriteQueues)
		for id := 0; id < n; id++ {
			rd := readable && id < b.ReadQueues
			w := writable && id < b.WriteQueues
			perm := pb.Permission_NONE
			switch {
			case rd && w:
				perm = pb.Permission_READ_WRITE
			case rd:
				perm = pb.Permission_READ
			case w:
				perm = pb.Permission_WRITE
			}
			out = append(out, &pb.MessageQueue{
				Topic: topic, Id: int32(id), Permission: perm,
				Broker: broker, AcceptMessageTypes: types,
			})
		}
	}
	return out
}

// QueryRoute returns the topic's queues, all pointing at this proxy's advertised endpoints.
func (s *Server) QueryRoute(ctx context.Context, req *pb.QueryRouteRequest) (*pb.QueryRouteResponse, error) {
	queues, err := s.queryRoute(ctx, req)
	if err != nil {
		return &pb.QueryRouteResponse{Status: toStatus(err)}, nil
	}
	return &pb.QueryRouteResponse{Status: okStatus(), MessageQueues: queues}, nil
}

func (s *Server) queryRoute(ctx context.Context, req *pb.QueryRouteRequest) ([]*pb.MessageQueue, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	topic, err := validateTopic(req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, auth.ResourceTopic, topic, auth.ActionPub); err != nil {
		if err2 := s.authorize(c, auth.ResourceTopic, topic, auth.ActionSub); err2 != nil {
			_, bare := withoutNamespace(topic) // the name the policies match (R8K-5)
			return nil, statusErrorf(pb.Code_FORBIDDEN, "no permission to access Topic %s", bare)
		}
	}
	r, err := s.route(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	typ, err := s.topicType(ctx, topic)
	if err != nil {
		if !errors.Is(err, ErrTopicNotFound) {
			return nil, err
		}
		typ = MessageTypeNormal
	}
	res := &pb.Resource{Name: req.GetTopic().GetName(), ResourceNamespace: req.GetTopic().GetResourceNamespace()} // as asked
	queues := routeQueues(r, res, s.advertised(req.GetEndpoints()), acceptTypes(typ))
	if len(queues) == 0 {
		return nil, statusErrorf(pb.Code_TOPIC_NOT_FOUND, "topic %s has no queues", topic)
	}
	return queues, nil
}

// QueryAssignment serves push consumers of the other official SDKs: one assignment per
// readable broker (queue id -1) for normal groups, one per readable queue for FIFO groups.
func (s *Server) QueryAssignment(ctx context.Context, req *pb.QueryAssignmentRequest) (*pb.QueryAssignmentResponse, error) {
	as, err := s.queryAssignment(ctx, req)
	if err != nil {
		return &pb.QueryAssignmentResponse{Status: toStatus(err)}, nil
	}
	return &pb.QueryAssignmentResponse{Status: okStatus(), Assignments: as}, nil
}

func (s *Server) queryAssignment(ctx context.Context, req *pb.QueryAssignmentRequest) ([]*pb.Assignment, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	topic, err := validateTopic(req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	group, err := validateGroup(req.GetGroup())
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, auth.ResourceTopic, topic, auth.ActionSub); err != nil {
		return nil, err
	}
	if err := s.authorize(c, auth.ResourceGroup, group, auth.ActionSub); err != nil {
		return nil, err
	}
	r, err := s.route(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	fifo := false
	if gc, err := s.backend.GroupConfig(ctx, group); err == nil {
		fifo = gc.Orderly
	} else if !errors.Is(err, ErrGroupNotFound) {
		return nil, err
	}
	typ, err := s.topicType(ctx, topic)
	if err != nil {
		typ = MessageTypeNormal
	}
	eps := s.advertised(req.GetEndpoints())
	res := &pb.Resource{Name: req.GetTopic().GetName(), ResourceNamespace: req.GetTopic().GetResourceNamespace()} // as asked
	var out []*pb.Assignment
	for _, b := range r.Brokers {
		if b.Perm&PermRead == 0 || b.ReadQueues == 0 {
			continue
		}
		broker := &pb.Broker{Name: b.Name, Id: 0, Endpoints: eps}
		if !fifo {
			out = append(out, &pb.Assignment{MessageQueue: &pb.MessageQueue{
				Topic: res, Id: -1, Permission: pb.Permission_READ_WRITE, Broker: broker, AcceptMessageTypes: acceptTypes(typ),
			}})
			continue
		}
		for id := 0; id < b.ReadQueues; id++ {
			out = append(out, &pb.Assignment{MessageQueue: &pb.MessageQueue{
				Topic: res, Id: int32(id), Permission: pb.Permission_READ_WRITE, Broker: broker, AcceptMessageTypes: acceptTypes(typ),
			}})
		}
	}
	if len(out) == 0 {
		return nil, statusErrorf(pb.Code_FORBIDDEN, "no readable queue")
	}
	return out, nil
}
