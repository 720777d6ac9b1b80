package admin

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/testcluster"
)

// TestTwoBrokers runs the admin operations on a cluster of two brokers (the testcluster's
// broker-a plus a broker-b registered with the same NameServer): creation and deletion reach
// both, describe and consume stats merge both, cluster list shows both.
func TestTwoBrokers(t *testing.T) {
	ctx, c, a := clusterAdmin(t, 60*time.Second)
	b2, b2Addr := startBrokerB(ctx, t, c, a)
	if bs, err := a.ClusterList(ctx); err != nil || len(bs) != 2 || bs[0].Name != "broker-a" || bs[1].Name != "broker-b" || bs[1].Error != "" {
		t.Fatalf("cluster list %+v %v", bs, err)
	}

	res, err := a.CreateTopic(ctx, TopicSpec{Name: "spread", Queues: 2})
	if err != nil || len(res.Brokers) != 2 || !res.Routed {
		t.Fatalf("create %+v %v", res, err)
	}
	if _, err := a.CreateGroup(ctx, GroupSpec{Name: "spread-g", MaxAttempts: 16}); err != nil {
		t.Fatal(err)
	}
	for i, target := range []struct {
		name, addr string
	}{{"broker-a", c.BrokerAddr()}, {"broker-b", b2Addr}, {"broker-b", b2Addr}} {
		props := map[string]string{message.PropertyKeys: "k" + strconv.Itoa(i), message.PropertyUniqKey: message.NewUniqID()}
		if _, err := a.send(ctx, target.addr, target.name, int32(i%2), &message.Message{Topic: "spread", Body: []byte("x"), Properties: props}); err != nil {
			t.Fatal(err)
		}
	}
	// Consume queues are built asynchronously after the append: wait for all three.
	var d *TopicDetail
	for ctx.Err() == nil {
		if d, err = a.DescribeTopic(ctx, "spread"); err != nil || d.Messages == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || len(d.Brokers) != 2 || len(d.Queues) != 4 || d.Messages != 3 {
		t.Fatalf("describe %+v %v", d, err)
	}
	if ms, err := a.GetMessagesByKey(ctx, "spread", "k2", 0); err != nil || len(ms) != 1 || ms[0].Broker != "broker-b" {
		t.Fatalf("key lookup across brokers %+v %v", ms, err)
	}
	rs, err := a.ResetOffset(ctx, "spread-g", "spread", ResetTarget{Earliest: true})
	if err != nil || len(rs) != 4 {
		t.Fatalf("reset %+v %v", rs, err)
	}
	g, err := a.DescribeGroup(ctx, "spread-g")
	if err != nil || g.Lag != 3 {
		t.Fatalf("group over two brokers %+v %v", g, err)
	}
	gs, err := a.ListGroups(ctx, "", false)
	if err != nil || len(gs) != 1 || len(gs[0].Brokers) != 2 {
		t.Fatalf("groups %+v %v", gs, err)
	}
	if del, err := a.DeleteTopic(ctx, "spread", ""); err != nil || len(del.Brokers) != 2 {
		t.Fatalf("delete %+v %v", del, err)
	}
	if _, ok := b2.Topics.Get("spread"); ok {
		t.Fatal("broker-b still has the deleted topic")
	}
}

// clusterAdmin starts a standalone test cluster (broker-a) and an Admin on its NameServer,
// with a context that ends after timeout (all closed at the end of the test).
func clusterAdmin(t *testing.T, timeout time.Duration) (context.Context, *testcluster.Cluster, *Admin) {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	a, err := New(Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return ctx, c, a
}

// startBrokerB starts a second broker, "broker-b", registered with c's NameServer (stopped
// at the end of the test) and waits until cluster list shows both brokers. It returns the
// broker and its address.
func startBrokerB(ctx context.Context, t *testing.T, c *testcluster.Cluster, a *Admin) (*broker.Broker, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bc := broker.DefaultConfig()
	bc.BrokerName = "broker-b"
	bc.DataDir = t.TempDir()
	bc.NamesrvAddrs = []string{c.NameServerAddr()}
	bc.AdvertiseAddr = "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	bc.MappedFileSizeCommitLog = 16 << 20
	b2, err := broker.NewWithListener(bc, logging.Discard(), ln)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b2.Run(context.Background()) }()
	t.Cleanup(func() {
		b2.Close()
		if err := <-done; err != nil {
			t.Errorf("broker-b: %v", err)
		}
	})
	for {
		if bs, err := a.ClusterList(ctx); err == nil && len(bs) == 2 {
			return b2, bc.AdvertiseAddr
		}
		select {
		case <-ctx.Done():
			t.Fatal("broker-b never registered")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestDescribeGroupCountsBrokersWithoutOffsets (QA R7H-7): the group consumes CT on broker-a
// (committed offset there) and never touched broker-b; broker-b's waiting messages still
// count in the group's lag.
func TestDescribeGroupCountsBrokersWithoutOffsets(t *testing.T) {
	ctx, c, a := clusterAdmin(t, 60*time.Second)
	_, b2Addr := startBrokerB(ctx, t, c, a)
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "CT", Queues: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateGroup(ctx, GroupSpec{Name: "CG", MaxAttempts: 16}); err != nil {
		t.Fatal(err)
	}
	send := func(addr, name string, n int) {
		for range n {
			m := &message.Message{Topic: "CT", Body: []byte("x"), Properties: map[string]string{message.PropertyUniqKey: message.NewUniqID()}}
			if _, err := a.send(ctx, addr, name, 0, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(c.BrokerAddr(), "broker-a", 3)
	send(b2Addr, "broker-b", 4)
	if _, err := a.invoke(ctx, c.BrokerAddr(), remoting.UpdateConsumerOffset, map[string]string{
		"consumerGroup": "CG", "topic": "CT", "queueId": "0", "commitOffset": "1", "bname": "broker-a"}, nil); err != nil {
		t.Fatal(err)
	}
	// Sends are answered before the consume queues are written (dispatch): wait for it.
	for {
		d, err := a.DescribeGroup(ctx, "CG")
		if err != nil {
			t.Fatal(err)
		}
		if d.Lag == 2+4 && len(d.Queues) == 2 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lag %d over %d queues, want 6 over 2 (broker-b's 4 messages count): %+v", d.Lag, len(d.Queues), d.Queues)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestBrokerConfigGetAndUpdate(t *testing.T) {
	ctx, _, a := clusterAdmin(t, 30*time.Second)
	cfgs, err := a.GetBrokerConfig(ctx, "", "")
	if err != nil || len(cfgs) != 1 || cfgs[0].Broker != "broker-a" || cfgs[0].Config["brokerClusterName"] != "DefaultCluster" {
		t.Fatalf("get %+v %v", cfgs, err)
	}
	if _, err := a.UpdateBrokerConfig(ctx, "", "broker-a", map[string]string{"autoCreateTopicEnable": "false"}); err != nil {
		t.Fatal(err)
	}
	if cfgs, err = a.GetBrokerConfig(ctx, "", "broker-a"); err != nil || cfgs[0].Config["autoCreateTopicEnable"] != "false" {
		t.Fatalf("after update %v %v", cfgs[0].Config["autoCreateTopicEnable"], err)
	}
	// Paths and addresses are not writable remotely.
	if _, err := a.UpdateBrokerConfig(ctx, "", "", map[string]string{"storePathRootDir": "/tmp/x"}); err == nil || !strings.Contains(err.Error(), "NO_PERMISSION") {
		t.Fatalf("storePathRootDir update: %v", err)
	}
	if _, err := a.GetBrokerConfig(ctx, "", "nope"); err == nil {
		t.Fatal("unknown broker accepted")
	}
}
