package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// fakeCluster is a NameServer and one broker ("broker-a") in one remoting server, holding
// just enough state to exercise the admin client: it speaks the Java servers' wire formats,
// including fastjson object keys in GET_CONSUME_STATS and numeric keys in cluster info, and
// answers INVOKE_BROKER_TO_RESET_OFFSET with CONSUMER_NOT_ONLINE (as Java does for offline
// groups) so the direct-commit path is used.
type fakeCluster struct {
	t    *testing.T
	srv  *remoting.Server
	addr string

	mu      sync.Mutex
	topics  map[string]wireTopicConfig
	groups  map[string]wireGroupConfig
	queues  map[string][][]*message.Ext // topic -> qid -> messages (offset = index)
	offsets map[string]int64            // group/topic/qid -> committed offset
	log     []byte                      // commit log: encoded records
	calls   map[int32]int
	// deadBroker, when set, is the address of a second master "broker-b" listed in the
	// cluster info that does not answer (a closed port).
	deadBroker string
	// brokerAddr, when set, is the master address routes give for broker-a (a broker that
	// does not answer, while the NameServer does).
	brokerAddr string
	// silentB, when set, is the address of a second master "broker-b" that routes list with
	// the same queues and that does not answer.
	silentB string
	// unrouted names topics the broker holds but the NameServer does not route (yet).
	unrouted map[string]bool
}

func newFakeCluster(t *testing.T) *fakeCluster {
	f := &fakeCluster{t: t, topics: map[string]wireTopicConfig{}, groups: map[string]wireGroupConfig{},
		queues: map[string][][]*message.Ext{}, offsets: map[string]int64{}, calls: map[int32]int{}}
	f.srv = remoting.NewServer(remoting.ServerConfig{}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	for code, h := range map[int32]func(*remoting.Command) *remoting.Command{
		remoting.GetBrokerClusterInfo:             f.clusterInfo,
		remoting.GetRouteinfoByTopic:              f.route,
		remoting.GetAllTopicListFromNameserver:    f.topicList,
		remoting.DeleteTopicInNamesrv:             func(*remoting.Command) *remoting.Command { return ok() },
		remoting.UpdateAndCreateTopic:             f.createTopic,
		remoting.DeleteTopicInBroker:              f.deleteTopic,
		remoting.GetTopicConfig:                   f.topicConfig,
		remoting.GetBrokerRuntimeInfo:             f.runtime,
		remoting.GetMinOffset:                     f.minOffset,
		remoting.GetMaxOffset:                     f.maxOffset,
		remoting.SearchOffsetByTimestamp:          f.searchOffset,
		remoting.UpdateAndCreateSubscriptionGroup: f.createGroup,
		remoting.GetAllSubscriptionGroupConfig:    f.allGroups,
		remoting.GetSubscriptionGroupConfig:       f.groupConfig,
		remoting.DeleteSubscriptionGroup:          f.deleteGroup,
		remoting.GetConsumeStats:                  f.consumeStats,
		remoting.GetTopicStatsInfo:                f.topicStats,
		remoting.GetConsumerConnectionList: func(*remoting.Command) *remoting.Command {
			return remoting.NewResponse(remoting.ConsumerNotOnline, "the consumer group not online")
		},
		remoting.InvokeBrokerToResetOffset: func(*remoting.Command) *remoting.Command {
			return remoting.NewResponse(remoting.ConsumerNotOnline, "Consumer not online, so can not reset offset")
		},
		remoting.QueryConsumerOffset:  f.queryOffset,
		remoting.UpdateConsumerOffset: f.updateOffset,
		remoting.SendMessageV2:        f.send,
		remoting.PullMessage:          f.pull,
		remoting.QueryMessage:         f.query,
		remoting.ViewMessageByID:      f.view,
		remoting.GetBrokerConfig: func(*remoting.Command) *remoting.Command {
			r := ok()
			r.Body = []byte("brokerName=broker-a\nbrokerIP1=127.0.0.1\n")
			return r
		},
	} {
		f.srv.Handle(code, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls[code]++
			return h(req)
		})
	}
	go f.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.srv.Shutdown(ctx)
	})
	return f
}

func (f *fakeCluster) callCount(code int32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[code]
}

func ok() *remoting.Command { return remoting.NewResponse(remoting.Success, "") }

func withBody(v any) *remoting.Command {
	r := ok()
	switch b := v.(type) {
	case string:
		r.Body = []byte(b)
	default:
		r.Body, _ = json.Marshal(v)
	}
	return r
}

func (f *fakeCluster) clusterInfo(*remoting.Command) *remoting.Command {
	// fastjson style: unquoted numeric map keys
	if f.deadBroker != "" {
		return withBody(fmt.Sprintf(`{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:%q},"brokerName":"broker-a","cluster":"DefaultCluster"},`+
			`"broker-b":{"brokerAddrs":{0:%q},"brokerName":"broker-b","cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-a","broker-b"]}}`, f.addr, f.deadBroker))
	}
	return withBody(fmt.Sprintf(`{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:%q},"brokerName":"broker-a","cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}`, f.addr))
}

func (f *fakeCluster) route(req *remoting.Command) *remoting.Command {
	tc, found := f.topics[req.ExtString("topic")]
	if !found || f.unrouted[req.ExtString("topic")] {
		return remoting.NewResponse(remoting.TopicNotExist, "No topic route info in name server for the topic: "+req.ExtString("topic"))
	}
	qds := []map[string]any{{"brokerName": "broker-a", "readQueueNums": tc.ReadQueueNums, "writeQueueNums": tc.WriteQueueNums, "perm": tc.Perm}}
	bds := []map[string]any{{"cluster": "DefaultCluster", "brokerName": "broker-a", "brokerAddrs": map[string]string{"0": cmp.Or(f.brokerAddr, f.addr)}}}
	if f.silentB != "" {
		qds = append(qds, map[string]any{"brokerName": "broker-b", "readQueueNums": tc.ReadQueueNums, "writeQueueNums": tc.WriteQueueNums, "perm": tc.Perm})
		bds = append(bds, map[string]any{"cluster": "DefaultCluster", "brokerName": "broker-b", "brokerAddrs": map[string]string{"0": f.silentB}})
	}
	return withBody(map[string]any{"queueDatas": qds, "brokerDatas": bds})
}

func (f *fakeCluster) topicList(*remoting.Command) *remoting.Command {
	var names []string
	for n := range f.topics {
		names = append(names, n)
	}
	return withBody(map[string]any{"topicList": names})
}

func (f *fakeCluster) createTopic(req *remoting.Command) *remoting.Command {
	n, _ := strconv.Atoi(req.ExtString("readQueueNums"))
	perm, _ := strconv.Atoi(req.ExtString("perm"))
	attrs := map[string]string{}
	for _, kv := range strings.Split(req.ExtString("attributes"), ",") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(kv, "+"), "="); ok {
			attrs[k] = v
		}
	}
	f.addTopic(req.ExtString("topic"), n, perm, attrs)
	return ok()
}

func (f *fakeCluster) addTopic(name string, n, perm int, attrs map[string]string) {
	f.topics[name] = wireTopicConfig{TopicName: name, ReadQueueNums: int32(n), WriteQueueNums: int32(n), Perm: int32(perm), Attributes: attrs}
	for len(f.queues[name]) < n {
		f.queues[name] = append(f.queues[name], nil)
	}
}

func (f *fakeCluster) deleteTopic(req *remoting.Command) *remoting.Command {
	delete(f.topics, req.ExtString("topic"))
	delete(f.queues, req.ExtString("topic"))
	return ok()
}

func (f *fakeCluster) topicConfig(req *remoting.Command) *remoting.Command {
	tc, found := f.topics[req.ExtString("topic")]
	if !found {
		return remoting.NewResponse(remoting.TopicNotExist, "no topic")
	}
	return withBody(map[string]any{"topicConfig": tc}) // RocketMQ 5 wrapper form
}

func (f *fakeCluster) runtime(*remoting.Command) *remoting.Command {
	return withBody(map[string]any{"table": map[string]string{"brokerVersionDesc": "V5_3_3", "putTps": "12.5 11.0 10.0",
		"getTransferedTps": "3.0 2.0 1.0", "commitLogDiskRatio": "0.25", "msgPutTotalTodayNow": "100", "msgPutTotalTodayMorning": "40"}})
}

func (f *fakeCluster) queue(req *remoting.Command) ([]*message.Ext, bool) {
	qs, found := f.queues[req.ExtString("topic")]
	qid, _ := strconv.Atoi(req.ExtString("queueId"))
	if !found || qid < 0 || qid >= len(qs) {
		return nil, false
	}
	return qs[qid], true
}

func offsetResp(off int64) *remoting.Command {
	r := ok()
	r.SetExtInt64("offset", off)
	return r
}

func (f *fakeCluster) minOffset(req *remoting.Command) *remoting.Command { return offsetResp(0) }

func (f *fakeCluster) maxOffset(req *remoting.Command) *remoting.Command {
	q, _ := f.queue(req)
	return offsetResp(int64(len(q)))
}

func (f *fakeCluster) searchOffset(req *remoting.Command) *remoting.Command {
	q, _ := f.queue(req)
	ts, _ := strconv.ParseInt(req.ExtString("timestamp"), 10, 64)
	for i, m := range q {
		if m.StoreTimestamp >= ts {
			return offsetResp(int64(i))
		}
	}
	return offsetResp(int64(len(q)))
}

func (f *fakeCluster) createGroup(req *remoting.Command) *remoting.Command {
	var g wireGroupConfig
	if err := json.Unmarshal(req.Body, &g); err != nil || g.GroupName == "" {
		return remoting.NewResponse(remoting.InvalidParameter, "bad body")
	}
	f.groups[g.GroupName] = g
	return ok()
}

func (f *fakeCluster) allGroups(*remoting.Command) *remoting.Command {
	return withBody(map[string]any{"subscriptionGroupTable": f.groups, "dataVersion": map[string]int{"counter": 1}})
}

func (f *fakeCluster) groupConfig(req *remoting.Command) *remoting.Command {
	g, found := f.groups[req.ExtString("group")]
	if !found {
		return remoting.NewResponse(remoting.SubscriptionGroupNotExist, "group not exist")
	}
	return withBody(g)
}

func (f *fakeCluster) deleteGroup(req *remoting.Command) *remoting.Command {
	delete(f.groups, req.ExtString("groupName"))
	return ok()
}

// consumeStats answers in fastjson's form: MessageQueue objects as map keys.
func (f *fakeCluster) consumeStats(req *remoting.Command) *remoting.Command {
	group := req.ExtString("consumerGroup")
	if _, found := f.groups[group]; !found {
		return remoting.NewResponse(remoting.SubscriptionGroupNotExist, "group not exist")
	}
	var parts []string
	for topic, qs := range f.queues {
		for qid, q := range qs {
			off, found := f.offsets[fmt.Sprintf("%s/%s/%d", group, topic, qid)]
			if !found {
				continue
			}
			parts = append(parts, fmt.Sprintf(`{"brokerName":"broker-a","queueId":%d,"topic":%q}:{"brokerOffset":%d,"consumerOffset":%d,"pullOffset":%d,"lastTimestamp":0}`,
				qid, topic, len(q), off, min(off+1, int64(len(q)))))
		}
	}
	return withBody(`{"consumeTps":0.5,"offsetTable":{` + strings.Join(parts, ",") + `}}`)
}

func (f *fakeCluster) topicStats(req *remoting.Command) *remoting.Command {
	topic := req.ExtString("topic")
	qs, found := f.queues[topic]
	if !found {
		return remoting.NewResponse(remoting.TopicNotExist, "no topic")
	}
	var parts []string
	for qid, q := range qs {
		var last int64
		if len(q) > 0 {
			last = q[len(q)-1].StoreTimestamp
		}
		parts = append(parts, fmt.Sprintf(`{"brokerName":"broker-a","queueId":%d,"topic":%q}:{"minOffset":0,"maxOffset":%d,"lastUpdateTimestamp":%d}`,
			qid, topic, len(q), last))
	}
	return withBody(`{"offsetTable":{` + strings.Join(parts, ",") + `}}`)
}

func (f *fakeCluster) queryOffset(req *remoting.Command) *remoting.Command {
	off, found := f.offsets[fmt.Sprintf("%s/%s/%s", req.ExtString("consumerGroup"), req.ExtString("topic"), req.ExtString("queueId"))]
	if !found {
		return remoting.NewResponse(remoting.QueryNotFound, "not found")
	}
	return offsetResp(off)
}

func (f *fakeCluster) updateOffset(req *remoting.Command) *remoting.Command {
	off, _ := strconv.ParseInt(req.ExtString("commitOffset"), 10, 64)
	f.offsets[fmt.Sprintf("%s/%s/%s", req.ExtString("consumerGroup"), req.ExtString("topic"), req.ExtString("queueId"))] = off
	return ok()
}

func (f *fakeCluster) store(m *message.Ext) *message.Ext {
	host := netip.MustParseAddrPort(f.addr)
	q := f.queues[m.Topic][m.QueueID]
	m.QueueOffset = int64(len(q))
	m.CommitLogOffset = int64(len(f.log))
	m.StoreHost, m.BornHost = host, host
	if m.StoreTimestamp == 0 {
		m.StoreTimestamp = time.Now().UnixMilli()
	}
	if m.Properties[message.PropertyUniqKey] == "" {
		m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
	}
	rec, err := message.AppendRecord(nil, m)
	if err != nil {
		f.t.Errorf("fake store: %v", err)
		return m
	}
	f.log = append(f.log, rec...)
	dec, _, _ := message.DecodeRecord(rec, true)
	f.queues[m.Topic][m.QueueID] = append(q, dec)
	return dec
}

func (f *fakeCluster) send(req *remoting.Command) *remoting.Command {
	topic := req.ExtString("b")
	if _, found := f.topics[topic]; !found {
		return remoting.NewResponse(remoting.TopicNotExist, "topic not exist")
	}
	qid, _ := strconv.Atoi(req.ExtString("e"))
	props, err := message.DecodeProperties([]byte(req.ExtString("i")))
	if err != nil {
		return remoting.NewResponse(remoting.MessageIllegal, err.Error())
	}
	m := f.store(&message.Ext{Message: message.Message{Topic: topic, Body: req.Body, Properties: props}, QueueID: int32(qid)})
	r := ok()
	r.SetExt("msgId", m.OffsetMsgID())
	return r
}

func (f *fakeCluster) pull(req *remoting.Command) *remoting.Command {
	q, found := f.queue(req)
	if !found {
		return remoting.NewResponse(remoting.TopicNotExist, "no topic")
	}
	off, _ := strconv.ParseInt(req.ExtString("queueOffset"), 10, 64)
	n, _ := strconv.Atoi(req.ExtString("maxMsgNums"))
	if off >= int64(len(q)) {
		r := remoting.NewResponse(remoting.PullNotFound, "")
		r.SetExtInt64("nextBeginOffset", off)
		return r
	}
	var body []byte
	end := min(int(off)+n, len(q))
	for _, m := range q[off:end] {
		body, _ = message.AppendRecord(body, m)
	}
	r := ok()
	r.SetExtInt64("nextBeginOffset", int64(end))
	r.Body = body
	return r
}

func (f *fakeCluster) query(req *remoting.Command) *remoting.Command {
	key, unique := req.ExtString("key"), req.ExtString("_UNIQUE_KEY_QUERY") == "true"
	var body []byte
	for _, q := range f.queues[req.ExtString("topic")] {
		for _, m := range q {
			hit := m.UniqKey() == key
			if !unique {
				hit = false
				for _, k := range m.Keys() {
					hit = hit || k == key
				}
			}
			if hit {
				body, _ = message.AppendRecord(body, m)
			}
		}
	}
	if body == nil {
		return remoting.NewResponse(remoting.QueryNotFound, "can not find message")
	}
	r := ok()
	r.Body = body
	return r
}

func (f *fakeCluster) view(req *remoting.Command) *remoting.Command {
	off, _ := strconv.ParseInt(req.ExtString("offset"), 10, 64)
	m, _, err := message.DecodeRecord(f.log[off:], true)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "no message at offset")
	}
	r := ok()
	r.Body, _ = message.AppendRecord(nil, m)
	return r
}

func newTestAdmin(t *testing.T, f *fakeCluster) *Admin {
	a, err := New(Config{NameServers: []string{f.addr}, Timeout: 2 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
