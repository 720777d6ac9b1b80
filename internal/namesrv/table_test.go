package namesrv

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
)

type fakeConn struct{ closed bool }

func (f *fakeConn) Close() error { f.closed = true; return nil }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func topics(version int64, names ...string) route.TopicConfigSerializeWrapper {
	w := route.TopicConfigSerializeWrapper{
		TopicConfigTable: map[string]route.TopicConfig{},
		DataVersion:      route.DataVersion{Timestamp: 1000, Counter: version},
	}
	for _, n := range names {
		w.TopicConfigTable[n] = route.TopicConfig{TopicName: n, ReadQueueNums: 4, WriteQueueNums: 4, Perm: route.PermReadWrite, TopicFilterType: route.TopicFilterSingleTag}
	}
	return w
}

func reg(cluster, name, addr string, id int64, w route.TopicConfigSerializeWrapper) Registration {
	return Registration{Cluster: cluster, BrokerName: name, BrokerAddr: addr, BrokerID: id, HAServerAddr: addr + "-ha", Topics: w}
}

func TestRegisterBuildsRoute(t *testing.T) {
	tb := NewTable()
	tb.Register(reg("c1", "broker-b", "10.0.0.2:10911", 0, topics(1, "T", "U")), t0)
	tb.Register(reg("c1", "broker-a", "10.0.0.1:10911", 0, topics(1, "T")), t0)
	tb.Register(reg("c1", "broker-a", "10.0.0.11:10911", 1, topics(1, "T", "ignored-from-slave")), t0)
	got := tb.Route("T")
	want := &route.TopicRouteData{
		QueueDatas: []route.QueueData{
			{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6},
			{BrokerName: "broker-b", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6},
		},
		BrokerDatas: []route.BrokerData{
			{Cluster: "c1", BrokerName: "broker-a", BrokerAddrs: map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.11:10911"}},
			{Cluster: "c1", BrokerName: "broker-b", BrokerAddrs: map[int64]string{0: "10.0.0.2:10911"}},
		},
		FilterServerTable: map[string][]string{},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("route (-want +got):\n%s", diff)
	}
	if tb.Route("ignored-from-slave") != nil {
		t.Fatal("a secondary's topics created queue data")
	}
	if tb.Route("missing") != nil {
		t.Fatal("route of unknown topic")
	}
	if diff := cmp.Diff([]string{"T", "U"}, tb.Topics()); diff != "" {
		t.Fatal(diff)
	}
}

func TestRegisterSecondaryGetsMasterAddrs(t *testing.T) {
	tb := NewTable()
	if res := tb.Register(reg("c", "b", "m:1", 0, topics(1, "T")), t0); res.MasterAddr != "" || res.HAServerAddr != "" {
		t.Fatalf("master got %+v", res)
	}
	res := tb.Register(reg("c", "b", "s:1", 1, topics(1, "T")), t0)
	if res.MasterAddr != "m:1" || res.HAServerAddr != "m:1-ha" {
		t.Fatalf("secondary got %+v", res)
	}
}

func TestSecondaryPromotedToPrimary(t *testing.T) {
	tb := NewTable()
	tb.Register(reg("c", "b", "m:1", 0, topics(1, "T")), t0)
	tb.Register(reg("c", "b", "s:1", 1, topics(1, "T")), t0)
	// The master goes away; its secondary re-registers with id 0 and a newer table.
	tb.Unregister("c", "b", "m:1")
	if r := tb.Route("T"); r == nil || r.BrokerDatas[0].BrokerAddrs[0] != "" {
		t.Fatalf("after master loss route = %+v", r)
	}
	tb.Register(reg("c", "b", "s:1", 0, topics(2, "T", "V")), t0)
	r := tb.Route("T")
	if diff := cmp.Diff(map[int64]string{0: "s:1"}, r.BrokerDatas[0].BrokerAddrs); diff != "" {
		t.Fatalf("addresses after promotion (-want +got):\n%s", diff)
	}
	if tb.Route("V") == nil {
		t.Fatal("new primary's topics not registered")
	}
}

func TestAddressMovesFromSecondaryToPrimaryID(t *testing.T) {
	tb := NewTable()
	tb.Register(reg("c", "b", "x:1", 1, topics(1, "T")), t0)
	tb.Register(reg("c", "b", "x:1", 0, topics(1, "T")), t0)
	ci := tb.ClusterInfo()
	if diff := cmp.Diff(map[int64]string{0: "x:1"}, ci.BrokerAddrTable["b"].BrokerAddrs); diff != "" {
		t.Fatalf("same address under two ids: %s", diff)
	}
	if tb.Route("T") == nil {
		t.Fatal("topics of the address now primary not registered")
	}
}

// TestIncrementalRegistrationKeepsTopics: by default (as RocketMQ) a registration whose table
// lacks some of the broker's topics adds and updates, never removes: Apache brokers (and
// Rocketry's) register only the created topic when one is created (QA R8I-3).
func TestIncrementalRegistrationKeepsTopics(t *testing.T) {
	tb := NewTable()
	tb.Register(reg("c", "a", "a:1", 0, topics(1, "T", "U")), t0)
	tb.Register(reg("c", "a", "a:1", 0, topics(2, "V")), t0)
	for _, topic := range []string{"T", "U", "V"} {
		if r := tb.Route(topic); r == nil || len(r.QueueDatas) != 1 {
			t.Fatalf("%s after an incremental registration: %+v", topic, r)
		}
	}
}

func TestTopicsRemovedFromMasterTable(t *testing.T) {
	tb := NewTable()
	tb.SetDeleteTopicWithBrokerRegistration(true)
	tb.Register(reg("c", "a", "a:1", 0, topics(1, "T", "U")), t0)
	tb.Register(reg("c", "b", "b:1", 0, topics(1, "U")), t0)
	// Same data version: nothing re-read even if the table differs.
	tb.Register(reg("c", "a", "a:1", 0, topics(1, "T")), t0)
	if r := tb.Route("U"); r == nil || len(r.QueueDatas) != 2 {
		t.Fatalf("unchanged data version re-read the table: %+v", r)
	}
	tb.Register(reg("c", "a", "a:1", 0, topics(2, "T")), t0)
	if r := tb.Route("U"); r == nil || len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b" {
		t.Fatalf("U after a dropped it: %+v", r)
	}
	tb.Register(reg("c", "b", "b:1", 0, topics(2)), t0)
	if tb.Route("U") != nil {
		t.Fatal("topic without queues still routed")
	}
}

func TestQueueDataUpdatedOnNewVersion(t *testing.T) {
	tb := NewTable()
	tb.Register(reg("c", "a", "a:1", 0, topics(1, "T")), t0)
	w := topics(2, "T")
	tc := w.TopicConfigTable["T"]
	tc.WriteQueueNums, tc.Perm = 8, route.PermRead
	w.TopicConfigTable["T"] = tc
	tb.Register(reg("c", "a", "a:1", 0, w), t0)
	if q := tb.Route("T").QueueDatas[0]; q.WriteQueueNums != 8 || q.Perm != route.PermRead {
		t.Fatalf("queue data %+v", q)
	}
}

func TestExpiry(t *testing.T) {
	tb := NewTable()
	ca, cb := &fakeConn{}, &fakeConn{}
	ra := reg("c", "a", "a:1", 0, topics(1, "T", "A"))
	ra.Timeout, ra.Conn = 10*time.Second, ca
	rb := reg("c", "b", "b:1", 0, topics(1, "T"))
	rb.Conn = cb // default timeout 120 s
	tb.Register(ra, t0)
	tb.Register(rb, t0)
	if got := tb.ScanExpired(t0.Add(10 * time.Second)); len(got) != 0 {
		t.Fatalf("expired at exactly the timeout: %+v", got)
	}
	if !tb.Heartbeat("c", "a:1", t0.Add(5*time.Second)) {
		t.Fatal("heartbeat of a registered broker refused")
	}
	if got := tb.ScanExpired(t0.Add(15 * time.Second)); len(got) != 0 {
		t.Fatalf("expired despite heartbeat: %+v", got)
	}
	got := tb.ScanExpired(t0.Add(16 * time.Second))
	if len(got) != 1 || got[0].BrokerName != "a" || got[0].Conn != ca {
		t.Fatalf("expired %+v", got)
	}
	if tb.Route("A") != nil {
		t.Fatal("topic of expired broker still routed")
	}
	if r := tb.Route("T"); r == nil || len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b" {
		t.Fatalf("T after a expired: %+v", r)
	}
	if got := tb.ScanExpired(t0.Add(121 * time.Second)); len(got) != 1 || got[0].BrokerName != "b" {
		t.Fatalf("default timeout expiry: %+v", got)
	}
	if b, tp := tb.Stats(); b != 0 || tp != 0 {
		t.Fatalf("stats after all expired: %d brokers %d topics", b, tp)
	}
	if ci := tb.ClusterInfo(); len(ci.ClusterAddrTable) != 0 || len(ci.BrokerAddrTable) != 0 {
		t.Fatalf("cluster info not emptied: %+v", ci)
	}
	if tb.Heartbeat("c", "a:1", t0) {
		t.Fatal("heartbeat of an expired broker accepted")
	}
}

func TestConnClosedUnregisters(t *testing.T) {
	tb := NewTable()
	c1, c2 := &fakeConn{}, &fakeConn{}
	r1 := reg("c", "a", "a:1", 0, topics(1, "T"))
	r1.Conn = c1
	r2 := reg("c", "a", "a:2", 1, topics(1, "T"))
	r2.Conn = c2
	tb.Register(r1, t0)
	tb.Register(r2, t0)
	if got := tb.ConnClosed(c2); len(got) != 1 || got[0].BrokerAddr != "a:2" {
		t.Fatalf("ConnClosed = %+v", got)
	}
	if r := tb.Route("T"); r == nil || len(r.BrokerDatas[0].BrokerAddrs) != 1 {
		t.Fatalf("route after secondary left: %+v", r)
	}
	// A re-registration over a new connection is not undone by the old one closing.
	c3 := &fakeConn{}
	r1.Conn = c3
	tb.Register(r1, t0)
	if got := tb.ConnClosed(c1); len(got) != 0 {
		t.Fatalf("old connection unregistered %+v", got)
	}
	tb.ConnClosed(c3)
	if tb.Route("T") != nil {
		t.Fatal("route left after last broker's connection closed")
	}
}

func TestUnregisterRemovesEmptyClusters(t *testing.T) {
	tb := NewTable()
	tb.Register(reg("c1", "a", "a:1", 0, topics(1, "T")), t0)
	tb.Register(reg("c2", "b", "b:1", 0, topics(1, "T")), t0)
	tb.Unregister("c1", "a", "a:1")
	ci := tb.ClusterInfo()
	if _, ok := ci.ClusterAddrTable["c1"]; ok {
		t.Fatal("empty cluster kept")
	}
	if diff := cmp.Diff([]string{"T"}, tb.TopicsByCluster("c2")); diff != "" {
		t.Fatal(diff)
	}
	if got := tb.TopicsByCluster("c1"); len(got) != 0 {
		t.Fatalf("topics of removed cluster: %v", got)
	}
	tb.Unregister("c2", "unknown", "x:1") // no-op
}

func TestWritePermAndTopicAdmin(t *testing.T) {
	tb := NewTable()
	tb.Register(reg("c", "a", "a:1", 0, topics(1, "T", "U")), t0)
	tb.Register(reg("c", "b", "b:1", 0, topics(1, "T")), t0)
	if n := tb.SetWritePerm("a", false); n != 2 {
		t.Fatalf("wiped %d topics", n)
	}
	for _, q := range tb.Route("T").QueueDatas {
		if want := map[string]int32{"a": route.PermRead, "b": route.PermReadWrite}[q.BrokerName]; q.Perm != want {
			t.Fatalf("%s perm %d, want %d", q.BrokerName, q.Perm, want)
		}
	}
	if n := tb.SetWritePerm("a", true); n != 2 || tb.Route("U").QueueDatas[0].Perm != route.PermReadWrite {
		t.Fatalf("add write perm: %d", n)
	}
	tb.DeleteTopic("T", "c")
	if tb.Route("T") != nil {
		t.Fatal("topic not deleted in cluster")
	}
	if n := tb.RegisterTopic("N", []route.QueueData{{BrokerName: "a", ReadQueueNums: 2, WriteQueueNums: 2, Perm: 6}, {BrokerName: "ghost"}}); n != 1 {
		t.Fatalf("registered %d queue datas", n)
	}
	if r := tb.Route("N"); r == nil || len(r.QueueDatas) != 1 {
		t.Fatalf("route N %+v", r)
	}
	tb.DeleteTopic("N", "")
	if tb.Route("N") != nil {
		t.Fatal("topic not deleted")
	}
	sys := tb.SystemTopics()
	if diff := cmp.Diff([]string{"a", "b", "c"}, sys.TopicList); diff != "" || sys.BrokerAddr != "a:1" {
		t.Fatalf("system topics %+v %s", sys, diff)
	}
	if g := tb.BrokerMembers("c", "a"); g.BrokerAddrs[0] != "a:1" {
		t.Fatalf("members %+v", g)
	}
}

func TestQueryDataVersion(t *testing.T) {
	tb := NewTable()
	if changed, reg := tb.QueryDataVersion("c", "a:1", route.DataVersion{}, t0); !changed || reg != nil {
		t.Fatal("unknown broker not reported changed")
	}
	r := reg("c", "a", "a:1", 0, topics(3, "T"))
	r.Timeout = 10 * time.Second
	tb.Register(r, t0)
	changed, dv := tb.QueryDataVersion("c", "a:1", r.Topics.DataVersion, t0.Add(9*time.Second))
	if changed || dv == nil || *dv != r.Topics.DataVersion {
		t.Fatalf("changed=%v dv=%v", changed, dv)
	}
	if got := tb.ScanExpired(t0.Add(15 * time.Second)); len(got) != 0 {
		t.Fatal("QUERY_DATA_VERSION did not refresh liveness")
	}
	if changed, _ := tb.QueryDataVersion("c", "a:1", route.DataVersion{Counter: 4}, t0); !changed {
		t.Fatal("different version not reported changed")
	}
}

func TestActingMaster(t *testing.T) {
	tb := NewTable()
	tb.SetSupportActingMaster(true)
	m := reg("c", "b", "m:1", 0, topics(1, "T"))
	m.EnableActingMaster = true
	s1 := reg("c", "b", "s:1", 1, topics(1, "T"))
	s1.EnableActingMaster = true
	s2 := reg("c", "b", "s:2", 2, topics(1, "T"))
	s2.EnableActingMaster = true
	tb.Register(m, t0)
	tb.Register(s1, t0)
	tb.Register(s2, t0)
	if r := tb.Route("T"); r.QueueDatas[0].Perm != route.PermReadWrite || r.BrokerDatas[0].BrokerAddrs[0] != "m:1" {
		t.Fatalf("with master: %+v", r)
	}
	tb.Unregister("c", "b", "m:1")
	r := tb.Route("T")
	if r.QueueDatas[0].Perm&route.PermWrite != 0 {
		t.Fatalf("queues still writable without master: %+v", r.QueueDatas)
	}
	if diff := cmp.Diff(map[int64]string{0: "s:1", 2: "s:2"}, r.BrokerDatas[0].BrokerAddrs); diff != "" {
		t.Fatalf("acting master (-want +got):\n%s", diff)
	}
	// The table itself is unchanged: the acting master exists only in routes.
	if got := tb.ClusterInfo().BrokerAddrTable["b"].BrokerAddrs; got[0] != "" || got[1] != "s:1" {
		t.Fatalf("table modified: %v", got)
	}
	// The prime secondary's re-registration (new data version) keeps queues read-only.
	s1.Topics = topics(2, "T", "U")
	tb.Register(s1, t0)
	if u := tb.Route("U"); u == nil || u.QueueDatas[0].Perm&route.PermWrite != 0 {
		t.Fatalf("prime secondary's topic: %+v", u)
	}
	// Without supportActingMaster the route shows no master.
	tb.SetSupportActingMaster(false)
	if _, ok := tb.Route("T").BrokerDatas[0].BrokerAddrs[0]; ok {
		t.Fatal("acting master shown while unsupported")
	}
	// The master returns: writable again on its (first) registration.
	tb.Register(m, t0)
	if r := tb.Route("T"); r.QueueDatas[0].Perm != route.PermReadWrite {
		t.Fatalf("after master returned: %+v", r.QueueDatas)
	}
}
