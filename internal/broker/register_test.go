package broker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
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

// TestCreateRegistersIncrementally (QA R8I-3): creating a topic registers that topic alone,
// with a version no whole table has, before the create is answered; no whole-table
// registration follows the burst of creations.
func TestCreateRegistersIncrementally(t *testing.T) {
	type reg struct {
		topics  int
		counter int64
	}
	var (
		mu   sync.Mutex
		regs []reg
	)
	b := brokerWithFakeNamesrv(t, func(body *route.RegisterBrokerBody) *remoting.Command {
		mu.Lock()
		regs = append(regs, reg{len(body.TopicConfigSerializeWrapper.TopicConfigTable), body.TopicConfigSerializeWrapper.DataVersion.Counter})
		mu.Unlock()
		return remoting.NewResponse(remoting.Success, "")
	})
	count := func() []reg {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(regs)
	}
	waitFor(t, 10*time.Second, "first registration", func() bool { return len(count()) > 0 })
	whole := count()[0].topics
	before := len(count())
	const creates = 20
	for i := range creates {
		if r := b.invoke(remoting.UpdateAndCreateTopic, map[string]string{"topic": fmt.Sprintf("Inc%d", i), "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil); r.Code != remoting.Success {
			t.Fatalf("create: %d %s", r.Code, r.Remark)
		}
	}
	// Each create is registered before it is answered (registerSync) and again by the
	// change trigger, incrementally both times: a burst of creations sends no whole table.
	single := 0
	for _, r := range count()[before:] {
		if r.counter >= 0 {
			t.Errorf("registration of %d topics with a whole-table version (counter %d) during creations", r.topics, r.counter)
		}
		if r.topics >= whole {
			t.Errorf("whole-table registration (%d topics) during creations", r.topics)
		}
		if r.topics == 1 {
			single++
		}
	}
	if single < creates {
		t.Fatalf("%d creates: %d single-topic registrations", creates, single)
	}
}

// TestConcurrentCreatesAllRouted: topics created concurrently are each routed once their
// create is answered. (Increments that shared the table's version were skipped by the
// NameServer as "unchanged" when another creation had bumped the version in between.)
func TestConcurrentCreatesAllRouted(t *testing.T) {
	c := startCluster(t, func(cfg *Config) { cfg.RegisterNameServerPeriod = time.Minute })
	cli := remoting.NewClient(remoting.DefaultClientConfig(), testLogger(t))
	t.Cleanup(func() { _ = cli.Close() })
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := cli.Invoke(ctx, c.b.ListenAddr().String(), remoting.NewRequest(remoting.UpdateAndCreateTopic, map[string]string{
				"topic": fmt.Sprintf("Conc%d", i), "readQueueNums": "2", "writeQueueNums": "2", "perm": "6"}, nil))
			if err != nil || r.Code != remoting.Success {
				t.Errorf("create %d: %v %+v", i, err, r)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := namesrv.GetRouteInfo(ctx, cli, c.nsAddr, fmt.Sprintf("Conc%d", i))
		cancel()
		if err != nil || len(r.QueueDatas) == 0 {
			t.Errorf("Conc%d not routed after its create was answered: %v", i, err)
		}
	}
}

// TestFailedRegistrationRetriedSoon (QA R9L-2): a whole-table registration a NameServer did
// not take is sent again within seconds (1 s, doubling), not at the next 30 s period: after
// a stall the first one may go out on a connection the NameServer had closed, and the
// broker's topics stayed unroutable until the period came round.
func TestFailedRegistrationRetriedSoon(t *testing.T) {
	var (
		mu       sync.Mutex
		attempts []time.Time
	)
	b := brokerWithFakeNamesrv(t, func(body *route.RegisterBrokerBody) *remoting.Command {
		if body.TopicConfigSerializeWrapper.DataVersion.Counter < 0 {
			return remoting.NewResponse(remoting.Success, "") // increments are not what this test counts
		}
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if len(attempts) <= 2 {
			return remoting.NewResponse(remoting.SystemError, "not now")
		}
		return remoting.NewResponse(remoting.Success, "")
	})
	waitFor(t, 15*time.Second, "a whole-table registration accepted after two refusals", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts) >= 3
	})
	// The handler counted the attempt before its answer reached the broker: wait for it.
	waitFor(t, 5*time.Second, "registration check after the accepted retry", func() bool { return b.registrationCheck() == nil })
	mu.Lock()
	defer mu.Unlock()
	if gap := attempts[1].Sub(attempts[0]); gap < 500*time.Millisecond || gap > 3*time.Second {
		t.Errorf("first retry after %v, want about 1 s", gap)
	}
}

// brokerWithFakeNamesrv starts a broker (registration period one minute) whose only
// NameServer is a remoting server answering REGISTER_BROKER with answer(decoded body); a body
// that does not decode fails the test.
func brokerWithFakeNamesrv(t *testing.T, answer func(*route.RegisterBrokerBody) *remoting.Command) *testBroker {
	t.Helper()
	ns := remoting.NewServer(remoting.ServerConfig{}, testLogger(t))
	ns.Handle(remoting.RegisterBroker, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		body, err := route.DecodeRegisterBrokerBody(req.Body, req.ExtBoolOr("compressed", false))
		if err != nil {
			t.Errorf("register body: %v", err)
			return remoting.NewResponse(remoting.SystemError, err.Error())
		}
		return answer(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ns.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ns.Shutdown(ctx)
	})
	cfg := testConfig(t)
	cfg.NamesrvAddrs = []string{ln.Addr().String()}
	cfg.RegisterNameServerPeriod = time.Minute
	return startBroker(t, cfg)
}
