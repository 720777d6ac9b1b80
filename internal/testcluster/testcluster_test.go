package testcluster

import (
	"context"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/admin"
	"github.com/rocketry-mq/rocketry/internal/standalone"
)

func TestStartRestartAndAdmin(t *testing.T) {
	c := Start(t, Options{Configure: func(cfg *standalone.Config) { cfg.Broker.BrokerName = "tc-broker" }})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := admin.New(admin.Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := a.ClusterList(ctx)
	a.Close()
	if err != nil || len(bs) != 1 || bs[0].Name != "tc-broker" || bs[0].Addr != c.BrokerAddr() {
		t.Fatalf("cluster list %+v %v", bs, err)
	}
	if _, err := (func() (*admin.CreateTopicResult, error) {
		a, _ := admin.New(admin.Config{NameServers: []string{c.NameServerAddr()}}, nil)
		defer a.Close()
		return a.CreateTopic(ctx, admin.TopicSpec{Name: "tc-topic", Queues: 1})
	})(); err != nil {
		t.Fatal(err)
	}
	c.Restart()
	a, err = admin.New(admin.Config{NameServers: []string{c.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.DescribeTopic(ctx, "tc-topic"); err != nil {
		t.Fatalf("topic lost across restart: %v", err)
	}
	if c.HTTPAddr() != "" || c.GRPCEndpoint() == "" || c.DataDir() == "" {
		t.Fatalf("addresses: http %q grpc %q dir %q", c.HTTPAddr(), c.GRPCEndpoint(), c.DataDir())
	}
}
