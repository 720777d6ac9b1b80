package local

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"google.golang.org/grpc/peer"
)

func newTestBroker(t testing.TB) *broker.Broker {
	cfg := broker.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.NamesrvAddrs = nil
	cfg.DataDir = t.TempDir()
	cfg.BrokerName = "broker-a"
	cfg.MappedFileSizeCommitLog = 16 << 20
	br, err := broker.New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	return br
}

// TestTopicViewFollowsTable: the cached route/config answers change as soon as the broker's
// topic table does (create, update of queues and message type, delete).
func TestTopicViewFollowsTable(t *testing.T) {
	br := newTestBroker(t)
	be := New(br, logging.Discard())
	ctx := context.Background()
	if _, err := be.QueryRoute(ctx, "t1"); !errors.Is(err, proxy.ErrTopicNotFound) {
		t.Fatalf("unknown topic: %v", err)
	}
	tc := broker.NewTopicConfig("t1", 4)
	if err := br.CreateTopic(tc); err != nil {
		t.Fatal(err)
	}
	r, err := be.QueryRoute(ctx, "t1")
	if err != nil || len(r.Brokers) != 1 || r.Brokers[0].WriteQueues != 4 || r.Brokers[0].Name != "broker-a" {
		t.Fatalf("route %+v, %v", r, err)
	}
	if r2, _ := be.QueryRoute(ctx, "t1"); r2 != r {
		t.Fatal("unchanged table: expected the cached route")
	}
	c, err := be.TopicConfig(ctx, "t1")
	if err != nil || c.MessageType != proxy.MessageTypeNormal {
		t.Fatalf("config %+v, %v", c, err)
	}

	tc = broker.NewTopicConfig("t1", 8)
	tc.ReadQueueNums = 6
	tc.Attributes["message.type"] = "FIFO"
	if err := br.CreateTopic(tc); err != nil {
		t.Fatal(err)
	}
	r, err = be.QueryRoute(ctx, "t1")
	if err != nil || r.Brokers[0].WriteQueues != 8 || r.Brokers[0].ReadQueues != 6 {
		t.Fatalf("updated route %+v, %v", r.Brokers, err)
	}
	if c, err = be.TopicConfig(ctx, "t1"); err != nil || c.MessageType != proxy.MessageTypeFIFO || c.WriteQueues != 8 {
		t.Fatalf("updated config %+v, %v", c, err)
	}

	// A change to another topic bumps the version too; t1's answer stays the same.
	if err := br.CreateTopic(broker.NewTopicConfig("t2", 2)); err != nil {
		t.Fatal(err)
	}
	if r, err = be.QueryRoute(ctx, "t1"); err != nil || r.Brokers[0].WriteQueues != 8 {
		t.Fatalf("route after other change %+v, %v", r, err)
	}

	if ok, err := br.Topics.Delete("t1"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, err := be.QueryRoute(ctx, "t1"); !errors.Is(err, proxy.ErrTopicNotFound) {
		t.Fatalf("deleted topic route: %v", err)
	}
	if _, err := be.TopicConfig(ctx, "t1"); !errors.Is(err, proxy.ErrTopicNotFound) {
		t.Fatalf("deleted topic config: %v", err)
	}
}

// BenchmarkTopicLookup: what a send asks the backend before storing (QueryRoute, then
// TopicConfig). "table" is the pre-cache implementation (two TopicTable.Get copies and fresh
// results each time), kept here as the reference.
//
//	go test ./internal/proxy/local -run '^$' -bench TopicLookup -benchmem
func BenchmarkTopicLookup(b *testing.B) {
	br := newTestBroker(b)
	tc := broker.NewTopicConfig("bench", 8)
	tc.Attributes["message.type"] = "NORMAL"
	if err := br.CreateTopic(tc); err != nil {
		b.Fatal(err)
	}
	be := New(br, logging.Discard())
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, err := be.QueryRoute(ctx, "bench")
				if err != nil || len(r.Brokers) != 1 {
					b.Fatal(err)
				}
				if _, err := be.TopicConfig(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tc, ok := br.Topics.Get("bench")
				if !ok {
					b.Fatal("missing")
				}
				r := &proxy.TopicRoute{Topic: "bench", Brokers: []proxy.BrokerQueues{{
					Name: br.Name(), ReadQueues: int(tc.ReadQueueNums), WriteQueues: int(tc.WriteQueueNums), Perm: int(tc.Perm),
				}}}
				tc2, _ := br.Topics.Get("bench")
				typ, _ := proxy.ParseMessageType(tc2.MessageType())
				c := &proxy.TopicConfig{Name: "bench", ReadQueues: int(tc2.ReadQueueNums), WriteQueues: int(tc2.WriteQueueNums), Perm: int(tc2.Perm), MessageType: typ}
				if len(r.Brokers) != 1 || c.Name == "" {
					b.Fatal("bad")
				}
			}
		})
	})
}

// TestAutoCreateFollowsLiveConfig: the proxy's topic auto-creation in local mode follows the
// broker's live autoCreateTopicEnable, including changes made at run time (QA F19).
func TestAutoCreateFollowsLiveConfig(t *testing.T) {
	br := newTestBroker(t)
	be := New(br, logging.Discard())
	var _ proxy.AutoCreatePolicy = be
	if !be.AutoCreateTopic() {
		t.Fatal("default broker: auto-create off")
	}
	if err := br.UpdateConfig(map[string]string{"autoCreateTopicEnable": "false"}); err != nil {
		t.Fatal(err)
	}
	if be.AutoCreateTopic() {
		t.Fatal("autoCreateTopicEnable=false at run time not seen")
	}
	if err := br.UpdateConfig(map[string]string{"autoCreateTopicEnable": "true"}); err != nil {
		t.Fatal(err)
	}
	if !be.AutoCreateTopic() {
		t.Fatal("autoCreateTopicEnable=true at run time not seen")
	}
}

// TestPopWriteOnlyTopicForbidden (R4X-1): a pop on a topic that is not readable (perm 2,
// an operator's "stop consumption") is refused with NO_PERMISSION (gRPC FORBIDDEN), as the
// remoting POP handler does, whatever queue the client picked from the route.
func TestPopWriteOnlyTopicForbidden(t *testing.T) {
	br := newTestBroker(t)
	be := New(br, logging.Discard())
	tc := broker.NewTopicConfig("wo", 2)
	tc.Perm = broker.PermWrite
	if err := br.CreateTopic(tc); err != nil {
		t.Fatal(err)
	}
	req := &proxy.PopRequest{Broker: "broker-a", Group: "G", Topic: "wo", QueueID: 0, MaxMessages: 1}
	_, err := be.Pop(context.Background(), req)
	var be2 *proxy.BrokerError
	if !errors.As(err, &be2) || be2.Code != remoting.NoPermission || proxy.CodeOf(err).String() != "FORBIDDEN" {
		t.Fatalf("pop of a write-only topic: %v (code %v)", err, proxy.CodeOf(err))
	}
}

// TestSendBornHostIsClient (R7H-16): in local mode the stored record's born host is the gRPC
// application's connection (as Apache's in-process channel), not the broker's own address;
// a __BORNHOST with a port still wins.
func TestSendBornHostIsClient(t *testing.T) {
	br := newTestBroker(t)
	be := New(br, logging.Discard())
	if err := br.CreateTopic(broker.NewTopicConfig("bh", 1)); err != nil {
		t.Fatal(err)
	}
	client := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 40123}
	for _, tc := range []struct {
		prop, want string
	}{
		{"apphost", "10.1.2.3:40123"},      // go5: a host name
		{"10.9.9.9:5000", "10.9.9.9:5000"}, // an address with a port is kept
	} {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: client})
		m := &proxy.Message{Topic: "bh", Body: []byte("x"), Properties: map[string]string{
			message.PropertyBornHost: tc.prop, message.PropertyUniqKey: "01AABBCCDDEEFF00010007E94D00000001"}}
		res, err := be.Send(ctx, &proxy.SendRequest{Broker: "broker-a", ProducerGroup: "bh", Message: m})
		if err != nil {
			t.Fatal(err)
		}
		ext, err := br.Store.ReadMessage(res.CommitLogOffset)
		if err != nil {
			t.Fatal(err)
		}
		if got := ext.BornHost.String(); got != tc.want {
			t.Errorf("__BORNHOST %q: record born host %s, want %s", tc.prop, got, tc.want)
		}
	}
}

// fakeRoster is a TransactionChecker with a settable producer roster.
type fakeRoster struct {
	mu        sync.Mutex
	producers []proxy.ProducerInfo
	checks    int
}

func (f *fakeRoster) ProducerGroups() []string { return nil }
func (f *fakeRoster) CheckTransaction(*proxy.TransactionCheck) {
	f.mu.Lock()
	f.checks++
	f.mu.Unlock()
}
func (f *fakeRoster) Producers() []proxy.ProducerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proxy.ProducerInfo(nil), f.producers...)
}

// TestProducersRegisteredAsTheirClients: each gRPC producer is registered with the broker
// under every topic it publishes to with its own client id, language and SDK version (QA
// R10X-8: they used to appear as one producer per group carrying the server's version), and
// is unregistered when it goes away.
func TestProducersRegisteredAsTheirClients(t *testing.T) {
	br := newTestBroker(t)
	be := New(br, logging.Discard())
	r := &fakeRoster{producers: []proxy.ProducerInfo{
		{ClientID: "app-1", Groups: []string{"orders", "pay"}, Language: "GO", Version: "5.1.2", RemoteAddr: "10.0.0.9:5000"},
		{ClientID: "app-2", Groups: []string{"orders"}, Language: "NODE_JS", Version: "5.0.1"},
	}}
	be.SetTransactionChecker(r)
	want512, _ := remoting.VersionOrdinal("5.1.2")
	chans := br.Clients.ProducerChannels("orders")
	if len(chans) != 2 {
		t.Fatalf("orders producers %+v", chans)
	}
	byID := map[string]broker.ProducerChannel{}
	for _, c := range chans {
		byID[c.ClientID] = c
	}
	if c := byID["app-1"]; c.Language != "GO" || c.Version != want512 || c.RemoteAddr != "10.0.0.9:5000" {
		t.Fatalf("app-1 registered as %+v, want GO version %d", c.ClientChannel, want512)
	}
	if c := byID["app-2"]; c.Language != "NODE_JS" {
		t.Fatalf("app-2 registered as %+v", c.ClientChannel)
	}
	if p := br.Clients.ProducerChannels("pay"); len(p) != 1 || p[0].ClientID != "app-1" {
		t.Fatalf("pay producers %+v", p)
	}
	// A check of the group reaches the proxy (which picks a connected producer) once.
	if err := p0(br, "orders").CheckTransactionState(context.Background(), broker.CheckRequest{Message: &message.Ext{Message: message.Message{Topic: "orders"}}}); err != nil {
		t.Fatal(err)
	}
	if r.checks != 1 {
		t.Fatalf("checks delivered %d, want 1", r.checks)
	}

	r.mu.Lock()
	r.producers = r.producers[1:]
	r.mu.Unlock()
	be.syncProducers()
	if p := br.Clients.ProducerChannels("pay"); len(p) != 0 {
		t.Fatalf("pay producers after app-1 left %+v", p)
	}
	if p := br.Clients.ProducerChannels("orders"); len(p) != 1 || p[0].ClientID != "app-2" {
		t.Fatalf("orders producers after app-1 left %+v", p)
	}
}

func p0(br *broker.Broker, group string) broker.ProducerChannel {
	return br.Clients.ProducerChannels(group)[0]
}
