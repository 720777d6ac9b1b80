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
