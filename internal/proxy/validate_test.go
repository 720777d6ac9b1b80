package proxy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func strp(s string) *string { return &s }

func baseMsg() *pb.Message {
	return &pb.Message{
		Topic: &pb.Resource{Name: "T"},
		Body:  []byte("hello"),
		SystemProperties: &pb.SystemProperties{
			MessageId: "01ABCDEF", MessageType: pb.MessageType_NORMAL, BornHost: "h",
			BornTimestamp: timestamppb.Now(), BodyEncoding: pb.Encoding_IDENTITY,
		},
	}
}

func TestBuildMessageValidation(t *testing.T) {
	cfg := DefaultConfig()
	now := time.Now()
	manyProps := map[string]string{}
	for i := 0; i < 129; i++ {
		manyProps[fmt.Sprint("k", i)] = "v"
	}
	for _, tc := range []struct {
		name string
		mut  func(m *pb.Message)
		want pb.Code
	}{
		{"ok", func(m *pb.Message) {}, pb.Code_OK},
		{"no message id", func(m *pb.Message) { m.SystemProperties.MessageId = "" }, pb.Code_ILLEGAL_MESSAGE_ID},
		{"empty body", func(m *pb.Message) { m.Body = nil }, CodeMessageBodyEmpty},
		{"oversized body", func(m *pb.Message) { m.Body = make([]byte, 4<<20+1) }, pb.Code_MESSAGE_BODY_TOO_LARGE},
		{"blank tag", func(m *pb.Message) { m.SystemProperties.Tag = strp("  ") }, pb.Code_ILLEGAL_MESSAGE_TAG},
		{"tag with |", func(m *pb.Message) { m.SystemProperties.Tag = strp("a|b") }, pb.Code_ILLEGAL_MESSAGE_TAG},
		{"tag with control", func(m *pb.Message) { m.SystemProperties.Tag = strp("a\x01") }, pb.Code_ILLEGAL_MESSAGE_TAG},
		{"blank key", func(m *pb.Message) { m.SystemProperties.Keys = []string{"ok", " "} }, pb.Code_ILLEGAL_MESSAGE_KEY},
		{"system property", func(m *pb.Message) { m.UserProperties = map[string]string{"UNIQ_KEY": "x"} }, pb.Code_ILLEGAL_MESSAGE_PROPERTY_KEY},
		{"reserved __CRC32#", func(m *pb.Message) { m.UserProperties = map[string]string{"__CRC32#": "x"} }, pb.Code_ILLEGAL_MESSAGE_PROPERTY_KEY},
		{"reserved TIMER_DEL_MS", func(m *pb.Message) { m.UserProperties = map[string]string{"TIMER_DEL_MS": "x"} }, pb.Code_ILLEGAL_MESSAGE_PROPERTY_KEY},
		{"system-like user properties", func(m *pb.Message) { // R4B-4: not in STRING_HASH_SET
			m.UserProperties = map[string]string{"CRC32": "x", "SHARDING_KEY": "s", "DELAY_TIME_LEVEL": "1", "TRACE_CONTEXT": "t"}
		}, pb.Code_OK},
		{"control in property", func(m *pb.Message) { m.UserProperties = map[string]string{"a": "b\x02"} }, pb.Code_ILLEGAL_MESSAGE_PROPERTY_KEY},
		{"empty property key or value (dropped, as Apache's broker)", func(m *pb.Message) { m.UserProperties = map[string]string{"": "x", "e": ""} }, pb.Code_OK},
		{"129 properties", func(m *pb.Message) { m.UserProperties = manyProps }, pb.Code_MESSAGE_PROPERTIES_TOO_LARGE},
		{"17 KiB of properties", func(m *pb.Message) { m.UserProperties = map[string]string{"big": strings.Repeat("x", 17<<10)} }, pb.Code_MESSAGE_PROPERTIES_TOO_LARGE},
		{"group too long", func(m *pb.Message) {
			m.SystemProperties.MessageType = pb.MessageType_FIFO
			m.SystemProperties.MessageGroup = strp(strings.Repeat("g", 65))
		}, pb.Code_ILLEGAL_MESSAGE_GROUP},
		// Apache: length >= 64 bytes is refused (QA R7G-4); 63 passes.
		{"group of 64 bytes", func(m *pb.Message) {
			m.SystemProperties.MessageType = pb.MessageType_FIFO
			m.SystemProperties.MessageGroup = strp(strings.Repeat("g", 64))
		}, pb.Code_ILLEGAL_MESSAGE_GROUP},
		{"group of 63 bytes", func(m *pb.Message) {
			m.SystemProperties.MessageType = pb.MessageType_FIFO
			m.SystemProperties.MessageGroup = strp(strings.Repeat("g", 63))
		}, pb.Code_OK},
		// Apache derives the type from the fields and reads message_type only for TRANSACTION
		// (QA R10S-2, R11B-1, R11B-2); the topic check judges the derived type
		// (TestMessageTypeFromFields).
		{"FIFO without group", func(m *pb.Message) { m.SystemProperties.MessageType = pb.MessageType_FIFO }, pb.Code_OK},
		{"NORMAL with group", func(m *pb.Message) { m.SystemProperties.MessageGroup = strp("g") }, pb.Code_OK},
		{"NORMAL with group and delivery time", func(m *pb.Message) {
			m.SystemProperties.MessageGroup = strp("g")
			m.SystemProperties.DeliveryTimestamp = timestamppb.New(now.Add(time.Minute))
		}, pb.Code_OK},
		{"delay beyond max", func(m *pb.Message) {
			m.SystemProperties.MessageType = pb.MessageType_DELAY
			m.SystemProperties.DeliveryTimestamp = timestamppb.New(now.Add(25 * time.Hour))
		}, pb.Code_ILLEGAL_DELIVERY_TIME},
		{"delay without timestamp", func(m *pb.Message) { m.SystemProperties.MessageType = pb.MessageType_DELAY }, pb.Code_OK},
		// R7G-9: Apache's maxTransactionRecoverySecond (3600) is inclusive; beyond is BAD_REQUEST.
		{"recovery of 1h", func(m *pb.Message) {
			m.SystemProperties.MessageType = pb.MessageType_TRANSACTION
			m.SystemProperties.OrphanedTransactionRecoveryDuration = durationpb.New(time.Hour)
		}, pb.Code_OK},
		{"recovery beyond 1h", func(m *pb.Message) {
			m.SystemProperties.MessageType = pb.MessageType_TRANSACTION
			m.SystemProperties.OrphanedTransactionRecoveryDuration = durationpb.New(time.Hour + time.Second)
		}, pb.Code_BAD_REQUEST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := baseMsg()
			tc.mut(m)
			_, err := cfg.buildMessage(m, "T", now)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

// TestMessageTypeFromFields: the type a message is checked as, and the properties its group
// and delivery time become, follow Apache's proxy whatever message_type says (except
// TRANSACTION).
func TestMessageTypeFromFields(t *testing.T) {
	cfg := DefaultConfig()
	now := time.Now()
	at := now.Add(time.Minute)
	for _, tc := range []struct {
		name     string
		label    pb.MessageType
		group    bool
		delivery bool
		want     MessageType
	}{
		{"plain", pb.MessageType_NORMAL, false, false, MessageTypeNormal},
		{"labelled FIFO, no group", pb.MessageType_FIFO, false, false, MessageTypeNormal},
		{"labelled DELAY, no time", pb.MessageType_DELAY, false, false, MessageTypeNormal},
		{"group", pb.MessageType_NORMAL, true, false, MessageTypeFIFO},
		{"group, unspecified", pb.MessageType_MESSAGE_TYPE_UNSPECIFIED, true, false, MessageTypeFIFO},
		{"time", pb.MessageType_NORMAL, false, true, MessageTypeDelay},
		{"group and time, labelled FIFO (go5, Node.js)", pb.MessageType_FIFO, true, true, MessageTypeDelay},
		{"transaction with group and time", pb.MessageType_TRANSACTION, true, true, MessageTypeTransaction},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := baseMsg()
			m.SystemProperties.MessageType = tc.label
			if tc.group {
				m.SystemProperties.MessageGroup = strp("g")
			}
			if tc.delivery {
				m.SystemProperties.DeliveryTimestamp = timestamppb.New(at)
			}
			out, err := cfg.buildMessage(m, "T", now)
			if err != nil {
				t.Fatal(err)
			}
			if out.typ != tc.want {
				t.Fatalf("type %s, want %s", out.typ, tc.want)
			}
			p := out.msg.Properties
			if g, ok := p[PropShardingKey]; ok != tc.group || (ok && g != "g") {
				t.Errorf("sharding key %q (%v), want the group: %v", g, ok, tc.group)
			}
			if d, ok := p[PropTimerDeliverMS]; ok != tc.delivery || (ok && d != strconv.FormatInt(at.UnixMilli(), 10)) {
				t.Errorf("TIMER_DELIVER_MS %q (%v), want the delivery time: %v", d, ok, tc.delivery)
			}
		})
	}
}

func TestBuildMessageProperties(t *testing.T) {
	cfg := DefaultConfig()
	now := time.Now()
	m := baseMsg()
	m.SystemProperties.MessageType = pb.MessageType_TRANSACTION
	m.SystemProperties.Tag = strp("TagA")
	m.SystemProperties.Keys = []string{"k1", "k2"}
	m.UserProperties = map[string]string{"u": "v", "": "x", "e": ""}
	out, err := cfg.buildMessage(m, "T", now)
	if err != nil {
		t.Fatal(err)
	}
	p := out.msg.Properties
	if _, ok := p[""]; ok {
		t.Error("a property with an empty key was stored")
	}
	if _, ok := p["e"]; ok {
		t.Error("a property with an empty value was stored")
	}
	want := map[string]string{
		PropUniqKey: "01ABCDEF", PropTags: "TagA", PropKeys: "k1 k2", "u": "v",
		PropTransactionPrep: "true", PropProducerGroup: "T", PropBornHost: "h",
		PropReconsumeTime: "0",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("property %s = %q, want %q", k, p[k], v)
		}
	}
	if out.msg.SysFlag&SysFlagTransactionPrepared == 0 {
		t.Error("transaction message without the prepared sysflag")
	}

	e := baseMsg()
	e.SystemProperties.Tag = strp("") // R4B-1: empty = no tag
	out, err = cfg.buildMessage(e, "T", now)
	if err != nil {
		t.Fatalf("empty tag refused: %v", err)
	}
	if tag, ok := out.msg.Properties[PropTags]; ok {
		t.Fatalf("empty tag stored as TAGS=%q", tag)
	}

	// R9N-3: a dead letter's DLQ_ORIGIN_* user properties (shown on receive) are dropped on a
	// replay, not refused; other reserved names still are.
	d := baseMsg()
	d.UserProperties = map[string]string{PropDLQOriginTopic: "R2", PropDLQOriginMsgID: "x", "rp": "v"}
	out, err = cfg.buildMessage(d, "T", now)
	if err != nil {
		t.Fatalf("replay with DLQ_ORIGIN_* refused: %v", err)
	}
	if _, ok := out.msg.Properties[PropDLQOriginTopic]; ok || out.msg.Properties["rp"] != "v" {
		t.Fatalf("replay properties %v", out.msg.Properties)
	}
	r := baseMsg()
	r.UserProperties = map[string]string{PropRetryTopic: "R2"}
	if _, err := cfg.buildMessage(r, "T", now); CodeOf(err) != pb.Code_ILLEGAL_MESSAGE_PROPERTY_KEY {
		t.Fatalf("RETRY_TOPIC as a user property: %v", err)
	}

	// R9M-2: empty keys are skipped, as Apache's validateMessageKey; all empty = no KEYS.
	for _, c := range []struct {
		keys []string
		want string
	}{{[]string{""}, ""}, {[]string{"a", ""}, "a"}, {[]string{"", "a", "", "b"}, "a b"}} {
		k := baseMsg()
		k.SystemProperties.Keys = c.keys
		out, err = cfg.buildMessage(k, "T", now)
		if err != nil {
			t.Fatalf("keys %q refused: %v", c.keys, err)
		}
		if got, ok := out.msg.Properties[PropKeys]; got != c.want || ok != (c.want != "") {
			t.Fatalf("keys %q stored as KEYS=%q (present %v), want %q", c.keys, got, ok, c.want)
		}
	}

	f := baseMsg()
	f.SystemProperties.MessageType = pb.MessageType_FIFO
	f.SystemProperties.MessageGroup = strp("order-1")
	out, err = cfg.buildMessage(f, "T", now)
	if err != nil || out.msg.Properties[PropShardingKey] != "order-1" || out.typ != MessageTypeFIFO {
		t.Fatalf("FIFO: %+v, %v", out, err)
	}

	// R7G-5: every message, not only transactional ones, records PGROUP (= topic) and the
	// delivery attempt as RECONSUME_TIME, as Apache's SendMessageActivity.
	n := baseMsg()
	attempt := int32(3)
	n.SystemProperties.DeliveryAttempt = &attempt
	out, err = cfg.buildMessage(n, "T", now)
	if err != nil || out.msg.Properties[PropProducerGroup] != "T" || out.msg.Properties[PropReconsumeTime] != "3" {
		t.Fatalf("normal message properties %v, %v", out.msg.Properties, err)
	}
}

func TestNameValidation(t *testing.T) {
	for name, code := range map[string]pb.Code{
		"ok_topic-1": pb.Code_OK, "": pb.Code_ILLEGAL_TOPIC, "a.b": pb.Code_ILLEGAL_TOPIC, "../x": pb.Code_ILLEGAL_TOPIC,
		strings.Repeat("t", 128): pb.Code_ILLEGAL_TOPIC, "TBW102": pb.Code_ILLEGAL_TOPIC,
		"RMQ_SYS_TRANS_HALF_TOPIC": pb.Code_ILLEGAL_TOPIC, "rmq_sys_x": pb.Code_ILLEGAL_TOPIC,
	} {
		_, err := validateTopic(&pb.Resource{Name: name}, true)
		if got := CodeOf(err); got != code {
			t.Errorf("topic %q: %v, want %v", name, got, code)
		}
	}
	if _, err := validateTopic(&pb.Resource{Name: "%DLQ%g"}, false); err != nil {
		t.Errorf("consumers must be able to read %%DLQ%%g: %v", err)
	}
	if _, err := validateTopic(&pb.Resource{Name: "%DLQ%g"}, true); err == nil {
		t.Error("sending to a DLQ topic accepted")
	}
	for name, code := range map[string]pb.Code{
		"g1": pb.Code_OK, "": pb.Code_ILLEGAL_CONSUMER_GROUP, "a/b": pb.Code_ILLEGAL_CONSUMER_GROUP,
		strings.Repeat("g", 121): pb.Code_ILLEGAL_CONSUMER_GROUP, "DEFAULT_CONSUMER": pb.Code_ILLEGAL_CONSUMER_GROUP,
		"CID_RMQ_SYS_X": pb.Code_ILLEGAL_CONSUMER_GROUP,
	} {
		_, err := validateGroup(&pb.Resource{Name: name})
		if got := CodeOf(err); got != code {
			t.Errorf("group %q: %v, want %v", name, got, code)
		}
	}
	// "" means refused; empty segments are dropped as Apache's FilterAPI does (R4B-2).
	for expr, want := range map[string]string{"*": "*", "": "*", " * ": "*", "A": "A", "A||B": "A||B", "A||": "A",
		"||A": "A", "A || || B": "A||B", "||": "", " || ": "", "A||B\x01": "", "a\x01": ""} {
		got, err := parseTagFilter(expr)
		if want == "" {
			if err == nil {
				t.Errorf("tag filter %q accepted as %q", expr, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("tag filter %q: %q, %v; want %q", expr, got, err, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"unknown tls mode":   func(c *Config) { c.TLSMode = "enforce" },
		"cert without key":   func(c *Config) { c.TLSCertFile = "c.pem" },
		"auth without acl":   func(c *Config) { c.Auth = true },
		"bad advertise":      func(c *Config) { c.AdvertiseAddr = "nohost" },
		"min > max":          func(c *Config) { c.MinInvisible = 13 * time.Hour },
		"zero queues":        func(c *Config) { c.AutoCreateQueues = 0 },
		"bad listen":         func(c *Config) { c.GRPCListen = "8081" },
		"zero client expiry": func(c *Config) { c.ClientExpiry = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

func TestNamespaceWrap(t *testing.T) {
	for _, tc := range []struct{ ns, name, want string }{
		{"", "T", "T"},
		{"ns1", "T", "ns1%T"},
		{"ns1", "ns1%T", "ns1%T"},
		{"ns1", "%RETRY%G", "%RETRY%ns1%G"},
		{"ns1", "%DLQ%G", "%DLQ%ns1%G"},
		{"ns1", "%DLQ%ns1%G", "%DLQ%ns1%G"},
		{"ns1", "TBW102", "TBW102"},
	} {
		if got := wrapNamespace(tc.ns, tc.name); got != tc.want {
			t.Errorf("wrapNamespace(%q, %q) = %q, want %q", tc.ns, tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, ns, bare string }{
		{"T", "", "T"}, {"ns1%T", "ns1", "T"}, {"%DLQ%ns1%G", "ns1", "%DLQ%G"}, {"%RETRY%G", "", "%RETRY%G"}, {"%T", "", "%T"},
	} {
		if ns, bare := withoutNamespace(tc.in); ns != tc.ns || bare != tc.bare {
			t.Errorf("withoutNamespace(%q) = %q, %q; want %q, %q", tc.in, ns, bare, tc.ns, tc.bare)
		}
	}
}

// TestReceivedUserProperties (R4B-4, R9N-5): user properties that merely look like system
// ones are delivered; reserved ones are not repeated as user properties.
func TestReceivedUserProperties(t *testing.T) {
	m := &Message{Topic: "T", Body: []byte("b"), Properties: map[string]string{
		PropUniqKey: "01AB", "CRC32": "c", "SHARDING_KEY": "s", "color": "red",
		PropShardingKey: "g1", PropTags: "A", "__CRC32#": "1", "__RMQ.TRANSIENT.X": "y",
	}}
	m.BornHost, m.StoreHost = "10.0.0.7:5555", "10.0.0.1:10911"
	pm := toPBMessage(m, "", 0)
	// R9N-4: without __BORNHOST the born host is the IP alone (Apache getBornHostString);
	// the store host keeps its port.
	if sp := pm.GetSystemProperties(); sp.GetBornHost() != "10.0.0.7" || sp.GetStoreHost() != "10.0.0.1:10911" {
		t.Errorf("born host %q, store host %q", sp.GetBornHost(), sp.GetStoreHost())
	}
	got := pm.GetUserProperties()
	// R9N-5: every name outside Apache's STRING_HASH_SET is shown, __SHARDINGKEY included.
	for _, k := range []string{"CRC32", "SHARDING_KEY", "color", PropShardingKey} {
		if _, ok := got[k]; !ok {
			t.Errorf("user property %s dropped: %v", k, got)
		}
	}
	for _, k := range []string{PropUniqKey, PropTags, "__CRC32#", "__RMQ.TRANSIENT.X"} {
		if _, ok := got[k]; ok {
			t.Errorf("internal property %s shown as a user property", k)
		}
	}
}

// TestReadableBroker (R4X-8, R4B-5): the broker a receive names is used while the route has
// readable queues on it; otherwise the receive goes to another readable broker (round robin),
// and to none when no broker is readable.
func TestReadableBroker(t *testing.T) {
	r := &TopicRoute{Topic: "T", Brokers: []BrokerQueues{
		{Name: "a", ReadQueues: 4, Perm: PermRead | PermWrite},
		{Name: "b", ReadQueues: 4, Perm: PermWrite},
		{Name: "c", ReadQueues: 4, Perm: PermRead},
	}}
	var rr atomic.Uint32
	if got := readableBroker(r, "c", &rr); got != "c" {
		t.Fatalf("named readable broker: %q", got)
	}
	seen := map[string]int{}
	for _, want := range []string{"b", "gone", ""} { // not readable, not in the route, none named
		for range 4 {
			seen[readableBroker(r, want, &rr)]++
		}
	}
	if seen["a"] == 0 || seen["c"] == 0 || seen["b"] != 0 || seen[""] != 0 {
		t.Fatalf("fallbacks %v, want a and c only, both used", seen)
	}
	none := &TopicRoute{Topic: "T", Brokers: []BrokerQueues{{Name: "b", ReadQueues: 4, Perm: PermWrite}}}
	if got := readableBroker(none, "b", &rr); got != "" {
		t.Fatalf("write-only route gave %q", got)
	}
}

// TestStatusMessage (R4B-3): status texts lose repeated parts and internal package prefixes.
func TestStatusMessage(t *testing.T) {
	for in, want := range map[string]string{
		"receipt handle is expired: receipt handle is expired":                "receipt handle is expired",
		"receipt handle is invalid: receipt handle is invalid: bad signature": "receipt handle is invalid: bad signature",
		"cluster: Missing16: topic not found":                                 "Missing16: topic not found",
		"txn: transaction already resolved":                                   "transaction already resolved",
		"local: pop service not running: service unavailable":                 "pop service not running: service unavailable",
		"topic local: x": "topic local: x",
		// R9M-4: prefixes in the middle of a chain go too.
		"consumer group not found: broker: subscription group not exist: subscription group [g] does not exist": "consumer group not found: subscription group not exist: subscription group [g] does not exist",
		"backend unavailable: request not sent: remoting: dial failed":                                          "backend unavailable: request not sent: dial failed",
		"cluster": "cluster",
	} {
		if got := statusMessage(in); got != want {
			t.Errorf("statusMessage(%q) = %q, want %q", in, got, want)
		}
	}
	// R7G-9: a broker refusal carried as BrokerError loses the prefix too.
	be := &BrokerError{Code: 604, Remark: "txn: check immunity time passed, waiting for check-back: half at 1"}
	if got := toStatus(be).GetMessage(); got != "check immunity time passed, waiting for check-back: half at 1" {
		t.Errorf("BrokerError status %q", got)
	}
}

// TestAttemptID (R4X-5): attempt_id (field 8 of newer ReceiveMessageRequest protos) is read
// from the unknown fields of the v5.1.2 message; absent or malformed gives "".
func TestAttemptID(t *testing.T) {
	req := &pb.ReceiveMessageRequest{BatchSize: 4}
	if got := attemptID(req); got != "" {
		t.Fatalf("no attempt id: %q", got)
	}
	var raw []byte
	raw = protowire.AppendTag(raw, 99, protowire.VarintType) // an unrelated unknown field first
	raw = protowire.AppendVarint(raw, 7)
	raw = protowire.AppendTag(raw, attemptIDField, protowire.BytesType)
	raw = protowire.AppendString(raw, "attempt-1")
	req.ProtoReflect().SetUnknown(raw)
	if got := attemptID(req); got != "attempt-1" {
		t.Fatalf("attempt id %q", got)
	}
	// Through the wire: a marshalled newer message parses into the stub with the field kept.
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back pb.ReceiveMessageRequest
	if err := proto.Unmarshal(b, &back); err != nil || attemptID(&back) != "attempt-1" {
		t.Fatalf("after a round trip: %q, %v", attemptID(&back), err)
	}
	req.ProtoReflect().SetUnknown(raw[:len(raw)-3]) // truncated
	if got := attemptID(req); got != "" {
		t.Fatalf("malformed: %q", got)
	}
}

// TestPollBudget (R6E-3): the long poll lasts the request's long_polling_timeout (field 7 of
// newer protos, sent by Node.js and Java as their awaitDuration) when set, bounded by the
// caller's deadline minus ReceiveMargin and by MaxLongPolling; without it the deadline rules
// (go5 v5.1.2 sends none).
func TestPollBudget(t *testing.T) {
	s := &Server{cfg: DefaultConfig()}
	withLP := func(d time.Duration) *pb.ReceiveMessageRequest {
		req := &pb.ReceiveMessageRequest{}
		dur, err := proto.Marshal(durationpb.New(d))
		if err != nil {
			t.Fatal(err)
		}
		raw := protowire.AppendTag(nil, longPollingTimeoutField, protowire.BytesType)
		raw = protowire.AppendBytes(raw, dur)
		req.ProtoReflect().SetUnknown(raw)
		return req
	}
	deadline := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	near := func(got, want time.Duration) bool { return got <= want && got > want-500*time.Millisecond }
	for _, tc := range []struct {
		name string
		ctx  context.Context
		req  *pb.ReceiveMessageRequest
		want time.Duration
	}{
		{"await 5s, deadline 8s", deadline(8 * time.Second), withLP(5 * time.Second), 5 * time.Second},
		{"no field, deadline 8s", deadline(8 * time.Second), &pb.ReceiveMessageRequest{}, 6500 * time.Millisecond},
		{"await beyond the deadline", deadline(4 * time.Second), withLP(30 * time.Second), 2500 * time.Millisecond},
		{"await beyond MaxLongPolling", context.Background(), withLP(time.Hour), 20 * time.Second},
		{"no field, no deadline", context.Background(), &pb.ReceiveMessageRequest{}, 20 * time.Second},
		{"negative await ignored", context.Background(), withLP(-time.Second), 20 * time.Second},
	} {
		if got := s.pollBudget(tc.ctx, tc.req); !near(got, tc.want) {
			t.Errorf("%s: budget %v, want ~%v", tc.name, got, tc.want)
		}
	}
}

// TestInvisibleTimeTexts: Apache's GrpcValidator texts (milliseconds), so applications that
// match on them see the same (QA R11B-9).
func TestInvisibleTimeTexts(t *testing.T) {
	cfg := DefaultConfig()
	for _, c := range []struct {
		d, min time.Duration
		want   string
	}{
		{time.Second, cfg.MinInvisible, "the invisibleTime is too small. min is 10000"},
		{13 * time.Hour, cfg.MinInvisible, "the invisibleTime is too large. max is 43200000"},
		{-time.Second, 0, "the invisibleTime is too small. min is 0"},
	} {
		err := cfg.validateInvisible(c.d, c.min)
		if CodeOf(err) != pb.Code_ILLEGAL_INVISIBLE_TIME || !strings.Contains(err.Error(), c.want) {
			t.Errorf("invisible %s (min %s): %v, want %q", c.d, c.min, err, c.want)
		}
	}
	if err := cfg.validateInvisible(0, 0); err != nil {
		t.Errorf("0 with no minimum (ChangeInvisibleDuration): %v", err)
	}
}
