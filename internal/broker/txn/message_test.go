package txn

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rocketry-mq/rocketry/internal/message"
)

func TestIsPrepared(t *testing.T) {
	mk := func(topic string, sysFlag int32, tran string) *message.Ext {
		m := &message.Ext{Message: message.Message{Topic: topic}, SysFlag: sysFlag}
		if tran != "" {
			m.SetProperty(message.PropertyTransactionPrepared, tran)
		}
		return m
	}
	cases := []struct {
		name string
		m    *message.Ext
		want bool
	}{
		{"sysflag prepared (go2, Java)", mk("T", message.SysFlagTransactionPrepared, "true"), true},
		{"sysflag prepared without property", mk("T", message.SysFlagTransactionPrepared|message.SysFlagMultiTags, ""), true},
		{"property only (RocketMQ send path)", mk("T", 0, "true"), true},
		{"property any case", mk("T", 0, "TRUE"), true},
		{"property false", mk("T", 0, "false"), false},
		{"plain", mk("T", 0, ""), false},
		{"committed copy keeps TRAN_MSG", mk("T", message.SysFlagTransactionCommit, "true"), false},
		{"rollback type", mk("T", message.SysFlagTransactionRollback, "true"), false},
		{"retry of a committed message", mk("%RETRY%G", 0, "true"), false},
		{"dlq", mk("%DLQ%G", message.SysFlagTransactionPrepared, "true"), false},
		{"half topic itself", mk(HalfTopic, message.SysFlagTransactionPrepared, "true"), false},
		{"system topic", mk("rmq_sys_x", 0, "true"), false},
	}
	for _, c := range cases {
		if got := IsPrepared(c.m); got != c.want {
			t.Errorf("%s: IsPrepared = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestToHalfAndCommittedFrom(t *testing.T) {
	m := &message.Ext{Message: message.Message{Topic: "T", Flag: 7, Body: []byte("b"), Properties: map[string]string{
		message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "PG", message.PropertyKeys: "k",
	}}, QueueID: 5, SysFlag: message.SysFlagTransactionPrepared | message.SysFlagMultiTags, BornTimestamp: 42}
	h := ToHalf(m)
	uniq := m.UniqKey()
	if uniq == "" || !message.IsUniqID(uniq) {
		t.Fatalf("ToHalf did not assign a UNIQ_KEY to the original: %q", uniq)
	}
	if m.Topic != "T" || m.QueueID != 5 || m.Property(message.PropertyRealTopic) != "" {
		t.Fatalf("ToHalf modified the original beyond UNIQ_KEY: %+v", m)
	}
	if h.Topic != HalfTopic || h.QueueID != 0 || message.TransactionType(h.SysFlag) != 0 || h.SysFlag&message.SysFlagMultiTags == 0 {
		t.Fatalf("half %+v", h)
	}
	wantProps := map[string]string{
		message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "PG", message.PropertyKeys: "k",
		message.PropertyUniqKey: uniq, message.PropertyRealTopic: "T", message.PropertyRealQueueID: "5",
		message.PropertyTransactionID: uniq,
	}
	if diff := cmp.Diff(wantProps, h.Properties); diff != "" {
		t.Fatalf("half properties (-want +got):\n%s", diff)
	}
	// Encode/decode as the store would, then commit.
	h.CommitLogOffset, h.QueueOffset = 4096, 9
	rec, err := message.AppendRecord(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := message.DecodeRecord(rec, true)
	if err != nil {
		t.Fatal(err)
	}
	hf, err := halfOf(stored)
	if err != nil {
		t.Fatal(err)
	}
	if hf.Group != "PG" || hf.TxID != uniq || hf.RealTopic != "T" || hf.QueueOffset != 9 || hf.CommitLogOffset != 4096 {
		t.Fatalf("halfOf = %+v", hf)
	}
	for _, keep := range []bool{true, false} {
		c, err := committedFrom(stored, keep)
		if err != nil {
			t.Fatal(err)
		}
		if c.Topic != "T" || c.QueueID != 5 || c.Flag != 7 || string(c.Body) != "b" || c.BornTimestamp != 42 ||
			c.PreparedTransactionOffset != 4096 || message.TransactionType(c.SysFlag) != message.SysFlagTransactionCommit ||
			c.SysFlag&message.SysFlagMultiTags == 0 {
			t.Fatalf("committed %+v", c)
		}
		_, hasReal := c.Properties[message.PropertyRealTopic]
		_, hasQid := c.Properties[message.PropertyRealQueueID]
		if hasReal || hasQid || c.UniqKey() != uniq || (c.Property(message.PropertyTransactionPrepared) == "true") != keep {
			t.Fatalf("committed properties (keep=%v): %v", keep, c.Properties)
		}
		if IsPrepared(c) {
			t.Fatal("committed copy would be captured by the put hook again")
		}
	}
	if _, err := halfOf(&message.Ext{Message: message.Message{Topic: "T"}}); err == nil {
		t.Fatal("halfOf accepted a normal record")
	}
}

func TestParseOp(t *testing.T) {
	cases := []struct {
		tags, body string
		want       []int64
		bad        bool
	}{
		{"d", "12", []int64{12}, false},
		{"d", "1,2,3", []int64{1, 2, 3}, false},
		{"d", "1,,2, ", []int64{1, 2}, false},
		{"d", "", nil, true},
		{"d", "x", nil, true},
		{"d", "-1", nil, true},
		{"other", "5", nil, false},
	}
	for _, c := range cases {
		got, _, err := parseOp(c.tags, []byte(c.body), "commit")
		if (err != nil) != c.bad {
			t.Errorf("parseOp(%q,%q) err = %v", c.tags, c.body, err)
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("parseOp(%q,%q) (-want +got):\n%s", c.tags, c.body, diff)
		}
	}
	if _, o, _ := parseOp("d", []byte("1"), ""); o != OutcomeResolved {
		t.Errorf("op without outcome = %v", o)
	}
	for _, o := range []Outcome{OutcomeCommit, OutcomeRollback, OutcomeDiscard} {
		r := opRecord([]int64{77, 3}, o, 1)
		qos, got, err := parseOp(r.Tags(), r.Body, r.Property(PropertyOutcome))
		if err != nil || got != o || len(qos) != 2 || qos[0] != 77 || qos[1] != 3 {
			t.Errorf("round trip %v: %v %v %v", o, qos, got, err)
		}
	}
}

func FuzzParseOp(f *testing.F) {
	f.Add("d", []byte("12"), "commit")
	f.Add("d", []byte("1,2,3"), "rollback")
	f.Add("d", []byte("-5"), "")
	f.Add("x", []byte("9"), "discard")
	f.Fuzz(func(t *testing.T, tags string, body []byte, outcome string) {
		qos, _, err := parseOp(tags, body, outcome)
		if err != nil && qos != nil {
			t.Fatal("offsets returned with an error")
		}
		for _, q := range qos {
			if q < 0 {
				t.Fatalf("negative offset %d", q)
			}
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add([]byte(`{"version":1,"halfNext":3,"opNext":2,"open":[{"queueOffset":0,"commitLogOffset":10,"checks":1}]}`))
	f.Add([]byte(`{"version":1,"halfNext":0,"opNext":0}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"halfNext":1,"open":[{"queueOffset":5}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := decodeCheckpoint(b)
		if err != nil {
			return
		}
		// A valid checkpoint re-encodes to an equivalent one.
		enc, err := encodeCheckpoint(cp)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeCheckpoint(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(cp, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("(-first +second):\n%s", diff)
		}
	})
}

// FuzzParseHalfRecord checks the raw-record fast path against the full decoder: both accept
// the same records and agree on every field the state table keeps.
func FuzzParseHalfRecord(f *testing.F) {
	m := &message.Ext{Message: message.Message{Topic: "T", Body: []byte("b"), Properties: map[string]string{
		message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "PG",
		message.PropertyCheckImmunityTimeInSeconds: "30",
	}}, QueueID: 3, CommitLogOffset: 77, StoreTimestamp: 1234}
	h := ToHalf(m)
	rec, err := message.AppendRecord(nil, h)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	plain, _ := message.AppendRecord(nil, m)
	f.Add(plain)
	f.Add(rec[:len(rec)-3])
	f.Fuzz(func(t *testing.T, rec []byte) {
		got, err := parseHalfRecord(rec, 5)
		dm, _, derr := message.DecodeRecord(rec, false)
		var want half
		if derr == nil {
			dm.QueueOffset = 5
			want, derr = halfOf(dm)
		}
		if (err == nil) != (derr == nil) {
			t.Fatalf("parseHalfRecord err=%v, decode+halfOf err=%v", err, derr)
		}
		if err == nil && got != want {
			t.Fatalf("parseHalfRecord %+v, halfOf %+v", got, want)
		}
	})
}
