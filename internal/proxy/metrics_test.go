package proxy

import (
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
	all := strings.Join(labels, ";")
	for _, want := range []string{"request_code=QueryRoute,response_code=OK", "request_code=QueryRoute,response_code=TOPIC_NOT_FOUND", "request_code=ReceiveMessage,response_code=MESSAGE_NOT_FOUND"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing series %q in %s", want, all)
		}
	}
}
