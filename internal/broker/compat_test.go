package broker

// Compatibility tests with the official RocketMQ 4.x Go client (rocketmq-client-go/v2)
// against an in-process NameServer and Broker on loopback. Each test is bounded in time.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func init() { rlog.SetLogLevel("error") }

// cluster is an in-process NameServer plus one Broker.
type cluster struct {
	t      testing.TB
	ns     *namesrv.Server
	nsAddr string
	b      *testBroker
	cfg    Config
	nsStop func()
}

var instanceSeq atomic.Int64

// instance returns a unique go2 instance name (go2 shares one client per instance name).
func instance(t testing.TB) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + strconv.FormatInt(instanceSeq.Add(1), 10)
}

func startCluster(t testing.TB, mutate func(*Config)) *cluster {
	t.Helper()
	nscfg := namesrv.DefaultConfig()
	nscfg.Listen = "127.0.0.1:0"
	ns, err := namesrv.New(nscfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nsDone := make(chan error, 1)
	go func() { nsDone <- ns.Run(ctx) }()
	c := &cluster{t: t, ns: ns, nsAddr: ns.Addr().String()}
	c.nsStop = func() {
		cancel()
		<-nsDone
	}
	cfg := testConfig(t)
	cfg.NamesrvAddrs = []string{c.nsAddr}
	if mutate != nil {
		mutate(&cfg)
	}
	c.cfg = cfg
	// Stop order at cleanup (LIFO): broker first, then the NameServer.
	t.Cleanup(c.nsStop)
	c.b = startBroker(t, cfg)
	c.waitRoute(message.TopicDefault)
	return c
}

// restartBroker stops the broker and starts a new one on the same data directory and port.
func (c *cluster) restartBroker() {
	c.t.Helper()
	addr := c.b.ListenAddr().String()
	c.b.stop()
	cfg := c.cfg
	cfg.ListenAddr = addr
	var err error
	for i := 0; i < 100; i++ { // the old listener's port may take a moment to free
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			_ = ln.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.b = startBroker(c.t, cfg)
}

// waitRoute waits until the NameServer serves a route for topic.
func (c *cluster) waitRoute(topic string) {
	c.t.Helper()
	waitFor(c.t, 15*time.Second, "route of "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := namesrv.GetRouteInfo(ctx, c.b.nsClient, c.nsAddr, topic)
		return err == nil && len(r.QueueDatas) > 0
	})
}

// createTopic creates a topic on the broker and waits for its route.
func (c *cluster) createTopic(topic string, queues int32) {
	c.t.Helper()
	if err := c.b.CreateTopic(NewTopicConfig(topic, queues)); err != nil {
		c.t.Fatal(err)
	}
	c.waitRoute(topic)
}

func (c *cluster) resolver() primitive.NsResolver {
	return primitive.NewPassthroughResolver([]string{c.nsAddr})
}

func (c *cluster) producer(opts ...producer.Option) rocketmq.Producer {
	c.t.Helper()
	opts = append([]producer.Option{producer.WithNsResolver(c.resolver()), producer.WithRetry(2),
		producer.WithGroupName("PG_" + instance(c.t)), producer.WithInstanceName(instance(c.t)),
		producer.WithSendMsgTimeout(10 * time.Second)}, opts...)
	p, err := rocketmq.NewProducer(opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// received collects consumed messages by body.
type received struct {
	mu    sync.Mutex
	msgs  []*primitive.MessageExt
	count map[string]int
}

func newReceived() *received { return &received{count: map[string]int{}} }

func (r *received) add(msgs ...*primitive.MessageExt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.msgs = append(r.msgs, m)
		r.count[string(m.Body)]++
	}
}

func (r *received) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

func (r *received) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// createGroup creates a subscription group and its retry topic and waits for the retry
// topic's route, as an operator would before starting consumers (go2 resolves the retry
// topic's route only at start and then every 30 s).
func (c *cluster) createGroup(group string) {
	c.t.Helper()
	if _, _, err := c.b.Groups.GetOrCreate(group); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.b.ensureGroupTopic(message.RetryTopic(group), 1); err != nil {
		c.t.Fatal(err)
	}
	c.waitRoute(message.RetryTopic(group))
}

func (c *cluster) pushConsumer(group, topic, expr string, fn func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error), opts ...consumer.Option) rocketmq.PushConsumer {
	c.t.Helper()
	c.createGroup(group)
	opts = append([]consumer.Option{consumer.WithNsResolver(c.resolver()), consumer.WithGroupName(group),
		consumer.WithInstance(instance(c.t)), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)}, opts...)
	pc, err := rocketmq.NewPushConsumer(opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: expr}, fn); err != nil {
		c.t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = pc.Shutdown() })
	return pc
}

// quiet creates group with notifyConsumerIdsChangedEnable=false.
func quiet(group string, c *cluster) {
	gc := NewGroupConfig(group)
	gc.NotifyConsumerIdsChangedEnable = false
	if err := c.b.Groups.Update(gc); err != nil {
		c.t.Fatal(err)
	}
}

func collectInto(r *received) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		r.add(msgs...)
		return consumer.ConsumeSuccess, nil
	}
}

func TestCompatSendModes(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("SendModes", 4)
	p := c.producer()
	ctx := context.Background()

	// Sync.
	for i := 0; i < 10; i++ {
		res, err := p.SendSync(ctx, primitive.NewMessage("SendModes", []byte("sync-"+strconv.Itoa(i))))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("sync send: %v %v", res, err)
		}
		if _, off, err := message.ParseOffsetMsgID(res.OffsetMsgID); err != nil || off < 0 {
			t.Fatalf("offset msg id %q: %v", res.OffsetMsgID, err)
		}
	}
	// Async.
	var wg sync.WaitGroup
	var asyncErr atomic.Value
	for i := 0; i < 10; i++ {
		wg.Add(1)
		err := p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
			defer wg.Done()
			if err != nil || res.Status != primitive.SendOK {
				asyncErr.Store(fmt.Sprint(res, err))
			}
		}, primitive.NewMessage("SendModes", []byte("async-"+strconv.Itoa(i))))
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if v := asyncErr.Load(); v != nil {
		t.Fatalf("async send: %v", v)
	}
	// Oneway.
	for i := 0; i < 10; i++ {
		if err := p.SendOneWay(ctx, primitive.NewMessage("SendModes", []byte("oneway-"+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	// Batch.
	batch := make([]*primitive.Message, 10)
	for i := range batch {
		batch[i] = primitive.NewMessage("SendModes", []byte("batch-"+strconv.Itoa(i)))
	}
	res, err := p.SendSync(ctx, batch...)
	if err != nil || res.Status != primitive.SendOK || len(strings.Split(res.OffsetMsgID, ",")) != 10 {
		t.Fatalf("batch send: %v %v", res, err)
	}

	// All 40 are stored.
	waitFor(t, 10*time.Second, "40 stored messages", func() bool {
		var n int64
		for q := int32(0); q < 4; q++ {
			n += c.b.Store.MaxOffset("SendModes", q)
		}
		return n == 40
	})
	// A consumer reads all of them.
	r := newReceived()
	c.pushConsumer("SendModesG", "SendModes", "*", collectInto(r))
	waitFor(t, 30*time.Second, "40 consumed", func() bool { return r.distinct() == 40 })
}

func TestCompatAutoCreateTopic(t *testing.T) {
	c := startCluster(t, nil)
	p := c.producer()
	res, err := p.SendSync(context.Background(), primitive.NewMessage("AutoCreated", []byte("x")))
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send to new topic: %v %v", res, err)
	}
	tc, ok := c.b.Topics.Get("AutoCreated")
	if !ok || tc.WriteQueueNums != 4 {
		t.Fatalf("auto-created %+v %v", tc, ok)
	}
	// The route is at the NameServer when the send is answered (Apache registers the new
	// topic synchronously in the send path), for every new topic (QA F25).
	for i := 0; i < 10; i++ {
		topic := fmt.Sprintf("AutoCreated%d", i)
		if res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("x"))); err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send to new topic %s: %v %v", topic, res, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := namesrv.GetRouteInfo(ctx, c.b.nsClient, c.nsAddr, topic)
		cancel()
		if err != nil || len(r.QueueDatas) == 0 {
			t.Fatalf("route of %s right after its first send: %v", topic, err)
		}
	}
}

func TestCompatPushConsumersShareQueues(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Shared", 4)
	p := c.producer()
	var r1, r2 = newReceived(), newReceived()
	all := newReceived()
	fn := func(r *received) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			r.add(msgs...)
			all.add(msgs...)
			return consumer.ConsumeSuccess, nil
		}
	}
	c.pushConsumer("SharedG", "Shared", "*", fn(r1))
	c.pushConsumer("SharedG", "Shared", "*", fn(r2))
	waitFor(t, 10*time.Second, "two consumers registered", func() bool { return len(c.b.Clients.ConsumerIDs("SharedG")) == 2 })

	// Warm-up until both consumers receive (rebalance settled).
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; r1.total() == 0 || r2.total() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("queues not shared after 60s: %d / %d", r1.total(), r2.total())
		}
		if _, err := p.SendSync(ctx, primitive.NewMessage("Shared", []byte("warm-"+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Steady state: every message consumed exactly once.
	const n = 200
	for i := 0; i < n; i++ {
		if _, err := p.SendSync(ctx, primitive.NewMessage("Shared", []byte("steady-"+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	countSteady := func() (distinct, total int) {
		all.mu.Lock()
		defer all.mu.Unlock()
		for k, v := range all.count {
			if strings.HasPrefix(k, "steady-") {
				distinct++
				total += v
			}
		}
		return
	}
	waitFor(t, 30*time.Second, "steady messages consumed", func() bool { d, _ := countSteady(); return d == n })
	time.Sleep(500 * time.Millisecond) // let any duplicate show up
	if d, total := countSteady(); d != n || total != n {
		t.Fatalf("steady state: %d distinct, %d deliveries, want %d each", d, total, n)
	}
}

func TestCompatTagFilter(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Tags", 2)
	p := c.producer()
	r := newReceived()
	c.pushConsumer("TagsG", "Tags", "A || B", collectInto(r))
	ctx := context.Background()
	for i, tag := range []string{"A", "B", "C", "A", "C", "B", "D"} {
		m := primitive.NewMessage("Tags", []byte(tag+strconv.Itoa(i)))
		m.WithTag(tag)
		if _, err := p.SendSync(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "A and B messages", func() bool { return r.distinct() == 4 })
	time.Sleep(300 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if tag := m.GetTags(); tag != "A" && tag != "B" {
			t.Fatalf("received tag %q", tag)
		}
	}
}

func TestCompatRetryAndDLQ(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Retry", 1)
	p := c.producer()
	var attempts sync.Map // body -> *atomic.Int32
	c.pushConsumer("RetryG", "Retry", "*", func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		if cc, ok := primitive.GetConcurrentlyCtx(ctx); ok {
			cc.DelayLevelWhenNextConsume = 1 // 1 s between attempts
		}
		for _, m := range msgs {
			v, _ := attempts.LoadOrStore(string(m.Body), new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
		}
		return consumer.ConsumeRetryLater, nil
	}, consumer.WithMaxReconsumeTimes(2))
	res, err := p.SendSync(context.Background(), primitive.NewMessage("Retry", []byte("fail-me")))
	if err != nil {
		t.Fatal(err)
	}
	// Delivered 1 + 2 times, then dead-lettered.
	waitFor(t, 60*time.Second, "3 deliveries", func() bool {
		v, ok := attempts.Load("fail-me")
		return ok && v.(*atomic.Int32).Load() >= 3
	})
	dlq := message.DLQTopic("RetryG")
	waitFor(t, 30*time.Second, "message in DLQ", func() bool { return c.b.Store.MaxOffset(dlq, 0) == 1 })
	tc, ok := c.b.Topics.Get(dlq)
	if !ok || !tc.Readable() {
		t.Fatalf("DLQ topic %+v", tc)
	}
	c.waitRoute(dlq)

	// The dead letter is readable (pulled like any topic).
	msgs := decodeBody(t, c.b.pull("DLQReader", dlq, 0, 0, 10, 0, 0, "*"))
	if len(msgs) != 1 {
		t.Fatalf("DLQ pull returned %d messages", len(msgs))
	}
	m := msgs[0]
	if string(m.Body) != "fail-me" || m.Property(message.PropertyDLQOriginTopic) != "Retry" || m.UniqKey() != res.MsgID {
		t.Fatalf("dead letter %q props %v", m.Body, m.Properties)
	}
	if v, _ := attempts.Load("fail-me"); v.(*atomic.Int32).Load() != 3 {
		t.Fatalf("delivered %d times, want 3", v.(*atomic.Int32).Load())
	}
}

func TestCompatOffsetsSurviveRestart(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Durable", 2)
	p := c.producer()
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := p.SendSync(ctx, primitive.NewMessage("Durable", []byte("before-"+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	r := newReceived()
	pc := c.pushConsumer("DurableG", "Durable", "*", collectInto(r))
	waitFor(t, 30*time.Second, "first batch consumed", func() bool { return r.distinct() == 20 })
	// go2 commits offsets every 5 s (first after 10 s); wait until the broker has them all.
	waitFor(t, 30*time.Second, "offsets committed", func() bool {
		a, _ := c.b.Offsets.Query("DurableG", "Durable", 0)
		b, _ := c.b.Offsets.Query("DurableG", "Durable", 1)
		return a+b == 20
	})
	_ = pc.Shutdown()
	c.restartBroker()
	if a, _ := c.b.Offsets.Query("DurableG", "Durable", 0); a == 0 {
		t.Fatal("offsets lost across restart")
	}
	c.waitRoute("Durable")
	p2 := c.producer()
	for i := 0; i < 10; i++ {
		if _, err := p2.SendSync(ctx, primitive.NewMessage("Durable", []byte("after-"+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	r2 := newReceived()
	c.pushConsumer("DurableG", "Durable", "*", collectInto(r2))
	waitFor(t, 40*time.Second, "second batch consumed", func() bool { return r2.distinct() == 10 })
	time.Sleep(500 * time.Millisecond)
	r2.mu.Lock()
	defer r2.mu.Unlock()
	for body := range r2.count {
		if !strings.HasPrefix(body, "after-") {
			t.Fatalf("committed message redelivered after restart: %s", body)
		}
	}
}

func TestCompatAdminCreateDeleteTopic(t *testing.T) {
	c := startCluster(t, nil)
	adm, err := admin.NewAdmin(admin.WithResolver(c.resolver()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate("AdminT"), admin.WithBrokerAddrCreate(c.b.Addr()),
		admin.WithReadQueueNums(3), admin.WithWriteQueueNums(3)); err != nil {
		t.Fatal(err)
	}
	tc, ok := c.b.Topics.Get("AdminT")
	if !ok || tc.WriteQueueNums != 3 {
		t.Fatalf("created %+v %v", tc, ok)
	}
	c.waitRoute("AdminT")
	groups, err := adm.GetAllSubscriptionGroup(ctx, c.b.Addr(), 3*time.Second)
	if err != nil || groups == nil {
		t.Fatalf("GetAllSubscriptionGroup: %v", err)
	}
	if err := adm.DeleteTopic(ctx, admin.WithTopicDelete("AdminT"), admin.WithBrokerAddrDelete(c.b.Addr()),
		admin.WithNameSrvAddr([]string{c.nsAddr})); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.b.Topics.Get("AdminT"); ok {
		t.Fatal("topic still on the broker")
	}
}

func TestCompatUnregisterOnShutdown(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Gone", 1)
	cli := remoting.NewClient(remoting.DefaultClientConfig(), testLogger(t))
	defer cli.Close()
	routed := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := namesrv.GetRouteInfo(ctx, cli, c.nsAddr, "Gone")
		return err
	}
	if err := routed(); err != nil {
		t.Fatalf("route before shutdown: %v", err)
	}
	c.b.stop()
	// The route disappears at once (UNREGISTER_BROKER), not after the 120 s expiry.
	waitFor(t, 5*time.Second, "route removal", func() bool { return errors.Is(routed(), namesrv.ErrTopicNotExist) })
}

// TestCompatResetOffsetOnline: INVOKE_BROKER_TO_RESET_OFFSET with a go2 push consumer online;
// the broker tells it with RESET_CONSUMER_CLIENT_OFFSET (MessageQueue-keyed fastjson body,
// parsed by go2) and the consumer re-reads from the reset offsets.
func TestCompatResetOffsetOnline(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Reset", 1)
	p := c.producer()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := p.SendSync(ctx, primitive.NewMessage("Reset", []byte("m"+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	r := newReceived()
	c.pushConsumer("ResetG", "Reset", "*", collectInto(r))
	waitFor(t, 30*time.Second, "first pass", func() bool { return r.distinct() == 5 })
	first := r.total()
	if _, err := c.b.ResetOffset("ResetG", "Reset", 0, true); err != nil {
		t.Fatal(err)
	}
	// go2 pauses ~10 s while it drops its process queues, then pulls from the new offsets.
	waitFor(t, 40*time.Second, "re-delivery after reset", func() bool { return r.total() >= first+5 })
}

func TestCompatBroadcastingConsumers(t *testing.T) {
	c := startCluster(t, nil)
	// go2 keeps broadcasting offsets in local files ($HOME/.rocketmq_client_go/<group>/<client
	// id>) that outlive the test; a group name unique to this run keeps an earlier run's
	// offsets (same client id, same queues) from skipping this run's messages.
	group := "BcastG" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.createTopic("Bcast", 2)
	r1, r2 := newReceived(), newReceived()
	for _, r := range []*received{r1, r2} {
		// Broadcasting offsets are client-local: from the first offset, so a consumer whose
		// first rebalance lands after the sends (a loaded machine) still reads them all.
		c.pushConsumer(group, "Bcast", "*", collectInto(r), consumer.WithConsumerModel(consumer.BroadCasting),
			consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	}
	waitFor(t, 10*time.Second, "two consumers", func() bool { return len(c.b.Clients.ConsumerIDs(group)) == 2 })
	info, _ := c.b.Clients.ConsumerGroup(group)
	if info.MessageModel != ModelBroadcast {
		t.Fatalf("message model %q", info.MessageModel)
	}
	p := c.producer()
	for i := 0; i < 10; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("Bcast", []byte("b"+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	// Every consumer of a broadcasting group gets every message.
	waitFor(t, 30*time.Second, "both consumers got all", func() bool { return r1.distinct() == 10 && r2.distinct() == 10 })
}
