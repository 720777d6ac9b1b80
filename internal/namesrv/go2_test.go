package namesrv

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func init() { rlog.SetLogLevel("fatal") }

// fakeBroker is a remoting server that accepts go2's HEART_BEAT and answers sends with
// SUCCESS, counting them per queue: enough to prove the producer resolved its route
// through the NameServer and reached the registered broker address.
type fakeBroker struct {
	srv   *remoting.Server
	addr  string
	sends atomic.Int64
}

func startFakeBroker(t *testing.T) *fakeBroker {
	t.Helper()
	fb := &fakeBroker{srv: remoting.NewServer(remoting.ServerConfig{}, discard())}
	fb.srv.Handle(remoting.HeartBeat, func(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
		return remoting.NewResponse(remoting.Success, "")
	})
	send := func(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
		n := fb.sends.Add(1)
		qid := req.ExtString("queueId")
		if qid == "" {
			qid = req.ExtString("e") // SEND_MESSAGE_V2 short keys
		}
		r := remoting.NewResponse(remoting.Success, "")
		r.SetExt("msgId", fmt.Sprintf("7F00000100002A9F%016X", n))
		r.SetExt("queueId", qid)
		r.SetExt("queueOffset", strconv.FormatInt(n-1, 10))
		return r
	}
	fb.srv.Handle(remoting.SendMessage, send)
	fb.srv.Handle(remoting.SendMessageV2, send)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb.addr = ln.Addr().String()
	go fb.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fb.srv.Shutdown(ctx)
	})
	return fb
}

func TestGo2AdminAndProducerAgainstNameServer(t *testing.T) {
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	brokerA := startFakeBroker(t)
	cli := newClient(t)
	// broker-a: master (reachable) + a secondary; broker-b: only a secondary, so producers
	// must not publish to it; topic Hidden is on broker-b only.
	w := topics(1, "TopicTest", "Other")
	tc := w.TopicConfigTable["TopicTest"]
	tc.WriteQueueNums, tc.ReadQueueNums = 3, 3
	w.TopicConfigTable["TopicTest"] = tc
	regA := RegisterRequest{ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: brokerA.addr, HAServerAddr: "127.0.0.1:1", Topics: w}
	if _, err := RegisterBroker(tctx(t), cli, ns, regA); err != nil {
		t.Fatal(err)
	}
	slaveA := regA
	slaveA.BrokerID, slaveA.BrokerAddr = 1, "127.0.0.1:2"
	if _, err := RegisterBroker(tctx(t), cli, ns, slaveA); err != nil {
		t.Fatal(err)
	}
	// broker-b registers as master, then its address moves to id 1 (demoted): it stays in
	// the route but without a master.
	regB := brokerReq("DefaultCluster", "broker-b", "127.0.0.1:3", 0, "TopicTest", "Hidden")
	if _, err := RegisterBroker(tctx(t), cli, ns, regB); err != nil {
		t.Fatal(err)
	}
	regB.BrokerID = 1
	if _, err := RegisterBroker(tctx(t), cli, ns, regB); err != nil {
		t.Fatal(err)
	}

	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{ns})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	list, err := adm.FetchAllTopicList(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(list.TopicList)
	if !slices.Equal(list.TopicList, []string{"Hidden", "Other", "TopicTest"}) {
		t.Fatalf("go2 FetchAllTopicList = %v", list.TopicList)
	}
	mqs, err := adm.FetchPublishMessageQueues(tctx(t), "TopicTest")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mq := range mqs {
		got = append(got, fmt.Sprintf("%s/%d", mq.BrokerName, mq.QueueId))
	}
	if want := []string{"broker-a/0", "broker-a/1", "broker-a/2"}; !slices.Equal(got, want) {
		t.Fatalf("go2 publish queues = %v, want %v (broker-b has no master)", got, want)
	}
	clusters, err := adm.FetchClusterList("TopicTest")
	if err != nil || !slices.Equal(clusters, []string{"DefaultCluster"}) {
		t.Fatalf("go2 FetchClusterList = %v %v", clusters, err)
	}

	p, err := producer.NewDefaultProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{ns})),
		producer.WithGroupName("rocketry_namesrv_test"),
		producer.WithRetry(0),
		producer.WithSendMsgTimeout(5*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	for i := range 6 {
		res, err := p.SendSync(tctx(t), primitive.NewMessage("TopicTest", []byte(fmt.Sprintf("m%d", i))))
		if err != nil {
			t.Fatalf("go2 SendSync: %v", err)
		}
		if res.Status != primitive.SendOK || res.MessageQueue.BrokerName != "broker-a" {
			t.Fatalf("go2 send result %v", res)
		}
	}
	if n := brokerA.sends.Load(); n != 6 {
		t.Fatalf("fake broker saw %d sends, want 6", n)
	}
	// A topic nobody serves: go2 gets TOPIC_NOT_EXIST from the route lookup (and falls
	// back to TBW102, which nobody has either), so the send fails without reaching a broker.
	if _, err := p.SendSync(tctx(t), primitive.NewMessage("NoSuchTopic", []byte("x"))); err == nil {
		t.Fatal("send to a topic without route succeeded")
	}
	if n := brokerA.sends.Load(); n != 6 {
		t.Fatalf("send without route reached the broker (%d sends)", n)
	}
}
