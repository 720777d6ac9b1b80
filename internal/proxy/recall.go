package proxy

import (
	"context"
	"fmt"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/rocketry-mq/rocketry/internal/broker/timer"
	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// RecallMessage (rocketmq-apis service.proto, RocketMQ 5.3.2) cancels a delay message that is
// not delivered yet with the recall_handle its send answered (SendResultEntry field 5). The
// generated stubs this server is built on (golang/v5 v5.1.2) predate both, while the Node.js
// SDK 1.0.8 calls them: the two messages are described here from the published proto, served
// as dynamic messages, and the method is added to the service the stubs register.
//
//	message RecallMessageRequest  { Resource topic = 1; string recall_handle = 2; }
//	message RecallMessageResponse { Status status = 1; string message_id = 2; }

// sendResultRecallHandle is SendResultEntry.recall_handle's field number.
const sendResultRecallHandle = 5

// setRecallHandle stores handle in e's field 5 as an unknown field: clients generated from
// the current proto read it, older ones skip it.
func setRecallHandle(e *pb.SendResultEntry, handle string) {
	b := protowire.AppendTag(nil, sendResultRecallHandle, protowire.BytesType)
	b = protowire.AppendString(b, handle)
	e.ProtoReflect().SetUnknown(append(e.ProtoReflect().GetUnknown(), b...))
}

var recallReqDesc, recallRespDesc = recallDescriptors()

func recallDescriptors() (protoreflect.MessageDescriptor, protoreflect.MessageDescriptor) {
	str := func(name string, num int32, json string) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), JsonName: proto.String(json),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()}
	}
	msg := func(name string, num int32, json, typ string) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), JsonName: proto.String(json),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
			TypeName: proto.String(typ)}
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("rocketry/apache/rocketmq/v2/recall.proto"),
		Package:    proto.String("apache.rocketmq.v2"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{pb.File_definition_proto.Path()},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("RecallMessageRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				msg("topic", 1, "topic", ".apache.rocketmq.v2.Resource"), str("recall_handle", 2, "recallHandle")}},
			{Name: proto.String("RecallMessageResponse"), Field: []*descriptorpb.FieldDescriptorProto{
				msg("status", 1, "status", ".apache.rocketmq.v2.Status"), str("message_id", 2, "messageId")}},
		},
	}
	f, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
	if err != nil {
		panic(fmt.Sprintf("proxy: recall message descriptors: %v", err)) // a programming error
	}
	return f.Messages().ByName("RecallMessageRequest"), f.Messages().ByName("RecallMessageResponse")
}

// messagingServiceDesc is the generated service plus RecallMessage.
func messagingServiceDesc() *grpc.ServiceDesc {
	d := pb.MessagingService_ServiceDesc
	d.Methods = append(append([]grpc.MethodDesc(nil), d.Methods...), grpc.MethodDesc{
		MethodName: "RecallMessage",
		Handler:    recallHandler,
	})
	return &d
}

const recallFullMethod = "/apache.rocketmq.v2.MessagingService/RecallMessage"

func recallHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := dynamicpb.NewMessage(recallReqDesc)
	if err := dec(in); err != nil {
		return nil, err
	}
	call := func(ctx context.Context, req any) (any, error) {
		return srv.(*Server).recallMessage(ctx, req.(*dynamicpb.Message)), nil
	}
	if interceptor == nil {
		return call(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: recallFullMethod}, call)
}

// recallMessage serves RecallMessage: the topic must be valid and the caller may publish to
// it; the handle names the broker to ask. Business errors come back in the Status.
func (s *Server) recallMessage(ctx context.Context, req *dynamicpb.Message) *dynamicpb.Message {
	fields := recallReqDesc.Fields()
	var topicRes *pb.Resource
	if req.Has(fields.ByNumber(1)) {
		raw, err := proto.Marshal(req.Get(fields.ByNumber(1)).Message().Interface())
		if err == nil {
			topicRes = &pb.Resource{}
			if err := proto.Unmarshal(raw, topicRes); err != nil {
				topicRes = nil
			}
		}
	}
	handle := req.Get(fields.ByNumber(2)).String()
	id, err := s.recall(ctx, topicRes, handle)
	resp := dynamicpb.NewMessage(recallRespDesc)
	rf := recallRespDesc.Fields()
	st := okStatus()
	if err != nil {
		st = toStatus(err)
	} else {
		resp.Set(rf.ByNumber(2), protoreflect.ValueOfString(id))
	}
	raw, _ := proto.Marshal(st)
	sm := dynamicpb.NewMessage(rf.ByNumber(1).Message())
	if err := proto.Unmarshal(raw, sm); err == nil {
		resp.Set(rf.ByNumber(1), protoreflect.ValueOfMessage(sm))
	}
	return resp
}

func (s *Server) recall(ctx context.Context, topicRes *pb.Resource, handle string) (string, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return "", err
	}
	topic, err := validateTopic(topicRes, false)
	if err != nil {
		return "", err
	}
	if err := s.authorize(c, auth.ResourceTopic, topic, auth.ActionPub); err != nil {
		return "", err
	}
	// As Apache's ProducerProcessor.recallMessage: only a topic that takes DELAY messages
	// (with its topic message type check on, the default), and an undecodable handle is an
	// INTERNAL_SERVER_ERROR "recall handle is invalid".
	typ, err := s.topicType(ctx, topic)
	if err != nil {
		return "", err
	}
	if typ != MessageTypeUnspecified && !typ.Accepts(MessageTypeDelay) {
		return "", statusErrorf(pb.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
			"current message type DELAY does not match topic %s message type %s", topic, typ)
	}
	h, err := timer.DecodeRecallHandle(handle)
	if err != nil {
		return "", statusErrorf(pb.Code_INTERNAL_SERVER_ERROR, "recall handle is invalid")
	}
	return s.backend.Recall(ctx, &RecallRequest{Broker: h.Broker, ProducerGroup: topic, Topic: topic, Handle: handle})
}
