package broker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/timer"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// pullAll pulls queue qid of topic from offset 0 (no suspension) and returns the messages.
func (tb *testBroker) pullAll(topic string, qid int32) []*message.Ext {
	tb.t.Helper()
	resp := tb.pull("G", topic, qid, 0, 32, 0, 0, "*")
	if resp.Code != remoting.Success {
		return nil
	}
	return decodeBody(tb.t, resp)
}

func TestTimerMessagesOverRemoting(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if _, ok := tb.Topics.Get(timer.Topic); !ok {
		t.Fatalf("timer topic %s not created", timer.Topic)
	}
	tb.mustSend("TT", 0, "plain", nil)
	t0 := time.Now()
	tb.mustSend("TT", 1, "sec", map[string]string{message.PropertyTimerDelaySec: "1", message.PropertyUniqKey: "U1"})
	tb.mustSend("TT", 1, "level", map[string]string{message.PropertyDelayLevel: "1", message.PropertyUniqKey: "U2"})
	tb.mustSend("TT", 1, "past", map[string]string{
		message.PropertyTimerDeliverMS: strconv.FormatInt(time.Now().UnixMilli()-1000, 10), message.PropertyUniqKey: "U3"})
	if got := tb.pullAll("TT", 1); len(got) != 1 || string(got[0].Body) != "past" {
		t.Fatalf("queue 1 before the due time holds %d messages, want only the past-due one", len(got))
	}
	waitFor(t, 5*time.Second, "two timers delivered", func() bool { return len(tb.pullAll("TT", 1)) == 3 })
	if el := time.Since(t0); el < time.Second {
		t.Fatalf("timers delivered after %v, before their 1 s delay", el)
	}
	for _, m := range tb.pullAll("TT", 1)[1:] {
		// A timestamp delay keeps TIMER_DELIVER_MS; a delay level leaves no timer mark, as
		// Apache's schedule service (QA R6E-2).
		levelOrigin := m.UniqKey() == "U2"
		if m.Topic != "TT" || m.QueueID != 1 || m.Property(message.PropertyRealTopic) != "" ||
			(m.Property(message.PropertyTimerDeliverMS) == "") != levelOrigin || !strings.HasPrefix(m.UniqKey(), "U") ||
			(levelOrigin && m.Property(message.PropertyTimerOutMS) != "") {
			t.Errorf("delivered %+v", m)
		}
	}
	if st := tb.TimerService().Stats(); st.Delivered != 2 {
		t.Errorf("timer stats %+v", st)
	}
}

func TestTimerMaxDelayIsMessageIllegal(t *testing.T) {
	cfg := testConfig(t)
	cfg.TimerMaxDelaySec = 60
	tb := startBroker(t, cfg)
	resp := tb.sendV2("TT", 0, "far", map[string]string{message.PropertyTimerDelaySec: "61"})
	want := "timer message illegal, the delay time should not be bigger than the max delay 60000ms"
	if resp.Code != remoting.MessageIllegal || resp.Remark != want {
		t.Fatalf("code %d remark %q, want %d %q", resp.Code, resp.Remark, remoting.MessageIllegal, want)
	}
	// In process (local-mode proxy) the sentinel stays visible.
	m := &message.Ext{Message: message.Message{Topic: "TT", Body: []byte("x")}}
	m.SetProperty(message.PropertyTimerDeliverMS, strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10))
	_, err := tb.PutMessage(context.Background(), m)
	if !errors.Is(err, timer.ErrDelayTooLong) || !errors.Is(err, timer.ErrIllegal) {
		t.Fatalf("PutMessage err %v", err)
	}
	if m.Topic != "TT" {
		t.Fatalf("the hook modified the caller's message: topic %s", m.Topic)
	}
}

// TestRecallOverRemoting: a timestamp-delayed send answers a recall handle (a delay level and
// a plain send none); RECALL_MESSAGE with it answers the message id and the message is never
// delivered, while the other timer is; bad handles, another topic, a due time in the past, an
// unknown topic and another broker's handle are refused with RocketMQ's codes; a sent message
// cannot pose as a recall marker.
func TestRecallOverRemoting(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	tb.mustSend("TT", 0, "other", nil)
	tb.mustSend("UU", 0, "other", nil)
	due := strconv.FormatInt(time.Now().UnixMilli()+1500, 10)
	keep := tb.mustSend("TT", 1, "keep", map[string]string{message.PropertyTimerDeliverMS: due, message.PropertyUniqKey: "KEEP"})
	gone := tb.mustSend("TT", 1, "gone", map[string]string{message.PropertyTimerDeliverMS: due, message.PropertyUniqKey: "GONE"})
	level := tb.mustSend("TT", 1, "level", map[string]string{message.PropertyDelayLevel: "1", message.PropertyUniqKey: "LVL"})
	plain := tb.mustSend("TT", 1, "plain", map[string]string{message.PropertyUniqKey: "PLAIN"})
	// A producer setting the marker property itself recalls nothing.
	tb.mustSend("TT", 1, "pose", map[string]string{message.PropertyTimerDeliverMS: due, message.PropertyUniqKey: "POSE",
		message.PropertyTimerDelUniqKey: "KEEP"})
	if keep.ExtString("recallHandle") == "" || gone.ExtString("recallHandle") == "" {
		t.Fatal("a timestamp-delayed send answered no recall handle")
	}
	if level.ExtString("recallHandle") != "" || plain.ExtString("recallHandle") != "" {
		t.Fatal("a delay-level or plain send answered a recall handle")
	}
	recall := func(topic, handle string) *remoting.Command {
		return tb.invoke(remoting.RecallMessage, map[string]string{"producerGroup": "PG", "topic": topic, "recallHandle": handle}, nil)
	}
	h := gone.ExtString("recallHandle")
	past := timer.RecallHandle{Topic: "TT", Broker: tb.Cfg.BrokerName, DueMs: time.Now().UnixMilli() - 1, MsgID: "GONE"}.Encode()
	other := timer.RecallHandle{Topic: "TT", Broker: "elsewhere", DueMs: time.Now().UnixMilli() + 60000, MsgID: "GONE"}.Encode()
	for _, c := range []struct {
		topic, handle string
		code          int32
		remark        string
	}{
		{"TT", "not-base64!", remoting.IllegalOperation, "recall handle is invalid"},
		{"UU", h, remoting.IllegalOperation, "recall failed, topic not match"},
		{"TT", past, remoting.IllegalOperation, "recall failed, timestamp invalid"},
		{"TT", other, remoting.IllegalOperation, "recall failed, broker service not available"},
		{"NOPE", h, remoting.TopicNotExist, "recall failed, the topic[NOPE] not exist"},
	} {
		if r := recall(c.topic, c.handle); r.Code != c.code || r.Remark != c.remark {
			t.Errorf("recall %s %q: %d %q, want %d %q", c.topic, c.handle, r.Code, r.Remark, c.code, c.remark)
		}
	}
	if r := recall("TT", h); r.Code != remoting.Success || r.ExtString("msgId") != "GONE" {
		t.Fatalf("recall: %d %q msgId %q", r.Code, r.Remark, r.ExtString("msgId"))
	}
	waitFor(t, 10*time.Second, "the kept timers delivered", func() bool { return len(tb.pullAll("TT", 1)) == 4 })
	waitFor(t, 5*time.Second, "the recall spent", func() bool { return tb.TimerService().Stats().Recalled == 1 })
	var ids []string
	for _, m := range tb.pullAll("TT", 1) {
		ids = append(ids, m.UniqKey())
	}
	if strings.Join(ids, ",") != "PLAIN,LVL,KEEP,POSE" && strings.Join(ids, ",") != "PLAIN,KEEP,POSE,LVL" &&
		strings.Join(ids, ",") != "PLAIN,LVL,POSE,KEEP" && strings.Join(ids, ",") != "PLAIN,POSE,KEEP,LVL" {
		t.Fatalf("queue 1 holds %v, want PLAIN, LVL, KEEP, POSE (GONE recalled)", ids)
	}
}
