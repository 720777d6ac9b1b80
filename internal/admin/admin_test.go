package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/testcluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(append([]goleak.Option(nil), testcluster.IgnoreSDK...), testcluster.IgnoreGo2...)...)
}

func TestClusterList(t *testing.T) {
	f := newFakeCluster(t)
	a := newTestAdmin(t, f)
	bs, err := a.ClusterList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 {
		t.Fatalf("brokers %+v", bs)
	}
	b := bs[0]
	if b.Cluster != "DefaultCluster" || b.Name != "broker-a" || b.ID != 0 || b.Addr != f.addr || b.Version != "V5_3_3" ||
		*b.PutTPS != 12.5 || *b.GetTPS != 3 || *b.DiskRatio != 0.25 || *b.PutToday != 60 || b.GetToday != nil || b.Error != "" {
		t.Fatalf("broker %+v", b)
	}
}

func TestTopicLifecycle(t *testing.T) {
	f := newFakeCluster(t)
	a := newTestAdmin(t, f)
	ctx := context.Background()
	res, err := a.CreateTopic(ctx, TopicSpec{Name: "orders", Type: TopicFIFO, Queues: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Routed || res.Queues != 4 || len(res.Brokers) != 1 || res.Type != TopicFIFO {
		t.Fatalf("create %+v", res)
	}
	f.mu.Lock()
	attrs := f.topics["orders"].Attributes
	f.mu.Unlock()
	if attrs["message.type"] != "FIFO" {
		t.Fatalf("broker got attributes %v", attrs)
	}
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "bad topic"}); err == nil {
		t.Fatal("illegal name accepted")
	}
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "x", Type: "WEIRD"}); err == nil {
		t.Fatal("unknown type accepted")
	}
	f.mu.Lock()
	f.addTopic("%RETRY%g", 1, 6, nil)
	f.addTopic("DefaultCluster", 16, 7, nil) // the broker's cluster-name and broker-name topics (QA F18)
	f.addTopic("broker-a", 1, 7, nil)
	f.store(&message.Ext{Message: message.Message{Topic: "orders", Body: []byte("a")}, QueueID: 2})
	f.store(&message.Ext{Message: message.Message{Topic: "orders", Body: []byte("b")}, QueueID: 2})
	f.mu.Unlock()

	list, err := a.ListTopics(ctx, false)
	if err != nil || len(list) != 1 || list[0].Name != "orders" {
		t.Fatalf("list %+v %v", list, err)
	}
	if all, _ := a.ListTopics(ctx, true); len(all) != 4 || !all[0].System || !all[1].System || !all[2].System || all[3].Name != "orders" {
		t.Fatalf("list all %+v", all)
	}

	d, err := a.DescribeTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != TopicFIFO || len(d.Queues) != 4 || d.Messages != 2 || d.Queues[2].MaxOffset != 2 || d.Queues[2].LastStoreTime == 0 {
		t.Fatalf("describe %+v", d)
	}
	// A describe reads no message (it is not a consumption: QA R7H-4).
	if n := f.callCount(remoting.PullMessage); n != 0 {
		t.Fatalf("describe pulled %d times", n)
	}
	if _, err := a.DescribeTopic(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("describe unknown: %v", err)
	}
	del, err := a.DeleteTopic(ctx, "orders", "")
	if err != nil || len(del.Brokers) != 1 {
		t.Fatalf("delete %+v %v", del, err)
	}
	if _, err := a.DescribeTopic(ctx, "orders"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("describe after delete: %v", err)
	}
	if _, err := a.DeleteTopic(ctx, "TBW102", ""); err == nil {
		t.Fatal("system topic delete accepted")
	}
	// A topic a broker holds while the NameServer does not route it (a registration that
	// lags, a delete that raced an auto-create) is deleted from the brokers holding it (QA
	// R13G-1); one that no broker holds is not found.
	f.mu.Lock()
	f.addTopic("hidden", 2, 6, nil)
	f.unrouted = map[string]bool{"hidden": true}
	f.mu.Unlock()
	if del, err := a.DeleteTopic(ctx, "hidden", ""); err != nil || len(del.Brokers) != 1 {
		t.Fatalf("delete of an unrouted topic: %+v %v", del, err)
	}
	f.mu.Lock()
	_, still := f.topics["hidden"]
	f.mu.Unlock()
	if still {
		t.Fatal("unrouted topic not deleted from the broker")
	}
	if _, err := a.DeleteTopic(ctx, "nowhere", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of a topic nobody holds: %v", err)
	}
}

func TestGroupLifecycleAndOfflineReset(t *testing.T) {
	f := newFakeCluster(t)
	a := newTestAdmin(t, f)
	ctx := context.Background()
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "orders", Queues: 2}); err != nil {
		t.Fatal(err)
	}
	g, err := a.CreateGroup(ctx, GroupSpec{Name: "billing", FIFO: true, MaxAttempts: 3})
	if err != nil || !g.FIFO || g.MaxAttempts != 3 {
		t.Fatalf("create group %+v %v", g, err)
	}
	f.mu.Lock()
	bg := f.groups["billing"]
	f.mu.Unlock()
	if bg.RetryMaxTimes != 3 || !bg.ConsumeMessageOrderly {
		t.Fatalf("broker got %+v", bg)
	}
	// 0 is "no redelivery", not "default" (R4X-6); on a cluster of its own so the listing
	// below is unchanged.
	f0 := newFakeCluster(t)
	if g, err := newTestAdmin(t, f0).CreateGroup(ctx, GroupSpec{Name: "noretry", MaxAttempts: 0}); err != nil || g.MaxAttempts != 0 {
		t.Fatalf("create group with 0 attempts %+v %v", g, err)
	}
	f0.mu.Lock()
	got := f0.groups["noretry"].RetryMaxTimes
	f0.mu.Unlock()
	if got != 0 {
		t.Fatalf("broker got retryMaxTimes %d, want 0", got)
	}
	f.mu.Lock()
	f.groups["TOOLS_CONSUMER"] = wireGroupConfig{GroupName: "TOOLS_CONSUMER"}
	t0 := time.Now().Add(-time.Hour)
	for i := range 10 {
		f.store(&message.Ext{Message: message.Message{Topic: "orders", Body: []byte("m")}, QueueID: int32(i % 2), StoreTimestamp: t0.Add(time.Duration(i) * time.Minute).UnixMilli()})
	}
	f.offsets["billing/orders/0"] = 1
	f.offsets["billing/orders/1"] = 5
	f.mu.Unlock()

	gs, err := a.ListGroups(ctx, "", false)
	if err != nil || len(gs) != 1 || gs[0].Name != "billing" {
		t.Fatalf("list %+v %v", gs, err)
	}
	d, err := a.DescribeGroup(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	// queue 0: 5 messages, committed 1 -> lag 4, pulled one beyond -> 1 in flight.
	if !d.FIFO || d.MaxAttempts != 3 || len(d.Queues) != 2 || d.Queues[0].Lag != 4 || d.Queues[0].Inflight != 1 || d.Queues[1].Lag != 0 || d.Lag != 4 || d.Online {
		t.Fatalf("describe %+v", d)
	}
	if _, err := a.DescribeGroup(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("describe unknown group: %v", err)
	}

	// Offline reset: the broker answers CONSUMER_NOT_ONLINE, offsets are committed directly.
	rs, err := a.ResetOffset(ctx, "billing", "", ResetTarget{Earliest: true})
	if err != nil || len(rs) != 2 || rs[0].NewOffset != 0 || rs[0].OldOffset != 1 || rs[1].OldOffset != 5 {
		t.Fatalf("reset earliest %+v %v", rs, err)
	}
	if rs, err = a.ResetOffset(ctx, "billing", "orders", ResetTarget{Latest: true}); err != nil || rs[0].NewOffset != 5 || rs[1].NewOffset != 5 {
		t.Fatalf("reset latest %+v %v", rs, err)
	}
	// message i is in queue i%2 at offset i/2, stored at t0+i min; t0+5min -> first of q0 >= is i=6 (offset 3), q1 i=5 (offset 2)
	if rs, err = a.ResetOffset(ctx, "billing", "orders", ResetTarget{Time: t0.Add(5 * time.Minute)}); err != nil || rs[0].NewOffset != 3 || rs[1].NewOffset != 2 {
		t.Fatalf("reset to time %+v %v", rs, err)
	}
	f.mu.Lock()
	off0 := f.offsets["billing/orders/0"]
	f.mu.Unlock()
	if off0 != 3 {
		t.Fatalf("broker offset %d", off0)
	}
	if _, err := a.ResetOffset(ctx, "billing", "orders", ResetTarget{}); err == nil {
		t.Fatal("reset without a target accepted")
	}
	if _, err := a.DeleteGroup(ctx, "billing", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteGroup(ctx, "billing", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestMessageLookup(t *testing.T) {
	f := newFakeCluster(t)
	a := newTestAdmin(t, f)
	ctx := context.Background()
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "orders", Queues: 1}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	m := &message.Ext{Message: message.Message{Topic: "orders", Body: []byte{0, 1, 2, 0xff}}}
	m.SetProperty(message.PropertyKeys, "k1 k2")
	m.SetProperty(message.PropertyTags, "created")
	m.SetProperty("color", "blue")
	stored := f.store(m)
	f.store(&message.Ext{Message: message.Message{Topic: "orders", Body: []byte("text body")}})
	// A delayed send's offset id names its timer record (QA R10R-1).
	f.queues[message.TopicTimer] = make([][]*message.Ext, 1)
	timerRec := &message.Ext{Message: message.Message{Topic: message.TopicTimer, Body: []byte("later")}}
	timerRec.SetProperty(message.PropertyRealTopic, "orders")
	delayed := f.store(timerRec)
	f.mu.Unlock()
	if d, err := a.GetMessageByID(ctx, "orders", delayed.OffsetMsgID()); err != nil || d.CommitLogOffset != delayed.CommitLogOffset {
		t.Fatalf("delayed send by offset id: %+v %v", d, err)
	}

	byOff, err := a.GetMessageByID(ctx, "orders", stored.OffsetMsgID())
	if err != nil {
		t.Fatal(err)
	}
	if byOff.Tags != "created" || byOff.Properties["color"] != "blue" || byOff.Body != nil || len(byOff.BodyBase64) != 4 || byOff.Printable() {
		t.Fatalf("by offset id %+v", byOff)
	}
	byUniq, err := a.GetMessageByID(ctx, "orders", stored.UniqKey())
	if err != nil || byUniq.CommitLogOffset != stored.CommitLogOffset || byUniq.MsgID != stored.UniqKey() {
		t.Fatalf("by unique id %+v %v", byUniq, err)
	}
	byKey, err := a.GetMessagesByKey(ctx, "orders", "k2", 0)
	if err != nil || len(byKey) != 1 || byKey[0].Keys[1] != "k2" {
		t.Fatalf("by key %+v %v", byKey, err)
	}
	if _, err := a.GetMessagesByKey(ctx, "orders", "missing", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := a.GetMessageByID(ctx, "orders", "01ABCDEF0123456789ABCDEF0123456789"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing id: %v", err)
	}
	// An offset id naming a broker that cannot be reached is not "no message" (R5C-10).
	down := message.OffsetMsgID(netip.MustParseAddrPort("127.0.0.1:1"), 42)
	if _, err := a.GetMessageByID(ctx, "orders", down); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("offset id of a down broker: %v", err)
	}
}

func TestResendDLQ(t *testing.T) {
	f := newFakeCluster(t)
	a := newTestAdmin(t, f)
	ctx := context.Background()
	// A group that never dead-lettered resends nothing (exit 0 for a redrive job, QA
	// R7H-10); an unknown group without a DLQ is not found.
	if _, err := a.CreateGroup(ctx, GroupSpec{Name: "clean", MaxAttempts: 16}); err != nil {
		t.Fatal(err)
	}
	if r, err := a.ResendDLQ(ctx, "clean", ResendOptions{}); err != nil || r.Resent != 0 || r.Failed != 0 {
		t.Fatalf("resend for a group without dead letters: %+v %v", r, err)
	}
	if _, err := a.ResendDLQ(ctx, "nobody", ResendOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resend for an unknown group: %v", err)
	}
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "orders", Queues: 2}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.addTopic("%DLQ%billing", 1, 6, nil)
	for i, origin := range []string{"orders", "orders", ""} {
		m := &message.Ext{Message: message.Message{Topic: "%DLQ%billing", Body: []byte{byte('a' + i)}}}
		if origin != "" {
			m.SetProperty(message.PropertyDLQOriginTopic, origin)
		}
		m.SetProperty(message.PropertyKeys, "key-"+string(rune('a'+i)))
		if i == 0 {
			m.SetProperty(message.PropertyUniqKey, "0A0000010000000000000000DEAD0001")
		}
		m.SetProperty(message.PropertyReconsumeTime, "16")
		m.SetProperty("user", "x")
		f.store(m)
	}
	f.mu.Unlock()

	dry, err := a.ResendDLQ(ctx, "billing", ResendOptions{DryRun: true})
	if err != nil || dry.Resent != 2 || dry.Failed != 1 || f.callCount(remoting.SendMessageV2) != 0 {
		t.Fatalf("dry run %+v %v", dry, err)
	}
	res, err := a.ResendDLQ(ctx, "billing", ResendOptions{Max: 1})
	if err != nil || res.Resent != 1 || res.Messages[0].NewMsgID != "0A0000010000000000000000DEAD0001" || res.Messages[0].NewOffsetMsgID == "" {
		t.Fatalf("first run must keep the dead letter's message id: %+v %v", res, err)
	}
	res, err = a.ResendDLQ(ctx, "billing", ResendOptions{})
	if err != nil || res.Resent != 1 || res.Failed != 1 || !strings.Contains(res.Messages[1].Error, "original topic unknown") {
		t.Fatalf("second run %+v %v", res, err)
	}
	if res, err = a.ResendDLQ(ctx, "billing", ResendOptions{}); err != nil || len(res.Messages) != 0 {
		t.Fatalf("third run must replay nothing: %+v %v", res, err)
	}
	if _, err := a.ResendDLQ(ctx, "nobody", ResendOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no DLQ: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, kept := 0, 0
	for _, q := range f.queues["orders"] {
		for _, m := range q {
			n++
			if m.UniqKey() == "0A0000010000000000000000DEAD0001" {
				kept++
			} else if m.UniqKey() == "" {
				t.Fatalf("replayed copy without a message id: %v", m.Properties)
			}
			if m.Property("user") != "x" || m.Property(message.PropertyOriginMessageID) == "" || m.Property(message.PropertyDLQOriginTopic) != "" || m.Property(message.PropertyReconsumeTime) != "" {
				t.Fatalf("replayed properties %v", m.Properties)
			}
		}
	}
	if n != 2 || kept != 1 {
		t.Fatalf("orders holds %d replayed messages (%d with the dead letter's id), want 2 (1)", n, kept)
	}
}

func TestTransportErrorsNameTheAddress(t *testing.T) {
	a, err := New(Config{NameServers: []string{"127.0.0.1:1"}, Timeout: time.Second}, nil)
	if err == nil {
		defer a.Close()
		_, err = a.ListTopics(context.Background(), false)
	}
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("want an error naming the address, got %v", err)
	}
	if _, err := New(Config{NameServers: []string{""}}, nil); err == nil {
		t.Fatal("empty address accepted")
	}
}

func TestHealth(t *testing.T) {
	f := newFakeCluster(t)
	a := newTestAdmin(t, f)
	if h := a.Health(context.Background(), 1); !h.Healthy || len(h.Brokers) != 1 {
		t.Fatalf("health %+v", h)
	}
	if h := a.Health(context.Background(), 2); h.Healthy || !strings.Contains(h.Reason, "want at least 2") {
		t.Fatalf("health with 2 wanted %+v", h)
	}
	down, _ := New(Config{NameServers: []string{"127.0.0.1:1"}, Timeout: time.Second}, nil)
	defer down.Close()
	if h := down.Health(context.Background(), 1); h.Healthy || h.Reason == "" {
		t.Fatalf("unreachable NameServer reported %+v", h)
	}
}

// TestGroupReadsSurviveADeadBroker (QA R7H-6): with one broker of the cluster not answering,
// group list and group describe show what the others answer (describe names the missing
// broker) instead of failing as a whole; when no broker answers they fail.
func TestGroupReadsSurviveADeadBroker(t *testing.T) {
	f := newFakeCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.deadBroker = ln.Addr().String()
	ln.Close() // connection refused from now on
	a := newTestAdmin(t, f)
	ctx := context.Background()
	f.mu.Lock()
	f.groups["billing"] = wireGroupConfig{GroupName: "billing", ConsumeEnable: true, RetryMaxTimes: 16}
	f.mu.Unlock()
	list, err := a.ListGroups(ctx, "", false)
	if err != nil || len(list) != 1 || list[0].Name != "billing" {
		t.Fatalf("list with a dead broker: %+v, %v", list, err)
	}
	d, err := a.DescribeGroup(ctx, "billing")
	if err != nil {
		t.Fatalf("describe with a dead broker: %v", err)
	}
	if d.Name != "billing" || d.BrokerErrors["broker-b"] == "" || len(d.BrokerErrors) != 1 {
		t.Fatalf("describe: %+v", d)
	}
	// A group the answering brokers lack may be on the silent one: the error says so (QA R13G-2).
	if _, err := a.DescribeGroup(ctx, "elsewhere"); err == nil || !strings.Contains(err.Error(), "broker broker-b did not answer") {
		t.Fatalf("describe of a group only the dead broker could hold: %v", err)
	}
	cfgs, err := a.GetBrokerConfig(ctx, "", "")
	if err != nil || len(cfgs) != 2 || cfgs[0].Config["brokerName"] != "broker-a" || cfgs[0].Error != "" ||
		cfgs[1].Broker != "broker-b" || cfgs[1].Error == "" {
		t.Fatalf("broker config with a dead broker: %+v, %v", cfgs, err)
	}
	if _, err := a.GetBrokerConfig(ctx, "", "broker-b"); err == nil {
		t.Fatal("broker config of the dead broker alone: no error")
	}
	// R8J-5: a create that reaches only some brokers says where it did happen.
	if _, err := a.CreateTopic(ctx, TopicSpec{Name: "half", Queues: 2}); err == nil || !strings.Contains(err.Error(), "created on broker-a only") {
		t.Fatalf("create with a dead broker: %v", err)
	}
}

// TestEmptyNameServerIsNotFinal (QA R8J-1): with a NameServer that knows nothing (restarted a
// moment ago) first in the list, topic describe and group commands still use the NameServer
// that has the routes; a topic no NameServer knows is still not found.
func TestEmptyNameServerIsNotFinal(t *testing.T) {
	f := newFakeCluster(t)
	f.addTopic("T", 2, PermReadWrite, nil)
	ncfg := namesrv.DefaultConfig()
	ncfg.Listen = "127.0.0.1:0"
	ns, err := namesrv.New(ncfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ns.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; ns.Close() })
	a, err := New(Config{NameServers: []string{ns.Addr().String(), f.addr}, Timeout: 2 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.DescribeTopic(context.Background(), "T"); err != nil {
		t.Fatalf("describe with an empty first NameServer: %v", err)
	}
	if _, err := a.ListGroups(context.Background(), "", false); err != nil {
		t.Fatalf("group list with an empty first NameServer: %v", err)
	}
	if _, err := a.DescribeTopic(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown topic: %v", err)
	}
}

// TestDescribeTopicHungBroker: a broker that accepts connections and never answers gives
// every queue an error and no offsets (JSON without minOffset/maxOffset), and the total is
// marked as a lower bound, instead of offsets 0 that read as an empty topic (QA R11C-1).
func TestDescribeTopicHungBroker(t *testing.T) {
	f := newFakeCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn // held open, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	f.mu.Lock()
	f.addTopic("T", 2, 6, nil)
	f.brokerAddr = ln.Addr().String()
	f.mu.Unlock()
	a, err := New(Config{NameServers: []string{f.addr}, Timeout: 300 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	d, err := a.DescribeTopic(context.Background(), "T")
	if err != nil {
		t.Fatal(err)
	}
	if d.Unanswered != 2 || len(d.Queues) != 2 || d.Messages != 0 {
		t.Fatalf("detail %+v", d)
	}
	b, err := json.Marshal(d.Queues[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "Offset") || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("unanswered queue as JSON: %s", b)
	}
}

// TestLookupWithASilentBroker (QA R12D-1): "not found" from the brokers that answered is not
// an answer when another broker of the topic did not: the error says which one; the other
// brokers' matches are still returned, with a warning.
func TestLookupWithASilentBroker(t *testing.T) {
	f := newFakeCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	f.mu.Lock()
	f.addTopic("T", 1, 6, nil)
	f.silentB = silent
	m := &message.Ext{Message: message.Message{Topic: "T", Body: []byte("x")}}
	m.SetProperty(message.PropertyKeys, "present")
	f.store(m)
	f.mu.Unlock()
	var warnings bytes.Buffer
	a, err := New(Config{NameServers: []string{f.addr}, Timeout: 2 * time.Second}, slog.New(slog.NewTextHandler(&warnings, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.GetMessagesByKey(context.Background(), "T", "absent", 8)
	if err == nil || !strings.Contains(err.Error(), "broker broker-b did not answer") {
		t.Fatalf("lookup of an absent key with a silent broker: %v", err)
	}
	got, err := a.GetMessagesByKey(context.Background(), "T", "present", 8)
	if err != nil || len(got) != 1 {
		t.Fatalf("lookup of a present key: %v %v", got, err)
	}
	if !strings.Contains(warnings.String(), "broker-b") {
		t.Fatalf("no warning about the silent broker: %q", warnings.String())
	}
}
