package namesrv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startNamesrv runs a NameServer on a free port until the test ends.
func startNamesrv(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return srv
}

func newClient(t *testing.T) *remoting.Client {
	c := remoting.NewClient(remoting.ClientConfig{}, discard())
	t.Cleanup(func() { c.Close() })
	return c
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func brokerReq(cluster, name, addr string, id int64, topicNames ...string) RegisterRequest {
	return RegisterRequest{ClusterName: cluster, BrokerName: name, BrokerAddr: addr, BrokerID: id, HAServerAddr: addr + "-ha", Topics: topics(1, topicNames...)}
}

func invoke(t *testing.T, c *remoting.Client, addr string, code int32, ext map[string]string, body []byte) *remoting.Command {
	t.Helper()
	resp, err := c.Invoke(tctx(t), addr, remoting.NewRequest(code, ext, body))
	if err != nil {
		t.Fatalf("invoke %d: %v", code, err)
	}
	return resp
}

// eventually polls cond every 10 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegisterAndRouteOverRemoting(t *testing.T) {
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	cli := newClient(t)
	if _, err := RegisterBroker(tctx(t), cli, ns, brokerReq("DefaultCluster", "broker-a", "127.0.0.1:10911", 0, "TopicTest")); err != nil {
		t.Fatal(err)
	}
	slave := brokerReq("DefaultCluster", "broker-a", "127.0.0.1:10921", 1, "TopicTest")
	slave.ZoneName = "zone-1"
	res, err := RegisterBroker(tctx(t), cli, ns, slave)
	if err != nil {
		t.Fatal(err)
	}
	if res.MasterAddr != "127.0.0.1:10911" || res.HAServerAddr != "127.0.0.1:10911-ha" {
		t.Fatalf("secondary result %+v", res)
	}
	resp := invoke(t, cli, ns, remoting.GetRouteinfoByTopic, map[string]string{"topic": "TopicTest"}, nil)
	want := `{"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],"brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"},"zoneName":"zone-1","enableActingMaster":false}],"filterServerTable":{}}`
	if resp.Code != remoting.Success || string(resp.Body) != want {
		t.Fatalf("route code %d body\n%s\nwant\n%s", resp.Code, resp.Body, want)
	}
	resp = invoke(t, cli, ns, remoting.GetRouteinfoByTopic, map[string]string{"topic": "Nope"}, nil)
	if resp.Code != remoting.TopicNotExist || resp.Remark != "No topic route info in name server for the topic: Nope" {
		t.Fatalf("unknown topic: %d %q", resp.Code, resp.Remark)
	}
	if _, err := GetRouteInfo(tctx(t), cli, ns, "Nope"); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("GetRouteInfo: %v", err)
	}
	resp = invoke(t, cli, ns, remoting.GetBrokerClusterInfo, nil, nil)
	if !bytes.Contains(resp.Body, []byte(`"clusterAddrTable":{"DefaultCluster":["broker-a"]}`)) {
		t.Fatalf("cluster info %s", resp.Body)
	}
	resp = invoke(t, cli, ns, remoting.GetBrokerMemberGroup, map[string]string{"clusterName": "DefaultCluster", "brokerName": "broker-a"}, nil)
	if !bytes.Contains(resp.Body, []byte(`"brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"}`)) {
		t.Fatalf("member group %s", resp.Body)
	}
	// Missing required header field: SYSTEM_ERROR naming it, connection kept.
	resp = invoke(t, cli, ns, remoting.RegisterBroker, map[string]string{"brokerName": "x"}, nil)
	if resp.Code != remoting.SystemError || !strings.Contains(resp.Remark, "brokerAddr") {
		t.Fatalf("missing field: %d %q", resp.Code, resp.Remark)
	}
	if err := UnregisterBroker(tctx(t), cli, ns, "DefaultCluster", "broker-a", "127.0.0.1:10911", 0); err != nil {
		t.Fatal(err)
	}
	r, err := GetRouteInfo(tctx(t), cli, ns, "TopicTest")
	if err != nil || len(r.BrokerDatas[0].BrokerAddrs) != 1 {
		t.Fatalf("after unregistering the master: %+v %v", r, err)
	}
}

func TestCompressedRegistrationAndCRC(t *testing.T) {
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	cli := newClient(t)
	req := brokerReq("c", "b", "127.0.0.1:1", 0, "Z1", "Z2")
	req.Compressed = true
	if _, err := RegisterBroker(tctx(t), cli, ns, req); err != nil {
		t.Fatal(err)
	}
	if got := srv.Table().Topics(); !slices.Equal(got, []string{"Z1", "Z2"}) {
		t.Fatalf("topics %v", got)
	}
	body, _ := (&route.RegisterBrokerBody{TopicConfigSerializeWrapper: topics(2, "Z3")}).Encode(false)
	resp := invoke(t, cli, ns, remoting.RegisterBroker, map[string]string{
		"brokerName": "b", "brokerAddr": "127.0.0.1:1", "clusterName": "c", "haServerAddr": "", "brokerId": "0",
		"bodyCrc32": "12345",
	}, body)
	if resp.Code != remoting.SystemError || resp.Remark != "crc32 not match" {
		t.Fatalf("bad crc: %d %q", resp.Code, resp.Remark)
	}
	resp = invoke(t, cli, ns, remoting.RegisterBroker, map[string]string{
		"brokerName": "b", "brokerAddr": "127.0.0.1:1", "clusterName": "c", "haServerAddr": "", "brokerId": "0",
		"compressed": "true",
	}, []byte("not zlib"))
	if resp.Code != remoting.SystemError {
		t.Fatalf("bad compressed body: %d %q", resp.Code, resp.Remark)
	}
	if srv.Table().Route("Z3") != nil {
		t.Fatal("rejected registration changed the table")
	}
}

func TestBrokerExpiresAfterItsTimeout(t *testing.T) {
	srv := startNamesrv(t, func(c *Config) { c.ScanNotActiveBrokerInterval = 20 * time.Millisecond })
	ns := srv.Addr().String()
	cli := newClient(t)
	req := brokerReq("c", "b", "127.0.0.1:2", 0, "E")
	req.HeartbeatTimeout = time.Second // generous: heartbeats below must not miss it under load
	start := time.Now()
	if _, err := RegisterBroker(tctx(t), cli, ns, req); err != nil {
		t.Fatal(err)
	}
	conn, _ := cli.Conn(tctx(t), ns)
	// Heartbeats keep it alive past one timeout.
	var lastSend time.Time
	for time.Since(start) < 1200*time.Millisecond {
		lastSend = time.Now()
		resp := invoke(t, cli, ns, remoting.BrokerHeartbeat, map[string]string{"clusterName": "c", "brokerAddr": "127.0.0.1:2", "brokerName": "b", "brokerId": "0"}, nil)
		if resp.Code != remoting.Success {
			t.Fatal(resp)
		}
		if srv.Table().Route("E") == nil {
			t.Fatal("broker expired while heartbeating")
		}
		time.Sleep(100 * time.Millisecond)
	}
	eventually(t, "broker expiry", func() bool { return srv.Table().Route("E") == nil })
	// The NameServer stamped the last heartbeat after lastSend, so expiry cannot be seen
	// before lastSend + timeout.
	if d := time.Since(lastSend); d < time.Second {
		t.Fatalf("expired %v after the last heartbeat was sent, timeout is 1 s", d)
	}
	select {
	case <-conn.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("expired broker's connection not closed")
	}
	// It comes back with its next registration (over a new connection).
	if _, err := RegisterBroker(tctx(t), cli, ns, req); err != nil {
		t.Fatal(err)
	}
	if srv.Table().Route("E") == nil {
		t.Fatal("re-registration not routed")
	}
}

func TestClosedConnectionUnregisters(t *testing.T) {
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	broker := remoting.NewClient(remoting.ClientConfig{}, discard())
	if _, err := RegisterBroker(tctx(t), broker, ns, brokerReq("c", "b", "127.0.0.1:3", 0, "K")); err != nil {
		t.Fatal(err)
	}
	if srv.Table().Route("K") == nil {
		t.Fatal("not registered")
	}
	broker.Close()
	eventually(t, "unregistration on close", func() bool { return srv.Table().Route("K") == nil })
}

func TestQueryDataVersionOverRemoting(t *testing.T) {
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	cli := newClient(t)
	req := brokerReq("c", "b", "127.0.0.1:4", 0, "Q")
	if _, err := RegisterBroker(tctx(t), cli, ns, req); err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"brokerName": "b", "brokerAddr": "127.0.0.1:4", "clusterName": "c", "brokerId": "0"}
	resp := invoke(t, cli, ns, remoting.QueryDataVersion, ext, route.Marshal(req.Topics.DataVersion))
	if resp.ExtString("changed") != "false" || string(resp.Body) != string(route.Marshal(req.Topics.DataVersion)) {
		t.Fatalf("same version: %v %s", resp, resp.Body)
	}
	resp = invoke(t, cli, ns, remoting.QueryDataVersion, ext, []byte(`{"counter":99}`))
	if resp.ExtString("changed") != "true" {
		t.Fatalf("changed version: %v", resp)
	}
}

func TestTopicListsAndAdminCodes(t *testing.T) {
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	cli := newClient(t)
	RegisterBroker(tctx(t), cli, ns, brokerReq("c1", "a", "127.0.0.1:5", 0, "T1", "T2"))
	RegisterBroker(tctx(t), cli, ns, brokerReq("c2", "b", "127.0.0.1:6", 0, "T3"))
	if r := invoke(t, cli, ns, remoting.GetAllTopicListFromNameserver, nil, nil); string(r.Body) != `{"topicList":["T1","T2","T3"]}` {
		t.Fatalf("all topics %s", r.Body)
	}
	if r := invoke(t, cli, ns, remoting.GetTopicsByCluster, map[string]string{"cluster": "c2"}, nil); string(r.Body) != `{"topicList":["T3"]}` {
		t.Fatalf("by cluster %s", r.Body)
	}
	if r := invoke(t, cli, ns, remoting.GetSystemTopicListFromNS, nil, nil); string(r.Body) != `{"topicList":["a","b","c1","c2"],"brokerAddr":"127.0.0.1:5"}` {
		t.Fatalf("system topics %s", r.Body)
	}
	if r := invoke(t, cli, ns, remoting.WipeWritePermOfBroker, map[string]string{"brokerName": "a"}, nil); r.ExtString("wipeTopicCount") != "2" {
		t.Fatalf("wipe %v", r)
	}
	if rt, _ := GetRouteInfo(tctx(t), cli, ns, "T1"); rt.QueueDatas[0].Perm != route.PermRead {
		t.Fatalf("perm after wipe %+v", rt.QueueDatas)
	}
	if r := invoke(t, cli, ns, remoting.AddWritePermOfBroker, map[string]string{"brokerName": "a"}, nil); r.ExtString("addTopicCount") != "2" {
		t.Fatalf("add %v", r)
	}
	invoke(t, cli, ns, remoting.DeleteTopicInNamesrv, map[string]string{"topic": "T2"}, nil)
	rt := &route.TopicRouteData{QueueDatas: []route.QueueData{{BrokerName: "b", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}}}
	if r := invoke(t, cli, ns, remoting.RegisterTopicInNamesrv, map[string]string{"topic": "T9"}, rt.Encode()); r.Code != remoting.Success {
		t.Fatal(r)
	}
	if got := srv.Table().Topics(); !slices.Equal(got, []string{"T1", "T3", "T9"}) {
		t.Fatalf("topics %v", got)
	}
}

func TestKVConfigAndOrderTopicConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "namesrv", "kvConfig.json")
	srv := startNamesrv(t, func(c *Config) { c.KVConfigPath = path; c.OrderMessageEnable = true })
	ns := srv.Addr().String()
	cli := newClient(t)
	put := map[string]string{"namespace": route.NamespaceOrderTopicConfig, "key": "OT", "value": "b:4"}
	if r := invoke(t, cli, ns, remoting.PutKVConfig, put, nil); r.Code != remoting.Success {
		t.Fatal(r)
	}
	res, err := RegisterBroker(tctx(t), cli, ns, brokerReq("c", "b", "127.0.0.1:7", 0, "OT", "Plain"))
	if err != nil || res.OrderTopicConfig["OT"] != "b:4" {
		t.Fatalf("register result %+v %v", res, err)
	}
	r := invoke(t, cli, ns, remoting.GetRouteinfoByTopic, map[string]string{"topic": "OT"}, nil)
	if !bytes.HasPrefix(r.Body, []byte(`{"orderTopicConf":"b:4",`)) {
		t.Fatalf("ordered route %s", r.Body)
	}
	r = invoke(t, cli, ns, remoting.GetRouteinfoByTopic, map[string]string{"topic": "Plain"}, nil)
	if bytes.Contains(r.Body, []byte("orderTopicConf")) {
		t.Fatalf("orderTopicConf on a plain topic: %s", r.Body)
	}
	get := map[string]string{"namespace": route.NamespaceOrderTopicConfig, "key": "OT"}
	if r := invoke(t, cli, ns, remoting.GetKVConfig, get, nil); r.ExtString("value") != "b:4" {
		t.Fatal(r)
	}
	if r := invoke(t, cli, ns, remoting.GetKVListByNamespace, map[string]string{"namespace": route.NamespaceOrderTopicConfig}, nil); string(r.Body) != `{"table":{"OT":"b:4"}}` {
		t.Fatalf("kv list %s", r.Body)
	}
	if r := invoke(t, cli, ns, remoting.GetKVConfig, map[string]string{"namespace": "x", "key": "y"}, nil); r.Code != remoting.QueryNotFound || r.Remark != "No config item, Namespace: x Key: y" {
		t.Fatal(r)
	}
	if r := invoke(t, cli, ns, remoting.GetKVListByNamespace, map[string]string{"namespace": "x"}, nil); r.Code != remoting.QueryNotFound {
		t.Fatal(r)
	}
	// Persisted: a new NameServer on the same file sees it.
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(b, []byte(`"configTable":{"ORDER_TOPIC_CONFIG":{"OT":"b:4"}}`)) {
		t.Fatalf("kv file %s %v", b, err)
	}
	cfg := DefaultConfig()
	cfg.Listen, cfg.KVConfigPath = "127.0.0.1:0", path
	again, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := again.kv.get(route.NamespaceOrderTopicConfig, "OT"); !ok || v != "b:4" {
		t.Fatalf("reloaded kv %q %v", v, ok)
	}
	again.Close()
	invoke(t, cli, ns, remoting.DeleteKVConfig, get, nil)
	if r := invoke(t, cli, ns, remoting.GetKVConfig, get, nil); r.Code != remoting.QueryNotFound {
		t.Fatal(r)
	}
}

// TestUpdateConfigAllowList replays CVE-2023-33246 / CVE-2023-37582: no key naming a
// path, home or command, and nothing outside the allow-list, can be changed remotely.
func TestUpdateConfigAllowList(t *testing.T) {
	dir := t.TempDir()
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	cli := newClient(t)
	before := invoke(t, cli, ns, remoting.GetNamesrvConfig, nil, nil).Body
	evil := filepath.Join(dir, "pwned")
	for _, body := range []string{
		"configStorePath=" + evil,
		"kvConfigPath=" + evil,
		"rocketmqHome=-c $@|sh . echo touch " + evil,
		"configBlackList=",
		"listenPort=1",
		"scanNotActiveBrokerInterval=1",
		"unknownKey=1",
		"enableAllTopicList=false\nkvConfigPath=" + evil, // all or nothing
		"filterServerNums=1",
	} {
		r := invoke(t, cli, ns, remoting.UpdateNamesrvConfig, nil, []byte(body))
		if r.Code != remoting.NoPermission {
			t.Errorf("update %q: code %d %q, want NO_PERMISSION", body, r.Code, r.Remark)
		}
	}
	if r := invoke(t, cli, ns, remoting.UpdateNamesrvConfig, nil, []byte("kvConfigPath=/tmp/x")); r.Remark != "Can not update config in black list." {
		t.Errorf("remark %q", r.Remark)
	}
	after := invoke(t, cli, ns, remoting.GetNamesrvConfig, nil, nil).Body
	if !bytes.Equal(before, after) {
		t.Fatalf("config changed:\n%s\n%s", before, after)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files created: %v", entries)
	}
	// An allowed toggle works and takes effect.
	if r := invoke(t, cli, ns, remoting.UpdateNamesrvConfig, nil, []byte("enableAllTopicList = false\n# comment\n")); r.Code != remoting.Success {
		t.Fatal(r)
	}
	if r := invoke(t, cli, ns, remoting.GetAllTopicListFromNameserver, nil, nil); r.Code != remoting.SystemError || r.Remark != "disable" {
		t.Fatalf("disabled topic list: %v", r)
	}
	if r := invoke(t, cli, ns, remoting.UpdateNamesrvConfig, nil, []byte("enableAllTopicList=maybe")); r.Code != remoting.InvalidParameter {
		t.Fatal(r)
	}
	if !bytes.Contains(invoke(t, cli, ns, remoting.GetNamesrvConfig, nil, nil).Body, []byte("enableAllTopicList=false\n")) {
		t.Fatal("GET_NAMESRV_CONFIG does not show the update")
	}
}

func TestSeveralNameServersSideBySide(t *testing.T) {
	a := startNamesrv(t, nil)
	b := startNamesrv(t, nil)
	cli := newClient(t)
	addrs := SplitAddrs(a.Addr().String() + "; " + b.Addr().String() + ";")
	res, err := RegisterBrokerAll(tctx(t), cli, addrs, brokerReq("c", "b", "127.0.0.1:8", 0, "S"))
	if err != nil || len(res) != 2 {
		t.Fatalf("%v %v", res, err)
	}
	for _, s := range []*Server{a, b} {
		if s.Table().Route("S") == nil {
			t.Fatalf("%s has no route", s.Addr())
		}
	}
	// One NameServer down: registration with the other still succeeds, the error names it.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	res, err = RegisterBrokerAll(tctx(t), cli, []string{a.Addr().String(), deadAddr}, brokerReq("c", "b", "127.0.0.1:8", 0, "S"))
	if err == nil || !strings.Contains(err.Error(), deadAddr) || len(res) != 1 {
		t.Fatalf("%v %v", res, err)
	}
}

func TestRunAndCloseLifecycle(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	srv, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	cli := newClient(t)
	if _, err := RegisterBroker(tctx(t), cli, srv.Addr().String(), brokerReq("c", "b", "127.0.0.1:9", 0, "L")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second); err == nil {
		t.Fatal("listener still open after Close")
	}
	srv.Close() // idempotent
	// A server that never ran releases its listener on Close.
	idle, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	addr := idle.Addr().String()
	idle.Close()
	eventually(t, "port "+addr+" released", func() bool {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
		}
		return err == nil
	})
	if err := idle.Run(context.Background()); err == nil {
		t.Fatal("Run after Close succeeded")
	}
}

func TestConfigValidateAndProperties(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Listen = "" },
		func(c *Config) { c.Listen = "nope" },
		func(c *Config) { c.HTTPListen = "x" },
		func(c *Config) { c.ScanNotActiveBrokerInterval = 0 },
		func(c *Config) { c.BrokerTimeout = -1 },
		func(c *Config) { c.Remoting.SerializeType = 9 },
	}
	for i, mod := range bad {
		c := DefaultConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("case %d: invalid config accepted", i)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "namesrv.conf")
	os.WriteFile(path, []byte("# RocketMQ namesrv.conf\nlistenPort=19876\nscanNotActiveBrokerInterval=2000\norderMessageEnable=true\nkvConfigPath=/var/kv.json\nrocketmqHome=/opt/rocketmq\n"), 0o644)
	c := DefaultConfig()
	warnings, err := c.LoadProperties(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":19876" || c.ScanNotActiveBrokerInterval != 2*time.Second || !c.OrderMessageEnable || c.KVConfigPath != "/var/kv.json" {
		t.Fatalf("loaded %+v", c)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "rocketmqHome") {
		t.Fatalf("warnings %v", warnings)
	}
	os.WriteFile(path, []byte("listenPort=abc\n"), 0o644)
	if _, err := c.LoadProperties(path); err == nil {
		t.Fatal("bad port accepted")
	}
}

func TestBadFramesDoNotDisturbNameServer(t *testing.T) {
	srv := startNamesrv(t, func(c *Config) { c.Remoting.MaxFrameSize = 1 << 20 })
	ns := srv.Addr().String()
	cli := newClient(t)
	if _, err := RegisterBroker(tctx(t), cli, ns, brokerReq("c", "b", "127.0.0.1:10", 0, "G")); err != nil {
		t.Fatal(err)
	}
	hdr := []byte(`{"code":105}`)
	frame := func(lenType uint32, header []byte) []byte {
		f := []byte{0, 0, 0, 0, byte(lenType >> 24), byte(lenType >> 16), byte(lenType >> 8), byte(lenType)}
		n := 4 + len(header)
		f[0], f[1], f[2], f[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return append(f, header...)
	}
	garbage := map[string][]byte{
		"negative length":        {0xff, 0xff, 0xff, 0xf0},
		"oversized":              {0x00, 0x20, 0x00, 0x00},
		"header longer":          frame(0x00000fff, hdr),
		"bad json":               frame(uint32(len(hdr)-1), hdr[:len(hdr)-1]),
		"bad binary":             frame(1<<24|3, []byte{1, 2, 3}),
		"unknown serialize type": frame(5<<24|uint32(len(hdr)), hdr),
	}
	var wg sync.WaitGroup
	for name, g := range garbage {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", ns)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			nc.Write(g)
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(nc); err != nil {
				t.Errorf("%s: connection not closed by the server: %v", name, err)
			}
		}()
	}
	wg.Wait()
	r := invoke(t, cli, ns, 12345, nil, nil)
	if r.Code != remoting.RequestCodeNotSupported || r.Remark != " request type 12345 not supported" {
		t.Fatalf("unknown code %v", r)
	}
	if rt, err := GetRouteInfo(tctx(t), cli, ns, "G"); err != nil || len(rt.QueueDatas) != 1 {
		t.Fatalf("route after bad input: %+v %v", rt, err)
	}
	if srv.Table().Route("G") == nil {
		t.Fatal("healthy broker lost")
	}
}

func TestRouteCacheFollowsChanges(t *testing.T) {
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	cli := newClient(t)
	get := func() *remoting.Command {
		return invoke(t, cli, ns, remoting.GetRouteinfoByTopic, map[string]string{"topic": "C"}, nil)
	}
	req := brokerReq("c", "b", "127.0.0.1:12", 0, "C")
	if _, err := RegisterBroker(tctx(t), cli, ns, req); err != nil {
		t.Fatal(err)
	}
	first := get()
	if again := get(); !bytes.Equal(first.Body, again.Body) {
		t.Fatal("cached route differs")
	}
	// A new data version with more queues.
	req.Topics = topics(2, "C")
	tc := req.Topics.TopicConfigTable["C"]
	tc.WriteQueueNums = 9
	req.Topics.TopicConfigTable["C"] = tc
	if _, err := RegisterBroker(tctx(t), cli, ns, req); err != nil {
		t.Fatal(err)
	}
	if r := get(); !bytes.Contains(r.Body, []byte(`"writeQueueNums":9`)) {
		t.Fatalf("route after re-registration: %s", r.Body)
	}
	// Ordered-topic config appears when the flag is on and the KV entry exists.
	invoke(t, cli, ns, remoting.PutKVConfig, map[string]string{"namespace": route.NamespaceOrderTopicConfig, "key": "C", "value": "b:9"}, nil)
	if r := get(); bytes.Contains(r.Body, []byte("orderTopicConf")) {
		t.Fatal("orderTopicConf while orderMessageEnable is off")
	}
	invoke(t, cli, ns, remoting.UpdateNamesrvConfig, nil, []byte("orderMessageEnable=true"))
	if r := get(); !bytes.Contains(r.Body, []byte(`"orderTopicConf":"b:9"`)) {
		t.Fatalf("orderTopicConf missing: %s", r.Body)
	}
	invoke(t, cli, ns, remoting.PutKVConfig, map[string]string{"namespace": route.NamespaceOrderTopicConfig, "key": "C", "value": "b:3"}, nil)
	if r := get(); !bytes.Contains(r.Body, []byte(`"orderTopicConf":"b:3"`)) {
		t.Fatalf("orderTopicConf not updated: %s", r.Body)
	}
	invoke(t, cli, ns, remoting.WipeWritePermOfBroker, map[string]string{"brokerName": "b"}, nil)
	if r := get(); !bytes.Contains(r.Body, []byte(`"perm":4`)) {
		t.Fatalf("perm not updated: %s", r.Body)
	}
	if err := UnregisterBroker(tctx(t), cli, ns, "c", "b", "127.0.0.1:12", 0); err != nil {
		t.Fatal(err)
	}
	if r := get(); r.Code != remoting.TopicNotExist {
		t.Fatalf("route after unregistration: %d %s", r.Code, r.Body)
	}
}

// TestUnitTopicLists (R7G-6): GET_UNIT_TOPIC_LIST (311), GET_HAS_UNIT_SUB_TOPIC_LIST (312)
// and GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST (313) list topics by their topicSysFlag, and answer
// an empty list (not "not supported") when there are none.
func TestUnitTopicLists(t *testing.T) {
	srv := startNamesrv(t, nil)
	ns := srv.Addr().String()
	cli := newClient(t)
	lists := func() [3]string {
		var out [3]string
		for i, code := range []int32{remoting.GetUnitTopicList, remoting.GetHasUnitSubTopicList, remoting.GetHasUnitSubUnunitTopicList} {
			r := invoke(t, cli, ns, code, nil, nil)
			if r.Code != remoting.Success {
				t.Fatalf("code %d answered %d %q", code, r.Code, r.Remark)
			}
			out[i] = string(r.Body)
		}
		return out
	}
	RegisterBroker(tctx(t), cli, ns, brokerReq("c1", "a", "127.0.0.1:5", 0, "Plain"))
	if got := lists(); got != [3]string{`{"topicList":[]}`, `{"topicList":[]}`, `{"topicList":[]}`} {
		t.Fatalf("no unit topics: %q", got)
	}
	w := topics(2, "Plain", "Unit", "UnitSub", "Both")
	for name, flag := range map[string]int32{"Unit": TopicFlagUnit, "UnitSub": TopicFlagUnitSub, "Both": TopicFlagUnit | TopicFlagUnitSub} {
		tc := w.TopicConfigTable[name]
		tc.TopicSysFlag = flag
		w.TopicConfigTable[name] = tc
	}
	req := brokerReq("c1", "a", "127.0.0.1:5", 0)
	req.Topics = w
	if _, err := RegisterBroker(tctx(t), cli, ns, req); err != nil {
		t.Fatal(err)
	}
	want := [3]string{`{"topicList":["Both","Unit"]}`, `{"topicList":["Both","UnitSub"]}`, `{"topicList":["UnitSub"]}`}
	if got := lists(); got != want {
		t.Fatalf("unit lists %q, want %q", got, want)
	}
}

// TestNodeIDNamesTheHost (QA R10X-9): a wildcard listen address is not the metrics node_id.
func TestNodeIDNamesTheHost(t *testing.T) {
	id := nodeID(&net.TCPAddr{IP: net.IPv6unspecified, Port: 9876})
	if strings.HasPrefix(id, "[::]") || strings.HasPrefix(id, "0.0.0.0") || !strings.HasSuffix(id, ":9876") {
		t.Fatalf("node id %q", id)
	}
	if got := nodeID(&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9876}); got != "10.1.2.3:9876" {
		t.Fatalf("node id of a bound address: %q", got)
	}
}
