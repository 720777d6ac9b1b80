package broker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

func TestConsumerOffsetHandlers(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 2)); err != nil {
		t.Fatal(err)
	}
	q := map[string]string{"consumerGroup": "G", "topic": "T", "queueId": "1"}
	// No commit and the queue still holds offset 0: start from 0.
	resp := tb.invoke(remoting.QueryConsumerOffset, q, nil)
	if resp.Code != remoting.Success || resp.ExtString("offset") != "0" {
		t.Fatalf("query new group: %d %v", resp.Code, resp.ExtFields)
	}
	upd := map[string]string{"consumerGroup": "G", "topic": "T", "queueId": "1", "commitOffset": "42"}
	// A commit never creates a group (Apache: SUBSCRIPTION_GROUP_NOT_EXIST).
	if resp := tb.invoke(remoting.UpdateConsumerOffset, upd, nil); resp.Code != remoting.SubscriptionGroupNotExist {
		t.Fatalf("update of an unknown group: %d %q", resp.Code, resp.Remark)
	}
	if _, ok := tb.Groups.Get("G"); ok {
		t.Fatal("a refused commit created the group")
	}
	if _, _, err := tb.Groups.GetOrCreate("G"); err != nil {
		t.Fatal(err)
	}
	if resp := tb.invoke(remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "G", "topic": "nope", "queueId": "1", "commitOffset": "1"}, nil); resp.Code != remoting.TopicNotExist {
		t.Fatalf("update for an unknown topic: %d %q", resp.Code, resp.Remark)
	}
	if resp := tb.invoke(remoting.UpdateConsumerOffset, upd, nil); resp.Code != remoting.Success {
		t.Fatalf("update: %d %q", resp.Code, resp.Remark)
	}
	resp = tb.invoke(remoting.QueryConsumerOffset, q, nil)
	if resp.Code != remoting.Success || resp.ExtString("offset") != "42" {
		t.Fatalf("query: %d %v", resp.Code, resp.ExtFields)
	}
	if got := tb.InitialOffset("G", "T", 1); got != 42 {
		t.Fatalf("InitialOffset %d", got)
	}
	for i := 0; i < 3; i++ {
		tb.mustSend("T", 0, "x", nil)
	}
	tq := map[string]string{"topic": "T", "queueId": "0"}
	if r := tb.invoke(remoting.GetMaxOffset, tq, nil); r.ExtString("offset") != "3" {
		t.Fatalf("max offset %v", r.ExtFields)
	}
	if r := tb.invoke(remoting.GetMinOffset, tq, nil); r.ExtString("offset") != "0" {
		t.Fatalf("min offset %v", r.ExtFields)
	}
	r := tb.invoke(remoting.GetEarliestMsgStoretime, tq, nil)
	if ts, _ := strconv.ParseInt(r.ExtString("timestamp"), 10, 64); r.Code != remoting.Success || ts <= 0 {
		t.Fatalf("earliest: %d %v", r.Code, r.ExtFields)
	}
	r = tb.invoke(remoting.SearchOffsetByTimestamp, map[string]string{"topic": "T", "queueId": "0", "timestamp": "0"}, nil)
	if r.ExtString("offset") != "0" {
		t.Fatalf("search by time 0: %v", r.ExtFields)
	}
	// boundaryType (QA R11A-3): past the last message LOWER answers the max offset, UPPER the
	// last message's; before the first, LOWER the min offset and UPPER 0 (as Apache).
	future := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	for _, c := range []struct{ ts, boundary, want string }{
		{future, "", "3"}, {future, "LOWER", "3"}, {future, "upper", "2"}, {future, "UPPER", "2"},
		{"0", "UPPER", "0"}, {"0", "lower", "0"},
	} {
		r = tb.invoke(remoting.SearchOffsetByTimestamp, map[string]string{"topic": "T", "queueId": "0", "timestamp": c.ts, "boundaryType": c.boundary}, nil)
		if r.Code != remoting.Success || r.ExtString("offset") != c.want {
			t.Errorf("search by time %s, boundary %q: %d %v, want offset %s", c.ts, c.boundary, r.Code, r.ExtFields, c.want)
		}
	}
	// An empty or unknown queue has no earliest time: SUCCESS with -1 (QA R11A-2).
	for _, tq := range []map[string]string{{"topic": "T", "queueId": "1"}, {"topic": "nope", "queueId": "0"}} {
		if r := tb.invoke(remoting.GetEarliestMsgStoretime, tq, nil); r.Code != remoting.Success || r.ExtString("timestamp") != "-1" {
			t.Errorf("earliest of %v: %d %q %v, want SUCCESS -1", tq, r.Code, r.Remark, r.ExtFields)
		}
	}
	if r := tb.invoke(remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "G", "topic": "T"}, nil); r.Code != remoting.InvalidParameter {
		t.Fatalf("update without queueId: %d", r.Code)
	}
}

// heartbeatBody is a go2-shaped heartbeat (codeSet as strings).
func heartbeatBody(clientID, group, topic, sub string) []byte {
	b, _ := json.Marshal(map[string]any{
		"clientID":        clientID,
		"producerDataSet": []map[string]string{{"groupName": "PG"}},
		"consumerDataSet": []map[string]any{{
			"groupName": group, "consumeType": ConsumePassively, "messageModel": ModelClustering,
			"consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "unitMode": false,
			"subscriptionDataSet": []map[string]any{{
				"classFilterMode": false, "topic": topic, "subString": sub, "tagsSet": []string{sub},
				"codeSet": []string{strconv.FormatInt(message.TagsHashCode(sub), 10)}, "subVersion": 1, "expressionType": "TAG",
			}},
		}},
	})
	return b
}

func TestHeartbeatConsumerListAndNotify(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 4)); err != nil {
		t.Fatal(err)
	}
	// Client 1 with its own connection, recording NOTIFY_CONSUMER_IDS_CHANGED.
	var notified atomic.Int32
	c1 := remoting.NewClient(remoting.DefaultClientConfig(), testLogger(t))
	defer c1.Close()
	c1.Handle(remoting.NotifyConsumerIdsChanged, func(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		if req.ExtString("consumerGroup") == "G" {
			notified.Add(1)
		}
		return nil
	})
	ctx := context.Background()
	addr := tb.ListenAddr().String()
	resp, err := c1.Invoke(ctx, addr, remoting.NewRequest(remoting.HeartBeat, nil, heartbeatBody("c1", "G", "T", "A")))
	if err != nil || resp.Code != remoting.Success || resp.Version != 479 {
		t.Fatalf("heartbeat: %v %+v", err, resp)
	}
	if _, ok := tb.Groups.Get("G"); !ok {
		t.Fatal("group not auto-created on heartbeat")
	}
	if _, ok := tb.Topics.Get(message.RetryTopic("G")); !ok {
		t.Fatal("retry topic not created on heartbeat")
	}
	if sd, ok := tb.Clients.Subscription("G", "T"); !ok || sd.SubString != "A" || len(sd.Codes) != 1 {
		t.Fatalf("subscription %+v %v", sd, ok)
	}
	// Client 2 joins on the test client's connection: client 1 is told.
	if r := tb.invoke(remoting.HeartBeat, nil, heartbeatBody("c2", "G", "T", "A")); r.Code != remoting.Success {
		t.Fatalf("heartbeat 2: %d", r.Code)
	}
	waitFor(t, 5*time.Second, "notify to client 1", func() bool { return notified.Load() >= 1 })
	r := tb.invoke(remoting.GetConsumerListByGroup, map[string]string{"consumerGroup": "G"}, nil)
	var list struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil || strings.Join(list.ConsumerIDList, ",") != "c1,c2" {
		t.Fatalf("consumer list %s (%v)", r.Body, err)
	}
	// Admin views.
	r = tb.invoke(remoting.GetConsumerConnectionList, map[string]string{"consumerGroup": "G"}, nil)
	if r.Code != remoting.Success || !strings.Contains(string(r.Body), `"clientId":"c1"`) {
		t.Fatalf("connections: %d %s", r.Code, r.Body)
	}
	if r := tb.invoke(remoting.GetProducerConnectionList, map[string]string{"producerGroup": "PG"}, nil); r.Code != remoting.Success {
		t.Fatalf("producer connections: %d %q", r.Code, r.Remark)
	}
	// Client 1 disconnects: its registration goes, client 2 stays.
	c1.Close()
	waitFor(t, 5*time.Second, "c1 removal", func() bool { return len(tb.Clients.ConsumerIDs("G")) == 1 })
	// Unregister client 2.
	r = tb.invoke(remoting.UnregisterClient, map[string]string{"clientID": "c2", "consumerGroup": "G", "producerGroup": "PG"}, nil)
	if r.Code != remoting.Success || len(tb.Clients.ConsumerIDs("G")) != 0 {
		t.Fatalf("unregister: %d, left %v", r.Code, tb.Clients.ConsumerIDs("G"))
	}
	if r := tb.invoke(remoting.GetConsumerConnectionList, map[string]string{"consumerGroup": "G"}, nil); r.Code != remoting.ConsumerNotOnline {
		t.Fatalf("offline group: %d", r.Code)
	}
}

func TestClientExpiry(t *testing.T) {
	var changed []string
	m := newClientManager(func(g string, _ []ClientChannel) { changed = append(changed, g) })
	old := time.Now().Add(-3 * time.Minute)
	m.RegisterConsumer("G", ConsumePassively, ModelClustering, "", nil, ClientChannel{ClientID: "old", LastUpdate: old})
	m.RegisterConsumer("G", ConsumePassively, ModelClustering, "", nil, ClientChannel{ClientID: "new", LastUpdate: time.Now()})
	m.RegisterProducer("P", ClientChannel{ClientID: "old", LastUpdate: old})
	m.RegisterProducerSink("P", ClientChannel{ClientID: "proxy"}, nil)
	changed = nil
	if n := m.Expire(time.Now(), 120*time.Second); n != 1 {
		t.Fatalf("expired groups %d", n)
	}
	if ids := m.ConsumerIDs("G"); len(ids) != 1 || ids[0] != "new" || len(changed) != 1 {
		t.Fatalf("left %v changed %v", ids, changed)
	}
	if pcs := m.ProducerChannels("P"); len(pcs) != 1 || pcs[0].ClientID != "proxy" {
		t.Fatalf("producers %+v", pcs)
	}
}

func TestLockBatchOverWire(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	body := func(client string) []byte {
		b, _ := json.Marshal(lockBatchBody{ConsumerGroup: "G", ClientID: client,
			MQSet: []MessageQueue{{"T", "broker-a", 0}, {"T", "broker-a", 1}}})
		return b
	}
	locked := func(r *remoting.Command) int {
		var out struct {
			LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		return len(out.LockOKMQSet)
	}
	if n := locked(tb.invoke(remoting.LockBatchMQ, nil, body("c1"))); n != 2 {
		t.Fatalf("c1 locked %d", n)
	}
	if n := locked(tb.invoke(remoting.LockBatchMQ, nil, body("c2"))); n != 0 {
		t.Fatalf("c2 locked %d", n)
	}
	tb.invoke(remoting.UnlockBatchMQ, nil, body("c1"))
	if n := locked(tb.invoke(remoting.LockBatchMQ, nil, body("c2"))); n != 2 {
		t.Fatalf("c2 after unlock locked %d", n)
	}
}

// captureHooks replaces the put hooks (timer, txn) with one that stores messages directly and
// records each, so the core's retry logic is checked independently of the features.
func captureHooks(tb *testBroker) func() []*message.Ext {
	var got []*message.Ext
	var mu sync.Mutex
	tb.hmu.Lock()
	saved := tb.putHooks
	tb.putHooks = []PutHook{func(ctx context.Context, m *message.Ext) (store.PutResult, bool, error) {
		mu.Lock()
		got = append(got, m.Clone())
		mu.Unlock()
		res, err := tb.PutMessageDirect(ctx, m)
		return res, true, err
	}}
	tb.hmu.Unlock()
	tb.t.Cleanup(func() {
		tb.hmu.Lock()
		tb.putHooks = saved
		tb.hmu.Unlock()
	})
	return func() []*message.Ext {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func TestSendBackRetryAndDLQ(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	puts := captureHooks(tb)
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	resp := tb.mustSend("T", 0, "payload", map[string]string{message.PropertyTags: "A", message.PropertyUniqKey: "U1"})
	_, off, _ := message.ParseOffsetMsgID(resp.ExtString("msgId"))
	back := func(off int64, level, maxTimes int) *remoting.Command {
		defer tb.settle()
		return tb.invoke(remoting.ConsumerSendMsgBack, map[string]string{
			"group": "G", "offset": strconv.FormatInt(off, 10), "delayLevel": strconv.Itoa(level),
			"originMsgId": "U1", "originTopic": "T", "unitMode": "false", "maxReconsumeTimes": strconv.Itoa(maxTimes),
		}, nil)
	}
	if r := back(off, 0, 2); r.Code != remoting.Success {
		t.Fatalf("send back: %d %q", r.Code, r.Remark)
	}
	retry := message.RetryTopic("G")
	msgs := decodeBody(t, tb.pull("G", retry, 0, 0, 32, 0, 0, "*"))
	if len(msgs) != 1 {
		t.Fatalf("retry topic holds %d messages", len(msgs))
	}
	r1 := msgs[0]
	if r1.ReconsumeTimes != 1 || r1.Property(message.PropertyRetryTopic) != "T" || r1.Property(message.PropertyOriginMessageID) != "U1" ||
		string(r1.Body) != "payload" || r1.Tags() != "A" || r1.UniqKey() != "U1" {
		t.Fatalf("retry message %+v", r1)
	}
	// The delay goes through PutMessage as property DELAY = 3 + reconsumeTimes.
	if p := puts(); len(p) != 2 || p[1].Property(message.PropertyDelayLevel) != "3" {
		t.Fatalf("puts %d, delay %q", len(p), p[len(p)-1].Property(message.PropertyDelayLevel))
	}
	// Second failure (reconsumeTimes 1 -> 2, level 4) then the third reaches
	// maxReconsumeTimes=2: DLQ.
	if r := back(r1.CommitLogOffset, 0, 2); r.Code != remoting.Success {
		t.Fatalf("send back 2: %d", r.Code)
	}
	msgs = decodeBody(t, tb.pull("G", retry, 0, 1, 32, 0, 0, "*"))
	if len(msgs) != 1 || msgs[0].ReconsumeTimes != 2 || puts()[2].Property(message.PropertyDelayLevel) != "4" {
		t.Fatalf("second retry: %+v", msgs)
	}
	if r := back(msgs[0].CommitLogOffset, 0, 2); r.Code != remoting.Success {
		t.Fatalf("send back 3: %d", r.Code)
	}
	dlq := message.DLQTopic("G")
	tc, ok := tb.Topics.Get(dlq)
	if !ok || !tc.Readable() || tc.WriteQueueNums != 1 {
		t.Fatalf("DLQ topic %+v %v", tc, ok)
	}
	msgs = decodeBody(t, tb.pull("G2", dlq, 0, 0, 32, 0, 0, "*"))
	if len(msgs) != 1 || msgs[0].Property(message.PropertyDLQOriginTopic) != "T" ||
		msgs[0].Property(message.PropertyDLQOriginMessageID) != "U1" || msgs[0].Property(message.PropertyDelayLevel) != "" {
		t.Fatalf("DLQ message %+v", msgs)
	}
	// An explicit level is kept; delayLevel -1 goes straight to the DLQ.
	if r := back(off, 5, 16); r.Code != remoting.Success || puts()[len(puts())-1].Property(message.PropertyDelayLevel) != "5" {
		t.Fatalf("send back level 5: %d", r.Code)
	}
	if r := back(off, -1, 16); r.Code != remoting.Success {
		t.Fatalf("send back -1: %d", r.Code)
	}
	if n := tb.Store.MaxOffset(dlq, 0); n != 2 {
		t.Fatalf("DLQ holds %d", n)
	}
	// Unknown offset: SYSTEM_ERROR.
	if r := back(1<<40, 0, 2); r.Code != remoting.SystemError {
		t.Fatalf("bad offset: %d", r.Code)
	}
	// A read-only retry topic refuses every send-back, a dead letter too (Apache checks the
	// retry topic's permission first; QA R12D-3).
	rtc, _ := tb.Topics.Get(retry)
	rtc.Perm = PermRead
	if err := tb.CreateTopic(rtc); err != nil {
		t.Fatal(err)
	}
	for _, level := range []int{0, -1} {
		if r := back(off, level, 16); r.Code != remoting.NoPermission || !strings.Contains(r.Remark, "sending message is forbidden") {
			t.Fatalf("send back (level %d) with a read-only retry topic: %d %q", level, r.Code, r.Remark)
		}
	}
	if n := tb.Store.MaxOffset(dlq, 0); n != 2 {
		t.Fatalf("DLQ holds %d after refused send-backs", n)
	}
}

func TestAdminTopicsAndGroups(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	create := map[string]string{"topic": "Fifo", "readQueueNums": "3", "writeQueueNums": "3", "perm": "6",
		"topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false", "attributes": "+message.type=FIFO"}
	if r := tb.invoke(remoting.UpdateAndCreateTopic, create, nil); r.Code != remoting.Success {
		t.Fatalf("create: %d %q", r.Code, r.Remark)
	}
	r := tb.invoke(remoting.GetTopicConfig, map[string]string{"topic": "Fifo"}, nil)
	var tc TopicConfig
	if err := json.Unmarshal(r.Body, &tc); err != nil || tc.WriteQueueNums != 3 || tc.MessageType() != "FIFO" {
		t.Fatalf("topic config %s", r.Body)
	}
	own := []string{tb.Cfg.ClusterName, tb.Cfg.BrokerName, tb.Cfg.ClusterName + "_REPLY_TOPIC"}
	for _, bad := range append([]string{"TBW102", "rmq_sys_x", "SCHEDULE_TOPIC_XXXX"}, own...) {
		c := map[string]string{"topic": bad, "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}
		if r := tb.invoke(remoting.UpdateAndCreateTopic, c, nil); r.Code != remoting.InvalidParameter {
			t.Errorf("create %s: %d %q", bad, r.Code, r.Remark)
		}
	}
	// Retry and DLQ topics are ordinary topics to the admin, as on Apache (mqadmin
	// updateTopicPerm makes a DLQ readable, QA R11A-8); a write count of 0 drains a topic
	// from this broker (QA R11A-13).
	for _, c := range []map[string]string{
		{"topic": "%RETRY%G", "readQueueNums": "2", "writeQueueNums": "2", "perm": "6"},
		{"topic": "%DLQ%G", "readQueueNums": "1", "writeQueueNums": "1", "perm": "4"},
		{"topic": "Fifo", "readQueueNums": "3", "writeQueueNums": "0", "perm": "6", "attributes": "+message.type=FIFO"},
	} {
		if r := tb.invoke(remoting.UpdateAndCreateTopic, c, nil); r.Code != remoting.Success {
			t.Errorf("create %v: %d %q", c, r.Code, r.Remark)
		}
		got, ok := tb.Topics.Get(c["topic"])
		if !ok || strconv.Itoa(int(got.WriteQueueNums)) != c["writeQueueNums"] || strconv.Itoa(int(got.Perm)) != c["perm"] {
			t.Errorf("%s stored as %+v", c["topic"], got)
		}
	}
	for _, c := range []map[string]string{
		{"topic": "Neg", "readQueueNums": "-1", "writeQueueNums": "1", "perm": "6"},
		{"topic": "Huge", "readQueueNums": "1025", "writeQueueNums": "1", "perm": "6"},
	} {
		if r := tb.invoke(remoting.UpdateAndCreateTopic, c, nil); r.Code != remoting.InvalidParameter {
			t.Errorf("create %v: %d %q, want INVALID_PARAMETER", c, r.Code, r.Remark)
		}
	}
	for _, sys := range append([]string{"TBW102"}, own...) { // R4A-2: the broker's own topics stay
		if r := tb.invoke(remoting.DeleteTopicInBroker, map[string]string{"topic": sys}, nil); r.Code != remoting.InvalidParameter {
			t.Errorf("delete %s: %d %q", sys, r.Code, r.Remark)
		}
		if r := tb.invoke(remoting.GetTopicConfig, map[string]string{"topic": sys}, nil); r.Code != remoting.Success {
			t.Errorf("%s gone after a refused delete: %d", sys, r.Code)
		}
	}
	r = tb.invoke(remoting.GetAllTopicConfig, nil, nil)
	if !strings.Contains(string(r.Body), `"Fifo"`) || !strings.Contains(string(r.Body), `"dataVersion"`) {
		t.Fatalf("all topics: %s", r.Body)
	}
	if r := tb.invoke(remoting.DeleteTopicInBroker, map[string]string{"topic": "Fifo"}, nil); r.Code != remoting.Success {
		t.Fatalf("delete: %d", r.Code)
	}
	if r := tb.invoke(remoting.GetTopicConfig, map[string]string{"topic": "Fifo"}, nil); r.Code != remoting.TopicNotExist {
		t.Fatalf("deleted topic: %d", r.Code)
	}

	gbody := []byte(`{"groupName":"OG","consumeMessageOrderly":true,"retryMaxTimes":3,"consumeEnable":true}`)
	if r := tb.invoke(remoting.UpdateAndCreateSubscriptionGroup, nil, gbody); r.Code != remoting.Success {
		t.Fatalf("create group: %d %q", r.Code, r.Remark)
	}
	r = tb.invoke(remoting.GetSubscriptionGroupConfig, map[string]string{"group": "OG"}, nil)
	var gc GroupConfig
	if err := json.Unmarshal(r.Body, &gc); err != nil || !gc.ConsumeMessageOrderly || gc.RetryMaxTimes != 3 || gc.RetryQueueNums != 1 {
		t.Fatalf("group %s", r.Body)
	}
	r = tb.invoke(remoting.GetAllSubscriptionGroupConfig, nil, nil)
	if !strings.Contains(string(r.Body), `"subscriptionGroupTable"`) || !strings.Contains(string(r.Body), `"OG"`) {
		t.Fatalf("all groups %s", r.Body)
	}
	if r := tb.invoke(remoting.DeleteSubscriptionGroup, map[string]string{"groupName": "OG"}, nil); r.Code != remoting.Success {
		t.Fatalf("delete group %d", r.Code)
	}
	if _, ok := tb.Groups.Get("OG"); ok {
		t.Fatal("group survived delete")
	}
	for _, bad := range []string{`{"groupName":"bad name"}`, `{"groupName":"DEFAULT_CONSUMER"}`, `{"groupName":"CID_RMQ_SYS_X"}`,
		`{"groupName":"` + strings.Repeat("g", 121) + `"}`, `{"groupName":""}`, `not json`} {
		if r := tb.invoke(remoting.UpdateAndCreateSubscriptionGroup, nil, []byte(bad)); r.Code != remoting.InvalidParameter {
			t.Errorf("group body %.40s: %d %q", bad, r.Code, r.Remark)
		}
	}
}

func TestConsumeStatsAndReset(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 2)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		tb.mustSend("T", 0, "x", nil)
	}
	tb.Offsets.Commit("G", "T", 0, 1)
	tb.SetInflightCounter(func(g, topic string, q int32) int64 {
		if g == "G" && q == 0 {
			return 2
		}
		return 0
	})
	r := tb.invoke(remoting.GetConsumeStats, map[string]string{"consumerGroup": "G", "topic": "T"}, nil)
	want := `{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"brokerOffset":4,"consumerOffset":1,"pullOffset":1,"lastTimestamp":`
	if r.Code != remoting.Success || !strings.Contains(string(r.Body), want) || !strings.Contains(string(r.Body), `"inflight":2`) ||
		!strings.Contains(string(r.Body), `"consumeTps"`) {
		t.Fatalf("consume stats %s", r.Body)
	}
	r = tb.invoke(remoting.GetTopicStatsInfo, map[string]string{"topic": "T"}, nil)
	if !strings.Contains(string(r.Body), `{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"minOffset":0,"maxOffset":4`) {
		t.Fatalf("topic stats %s", r.Body)
	}
	// A drained topic (no write queue left) still lists its readable queues (QA R12D-2).
	tc, _ := tb.Topics.Get("T")
	tc.WriteQueueNums = 0
	if err := tb.CreateTopic(tc); err != nil {
		t.Fatal(err)
	}
	r = tb.invoke(remoting.GetTopicStatsInfo, map[string]string{"topic": "T"}, nil)
	if !strings.Contains(string(r.Body), `{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"minOffset":0,"maxOffset":4`) {
		t.Fatalf("topic stats of a drained topic %s", r.Body)
	}
	tc.WriteQueueNums = tc.ReadQueueNums
	if err := tb.CreateTopic(tc); err != nil {
		t.Fatal(err)
	}
	// Reset an offline group to the beginning (timestamp 0).
	r = tb.invoke(remoting.InvokeBrokerToResetOffset, map[string]string{"topic": "T", "group": "G", "timestamp": "0", "isForce": "true"}, nil)
	if r.Code != remoting.Success {
		t.Fatalf("reset %d %q", r.Code, r.Remark)
	}
	if off, _ := tb.Offsets.Query("G", "T", 0); off != 0 {
		t.Fatalf("after reset %d", off)
	}
	// A group the broker has never seen (a typo) is refused, not created (R4A-4).
	r = tb.invoke(remoting.InvokeBrokerToResetOffset, map[string]string{"topic": "T", "group": "NoSuchG", "timestamp": "0", "isForce": "true"}, nil)
	if r.Code != remoting.SubscriptionGroupNotExist {
		t.Fatalf("reset of an unknown group: %d %q", r.Code, r.Remark)
	}
	if tops := tb.Offsets.TopicsOf("NoSuchG"); len(tops) != 0 {
		t.Fatalf("a refused reset left offsets for %v", tops)
	}
	// Reset to the end (-1).
	tb.invoke(remoting.InvokeBrokerToResetOffset, map[string]string{"topic": "T", "group": "G", "timestamp": "-1", "isForce": "true"}, nil)
	if off, _ := tb.Offsets.Query("G", "T", 0); off != 4 {
		t.Fatalf("after reset to end %d", off)
	}
	r = tb.invoke(remoting.GetBrokerRuntimeInfo, nil, nil)
	var kv struct {
		Table map[string]string `json:"table"`
	}
	if err := json.Unmarshal(r.Body, &kv); err != nil || kv.Table["brokerVersion"] != "479" {
		t.Fatalf("runtime info %s", r.Body)
	}
}

func TestBrokerConfigAllowList(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	r := tb.invoke(remoting.GetBrokerConfig, nil, nil)
	if !strings.Contains(string(r.Body), "brokerName=broker-a\n") {
		t.Fatalf("config body %s", r.Body)
	}
	// CVE-2023-33246: paths and command-like keys are never updatable.
	for _, body := range []string{"storePathRootDir=/tmp/evil", "rocketmqHome=-c $@|sh . echo curl x", "namesrvAddr=1.2.3.4:9876",
		"autoCreateTopicEnable=false\nstorePathCommitLog=/tmp/x"} {
		if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte(body)); r.Code != remoting.NoPermission {
			t.Errorf("update %q: %d %q", body, r.Code, r.Remark)
		}
	}
	if tb.live().DataDir != tb.Cfg.DataDir || !tb.live().AutoCreateTopicEnable {
		t.Fatal("refused update changed the config")
	}
	if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("maxMessageSize=abc")); r.Code != remoting.InvalidParameter {
		t.Fatalf("bad value: %d", r.Code)
	}
	for _, body := range []string{"flushIntervalCommitLog=1", "maxMessageSize=99999999"} { // no run-time effect / above the store limit
		if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte(body)); r.Code == remoting.Success {
			t.Errorf("update %q accepted", body)
		}
	}
	if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("defaultTopicQueueNums=2")); r.Code != remoting.Success {
		t.Fatalf("queue nums update: %d %q", r.Code, r.Remark)
	}
	if resp := tb.sendV2("Fresh2", 0, "x", nil); resp.Code != remoting.Success {
		t.Fatalf("auto-create: %d", resp.Code)
	}
	if tc, _ := tb.Topics.Get("Fresh2"); tc.WriteQueueNums != 2 {
		t.Fatalf("auto-created with %d queues, want 2 (TBW102 updated)", tc.WriteQueueNums)
	}
	if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("autoCreateTopicEnable=false\nmaxMessageSize=2048")); r.Code != remoting.Success {
		t.Fatalf("allowed update: %d %q", r.Code, r.Remark)
	}
	if resp := tb.sendV2("Fresh", 0, "x", nil); resp.Code != remoting.TopicNotExist {
		t.Fatalf("auto-create still on: %d", resp.Code)
	}
	if def, _ := tb.Topics.Get(message.TopicDefault); def.Perm&PermInherit != 0 {
		t.Fatal("TBW102 keeps INHERIT")
	}
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	if resp := tb.sendV2("T", 0, strings.Repeat("x", 2049), nil); resp.Code != remoting.MessageIllegal {
		t.Fatalf("new max size not applied: %d", resp.Code)
	}
}

func TestOffsetsSurviveRestart(t *testing.T) {
	cfg := testConfig(t)
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("T", 0, "x", nil)
	if _, _, err := tb.Groups.GetOrCreate("G"); err != nil {
		t.Fatal(err)
	}
	if r := tb.invoke(remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "G", "topic": "T", "queueId": "0", "commitOffset": "1"}, nil); r.Code != remoting.Success {
		t.Fatalf("commit: %d %q", r.Code, r.Remark)
	}
	tb.stop()

	tb2 := startBroker(t, cfg)
	if off, ok := tb2.Offsets.Query("G", "T", 0); !ok || off != 1 {
		t.Fatalf("offset after restart %d %v", off, ok)
	}
	if _, ok := tb2.Topics.Get("T"); !ok {
		t.Fatal("topic lost on restart")
	}
}

// TestSendToRetryTopicMovesToDLQ covers go2's fallback when CONSUMER_SEND_MSG_BACK fails: it
// sends to %RETRY%<group> itself. As Apache's handleRetryAndDLQ, the broker diverts to the
// DLQ once reconsumeTimes exceeds the maximum (equal still retries, QA R11A-4), or at once
// while the group holds a live queue lock (orderly, QA R11A-5); an unknown group is
// auto-created (QA R11A-6).
func TestSendToRetryTopicMovesToDLQ(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	captureHooks(tb)
	if _, _, err := tb.Groups.GetOrCreate("G"); err != nil {
		t.Fatal(err)
	}
	send := func(group string, reconsume, maxTimes int) *remoting.Command {
		return tb.invoke(remoting.SendMessage, map[string]string{
			"producerGroup": "PG", "topic": message.RetryTopic(group), "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
			"queueId": "0", "sysFlag": "0", "bornTimestamp": "1", "flag": "0", "properties": "",
			"reconsumeTimes": strconv.Itoa(reconsume), "maxReconsumeTimes": strconv.Itoa(maxTimes),
		}, []byte("x"))
	}
	for _, c := range []struct{ reconsume, maxTimes int }{{1, 3}, {3, 3}, {4, 3}} {
		if r := send("G", c.reconsume, c.maxTimes); r.Code != remoting.Success {
			t.Fatalf("retry send %v: %d %q", c, r.Code, r.Remark)
		}
	}
	tb.settle()
	if n, d := tb.Store.MaxOffset(message.RetryTopic("G"), 0), tb.Store.MaxOffset(message.DLQTopic("G"), 0); n != 2 || d != 1 {
		t.Fatalf("retry %d, dlq %d: want 2 retries (reconsumeTimes 1 and 3 of 3) and 1 dead letter (4 of 3)", n, d)
	}
	if msgs := decodeBody(t, tb.pull("R", message.DLQTopic("G"), 0, 0, 1, 0, 0, "*")); len(msgs) != 1 ||
		msgs[0].Property(message.PropertyDLQOriginTopic) != message.RetryTopic("G") {
		t.Fatalf("dead letter %+v", msgs)
	}

	// An orderly group (a live queue lock) dead-letters at once.
	if _, _, err := tb.Groups.GetOrCreate("GL"); err != nil {
		t.Fatal(err)
	}
	tb.Locks.TryLock("GL", "c1", []MessageQueue{{Topic: "T", BrokerName: "broker-a", QueueID: 0}}, time.Now())
	if r := send("GL", 1, 16); r.Code != remoting.Success {
		t.Fatalf("retry send of a locked group: %d %q", r.Code, r.Remark)
	}
	tb.settle()
	if n, d := tb.Store.MaxOffset(message.RetryTopic("GL"), 0), tb.Store.MaxOffset(message.DLQTopic("GL"), 0); n != 0 || d != 1 {
		t.Fatalf("locked group: retry %d, dlq %d, want 0 and 1", n, d)
	}

	// An unknown group is created (autoCreateSubscriptionGroup, the default)...
	if r := send("Unknown", 1, 3); r.Code != remoting.Success {
		t.Fatalf("retry topic of an unknown group: %d %q", r.Code, r.Remark)
	}
	if _, ok := tb.Groups.Get("Unknown"); !ok {
		t.Fatal("group not created")
	}
	// ...and refused when auto-creation is off.
	tb.Groups.SetAutoCreate(false)
	if r := send("Unknown2", 1, 3); r.Code != remoting.SubscriptionGroupNotExist {
		t.Fatalf("retry topic of an unknown group, auto-create off: %d %q", r.Code, r.Remark)
	}
}

func TestWhoConsumesAndAllOffsets(t *testing.T) {
	cfg := testConfig(t)
	cfg.AutoCreateSubscriptionGroup = false
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.Offsets.Commit("G1", "T", 0, 3)
	// A consumer of an unknown group (auto-create off) is still registered, without a group.
	if r := tb.invoke(remoting.HeartBeat, nil, heartbeatBody("c1", "G2", "T", "*")); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %d", r.Code)
	}
	if _, ok := tb.Groups.Get("G2"); ok {
		t.Fatal("group created with auto-create off")
	}
	r := tb.invoke(remoting.QueryTopicConsumeByWho, map[string]string{"topic": "T"}, nil)
	if string(r.Body) != `{"groupList":["G1","G2"]}` {
		t.Fatalf("consumed by %s", r.Body)
	}
	r = tb.invoke(remoting.QueryTopicsByConsumer, map[string]string{"group": "G1"}, nil)
	if !strings.Contains(string(r.Body), `"topicList":["T"]`) {
		t.Fatalf("topics of G1 %s", r.Body)
	}
	r = tb.invoke(remoting.GetAllConsumerOffset, nil, nil)
	if string(r.Body) != `{"offsetTable":{"T@G1":{"0":3}}}` {
		t.Fatalf("all offsets %s", r.Body)
	}
}

func TestQueryAndViewMessage(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 2)); err != nil {
		t.Fatal(err)
	}
	resp := tb.mustSend("T", 0, "keyed", map[string]string{message.PropertyKeys: "order-1 order-2", message.PropertyUniqKey: "UNIQ-Q"})
	tb.mustSend("T", 1, "other", map[string]string{message.PropertyKeys: "order-3"})
	now := time.Now().UnixMilli()
	query := func(key string, unique bool) *remoting.Command {
		ext := map[string]string{"topic": "T", "key": key, "maxNum": "32", "beginTimestamp": "0",
			"endTimestamp": strconv.FormatInt(now+60_000, 10)}
		if unique {
			ext["_UNIQUE_KEY_QUERY"] = "true"
		}
		return tb.invoke(remoting.QueryMessage, ext, nil)
	}
	for _, c := range []struct {
		key    string
		unique bool
	}{{"order-2", false}, {"UNIQ-Q", true}} {
		r := query(c.key, c.unique)
		msgs := decodeBody(t, r)
		if r.Code != remoting.Success || len(msgs) != 1 || string(msgs[0].Body) != "keyed" {
			t.Fatalf("query %q: code %d, %d messages", c.key, r.Code, len(msgs))
		}
	}
	if r := query("missing", false); r.Code != remoting.QueryNotFound {
		t.Fatalf("missing key: %d", r.Code)
	}
	// Time range excludes the message.
	r := tb.invoke(remoting.QueryMessage, map[string]string{"topic": "T", "key": "order-1", "maxNum": "32",
		"beginTimestamp": strconv.FormatInt(now+30_000, 10), "endTimestamp": strconv.FormatInt(now+60_000, 10)}, nil)
	if r.Code != remoting.QueryNotFound {
		t.Fatalf("out of range: %d", r.Code)
	}
	// VIEW_MESSAGE_BY_ID with the offset decoded from the offset message id.
	_, off, err := message.ParseOffsetMsgID(resp.ExtString("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	r = tb.invoke(remoting.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil)
	if msgs := decodeBody(t, r); r.Code != remoting.Success || len(msgs) != 1 || msgs[0].UniqKey() != "UNIQ-Q" {
		t.Fatalf("view: %d", r.Code)
	}
	if r := tb.invoke(remoting.ViewMessageByID, map[string]string{"offset": "123456789"}, nil); r.Code != remoting.SystemError {
		t.Fatalf("view bad offset: %d", r.Code)
	}
}

// TestNewGroupStartOutsideMemoryWindow (F28): a group with no committed offset starts at 0
// while the queue's first message is within the in-memory window (accessMessageInMemoryMaxRatio
// of RAM from the end of the commit log), and otherwise gets QUERY_NOT_FOUND (the client
// applies ConsumeFromWhere) and, for pop, the end of the queue.
func TestNewGroupStartOutsideMemoryWindow(t *testing.T) {
	cfg := testConfig(t)
	cfg.storeTweak = func(c *store.Config) { c.PhysicalMemory = 250 << 10 } // window 100 KiB
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("W", 2)); err != nil {
		t.Fatal(err)
	}
	q := map[string]string{"consumerGroup": "G", "topic": "W", "queueId": "0"}
	query := func() *remoting.Command { return tb.invoke(remoting.QueryConsumerOffset, q, nil) }
	if r := query(); r.Code != remoting.Success || r.ExtString("offset") != "0" {
		t.Fatalf("empty queue: %d %v", r.Code, r.ExtFields)
	}
	tb.mustSend("W", 0, "first", nil)
	if r := query(); r.Code != remoting.Success || r.ExtString("offset") != "0" {
		t.Fatalf("offset 0 in memory: %d %v", r.Code, r.ExtFields)
	}
	body := strings.Repeat("b", 2000)
	for i := 0; i < 80; i++ { // ~160 KiB on queue 1 pushes queue 0's offset 0 out of the window
		tb.mustSend("W", 1, body, nil)
	}
	if r := query(); r.Code != remoting.QueryNotFound {
		t.Fatalf("offset 0 outside the window: %d %v, want QUERY_NOT_FOUND", r.Code, r.ExtFields)
	}
	if got := tb.InitialOffset("G", "W", 0); got != 1 {
		t.Fatalf("pop start %d, want the end of the queue (1)", got)
	}
	if err := tb.CreateTopic(NewTopicConfig("W2", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("W2", 0, "recent", nil)
	if got := tb.InitialOffset("G", "W2", 0); got != 0 {
		t.Fatalf("pop start on a recent queue %d, want 0: its first message is in the window", got)
	}
}

// TestBrokerPermission (R4X-2): brokerPermission updated at run time drains the broker:
// 4 (read-only) refuses sends and keeps pulls, 2 (write-only) refuses pulls and pops, 6
// restores both; the announced topic permissions follow.
func TestBrokerPermission(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("BP", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("BP", 0, "before", nil)
	set := func(v string) {
		t.Helper()
		r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("brokerPermission="+v+"\n"))
		if r.Code != remoting.Success {
			t.Fatalf("set brokerPermission=%s: %d %q", v, r.Code, r.Remark)
		}
	}
	pull := func() *remoting.Command {
		return tb.invoke(remoting.PullMessage, map[string]string{"consumerGroup": "BPG", "topic": "BP", "queueId": "0",
			"queueOffset": "0", "maxMsgNums": "32", "sysFlag": strconv.Itoa(pullFlagSubscription), "commitOffset": "0", "suspendTimeoutMillis": "0",
			"subscription": "*", "subVersion": "0"}, nil)
	}
	set("4")
	if r := tb.sendV2("BP", 0, "ro", nil); r.Code != remoting.NoPermission || !strings.Contains(r.Remark, "sending message is forbidden") {
		t.Fatalf("send to a read-only broker: %d %q", r.Code, r.Remark)
	}
	if r := pull(); r.Code != remoting.Success {
		t.Fatalf("pull from a read-only broker: %d %q", r.Code, r.Remark)
	}
	if got := tb.EffectivePerm(PermRead | PermWrite); got != PermRead {
		t.Fatalf("announced perm %d on a read-only broker, want %d", got, PermRead)
	}
	set("2")
	if r := pull(); r.Code != remoting.NoPermission {
		t.Fatalf("pull from a write-only broker: %d %q", r.Code, r.Remark)
	}
	pop := tb.invoke(remoting.PopMessage, map[string]string{"consumerGroup": "BPG", "topic": "BP", "queueId": "-1",
		"maxMsgNums": "1", "invisibleTime": "60000", "pollTime": "0", "bornTime": "0", "initMode": "0"}, nil)
	if pop.Code != remoting.NoPermission {
		t.Fatalf("pop from a write-only broker: %d %q", pop.Code, pop.Remark)
	}
	tb.mustSend("BP", 0, "wo", nil)
	set("6")
	if r := pull(); r.Code != remoting.Success {
		t.Fatalf("pull after restoring: %d %q", r.Code, r.Remark)
	}
	if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("brokerPermission=9\n")); r.Code != remoting.InvalidParameter {
		t.Fatalf("brokerPermission=9: %d %q", r.Code, r.Remark)
	}
}

// TestParkedPullsDoNotBlockTheConnection (R4A-6): more suspended pulls than a connection's
// in-flight bound (4096) park on one connection — a go2 client with thousands of queues — and
// a send on that connection still succeeds; the parked pulls are answered when they time out.
func TestParkedPullsDoNotBlockTheConnection(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("LP", 1)); err != nil {
		t.Fatal(err)
	}
	const polls = 4200
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var answered atomic.Int32
	var busy atomic.Int32
	for i := 0; i < polls; i++ {
		req := remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": "LPG", "topic": "LP", "queueId": "0",
			"queueOffset": "0", "maxMsgNums": "32", "sysFlag": "2", "commitOffset": "0", "suspendTimeoutMillis": "3000",
			"subscription": "*", "subVersion": "0"}, nil)
		tb.cli.InvokeAsync(ctx, tb.ListenAddr().String(), req, func(r *remoting.Command, err error) {
			if err == nil && r.Code == remoting.SystemBusy {
				busy.Add(1)
			}
			answered.Add(1)
		})
	}
	if r := tb.sendV2("LP", 0, "through", nil); r.Code != remoting.Success {
		t.Fatalf("send behind %d parked pulls: %d %q", polls, r.Code, r.Remark)
	}
	waitFor(t, 25*time.Second, "every parked pull answered", func() bool { return answered.Load() >= polls })
	if busy.Load() > 0 {
		t.Fatalf("%d of %d pulls refused SYSTEM_BUSY", busy.Load(), polls)
	}
}

// TestRetentionKeysAtRunTime (R4X-7): fileReservedTime, deleteWhen and diskMaxUsedSpaceRatio
// are accepted by UPDATE_BROKER_CONFIG (applied to the running store), bad values refused.
func TestRetentionKeysAtRunTime(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("fileReservedTime=24\ndeleteWhen=02;14\ndiskMaxUsedSpaceRatio=60\n"))
	if r.Code != remoting.Success {
		t.Fatalf("update retention: %d %q", r.Code, r.Remark)
	}
	c := tb.LiveConfig()
	if c.FileReservedTime != 24*time.Hour || c.DeleteWhen != "02;14" || c.DiskMaxUsedSpaceRatio != 60 {
		t.Fatalf("live config %v %q %d", c.FileReservedTime, c.DeleteWhen, c.DiskMaxUsedSpaceRatio)
	}
	if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("deleteWhen=25\n")); r.Code != remoting.InvalidParameter {
		t.Fatalf("deleteWhen=25: %d %q", r.Code, r.Remark)
	}
	if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("flushDiskType=SYNC_FLUSH\n")); r.Code != remoting.NoPermission {
		t.Fatalf("flushDiskType at run time: %d %q", r.Code, r.Remark)
	}
}

// TestCheckClientConfig (QA R10R-3): CHECK_CLIENT_CONFIG accepts tag subscriptions and, with
// enablePropertyFilter=false, refuses SQL92 with Apache's text, never REQUEST_CODE_NOT_SUPPORTED.
func TestCheckClientConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.EnablePropertyFilter = false // with it on: TestPullSQL92
	tb := startBroker(t, cfg)
	check := func(typ string) *remoting.Command {
		body := `{"clientId":"c1","group":"G","subscriptionData":{"topic":"T","subString":"a > 1","expressionType":"` + typ + `"}}`
		return tb.invoke(remoting.CheckClientConfig, nil, []byte(body))
	}
	if r := check("TAG"); r.Code != remoting.Success {
		t.Fatalf("TAG: %d %q", r.Code, r.Remark)
	}
	if r := check("SQL92"); r.Code != remoting.SystemError || r.Remark != "The broker does not support consumer to filter message by SQL92" {
		t.Fatalf("SQL92: %d %q", r.Code, r.Remark)
	}
}

// TestSubscriptionChangeNotifies (QA R10R-2): a heartbeat that adds or removes a topic of the
// group's subscriptions tells the group to rebalance at once, as Apache's updateSubscription;
// an unchanged heartbeat does not.
func TestSubscriptionChangeNotifies(t *testing.T) {
	var changed int
	m := newClientManager(func(string, []ClientChannel) { changed++ })
	subs := func(topics ...string) []SubscriptionData {
		var out []SubscriptionData
		for _, tp := range topics {
			out = append(out, SubscriptionData{Topic: tp, SubString: "*"})
		}
		return out
	}
	reg := func(client string, topics ...string) {
		m.RegisterConsumer("G", ConsumePassively, ModelClustering, "", subs(topics...), ClientChannel{ClientID: client, LastUpdate: time.Now()})
	}
	reg("c1", "A")
	reg("c1", "A")
	if changed != 1 {
		t.Fatalf("join + same heartbeat: %d notifications, want 1", changed)
	}
	reg("c1", "A", "B")
	reg("c1", "B")
	if changed != 3 {
		t.Fatalf("after a topic added and one removed: %d notifications, want 3", changed)
	}
}

// TestCreateTopicAnswersSuccessWhenPersistFails (QA R10Q-3): as Apache, a topic whose
// topics.json write fails is created, served and answered SUCCESS (the failure is logged),
// and the next topic change writes it.
func TestCreateTopicAnswersSuccessWhenPersistFails(t *testing.T) {
	cfg := testConfig(t)
	tb := startBroker(t, cfg)
	path := filepath.Join(cfg.DataDir, configDirName, topicsFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// A non-empty directory where the file goes: the atomic rename fails (root ignores modes).
	if err := os.MkdirAll(filepath.Join(path, "block"), 0o755); err != nil {
		t.Fatal(err)
	}
	create := func(name string) *remoting.Command {
		return tb.invoke(remoting.UpdateAndCreateTopic, map[string]string{"topic": name, "readQueueNums": "2", "writeQueueNums": "2", "perm": "6"}, nil)
	}
	if r := create("UNPERSISTED"); r.Code != remoting.Success {
		t.Fatalf("create with a failing write: %d %q", r.Code, r.Remark)
	}
	if _, ok := tb.Topics.Get("UNPERSISTED"); !ok {
		t.Fatal("topic not created")
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if r := create("NEXT"); r.Code != remoting.Success {
		t.Fatalf("create: %d %q", r.Code, r.Remark)
	}
	raw, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(raw), "UNPERSISTED") {
		t.Fatalf("topics.json after the next change: %v %.200s", err, raw)
	}
}
