package timer

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func TestParseLevels(t *testing.T) {
	l, err := ParseLevels(DefaultDelayLevels)
	if err != nil {
		t.Fatal(err)
	}
	if l.Max() != 18 {
		t.Fatalf("max level %d", l.Max())
	}
	for _, c := range []struct {
		level int
		want  time.Duration
		ok    bool
	}{
		{1, time.Second, true}, {3, 10 * time.Second, true}, {5, time.Minute, true},
		{18, 2 * time.Hour, true}, {19, 2 * time.Hour, true}, {99, 2 * time.Hour, true},
		{0, 0, false}, {-1, 0, false},
	} {
		d, ok := l.Delay(c.level)
		if d != c.want || ok != c.ok {
			t.Errorf("Delay(%d) = %v %v, want %v %v", c.level, d, ok, c.want, c.ok)
		}
	}
	if l, err := ParseLevels("2d 1s"); err != nil || l[0] != 48*time.Hour {
		t.Errorf("2d: %v %v", l, err)
	}
	for _, bad := range []string{"", "1x", "s", "-1s", "0s", "1.5s"} {
		if _, err := ParseLevels(bad); !errors.Is(err, ErrInvalidLevels) {
			t.Errorf("ParseLevels(%q) err %v", bad, err)
		}
	}
}

func TestIntercept(t *testing.T) {
	levels, _ := ParseLevels(DefaultDelayLevels)
	now := time.UnixMilli(1_700_000_000_000)
	nowMs := now.UnixMilli()
	maxDelay := 72 * time.Hour
	type tc struct {
		name    string
		props   map[string]string
		sysFlag int32
		taken   bool
		due     int64
		err     error
	}
	for _, c := range []tc{
		{name: "plain", props: nil},
		{name: "delay sec", props: map[string]string{message.PropertyTimerDelaySec: "5"}, taken: true, due: nowMs + 5000},
		{name: "delay ms", props: map[string]string{message.PropertyTimerDelayMS: "1500"}, taken: true, due: nowMs + 1500},
		{name: "deliver ms", props: map[string]string{message.PropertyTimerDeliverMS: strconv.FormatInt(nowMs+60_000, 10)}, taken: true, due: nowMs + 60_000},
		{name: "sec wins over ms", props: map[string]string{message.PropertyTimerDelaySec: "2", message.PropertyTimerDelayMS: "9"}, taken: true, due: nowMs + 2000},
		{name: "deliver in the past", props: map[string]string{message.PropertyTimerDeliverMS: strconv.FormatInt(nowMs-1, 10)}},
		{name: "deliver now", props: map[string]string{message.PropertyTimerDeliverMS: strconv.FormatInt(nowMs, 10)}},
		{name: "negative delay", props: map[string]string{message.PropertyTimerDelaySec: "-3"}},
		{name: "exactly max", props: map[string]string{message.PropertyTimerDelaySec: "259200"}, taken: true, due: nowMs + 259_200_000},
		{name: "beyond max", props: map[string]string{message.PropertyTimerDelaySec: "259201"}, err: ErrDelayTooLong},
		{name: "garbage", props: map[string]string{message.PropertyTimerDeliverMS: "soon"}, err: ErrIllegal},
		{name: "level 3", props: map[string]string{message.PropertyDelayLevel: "3"}, taken: true, due: nowMs + 10_000},
		{name: "level clamped", props: map[string]string{message.PropertyDelayLevel: "40"}, taken: true, due: nowMs + 7_200_000},
		{name: "level 0", props: map[string]string{message.PropertyDelayLevel: "0"}},
		{name: "level beats timer", props: map[string]string{message.PropertyDelayLevel: "1", message.PropertyTimerDelaySec: "999999"}, taken: true, due: nowMs + 1000},
		{name: "bad level", props: map[string]string{message.PropertyDelayLevel: "x"}, err: ErrIllegal},
		{name: "already processed", props: map[string]string{message.PropertyTimerOutMS: "1", message.PropertyTimerDelaySec: "5"}},
		{name: "half message", props: map[string]string{message.PropertyTimerDelaySec: "5"}, sysFlag: message.SysFlagTransactionPrepared},
		{name: "committed txn", props: map[string]string{message.PropertyTimerDelaySec: "5"}, sysFlag: message.SysFlagTransactionCommit, taken: true, due: nowMs + 5000},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &message.Ext{Message: message.Message{Topic: "T"}, QueueID: 3, SysFlag: c.sysFlag}
			for k, v := range c.props {
				m.SetProperty(k, v)
			}
			before := m.Clone()
			taken, err := Intercept(m, now, maxDelay, levels)
			if c.err != nil {
				if !errors.Is(err, c.err) || !errors.Is(err, ErrIllegal) {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || taken != c.taken {
				t.Fatalf("taken %v err %v, want %v", taken, err, c.taken)
			}
			if !taken {
				if m.Topic != before.Topic || len(m.Properties) != len(before.Properties) {
					t.Fatalf("untaken message modified: %+v", m)
				}
				return
			}
			if m.Topic != Topic || m.QueueID != 0 || m.Property(message.PropertyRealTopic) != "T" || m.Property(message.PropertyRealQueueID) != "3" {
				t.Fatalf("not moved to the timer topic: %+v", m)
			}
			if due, _ := dueOf(m); due != c.due {
				t.Fatalf("due %d, want %d", due, c.due)
			}
			if _, ok := m.Properties[message.PropertyDelayLevel]; ok {
				if _, ok := m.Properties[message.PropertyTimerDelaySec]; ok {
					t.Fatal("a DELAY level must clear TIMER_DELAY_SEC")
				}
			}
		})
	}
}

func TestDelayTooLongRemark(t *testing.T) {
	m := &message.Ext{Message: message.Message{Topic: "T"}}
	m.SetProperty(message.PropertyTimerDelaySec, "100000000")
	_, err := Intercept(m, time.Now(), 72*time.Hour, Levels{time.Second})
	want := "timer message illegal, the delay time should not be bigger than the max delay 259200000ms"
	if err == nil || err.Error() != want {
		t.Fatalf("err %v, want %q", err, want)
	}
}

func TestRestore(t *testing.T) {
	levels, _ := ParseLevels(DefaultDelayLevels)
	now := time.UnixMilli(1_700_000_000_000)
	m := &message.Ext{Message: message.Message{Topic: "Orders", Flag: 7, Body: []byte("b")}, QueueID: 5, ReconsumeTimes: 2}
	m.SetProperty(message.PropertyUniqKey, "ID1")
	m.SetProperty(message.PropertyTags, "TagA")
	m.SetProperty(message.PropertyTimerDelaySec, "10")
	if taken, err := Intercept(m, now, time.Hour, levels); !taken || err != nil {
		t.Fatal(taken, err)
	}
	m.CommitLogOffset, m.StoreTimestamp = 4096, now.UnixMilli()
	out, err := Restore(m, now.Add(10*time.Second), func(string) int { return 4 })
	if err != nil {
		t.Fatal(err)
	}
	if out.Topic != "Orders" || out.QueueID != 1 || out.Flag != 7 || out.ReconsumeTimes != 2 || string(out.Body) != "b" {
		t.Fatalf("restored %+v", out)
	}
	for _, k := range []string{message.PropertyRealTopic, message.PropertyRealQueueID, message.PropertyTimerDelaySec, message.PropertyDelayLevel} {
		if _, ok := out.Properties[k]; ok {
			t.Errorf("property %s kept", k)
		}
	}
	wantDue := strconv.FormatInt(now.UnixMilli()+10_000, 10)
	for k, v := range map[string]string{
		message.PropertyUniqKey: "ID1", message.PropertyTags: "TagA",
		message.PropertyTimerDeliverMS: wantDue, message.PropertyTimerOutMS: wantDue,
		message.PropertyTimerEnqueueMS: strconv.FormatInt(now.UnixMilli(), 10),
		message.PropertyTimerDequeueMS: strconv.FormatInt(now.UnixMilli()+10_000, 10),
	} {
		if out.Properties[k] != v {
			t.Errorf("property %s = %q, want %q", k, out.Properties[k], v)
		}
	}
	if off, ok := deliveryMark(out); !ok || off != 4096 {
		t.Fatalf("mark %d %v", off, ok)
	}
	if m.Properties[message.PropertyRealTopic] != "Orders" {
		t.Fatal("Restore modified the record's properties")
	}
	// A delivered message re-put through the hooks is never delayed again.
	again := out.Clone()
	if taken, err := Intercept(again, now.Add(11*time.Second), time.Hour, levels); taken || err != nil {
		t.Fatalf("re-put delayed again: %v %v", taken, err)
	}
	// A delay-level record is delivered without TIMER_OUT_MS / TIMER_DELIVER_MS (Apache's
	// schedule service leaves none), so a consumer re-sending it with a new delivery
	// timestamp gets that delay (QA R6E-2); the delivery mark stays.
	lv := &message.Ext{Message: message.Message{Topic: "Orders", Body: []byte("b")}, QueueID: 1}
	lv.SetProperty(message.PropertyDelayLevel, "2")
	if taken, err := Intercept(lv, now, time.Hour, levels); !taken || err != nil {
		t.Fatal(taken, err)
	}
	lv.CommitLogOffset, lv.StoreTimestamp = 8192, now.UnixMilli()
	lout, err := Restore(lv, now.Add(5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{message.PropertyTimerOutMS, message.PropertyTimerDeliverMS, message.PropertyDelayLevel, message.PropertyRealTopic} {
		if v, ok := lout.Properties[k]; ok {
			t.Errorf("level-origin delivery kept %s=%q", k, v)
		}
	}
	if off, ok := deliveryMark(lout); !ok || off != 8192 {
		t.Fatalf("level-origin mark %d %v", off, ok)
	}
	resend := lout.Clone()
	resend.SetProperty(message.PropertyTimerDeliverMS, strconv.FormatInt(now.Add(20*time.Second).UnixMilli(), 10))
	if taken, err := Intercept(resend, now.Add(6*time.Second), time.Hour, levels); !taken || err != nil {
		t.Fatalf("re-send with a new delivery time not delayed: %v %v", taken, err)
	}
	// A record without its real topic cannot be delivered.
	if _, err := Restore(&message.Ext{Message: message.Message{Topic: Topic}}, now, nil); err == nil {
		t.Fatal("want an error for a record without REAL_TOPIC")
	}
	// Offset 0 is a valid record offset.
	m.CommitLogOffset = 0
	out, _ = Restore(m, now, nil)
	if off, ok := deliveryMark(out); !ok || off != 0 {
		t.Fatalf("mark for offset 0: %d %v", off, ok)
	}
	if out.QueueID != 5 {
		t.Fatalf("queue id %d without a queue count", out.QueueID)
	}
}

// HasTimerProperty is exactly the set of properties Intercept looks at: without them a message
// is neither taken nor rejected, with any of them Intercept decides.
func TestHasTimerPropertyMatchesIntercept(t *testing.T) {
	levels, err := ParseLevels(DefaultDelayLevels)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	plain := &message.Ext{Message: message.Message{Topic: "T", Properties: map[string]string{"KEYS": "k", "TAGS": "a"}}}
	if HasTimerProperty(plain.Properties) {
		t.Fatal("plain message reported as timer message")
	}
	if taken, err := Intercept(plain, now, time.Hour, levels); taken || err != nil {
		t.Fatalf("Intercept(plain) = %v, %v", taken, err)
	}
	for _, k := range []string{message.PropertyDelayLevel, message.PropertyTimerDelaySec,
		message.PropertyTimerDelayMS, message.PropertyTimerDeliverMS} {
		m := &message.Ext{Message: message.Message{Topic: "T", Properties: map[string]string{k: "x"}}}
		if !HasTimerProperty(m.Properties) {
			t.Errorf("%s not recognised", k)
		}
		if _, err := Intercept(m, now, time.Hour, levels); err == nil {
			t.Errorf("Intercept with %s=x: no error, so the property was not examined", k)
		}
	}
}
