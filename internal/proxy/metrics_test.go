package proxy

import (
	"context"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"strings"
	"testing"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/metrics"
)

func TestRPCMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	node := reg.Node(metrics.NodeInfo{Cluster: "c", Type: metrics.NodeProxy, ID: "p"})
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 1)
	cfg := testConfig()
	s, err := New(cfg, b, logging.Discard(), WithMetrics(node))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(t.Context()) }()
	defer func() { s.Close(); <-done }()
	c := dial(t, s.Addr().String(), false)
	c.QueryRoute(cctx(t, "c", 3*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "T"}})
	c.QueryRoute(cctx(t, "c", 3*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "missing"}})
	receiveAll(t, c, &pb.ReceiveMessageRequest{
		Group: &pb.Resource{Name: "g"}, MessageQueue: &pb.MessageQueue{Topic: &pb.Resource{Name: "T"}, Broker: &pb.Broker{Name: memBroker}},
		BatchSize: 1, InvisibleDuration: durationpb.New(10 * time.Second),
	}, 2*time.Second)
	// A Telemetry stream the client cancels ends normally: response_code OK, not gRPC's
	// "Unknown" (R7H-14).
	_, stream := settingsReply(t, c, "tele", producerSettings("T"))
	stream.CloseSend()
	ctx, cancel := context.WithCancel(cctx(t, "tele2", 3*time.Second))
	if st, err := c.Telemetry(ctx); err == nil {
		st.Send(&pb.TelemetryCommand{Command: &pb.TelemetryCommand_Settings{Settings: producerSettings("T")}})
		st.Recv()
	}
	cancel()
	waitTelemetry := time.Now().Add(5 * time.Second)
	for !strings.Contains(rpcSeries(t, reg), "request_code=Telemetry") && time.Now().Before(waitTelemetry) {
		time.Sleep(10 * time.Millisecond)
	}
	// A receive whose client goes away while it is parked (a consumer stopped with Ctrl-C
	// closes its connection) ends normally too, not INTERNAL_ERROR (QA R10X-10).
	gone, err := grpc.Dial(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := pb.NewMessagingServiceClient(gone).ReceiveMessage(cctx(t, "c", 5*time.Second), &pb.ReceiveMessageRequest{
		Group: &pb.Resource{Name: "g"}, MessageQueue: &pb.MessageQueue{Topic: &pb.Resource{Name: "T"}, Broker: &pb.Broker{Name: memBroker}},
		BatchSize: 1, InvisibleDuration: durationpb.New(10 * time.Second),
	}); err == nil {
		time.AfterFunc(200*time.Millisecond, func() { gone.Close() })
		_, _ = rs.Recv()
	}
	gone.Close()
	waitReceive := time.Now().Add(5 * time.Second)
	for rpcCount(t, reg, "ReceiveMessage") < 2 && time.Now().Before(waitReceive) {
		time.Sleep(10 * time.Millisecond)
	}
	all := rpcSeries(t, reg)
	if strings.Contains(all, "request_code=ReceiveMessage,response_code=INTERNAL_ERROR") {
		t.Errorf("a cancelled receive counted as INTERNAL_ERROR: %s", all)
	}
	for _, want := range []string{"request_code=QueryRoute,response_code=OK", "request_code=QueryRoute,response_code=TOPIC_NOT_FOUND",
		"request_code=ReceiveMessage,response_code=MESSAGE_NOT_FOUND", "request_code=Telemetry,response_code=OK"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing series %q in %s", want, all)
		}
	}
	if strings.Contains(all, "response_code=Unknown") {
		t.Errorf("gRPC status name as response_code: %s", all)
	}
}

// rpcSeries renders the label sets of rocketmq_rpc_latency, ";"-separated.
func rpcSeries(t *testing.T, reg *metrics.Registry) string {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, mf := range mfs {
		if mf.GetName() != metrics.NameRPCLatency {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, lp := range m.GetLabel() {
				l = append(l, lp.GetName()+"="+lp.GetValue())
			}
			labels = append(labels, strings.Join(l, ","))
		}
	}
	return strings.Join(labels, ";")
}

// rpcCount sums the observations of rocketmq_rpc_latency for one request code.
func rpcCount(t *testing.T, reg *metrics.Registry, code string) uint64 {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != metrics.NameRPCLatency {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "request_code" && lp.GetValue() == code {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}
