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
	"github.com/rocketry-mq/rocketry/internal/testcluster"
)

// TestTwoBrokers runs the admin operations on a cluster of two brokers (the testcluster's
// broker-a plus a broker-b registered with the same NameServer): creation and deletion reach
// both, describe and consume stats merge both, cluster list shows both.
func TestTwoBrokers(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

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
	defer func() {
		b2.Close()
		if err := <-done; err != nil {
			t.Errorf("broker-b: %v", err)
		}
	}()

	a, err := New(Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for ctx.Err() == nil {
		if bs, err := a.ClusterList(ctx); err == nil && len(bs) == 2 {
			if bs[0].Name != "broker-a" || bs[1].Name != "broker-b" || bs[1].Error != "" {
				t.Fatalf("cluster list %+v", bs)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
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
	}{{"broker-a", c.BrokerAddr()}, {"broker-b", bc.AdvertiseAddr}, {"broker-b", bc.AdvertiseAddr}} {
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

func TestBrokerConfigGetAndUpdate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := New(Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
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
