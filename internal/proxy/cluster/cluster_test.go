package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// fakeBroker is a remoting server answering the broker side of docs/broker-proxy-protocol.md
// with canned data and recording what it received. It registers with a real NameServer.
type fakeBroker struct {
	addr string
	srv  *remoting.Server

	mu        sync.Mutex
	sends     []*remoting.Command
	acks      []*remoting.Command
	ends      []*remoting.Command
	creates   []string                  // topics of UPDATE_AND_CREATE_TOPIC
	producers map[string]*remoting.Conn // producer group -> connection that heartbeated it
}

func startFakeBroker(t *testing.T, nsAddr string) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBroker{addr: ln.Addr().String(), srv: remoting.NewServer(remoting.ServerConfig{}, logging.Discard()), producers: map[string]*remoting.Conn{}}
	ok := func(cmd *remoting.Command) *remoting.Command { return cmd }
	fb.srv.Handle(remoting.GetTopicConfig, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		if req.ExtString("topic") != "T" {
			return remoting.NewResponse(remoting.TopicNotExist, "no such topic")
		}
		r := remoting.NewResponse(remoting.Success, "")
		r.Body = []byte(`{"topicName":"T","readQueueNums":4,"writeQueueNums":4,"perm":6,"attributes":{"message.type":"FIFO"}}`)
		return ok(r)
	})
	fb.srv.Handle(remoting.GetSubscriptionGroupConfig, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		if req.ExtString("group") != "G" {
			return remoting.NewResponse(remoting.SubscriptionGroupNotExist, "no such group")
		}
		r := remoting.NewResponse(remoting.Success, "")
		r.Body = []byte(`{"groupName":"G","consumeEnable":true,"consumeMessageOrderly":true,"retryMaxTimes":3}`)
		return r
	})
	fb.srv.Handle(remoting.SendMessageV2, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		fb.mu.Lock()
		fb.sends = append(fb.sends, req)
		fb.mu.Unlock()
		r := remoting.NewResponse(remoting.Success, "")
		r.SetExt("msgId", message.OffsetMsgID(netip.MustParseAddrPort(fb.addr), 4242))
		r.SetExt("queueId", req.ExtString("e"))
		r.SetExtInt64("queueOffset", 7)
		r.SetExt("transactionId", "TXN-1")
		return r
	})
	fb.srv.Handle(remoting.PopMessage, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		if req.ExtString("exp") == "none" {
			return remoting.NewResponse(remoting.PollingTimeout, "")
		}
		m := &message.Ext{Message: message.Message{Topic: "T", Body: []byte("hello")}, QueueID: 1, QueueOffset: 3, CommitLogOffset: 99,
			BornHost: netip.MustParseAddrPort("10.0.0.1:5000"), StoreHost: netip.MustParseAddrPort(fb.addr), ReconsumeTimes: 2,
			BornTimestamp: 1000, StoreTimestamp: 2000}
		m.SetProperty(message.PropertyUniqKey, "01UNIQ")
		m.SetProperty(message.PropertyTags, "A")
		m.SetProperty(message.PropertyPopCK, "handle-1")
		if a := req.ExtString("attemptId"); a != "" {
			m.SetProperty("SEEN_ATTEMPT", a) // echoed so the test sees the header arrive
		}
		rec, err := message.AppendRecord(nil, m)
		if err != nil {
			return remoting.NewResponse(remoting.SystemError, err.Error())
		}
		r := remoting.NewResponse(remoting.Success, "")
		r.Body = rec
		return r
	})
	ackLike := func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		fb.mu.Lock()
		fb.acks = append(fb.acks, req)
		fb.mu.Unlock()
		switch req.ExtString("extraInfo") {
		case "forged":
			return remoting.NewResponse(remoting.InvalidParameter, "receipt handle is invalid")
		case "stale":
			return remoting.NewResponse(remoting.NoMessage, "receipt handle is expired")
		}
		r := remoting.NewResponse(remoting.Success, "")
		if req.Code == remoting.ChangeMessageInvisibleTime {
			r.SetExt("extraInfo", "handle-2")
		}
		return r
	}
	fb.srv.Handle(remoting.AckMessage, ackLike)
	fb.srv.Handle(remoting.ChangeMessageInvisibleTime, ackLike)
	fb.srv.Handle(remoting.UpdateAndCreateTopic, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		fb.mu.Lock()
		fb.creates = append(fb.creates, req.ExtString("topic"))
		fb.mu.Unlock()
		return remoting.NewResponse(remoting.Success, "")
	})
	fb.srv.Handle(remoting.EndTransaction, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		fb.mu.Lock()
		fb.ends = append(fb.ends, req)
		fb.mu.Unlock()
		return remoting.NewResponse(remoting.Success, "")
	})
	fb.srv.Handle(remoting.HeartBeat, func(_ context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
		var hb heartbeatBody
		if err := json.Unmarshal(req.Body, &hb); err != nil {
			return remoting.NewResponse(remoting.SystemError, err.Error())
		}
		fb.mu.Lock()
		for _, p := range hb.ProducerDataSet {
			fb.producers[p.GroupName] = c
		}
		fb.mu.Unlock()
		return remoting.NewResponse(remoting.Success, "")
	})
	fb.srv.Handle(remoting.UnregisterClient, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		fb.mu.Lock()
		delete(fb.producers, req.ExtString("producerGroup"))
		fb.mu.Unlock()
		return remoting.NewResponse(remoting.Success, "")
	})
	go fb.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fb.srv.Shutdown(ctx)
	})

	// Register with the NameServer: one topic T, 4 queues, FIFO.
	registerBroker(t, nsAddr, "broker-a", fb.addr, map[string]any{"T": map[string]any{
		"topicName": "T", "readQueueNums": 4, "writeQueueNums": 4, "perm": 6, "topicFilterType": "SINGLE_TAG",
		"topicSysFlag": 0, "order": false, "attributes": map[string]string{"message.type": "FIFO"},
	}})
	return fb
}

// registerBroker registers a master broker name at addr (cluster C) holding topics with the
// NameServer, on a connection kept open for the test (the NameServer drops a broker when its
// registering connection closes).
func registerBroker(t *testing.T, nsAddr, name, addr string, topics map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"topicConfigSerializeWrapper": map[string]any{
			"topicConfigTable": topics,
			"dataVersion":      map[string]any{"stateVersion": 0, "timestamp": time.Now().UnixMilli(), "counter": 1},
		},
		"filterServerList": []string{},
	})
	cli := remoting.NewClient(remoting.ClientConfig{}, logging.Discard())
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, nsAddr, remoting.NewRequest(remoting.RegisterBroker, map[string]string{
		"brokerName": name, "brokerAddr": addr, "clusterName": "C", "haServerAddr": addr, "brokerId": "0",
	}, body))
	if err != nil || resp.Code != remoting.Success {
		t.Fatalf("register %s: %v %v", name, resp, err)
	}
}

func startNamesrv(t *testing.T) string {
	addr, _ := startNamesrvAt(t, "127.0.0.1:0")
	return addr
}

// startNamesrvAt runs a NameServer on listen and returns its address and a stop function
// (idempotent; also run at cleanup).
func startNamesrvAt(t *testing.T, listen string) (string, func()) {
	t.Helper()
	cfg := namesrv.DefaultConfig()
	cfg.Listen = listen
	ns, err := namesrv.New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ns.Run(ctx); close(done) }()
	stop := sync.OnceFunc(func() { cancel(); <-done; ns.Close() })
	t.Cleanup(stop)
	return ns.Addr().String(), stop
}

type recChecker struct {
	groups []string
	got    chan *proxy.TransactionCheck
}

func (r *recChecker) ProducerGroups() []string                   { return r.groups }
func (r *recChecker) CheckTransaction(c *proxy.TransactionCheck) { r.got <- c }

func TestClusterBackendAgainstNamesrvAndFakeBroker(t *testing.T) {
	nsAddr := startNamesrv(t)
	fb := startFakeBroker(t, nsAddr)
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{nsAddr}
	be, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The NameServer may apply a registration asynchronously: wait (bounded) for the route.
	var r *proxy.TopicRoute
	for deadline := time.Now().Add(5 * time.Second); ; {
		if r, err = be.QueryRoute(ctx, "T"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || len(r.Brokers) != 1 || r.Brokers[0] != (proxy.BrokerQueues{Name: "broker-a", ReadQueues: 4, WriteQueues: 4, Perm: 6}) {
		t.Fatalf("route = %+v, %v", r, err)
	}
	if _, err := be.QueryRoute(ctx, "missing"); !errors.Is(err, proxy.ErrTopicNotFound) {
		t.Fatalf("missing topic: %v", err)
	}
	tc, err := be.TopicConfig(ctx, "T")
	if err != nil || tc.MessageType != proxy.MessageTypeFIFO || tc.WriteQueues != 4 {
		t.Fatalf("topic config = %+v, %v", tc, err)
	}
	gc, err := be.GroupConfig(ctx, "G")
	if err != nil || !gc.Orderly || gc.RetryMaxTimes != 3 || !gc.ConsumeEnable {
		t.Fatalf("group config = %+v, %v", gc, err)
	}
	if _, err := be.GroupConfig(ctx, "nope"); !errors.Is(err, proxy.ErrGroupNotFound) {
		t.Fatalf("unknown group: %v", err)
	}

	res, err := be.Send(ctx, &proxy.SendRequest{Broker: "broker-a", QueueID: 2, ProducerGroup: "T", Message: &proxy.Message{
		Topic: "T", Body: []byte("b"), SysFlag: proxy.SysFlagTransactionPrepared, BornTimestamp: 5,
		Properties: map[string]string{"UNIQ_KEY": "01X", "TRAN_MSG": "true"},
	}})
	if err != nil || res.QueueOffset != 7 || res.CommitLogOffset != 4242 || res.TransactionID != "TXN-1" || res.QueueID != 2 {
		t.Fatalf("send = %+v, %v", res, err)
	}
	fb.mu.Lock()
	s := fb.sends[0]
	fb.mu.Unlock()
	props, _ := message.DecodeProperties([]byte(s.ExtString("i")))
	if s.ExtString("a") != "T" || s.ExtString("b") != "T" || s.ExtString("e") != "2" || s.ExtString("f") != "4" || s.ExtString("n") != "broker-a" || props["UNIQ_KEY"] != "01X" || string(s.Body) != "b" {
		t.Fatalf("SEND_MESSAGE_V2 header = %v", s.ExtFields)
	}

	pr, err := be.Pop(ctx, &proxy.PopRequest{Broker: "broker-a", Group: "G", Topic: "T", QueueID: -1, MaxMessages: 4, InvisibleTime: time.Minute, PollTime: time.Second, FilterType: "TAG", FilterExpr: "*", AttemptID: "att-1"})
	if err != nil || len(pr.Messages) != 1 {
		t.Fatalf("pop = %+v, %v", pr, err)
	}
	if got := pr.Messages[0].Properties["SEEN_ATTEMPT"]; got != "att-1" {
		t.Fatalf("POP header attemptId %q, want att-1", got)
	}
	m := pr.Messages[0]
	if m.ReceiptHandle != "handle-1" || m.ReconsumeTimes != 2 || m.QueueOffset != 3 || m.Properties["UNIQ_KEY"] != "01UNIQ" || m.BornHost != "10.0.0.1:5000" || string(m.Body) != "hello" {
		t.Fatalf("popped = %+v", m)
	}
	if pr, err := be.Pop(ctx, &proxy.PopRequest{Broker: "broker-a", Group: "G", Topic: "T", QueueID: -1, MaxMessages: 1, InvisibleTime: time.Minute, FilterType: "TAG", FilterExpr: "none"}); err != nil || len(pr.Messages) != 0 {
		t.Fatalf("empty pop = %+v, %v", pr, err)
	}

	h := proxy.Handle{Broker: "broker-a", QueueID: 1, QueueOffset: 3, Raw: "handle-1"}
	if err := be.Ack(ctx, &proxy.AckRequest{Group: "G", Topic: "T", Handle: h}); err != nil {
		t.Fatal(err)
	}
	if err := be.Ack(ctx, &proxy.AckRequest{Group: "G", Topic: "T", Handle: proxy.Handle{Broker: "broker-a", Raw: "forged"}}); !errors.Is(err, proxy.ErrHandleInvalid) {
		t.Fatalf("forged: %v", err)
	}
	if err := be.Ack(ctx, &proxy.AckRequest{Group: "G", Topic: "T", Handle: proxy.Handle{Broker: "broker-a", Raw: "stale"}}); !errors.Is(err, proxy.ErrHandleExpired) {
		t.Fatalf("stale: %v", err)
	}
	nh, err := be.ChangeInvisible(ctx, &proxy.ChangeInvisibleRequest{Group: "G", Topic: "T", Handle: h, InvisibleTime: 30 * time.Second})
	if err != nil || nh != "handle-2" {
		t.Fatalf("change invisible = %q, %v", nh, err)
	}
	fb.mu.Lock()
	ci := fb.acks[len(fb.acks)-1]
	fb.mu.Unlock()
	if ci.ExtString("invisibleTime") != "30000" || ci.ExtString("offset") != "3" || ci.ExtString("queueId") != "1" {
		t.Fatalf("change invisible header = %v", ci.ExtFields)
	}
	if err := be.Ack(ctx, &proxy.AckRequest{Group: "G", Topic: "T", Handle: proxy.Handle{Broker: "broker-x", Raw: "h"}}); !errors.Is(err, proxy.ErrBrokerNotFound) {
		t.Fatalf("unknown broker: %v", err)
	}

	if err := be.EndTransaction(ctx, &proxy.EndTransactionRequest{Broker: "broker-a", ProducerGroup: "T", CommitLogOffset: 4242, TranStateTableOffset: 7, MsgID: "01X", TransactionID: "TXN-1", Resolution: proxy.ResolutionRollback}); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	e := fb.ends[0]
	fb.mu.Unlock()
	if e.ExtString("commitOrRollback") != "12" || e.ExtString("commitLogOffset") != "4242" || e.ExtString("tranStateTableOffset") != "7" || e.ExtString("producerGroup") != "T" {
		t.Fatalf("END_TRANSACTION header = %v", e.ExtFields)
	}

	// Check-backs: the heartbeat registers producer group T; a CHECK_TRANSACTION_STATE on that
	// connection reaches the checker with the broker's name and the half message.
	rc := &recChecker{groups: []string{"T"}, got: make(chan *proxy.TransactionCheck, 1)}
	be.SetTransactionChecker(rc)
	be.heartbeat(ctx)
	fb.mu.Lock()
	conn := fb.producers["T"]
	fb.mu.Unlock()
	if conn == nil {
		t.Fatal("heartbeat did not register producer group T")
	}
	half := &message.Ext{Message: message.Message{Topic: "RMQ_SYS_TRANS_HALF_TOPIC", Body: []byte("half")}, StoreHost: netip.MustParseAddrPort(fb.addr), BornHost: netip.MustParseAddrPort("10.0.0.1:1")}
	half.SetProperty(message.PropertyRealTopic, "T")
	half.SetProperty(message.PropertyProducerGroup, "T")
	half.SetProperty(message.PropertyUniqKey, "01HALF")
	rec, err := message.AppendRecord(nil, half)
	if err != nil {
		t.Fatal(err)
	}
	chk := remoting.NewRequest(remoting.CheckTransactionState, map[string]string{
		"tranStateTableOffset": "11", "commitLogOffset": "222", "msgId": "01HALF", "transactionId": "TXN-9",
	}, rec)
	chk.MarkOneway()
	if err := conn.InvokeOneway(chk); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-rc.got:
		if c.Broker != "broker-a" || c.ProducerGroup != "T" || c.Message.Topic != "T" || c.CommitLogOffset != 222 || c.TranStateTableOffset != 11 || c.TransactionID != "TXN-9" || string(c.Message.Body) != "half" {
			t.Fatalf("check = %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("check-back did not reach the checker")
	}

	// The last producer of T leaves: the next heartbeat unregisters the group, so the broker
	// stops sending T's check-backs to this proxy (QA R8J-4).
	rc.groups = nil
	be.heartbeat(ctx)
	fb.mu.Lock()
	_, still := fb.producers["T"]
	fb.mu.Unlock()
	if still {
		t.Fatal("producer group T still registered after its last producer left")
	}
}

func TestQuoteNumericKeys(t *testing.T) {
	var v struct {
		A map[string]string `json:"brokerAddrs"`
	}
	if err := decodeJSON([]byte(`{"brokerAddrs":{0:"a:1",1:"b:2"}}`), &v); err != nil || v.A["0"] != "a:1" || v.A["1"] != "b:2" {
		t.Fatalf("decode = %+v, %v", v, err)
	}
	var s struct{ X string }
	if err := decodeJSON([]byte(`{"X":"{0:1}"}`), &s); err != nil || s.X != "{0:1}" {
		t.Fatalf("string content changed: %+v, %v", s, err)
	}
}

// TestReady (QA R7H-20): the cluster proxy is ready only when a NameServer answers and knows
// a master broker.
func TestReady(t *testing.T) {
	ready := func(nsAddrs ...string) error {
		cfg := DefaultConfig()
		cfg.NamesrvAddrs = nsAddrs
		be, err := New(cfg, logging.Discard())
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return be.Ready(ctx)
	}
	if err := ready("127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "no NameServer reachable") {
		t.Fatalf("unreachable NameServer: %v", err)
	}
	nsAddr := startNamesrv(t)
	if err := ready(nsAddr); err == nil || !strings.Contains(err.Error(), "no master broker") {
		t.Fatalf("NameServer without brokers: %v", err)
	}
	startFakeBroker(t, nsAddr)
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = ready("127.0.0.1:1", nsAddr); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("NameServer with a broker (first address dead): %v", err)
	}
}

// TestReadyThroughANameServerOutage (QA R11C-2): a proxy that has learned a master stays
// ready when its NameServer goes away (it serves from its route cache), and its route
// lookups keep answering from the cache.
func TestReadyThroughANameServerOutage(t *testing.T) {
	nsAddr, stopNS := startNamesrvAt(t, "127.0.0.1:0")
	startFakeBroker(t, nsAddr)

	bcfg := DefaultConfig()
	bcfg.NamesrvAddrs = []string{nsAddr}
	bcfg.CacheTTL = time.Nanosecond // every lookup tries the NameServer
	be, err := New(bcfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitUntil(t, 5*time.Second, "ready with a NameServer", func() bool { return be.Ready(ctx) == nil })
	waitUntil(t, 5*time.Second, "route of T", func() bool { _, err := be.QueryRoute(ctx, "T"); return err == nil })

	stopNS()
	if err := be.Ready(ctx); err != nil {
		t.Fatalf("not ready while the NameServer is down, with a master known: %v", err)
	}
	if _, err := be.QueryRoute(ctx, "T"); err != nil {
		t.Fatalf("route while the NameServer is down: %v", err)
	}

	// The NameServer comes back empty (the brokers have not registered again yet): its "no
	// such topic" does not replace the cached route (QA R12D-4).
	startNamesrvAt(t, nsAddr)
	if _, err := be.QueryRoute(ctx, "T"); err != nil {
		t.Fatalf("route with a restarted, empty NameServer: %v", err)
	}
	if err := be.Ready(ctx); err != nil {
		t.Fatalf("not ready with a restarted, empty NameServer: %v", err)
	}
}

// TestRouteSurvivesAnEmptyNameServer (QA R8J-1): a NameServer that does not know a topic (one
// just restarted, before the brokers registered again) does not make the topic "not found"
// while another NameServer routes it; a topic no NameServer knows is still not found.
func TestRouteSurvivesAnEmptyNameServer(t *testing.T) {
	full := startNamesrv(t)
	empty := startNamesrv(t)
	startFakeBroker(t, full)
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{empty, full}
	cfg.CacheTTL = time.Nanosecond // every lookup asks the NameServers
	be, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := be.QueryRoute(ctx, "T"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("route of T never served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 6 { // the NameServer rotation starts at each of them
		if _, err := be.QueryRoute(ctx, "T"); err != nil {
			t.Fatalf("lookup %d with one empty NameServer: %v", i, err)
		}
	}
	if _, err := be.QueryRoute(ctx, "missing"); !errors.Is(err, proxy.ErrTopicNotFound) {
		t.Fatalf("unknown topic: %v", err)
	}
}

// registerHungBroker registers broker-b (cluster C) whose UPDATE_AND_CREATE_TOPIC never
// answers until the test ends: a broker stopped with SIGSTOP.
func registerHungBroker(t *testing.T, nsAddr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := remoting.NewServer(remoting.ServerConfig{}, logging.Discard())
	hang := func(ctx context.Context, _ *remoting.Conn, _ *remoting.Command) *remoting.Command {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return remoting.NewResponse(remoting.TopicNotExist, "")
	}
	srv.Handle(remoting.UpdateAndCreateTopic, hang)
	srv.Handle(remoting.GetTopicConfig, hang)
	go srv.Serve(ln)
	t.Cleanup(func() {
		close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	registerBroker(t, nsAddr, "broker-b", ln.Addr().String(), map[string]any{})
}

// TestCreateTopicWithAHungBroker (QA R9L-3, R9M-1): with one master hung, auto-create answers
// within the client's route deadline, and creates nothing: the hung broker may hold the
// topic (a topic re-created elsewhere as NORMAL would change its type and queues for good).
func TestCreateTopicWithAHungBroker(t *testing.T) {
	nsAddr := startNamesrv(t)
	fb := startFakeBroker(t, nsAddr)
	registerHungBroker(t, nsAddr)
	be := newTestBackend(t, nsAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitMasters(t, be, 2)
	start := time.Now()
	err := be.CreateTopic(ctx, proxy.TopicConfig{Name: "NEW", ReadQueues: 4, WriteQueues: 4, Perm: 6, MessageType: proxy.MessageTypeNormal})
	took := time.Since(start)
	if !errors.Is(err, proxy.ErrUnavailable) {
		t.Fatalf("create with one hung broker: %v, want unavailable", err)
	}
	if took > 2*createTopicBrokerTimeout {
		t.Errorf("create took %v with one hung broker", took)
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.creates) != 0 {
		t.Fatalf("created %v although a master could not say whether it holds the topic", fb.creates)
	}
}

// TestAutoCreateNeverRecreatesAnExistingTopic (QA R9M-1): a topic this proxy has seen routed
// is not re-created when its route goes missing (NameServer restarted, broker forgotten),
// and a topic a master holds while the NameServers do not route it yet is routed to that
// master, not created.
func TestAutoCreateNeverRecreatesAnExistingTopic(t *testing.T) {
	nsAddr := startNamesrv(t)
	fb := startFakeBroker(t, nsAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	be := newTestBackend(t, nsAddr)
	waitMasters(t, be, 1)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := be.QueryRoute(ctx, "T"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := be.CreateTopic(ctx, proxy.TopicConfig{Name: "T", ReadQueues: 8, WriteQueues: 8, Perm: 6}); !errors.Is(err, proxy.ErrTopicNotFound) {
		t.Fatalf("re-create of a routed topic: %v, want topic not found", err)
	}

	// A proxy that never saw T (started while T had no route): broker-a holds it.
	fresh := newTestBackend(t, nsAddr)
	waitMasters(t, fresh, 1)
	if err := fresh.CreateTopic(ctx, proxy.TopicConfig{Name: "T", ReadQueues: 8, WriteQueues: 8, Perm: 6}); err != nil {
		t.Fatalf("create of a topic a master holds: %v", err)
	}
	r, err := fresh.QueryRoute(ctx, "T")
	if err != nil || len(r.Brokers) != 1 || r.Brokers[0] != (proxy.BrokerQueues{Name: "broker-a", ReadQueues: 4, WriteQueues: 4, Perm: 6}) {
		t.Fatalf("route = %+v, %v; want broker-a's own 4 queues", r, err)
	}
	// A new topic is still created.
	if err := fresh.CreateTopic(ctx, proxy.TopicConfig{Name: "NEW", ReadQueues: 8, WriteQueues: 8, Perm: 6}); err != nil {
		t.Fatalf("create of a new topic: %v", err)
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if !slices.Equal(fb.creates, []string{"NEW"}) {
		t.Fatalf("UPDATE_AND_CREATE_TOPIC for %v, want only NEW", fb.creates)
	}
}

func newTestBackend(t *testing.T, nsAddr string) *Backend {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{nsAddr}
	be, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// waitMasters waits (bounded) until the NameServer lists n masters (it may apply
// registrations asynchronously).
func waitMasters(t *testing.T, be *Backend, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for deadline := time.Now().Add(5 * time.Second); ; {
		m, err := be.clusterMasters(ctx)
		if err == nil && len(m) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("masters %v, %v; want %d", m, err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUntil polls cond every 20 ms until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
