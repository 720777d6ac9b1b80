package broker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func TestPullFoundAndOffsets(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		tb.mustSend("T", 0, "m"+strconv.Itoa(i), nil)
	}
	resp := tb.pull("G", "T", 0, 1, 3, 0, 0, "*")
	if resp.Code != remoting.Success {
		t.Fatalf("pull: %d %q", resp.Code, resp.Remark)
	}
	msgs := decodeBody(t, resp)
	if len(msgs) != 3 || string(msgs[0].Body) != "m1" || msgs[0].QueueOffset != 1 {
		t.Fatalf("got %d messages, first %q", len(msgs), msgs[0].Body)
	}
	if resp.ExtString("nextBeginOffset") != "4" || resp.ExtString("maxOffset") != "5" ||
		resp.ExtString("minOffset") != "0" || resp.ExtString("suggestWhichBrokerId") != "0" {
		t.Fatalf("ext %v", resp.ExtFields)
	}
	// At the end: PULL_NOT_FOUND with nextBeginOffset unchanged.
	resp = tb.pull("G", "T", 0, 5, 3, 0, 0, "*")
	if resp.Code != remoting.PullNotFound || resp.ExtString("nextBeginOffset") != "5" {
		t.Fatalf("end: %d %v", resp.Code, resp.ExtFields)
	}
	// Far beyond the end: PULL_OFFSET_MOVED.
	resp = tb.pull("G", "T", 0, 50, 3, 0, 0, "*")
	if resp.Code != remoting.PullOffsetMoved {
		t.Fatalf("beyond end: %d %v", resp.Code, resp.ExtFields)
	}
	// Errors: unknown topic, bad queue.
	if resp := tb.pull("G", "Nope", 0, 0, 3, 0, 0, "*"); resp.Code != remoting.TopicNotExist {
		t.Fatalf("unknown topic: %d", resp.Code)
	}
	if resp := tb.pull("G", "T", 7, 0, 3, 0, 0, "*"); resp.Code != remoting.SystemError {
		t.Fatalf("bad queue: %d", resp.Code)
	}
}

func TestPullCommitOffsetFlag(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("T", 0, "x", nil)
	resp := tb.invoke(remoting.PullMessage, map[string]string{
		"consumerGroup": "G", "topic": "T", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
		"sysFlag": strconv.Itoa(pullFlagCommitOffset | pullFlagSubscription), "commitOffset": "1",
		"suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0", "expressionType": "TAG",
	}, nil)
	if resp.Code != remoting.Success {
		t.Fatalf("pull %d", resp.Code)
	}
	if off, ok := tb.Offsets.Query("G", "T", 0); !ok || off != 1 {
		t.Fatalf("committed %d %v", off, ok)
	}
}

func TestPullTagFilter(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"A", "C", "B", "C", "A"} {
		tb.mustSend("T", 0, tag, map[string]string{message.PropertyTags: tag})
	}
	resp := tb.pull("G", "T", 0, 0, 32, pullFlagSubscription, 0, "A || B")
	msgs := decodeBody(t, resp)
	var got string
	for _, m := range msgs {
		got += m.Tags()
	}
	if got != "ABA" || resp.ExtString("nextBeginOffset") != "5" {
		t.Fatalf("filtered %q next %s", got, resp.ExtString("nextBeginOffset"))
	}
	// Nothing matches: PULL_RETRY_IMMEDIATELY with the offset advanced.
	resp = tb.pull("G", "T", 0, 0, 32, pullFlagSubscription, 0, "Z")
	if resp.Code != remoting.PullRetryImmediately || resp.ExtString("nextBeginOffset") != "5" {
		t.Fatalf("no match: %d %v", resp.Code, resp.ExtFields)
	}
}

// TestPullSQL92Refused: with enablePropertyFilter=false a SQL92 subscription, in the pull
// request or registered by the consumer's heartbeat (go2 pulls without one), is refused with
// SYSTEM_ERROR as Apache does; it is never applied as if its text were a tag list (QA F12).
func TestPullSQL92Refused(t *testing.T) {
	cfg := testConfig(t)
	cfg.EnablePropertyFilter = false
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("T", 0, "tagged TRUE", map[string]string{message.PropertyTags: "TRUE", "a": "3"})
	var hb map[string]any
	if err := json.Unmarshal(heartbeatBody("c1", "GS", "T", "TRUE"), &hb); err != nil {
		t.Fatal(err)
	}
	sub := hb["consumerDataSet"].([]any)[0].(map[string]any)["subscriptionDataSet"].([]any)[0].(map[string]any)
	sub["expressionType"], sub["tagsSet"], sub["codeSet"] = "SQL92", []string{}, []string{}
	body, _ := json.Marshal(hb)
	if r := tb.invoke(remoting.HeartBeat, nil, body); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
	}
	resp := tb.pull("GS", "T", 0, 0, 32, 0, 0, "")
	if resp.Code != remoting.SystemError || !strings.Contains(resp.Remark, "filter message by SQL92") {
		t.Fatalf("pull with a heartbeat SQL92 subscription: %d %q, want SYSTEM_ERROR", resp.Code, resp.Remark)
	}
	resp = tb.invoke(remoting.PullMessage, map[string]string{
		"consumerGroup": "GS", "topic": "T", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
		"sysFlag": strconv.Itoa(pullFlagSubscription), "commitOffset": "0", "suspendTimeoutMillis": "0",
		"subscription": "a = 3", "subVersion": "0", "expressionType": "SQL92",
	}, nil)
	if resp.Code != remoting.SystemError {
		t.Fatalf("pull with a SQL92 subscription: %d %q, want SYSTEM_ERROR", resp.Code, resp.Remark)
	}
}

// TestPullSQL92: with enablePropertyFilter (the default) a SQL92 subscription, in the pull
// request or registered by the heartbeat, returns only the messages whose properties match
// (TAGS included); a selector that does not parse is SUBSCRIPTION_PARSE_FAILED, and
// CHECK_CLIENT_CONFIG answers the same.
func TestPullSQL92(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		tb.mustSend("T", 0, fmt.Sprint("m", i), map[string]string{message.PropertyTags: fmt.Sprint("tag", i%2), "a": strconv.Itoa(i)})
	}
	tb.mustSend("T", 0, "no-a", map[string]string{message.PropertyTags: "tag0"})
	bodies := func(resp *remoting.Command) []string {
		if resp.Code != remoting.Success {
			t.Fatalf("pull: %d %q", resp.Code, resp.Remark)
		}
		var out []string
		for _, m := range decodeBody(t, resp) {
			out = append(out, string(m.Body))
		}
		return out
	}
	pullSQL := func(expr string) *remoting.Command {
		return tb.invoke(remoting.PullMessage, map[string]string{
			"consumerGroup": "GS", "topic": "T", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
			"sysFlag": strconv.Itoa(pullFlagSubscription), "commitOffset": "0", "suspendTimeoutMillis": "0",
			"subscription": expr, "subVersion": "0", "expressionType": "SQL92",
		}, nil)
	}
	if got := fmt.Sprint(bodies(pullSQL("a >= 3 AND TAGS = 'tag1'"))); got != "[m3 m5]" {
		t.Fatalf("a >= 3 AND TAGS = 'tag1': %s", got)
	}
	if got := fmt.Sprint(bodies(pullSQL("a IS NULL OR a = 0"))); got != "[m0 no-a]" {
		t.Fatalf("a IS NULL OR a = 0: %s", got)
	}
	if r := pullSQL("a >"); r.Code != remoting.SubscriptionParseFailed {
		t.Fatalf("bad selector: %d %q", r.Code, r.Remark)
	}
	// Registered by the heartbeat (go2 pulls without the subscription).
	var hb map[string]any
	if err := json.Unmarshal(heartbeatBody("c1", "GH", "T", "*"), &hb); err != nil {
		t.Fatal(err)
	}
	sub := hb["consumerDataSet"].([]any)[0].(map[string]any)["subscriptionDataSet"].([]any)[0].(map[string]any)
	sub["expressionType"], sub["subString"], sub["tagsSet"], sub["codeSet"] = "SQL92", "a BETWEEN 1 AND 2", []string{}, []string{}
	body, _ := json.Marshal(hb)
	if r := tb.invoke(remoting.HeartBeat, nil, body); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
	}
	if got := fmt.Sprint(bodies(tb.pull("GH", "T", 0, 0, 32, 0, 0, ""))); got != "[m1 m2]" {
		t.Fatalf("heartbeat subscription a BETWEEN 1 AND 2: %s", got)
	}
	check := func(expr string) *remoting.Command {
		body := `{"clientId":"c1","group":"G","subscriptionData":{"topic":"T","subString":"` + expr + `","expressionType":"SQL92"}}`
		return tb.invoke(remoting.CheckClientConfig, nil, []byte(body))
	}
	if r := check("a > 1"); r.Code != remoting.Success {
		t.Fatalf("CHECK_CLIENT_CONFIG a > 1: %d %q", r.Code, r.Remark)
	}
	if r := check("a >"); r.Code != remoting.SubscriptionParseFailed {
		t.Fatalf("CHECK_CLIENT_CONFIG a >: %d %q", r.Code, r.Remark)
	}
}

func TestTagFilterExactCheckOnHashCollision(t *testing.T) {
	// "Aa" and "BB" have the same Java hash code.
	if message.TagsHashCode("Aa") != message.TagsHashCode("BB") {
		t.Fatal(`TagsHashCode("Aa") != TagsHashCode("BB"): not Java's String.hashCode`)
	}
	f := ParseTagExpression("Aa")
	if !f.MatchCode(message.TagsHashCode("BB")) || f.MatchTag("BB") || !f.MatchTag("Aa") {
		t.Fatal("collision handling wrong")
	}
	m := &message.Ext{Message: message.Message{Topic: "T", Body: []byte("x"), Properties: map[string]string{message.PropertyTags: "BB"}}}
	rec, err := message.AppendRecord(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if f.MatchRecord(rec) {
		t.Fatal("record with colliding tag matched")
	}
	if !ParseTagExpression(" * ").All() || !ParseTagExpression("").All() {
		t.Fatal("* must match all")
	}
}

func TestPullLongPollingWakesOnArrival(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 2)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		resp    *remoting.Command
		elapsed time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		r := tb.pull("G", "T", 0, 0, 32, pullFlagSuspend, 15*time.Second, "*")
		done <- result{r, time.Since(start)}
	}()
	waitFor(t, 5*time.Second, "pull to park", func() bool { return tb.polls.n.Load() == 1 })
	tb.mustSend("T", 1, "other queue", nil) // must not wake queue 0's pull
	select {
	case r := <-done:
		t.Fatalf("woken by another queue: %d", r.resp.Code)
	case <-time.After(200 * time.Millisecond):
	}
	tb.mustSend("T", 0, "arrived", nil)
	r := <-done
	if r.resp.Code != remoting.Success || r.elapsed > 10*time.Second {
		t.Fatalf("code %d after %v", r.resp.Code, r.elapsed)
	}
	if msgs := decodeBody(t, r.resp); len(msgs) != 1 || string(msgs[0].Body) != "arrived" {
		t.Fatalf("got %v", msgs)
	}
}

func TestPullLongPollingTimesOut(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp := tb.pull("G", "T", 0, 0, 32, pullFlagSuspend, 300*time.Millisecond, "*")
	el := time.Since(start)
	if resp.Code != remoting.PullNotFound || resp.ExtString("nextBeginOffset") != "0" {
		t.Fatalf("code %d ext %v", resp.Code, resp.ExtFields)
	}
	if el < 250*time.Millisecond || el > 5*time.Second {
		t.Fatalf("suspended %v, want ~300ms", el)
	}
	if n := tb.polls.n.Load(); n != 0 {
		t.Fatalf("%d waiters left registered", n)
	}
}

func TestParkedPullAnsweredAtShutdown(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan int32, 1)
	go func() { done <- tb.pull("G", "T", 0, 0, 32, pullFlagSuspend, 20*time.Second, "*").Code }()
	waitFor(t, 5*time.Second, "pull to park", func() bool { return tb.polls.n.Load() == 1 })
	start := time.Now()
	tb.cancel()
	select {
	case code := <-done:
		if code != remoting.PullNotFound {
			t.Fatalf("code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("parked pull not answered at shutdown")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("shutdown took %v", el)
	}
}

// TestPullWithoutSubscriptionRefused (QA R10W-1): a pull that carries no subscription from a
// group whose heartbeat has not registered one (a push consumer right after a broker
// restart) answers SUBSCRIPTION_NOT_EXIST, as Apache, instead of serving every message: a
// SQL92 consumer got what its selector excludes.
func TestPullWithoutSubscriptionRefused(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("T", 0, "m", nil)
	if r := tb.pull("NOHB", "T", 0, 0, 32, 0, 0, ""); r.Code != remoting.SubscriptionNotExist {
		t.Fatalf("pull without a subscription: %d %q, want SUBSCRIPTION_NOT_EXIST", r.Code, r.Remark)
	}
	if r := tb.invoke(remoting.HeartBeat, nil, heartbeatBody("c1", "NOHB", "OTHER", "*")); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
	}
	if r := tb.pull("NOHB", "T", 0, 0, 32, 0, 0, ""); r.Code != remoting.SubscriptionNotExist || !strings.Contains(r.Remark, "subscription not exist") {
		t.Fatalf("pull of a topic the group did not subscribe: %d %q", r.Code, r.Remark)
	}
	if r := tb.invoke(remoting.HeartBeat, nil, heartbeatBody("c1", "NOHB", "T", "*")); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
	}
	if r := tb.pull("NOHB", "T", 0, 0, 32, 0, 0, ""); r.Code != remoting.Success {
		t.Fatalf("pull after the heartbeat: %d %q", r.Code, r.Remark)
	}
}

// TestBroadcastDisabledGroupRefused: a broadcasting consumer of a group whose
// consumeBroadcastEnable is off gets NO_PERMISSION with forbiddenType 4, as Apache's
// PullMessageProcessor answers (QA R11A-9); a clustering consumer of it is served.
func TestBroadcastDisabledGroupRefused(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("T", 0, "m", nil)
	gc := NewGroupConfig("NOBC")
	gc.ConsumeBroadcastEnable = false
	if err := tb.Groups.Update(gc); err != nil {
		t.Fatal(err)
	}
	heartbeat := func(model string) {
		var hb map[string]any
		if err := json.Unmarshal(heartbeatBody("c1", "NOBC", "T", "*"), &hb); err != nil {
			t.Fatal(err)
		}
		hb["consumerDataSet"].([]any)[0].(map[string]any)["messageModel"] = model
		body, _ := json.Marshal(hb)
		if r := tb.invoke(remoting.HeartBeat, nil, body); r.Code != remoting.Success {
			t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
		}
	}
	heartbeat(ModelBroadcast)
	r := tb.pull("NOBC", "T", 0, 0, 32, 0, 0, "")
	if r.Code != remoting.NoPermission || r.ExtString("forbiddenType") != "4" || !strings.Contains(r.Remark, "can not consume by broadcast way") {
		t.Fatalf("broadcast pull of a broadcast-disabled group: %d %q %v", r.Code, r.Remark, r.ExtFields)
	}
	heartbeat(ModelClustering)
	if r := tb.pull("NOBC", "T", 0, 0, 32, 0, 0, ""); r.Code != remoting.Success {
		t.Fatalf("clustering pull: %d %q", r.Code, r.Remark)
	}
}
