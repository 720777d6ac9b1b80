package namesrv

import (
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
)

// Table is the route registry (RocketMQ RouteInfoManager): which clusters hold which broker
// groups, each group's member addresses, each topic's queues per broker group, and the
// liveness of every registered broker address.
//
// It is a plain state machine: time comes in as arguments, and it performs no I/O (conn is
// only stored, compared and returned). All methods are safe for concurrent use; mu is a
// leaf lock.
type Table struct {
	mu          sync.RWMutex
	topicQueues map[string]map[string]route.QueueData // topic -> brokerName -> queues
	brokers     map[string]*route.BrokerData          // brokerName -> members
	clusters    map[string]map[string]struct{}        // cluster -> brokerNames
	live        map[brokerKey]*liveBroker

	supportActingMaster bool
	deleteWithRegister  bool // deleteTopicWithBrokerRegistration

	// gen counts write-lock acquisitions: any change to what Route returns bumps it
	// (Heartbeat too, harmlessly). Read with Gen; written only under mu.
	gen atomic.Uint64
}

// lock takes the write lock and bumps the generation.
func (t *Table) lock() {
	t.mu.Lock()
	t.gen.Add(1)
}

// Gen returns the table generation; a route obtained with RouteGen at generation g is
// current as long as Gen() == g.
func (t *Table) Gen() uint64 { return t.gen.Load() }

type brokerKey struct{ cluster, addr string }

type liveBroker struct {
	lastUpdate   time.Time
	timeout      time.Duration
	dataVersion  route.DataVersion
	haServerAddr string
	conn         io.Closer // connection the broker registered over; nil when unknown
}

func minID(m map[int64]string) int64 {
	first := true
	var lo int64
	for id := range m {
		if first || id < lo {
			lo, first = id, false
		}
	}
	return lo
}

// SetSupportActingMaster turns on RocketMQ's supportActingMaster: routes of acting-master
// broker groups that lost their master show their lowest-id secondary under id 0.
// Default off, as in RocketMQ.
func (t *Table) SetSupportActingMaster(on bool) {
	t.lock()
	t.supportActingMaster = on
	t.mu.Unlock()
}

// SetDeleteTopicWithBrokerRegistration makes a master's registration drop its topics that
// are missing from the registered table (RocketMQ deleteTopicWithBrokerRegistration, default
// off: registrations may carry only the topics that changed).
func (t *Table) SetDeleteTopicWithBrokerRegistration(on bool) {
	t.lock()
	t.deleteWithRegister = on
	t.mu.Unlock()
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{
		topicQueues: make(map[string]map[string]route.QueueData),
		brokers:     make(map[string]*route.BrokerData),
		clusters:    make(map[string]map[string]struct{}),
		live:        make(map[brokerKey]*liveBroker),
	}
}

// Registration is one REGISTER_BROKER request.
type Registration struct {
	Cluster            string
	BrokerName         string
	BrokerAddr         string
	BrokerID           int64
	HAServerAddr       string
	ZoneName           string
	EnableActingMaster bool
	Timeout            time.Duration // liveness window; <= 0 means the table default
	Topics             route.TopicConfigSerializeWrapper
	Conn               io.Closer // closed when the broker expires; may be nil
}

// RegisterResult is what REGISTER_BROKER answers: for a secondary, its master's address
// and HA address; with returnOrderTopicConfigToBroker, the ORDER_TOPIC_CONFIG KV table
// (filled by the client side only).
type RegisterResult struct {
	HAServerAddr     string
	MasterAddr       string
	OrderTopicConfig map[string]string
}

// DefaultBrokerTimeout is RocketMQ's DEFAULT_BROKER_CHANNEL_EXPIRED_TIME (120 s).
const DefaultBrokerTimeout = 120 * time.Second

// Register records a broker registration at time now.
//
// The broker's address is stored under its id; the same address under another id (a
// secondary promoted to primary, or the reverse) is removed first. Topic queue data is
// taken only from the master (id 0), on its first registration or when its DataVersion
// changed; topics the master no longer lists lose its queue data.
func (t *Table) Register(r Registration, now time.Time) RegisterResult {
	t.lock()
	defer t.mu.Unlock()
	names := t.clusters[r.Cluster]
	if names == nil {
		names = make(map[string]struct{})
		t.clusters[r.Cluster] = names
	}
	names[r.BrokerName] = struct{}{}

	first := false
	bd := t.brokers[r.BrokerName]
	if bd == nil {
		first = true
		bd = &route.BrokerData{Cluster: r.Cluster, BrokerName: r.BrokerName, BrokerAddrs: make(map[int64]string)}
		t.brokers[r.BrokerName] = bd
	}
	bd.EnableActingMaster = r.EnableActingMaster
	if r.ZoneName != "" {
		bd.ZoneName = r.ZoneName
	}
	// One address, one id: drop the address under any other id.
	for id, addr := range bd.BrokerAddrs {
		if addr == r.BrokerAddr && id != r.BrokerID {
			delete(bd.BrokerAddrs, id)
		}
	}
	old := bd.BrokerAddrs[r.BrokerID]
	bd.BrokerAddrs[r.BrokerID] = r.BrokerAddr
	first = first || old == ""

	key := brokerKey{r.Cluster, r.BrokerAddr}
	// The prime secondary (lowest id, no master) of an acting-master group also provides
	// queue data, read-only (RocketMQ RIP-32).
	primeSlave := r.EnableActingMaster && r.BrokerID != route.MasterID && r.BrokerID == minID(bd.BrokerAddrs)
	if r.BrokerID == route.MasterID || primeSlave {
		prev, known := t.live[key]
		changed := !known || prev.dataVersion != r.Topics.DataVersion
		if first || changed {
			for name, tc := range r.Topics.TopicConfigTable {
				if name == "" {
					name = tc.TopicName
				}
				perm := tc.Perm
				if primeSlave {
					perm &^= route.PermWrite
				}
				t.putQueueData(name, route.QueueData{
					BrokerName:     r.BrokerName,
					ReadQueueNums:  tc.ReadQueueNums,
					WriteQueueNums: tc.WriteQueueNums,
					Perm:           perm,
					TopicSysFlag:   tc.TopicSysFlag,
				})
			}
			// Topics the broker no longer has lose its queues (only when configured: the
			// table of an incremental registration holds just the changed topics).
			for topic, qm := range t.topicQueues {
				if !t.deleteWithRegister {
					break
				}
				if _, ok := qm[r.BrokerName]; !ok {
					continue
				}
				if _, still := r.Topics.TopicConfigTable[topic]; !still {
					delete(qm, r.BrokerName)
					if len(qm) == 0 {
						delete(t.topicQueues, topic)
					}
				}
			}
		}
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultBrokerTimeout
	}
	t.live[key] = &liveBroker{
		lastUpdate:   now,
		timeout:      timeout,
		dataVersion:  r.Topics.DataVersion,
		haServerAddr: r.HAServerAddr,
		conn:         r.Conn,
	}
	var res RegisterResult
	if r.BrokerID != route.MasterID {
		if master := bd.BrokerAddrs[route.MasterID]; master != "" {
			if ml := t.live[brokerKey{r.Cluster, master}]; ml != nil {
				res.HAServerAddr = ml.haServerAddr
				res.MasterAddr = master
			}
		}
	}
	return res
}

func (t *Table) putQueueData(topic string, qd route.QueueData) {
	qm := t.topicQueues[topic]
	if qm == nil {
		qm = make(map[string]route.QueueData)
		t.topicQueues[topic] = qm
	}
	qm[qd.BrokerName] = qd
}

// Heartbeat refreshes the liveness of a registered broker address (BROKER_HEARTBEAT);
// false when the address is not registered.
func (t *Table) Heartbeat(cluster, addr string, now time.Time) bool {
	t.lock()
	defer t.mu.Unlock()
	lb := t.live[brokerKey{cluster, addr}]
	if lb == nil {
		return false
	}
	lb.lastUpdate = now
	return true
}

// QueryDataVersion implements QUERY_DATA_VERSION: it refreshes liveness and reports whether
// v differs from the registered version, and the registered version (nil when unknown).
func (t *Table) QueryDataVersion(cluster, addr string, v route.DataVersion, now time.Time) (changed bool, registered *route.DataVersion) {
	t.lock()
	defer t.mu.Unlock()
	lb := t.live[brokerKey{cluster, addr}]
	if lb == nil {
		return true, nil
	}
	lb.lastUpdate = now
	dv := lb.dataVersion
	return dv != v, &dv
}

// Unregister removes a broker address (UNREGISTER_BROKER): its liveness entry, its
// address in the broker group (the group and then the cluster entry go when empty), and,
// when the group is gone, its queue data; topics left without queues are deleted.
// The address is removed under whatever id holds it, as RocketMQ does.
func (t *Table) Unregister(cluster, brokerName, brokerAddr string) {
	t.lock()
	defer t.mu.Unlock()
	t.unregisterLocked(cluster, brokerName, brokerAddr)
}

func (t *Table) unregisterLocked(cluster, brokerName, brokerAddr string) {
	delete(t.live, brokerKey{cluster, brokerAddr})
	bd := t.brokers[brokerName]
	if bd == nil {
		return
	}
	for id, addr := range bd.BrokerAddrs {
		if addr == brokerAddr {
			delete(bd.BrokerAddrs, id)
		}
	}
	if len(bd.BrokerAddrs) > 0 {
		if _, hasMaster := bd.BrokerAddrs[route.MasterID]; !hasMaster && bd.EnableActingMaster {
			// Acting-master group lost its master: its queues become read-only.
			t.setWritePermLocked(brokerName, false)
		}
		return
	}
	delete(t.brokers, brokerName)
	if names := t.clusters[bd.Cluster]; names != nil {
		delete(names, brokerName)
		if len(names) == 0 {
			delete(t.clusters, bd.Cluster)
		}
	}
	for topic, qm := range t.topicQueues {
		delete(qm, brokerName)
		if len(qm) == 0 {
			delete(t.topicQueues, topic)
		}
	}
}

// Expired is a broker address removed for silence or a closed connection.
type Expired struct {
	Cluster, BrokerName, BrokerAddr string
	Conn                            io.Closer
}

// ScanExpired removes every broker address whose last registration or heartbeat is older
// than its timeout at time now, and returns them (the caller closes their connections).
func (t *Table) ScanExpired(now time.Time) []Expired {
	t.lock()
	defer t.mu.Unlock()
	var out []Expired
	for key, lb := range t.live {
		if lb.lastUpdate.Add(lb.timeout).Before(now) {
			out = append(out, t.removeLiveLocked(key, lb))
		}
	}
	return out
}

// ConnClosed removes every broker address registered over conn (a closed channel
// unregisters its broker at once).
func (t *Table) ConnClosed(conn io.Closer) []Expired {
	if conn == nil {
		return nil
	}
	t.lock()
	defer t.mu.Unlock()
	var out []Expired
	for key, lb := range t.live {
		if lb.conn == conn {
			out = append(out, t.removeLiveLocked(key, lb))
		}
	}
	return out
}

func (t *Table) removeLiveLocked(key brokerKey, lb *liveBroker) Expired {
	e := Expired{Cluster: key.cluster, BrokerAddr: key.addr, Conn: lb.conn}
	for name, bd := range t.brokers {
		if bd.Cluster != key.cluster {
			continue
		}
		for _, addr := range bd.BrokerAddrs {
			if addr == key.addr {
				e.BrokerName = name
			}
		}
	}
	if e.BrokerName != "" {
		t.unregisterLocked(key.cluster, e.BrokerName, key.addr)
	} else {
		delete(t.live, key)
	}
	return e
}

// Route builds the route of a topic, or nil when the topic has no queue data on a known
// broker group. Queue and broker data are sorted by broker name.
func (t *Table) Route(topic string) *route.TopicRouteData {
	r, _ := t.RouteGen(topic)
	return r
}

// RouteGen is Route plus the generation the route was built at.
func (t *Table) RouteGen(topic string) (*route.TopicRouteData, uint64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.routeLocked(topic), t.gen.Load()
}

func (t *Table) routeLocked(topic string) *route.TopicRouteData {
	qm := t.topicQueues[topic]
	if len(qm) == 0 {
		return nil
	}
	r := &route.TopicRouteData{FilterServerTable: map[string][]string{}}
	for _, name := range slices.Sorted(maps.Keys(qm)) {
		bd := t.brokers[name]
		if bd == nil {
			continue
		}
		qd, cl := qm[name], bd.Clone()
		if t.supportActingMaster && cl.EnableActingMaster && len(cl.BrokerAddrs) > 0 && qd.Perm&route.PermWrite == 0 {
			if _, hasMaster := cl.BrokerAddrs[route.MasterID]; !hasMaster {
				// Expose the lowest-id secondary as the (read-only) acting master.
				id := minID(cl.BrokerAddrs)
				cl.BrokerAddrs[route.MasterID] = cl.BrokerAddrs[id]
				delete(cl.BrokerAddrs, id)
			}
		}
		r.QueueDatas = append(r.QueueDatas, qd)
		r.BrokerDatas = append(r.BrokerDatas, cl)
	}
	if len(r.BrokerDatas) == 0 {
		return nil
	}
	return r
}

// Topics returns every topic with queue data, sorted.
func (t *Table) Topics() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return slices.Sorted(maps.Keys(t.topicQueues))
}

// TopicsByCluster returns the topics with queue data on a broker group of cluster, sorted.
func (t *Table) TopicsByCluster(cluster string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := t.clusters[cluster]
	var out []string
	for topic, qm := range t.topicQueues {
		for name := range qm {
			if _, ok := names[name]; ok {
				out = append(out, topic)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// Topic system flags (Apache TopicSysFlag) carried in a topic's queue data.
const (
	TopicFlagUnit    = 1 << 0 // a unit topic
	TopicFlagUnitSub = 1 << 1 // a topic with unit subscriptions
)

// TopicsWithSysFlag returns, sorted, the topics whose queue data on some broker has a
// topicSysFlag accepted by match (GET_UNIT_TOPIC_LIST and its two siblings).
func (t *Table) TopicsWithSysFlag(match func(flag int32) bool) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := []string{}
	for topic, qm := range t.topicQueues {
		for _, q := range qm {
			if match(q.TopicSysFlag) {
				out = append(out, topic)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// SystemTopics returns RocketMQ's "system topic list": every cluster name and broker
// group name, and one broker address.
func (t *Table) SystemTopics() route.TopicList {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var tl route.TopicList
	for cluster, names := range t.clusters {
		tl.TopicList = append(tl.TopicList, cluster)
		for n := range names {
			tl.TopicList = append(tl.TopicList, n)
		}
	}
	slices.Sort(tl.TopicList)
	tl.TopicList = slices.Compact(tl.TopicList)
	for _, name := range slices.Sorted(maps.Keys(t.brokers)) {
		bd := t.brokers[name]
		if len(bd.BrokerAddrs) > 0 {
			tl.BrokerAddr = bd.BrokerAddrs[slices.Min(slices.Collect(maps.Keys(bd.BrokerAddrs)))]
			break
		}
	}
	return tl
}

// ClusterInfo returns a copy of the broker groups and the cluster membership.
func (t *Table) ClusterInfo() route.ClusterInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ci := route.ClusterInfo{
		BrokerAddrTable:  make(map[string]route.BrokerData, len(t.brokers)),
		ClusterAddrTable: make(map[string][]string, len(t.clusters)),
	}
	for name, bd := range t.brokers {
		ci.BrokerAddrTable[name] = bd.Clone()
	}
	for c, names := range t.clusters {
		ci.ClusterAddrTable[c] = slices.Sorted(maps.Keys(names))
	}
	return ci
}

// BrokerMembers returns the member addresses of a broker group (GET_BROKER_MEMBER_GROUP).
func (t *Table) BrokerMembers(cluster, brokerName string) route.BrokerMemberGroup {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g := route.BrokerMemberGroup{Cluster: cluster, BrokerName: brokerName, BrokerAddrs: map[int64]string{}}
	if bd := t.brokers[brokerName]; bd != nil && bd.Cluster == cluster {
		maps.Copy(g.BrokerAddrs, bd.BrokerAddrs)
	}
	return g
}

// SetWritePerm clears (wipe) or sets the WRITE permission of every queue of a broker group
// and returns how many topics it changed (WIPE/ADD_WRITE_PERM_OF_BROKER).
func (t *Table) SetWritePerm(brokerName string, writable bool) int {
	t.lock()
	defer t.mu.Unlock()
	return t.setWritePermLocked(brokerName, writable)
}

func (t *Table) setWritePermLocked(brokerName string, writable bool) int {
	n := 0
	for _, qm := range t.topicQueues {
		qd, ok := qm[brokerName]
		if !ok {
			continue
		}
		if writable {
			qd.Perm |= route.PermWrite
		} else {
			qd.Perm &^= route.PermWrite
		}
		qm[brokerName] = qd
		n++
	}
	return n
}

// DeleteTopic removes a topic; with a cluster, only the queue data of that cluster's
// broker groups (DELETE_TOPIC_IN_NAMESRV).
func (t *Table) DeleteTopic(topic, cluster string) {
	t.lock()
	defer t.mu.Unlock()
	if cluster == "" {
		delete(t.topicQueues, topic)
		return
	}
	qm := t.topicQueues[topic]
	for name := range t.clusters[cluster] {
		delete(qm, name)
	}
	if len(qm) == 0 {
		delete(t.topicQueues, topic)
	}
}

// RegisterTopic adds queue data of known broker groups to a topic
// (REGISTER_TOPIC_IN_NAMESRV); queue data of unknown groups is ignored. It returns how many
// queue data entries were stored.
func (t *Table) RegisterTopic(topic string, qds []route.QueueData) int {
	t.lock()
	defer t.mu.Unlock()
	n := 0
	for _, qd := range qds {
		if _, ok := t.brokers[qd.BrokerName]; !ok {
			continue
		}
		t.putQueueData(topic, qd)
		n++
	}
	return n
}

// Stats returns the number of live broker addresses and of topics.
func (t *Table) Stats() (brokers, topics int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.live), len(t.topicQueues)
}
