package broker

import (
	"context"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// An admin that creates a topic or a group gets its answer only once the NameServers serve
// the new route (topic, and the group's %RETRY% topic): a client started right after the
// command must find it, not wait for the next 30 s registration (QA finding F5).
func TestAdminCreateRegistersBeforeAnswering(t *testing.T) {
	c := startCluster(t, func(cfg *Config) { cfg.RegisterNameServerPeriod = time.Minute })
	cli := remoting.NewClient(remoting.DefaultClientConfig(), testLogger(t))
	t.Cleanup(func() { _ = cli.Close() })
	invoke := func(code int32, ext map[string]string, body []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := cli.Invoke(ctx, c.b.ListenAddr().String(), remoting.NewRequest(code, ext, body))
		if err != nil || r.Code != remoting.Success {
			t.Fatalf("code %d: %v %+v", code, err, r)
		}
	}
	routed := func(topic string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := namesrv.GetRouteInfo(ctx, cli, c.nsAddr, topic)
		return err == nil && len(r.QueueDatas) > 0
	}

	invoke(remoting.UpdateAndCreateTopic, map[string]string{
		"topic": "FreshTopic", "readQueueNums": "4", "writeQueueNums": "4", "perm": "6",
	}, nil)
	if !routed("FreshTopic") {
		t.Fatal("topic route missing right after UPDATE_AND_CREATE_TOPIC answered")
	}
	invoke(remoting.UpdateAndCreateSubscriptionGroup, nil, []byte(`{"groupName":"FreshGroup","retryMaxTimes":3}`))
	if !routed(message.RetryTopic("FreshGroup")) {
		t.Fatal("%RETRY% route missing right after UPDATE_AND_CREATE_SUBSCRIPTIONGROUP answered")
	}
}
