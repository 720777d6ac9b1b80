package proxy

import (
	"context"
	"strings"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/rocketry-mq/rocketry/internal/metrics"
)

// Option configures optional Server features.
type Option func(*Server)

// WithMetrics records rocketmq_rpc_latency{protocol_type="grpc", request_code=<method>,
// response_code=<apache.rocketmq.v2.Code name>} for every RPC on node (a NodeProxy node, which
// also exports rocketmq_proxy_up). Streams record their end: ReceiveMessage with the status
// element it sent, Telemetry with its gRPC status.
func WithMetrics(node *metrics.Node) Option { return func(s *Server) { s.metrics = node } }

// statusHolder is implemented by every unary response of the service.
type statusHolder interface{ GetStatus() *pb.Status }

func method(full string) string { return full[strings.LastIndexByte(full, '/')+1:] }

func (s *Server) unaryMetrics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	code := "OK"
	switch {
	case err != nil:
		code = status.Code(err).String()
	default:
		if sh, ok := resp.(statusHolder); ok {
			code = sh.GetStatus().GetCode().String()
		}
	}
	s.metrics.ObserveRPC(metrics.ProtocolGRPC, method(info.FullMethod), code, time.Since(start))
	return resp, err
}

// statusRecorder remembers the last status element a ReceiveMessage stream sent.
type statusRecorder struct {
	grpc.ServerStream
	code pb.Code
}

func (r *statusRecorder) SendMsg(m any) error {
	if rm, ok := m.(*pb.ReceiveMessageResponse); ok && rm.GetStatus() != nil {
		r.code = rm.GetStatus().GetCode()
	}
	return r.ServerStream.SendMsg(m)
}

func (s *Server) streamMetrics(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	rec := &statusRecorder{ServerStream: ss}
	err := handler(srv, rec)
	code := rec.code.String()
	if err != nil || rec.code == pb.Code_CODE_UNSPECIFIED {
		code = status.Code(err).String()
	}
	s.metrics.ObserveRPC(metrics.ProtocolGRPC, method(info.FullMethod), code, time.Since(start))
	return err
}
