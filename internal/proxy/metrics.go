package proxy

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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
		code = grpcErrCode(err)
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
		code = grpcErrCode(err)
		if err != nil && ss.Context().Err() != nil {
			// The client left (cancelled, deadline, disconnect): the stream's write failed
			// because of it, which grpcErrCode counts as a normal end (QA R10X-10).
			code = pb.Code_OK.String()
		}
	}
	s.metrics.ObserveRPC(metrics.ProtocolGRPC, method(info.FullMethod), code, time.Since(start))
	return err
}

// grpcErrCode names the apache.rocketmq.v2.Code for an RPC's or stream's Go error, so that
// response_code always carries a Code name (QA R7H-14): a stream the client closed or
// cancelled ended normally (OK); gRPC statuses map to the Code the clients treat alike.
func grpcErrCode(err error) string {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return pb.Code_OK.String()
	}
	switch status.Code(err) {
	case codes.Canceled:
		return pb.Code_OK.String()
	case codes.InvalidArgument:
		return pb.Code_BAD_REQUEST.String()
	case codes.Unauthenticated:
		return pb.Code_UNAUTHORIZED.String()
	case codes.PermissionDenied:
		return pb.Code_FORBIDDEN.String()
	case codes.ResourceExhausted:
		return pb.Code_TOO_MANY_REQUESTS.String()
	case codes.DeadlineExceeded:
		return pb.Code_PROXY_TIMEOUT.String()
	case codes.Unimplemented:
		return pb.Code_UNSUPPORTED.String()
	default:
		return pb.Code_INTERNAL_ERROR.String()
	}
}
