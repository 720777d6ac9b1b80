package admin

import (
	"context"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/testcluster"
)

// TestDescribeGroupCountsBrokersWithoutOffsets (QA R7H-7): the group consumes CT on broker-a
// (committed offset there) and never touched broker-b; broker-b's waiting messages still
// count in the group's lag.
func TestDescribeGroupCountsBrokersWithoutOffsets(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bcfg := broker.DefaultConfig()
	bcfg.ListenAddr, bcfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1"
	bcfg.DataDir, bcfg.BrokerName = t.TempDir(), "broker-b"
	bcfg.NamesrvAddrs = []string{c.NameServerAddr()}
	bcfg.MappedFileSizeCommitLog = 16 << 20
	bb, err := broker.New(bcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bb.Run(runCtx) }()
	defer func() { stop(); <-done }()

	a, err := New(Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for {
		bs, err := a.ClusterList(ctx)
		if err == nil && len(bs) == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("second broker never registered: %v %v", bs, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
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
	send(bb.Addr(), "broker-b", 4)
	if _, err := a.invoke(ctx, c.BrokerAddr(), remoting.UpdateConsumerOffset, map[string]string{
		"consumerGroup": "CG", "topic": "CT", "queueId": "0", "commitOffset": "1", "bname": "broker-a"}, nil); err != nil {
		t.Fatal(err)
	}
	// Sends are answered before the consume queues are written (dispatch): wait for it.
	var d *GroupDetail
	for {
		if d, err = a.DescribeGroup(ctx, "CG"); err != nil {
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
