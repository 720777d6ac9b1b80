package broker

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func TestSendV1V2AndResponseFields(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 4)); err != nil {
		t.Fatal(err)
	}
	// V2 (short keys).
	resp := tb.mustSend("T", 2, "hello", map[string]string{message.PropertyTags: "A", message.PropertyUniqKey: "UNIQ1"})
	for _, k := range []string{"msgId", "queueId", "queueOffset", "transactionId", message.PropertyMsgRegion, message.PropertyTraceSwitch} {
		if resp.ExtString(k) == "" {
			t.Errorf("response lacks %s: %v", k, resp.ExtFields)
		}
	}
	if resp.ExtString("queueId") != "2" || resp.ExtString("queueOffset") != "0" || resp.ExtString("transactionId") != "UNIQ1" {
		t.Fatalf("ext %v", resp.ExtFields)
	}
	host, off, err := message.ParseOffsetMsgID(resp.ExtString("msgId"))
	if err != nil || host != tb.StoreHost() {
		t.Fatalf("msgId %q: %v %v", resp.ExtString("msgId"), host, err)
	}
	m, err := tb.Store.ReadMessage(off)
	if err != nil || string(m.Body) != "hello" || m.Tags() != "A" || m.BornTimestamp == 0 || !m.BornHost.Addr().IsLoopback() {
		t.Fatalf("stored %+v err %v", m, err)
	}
	if m.Property(message.PropertyCluster) != tb.Cfg.ClusterName {
		t.Errorf("CLUSTER property %q", m.Property(message.PropertyCluster))
	}

	// V1 (long keys), no UNIQ_KEY: the broker generates one.
	resp = tb.invoke(remoting.SendMessage, map[string]string{
		"producerGroup": "PG", "topic": "T", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": "2", "sysFlag": "0", "bornTimestamp": "1700000000000", "flag": "5", "properties": "",
	}, []byte("v1"))
	if resp.Code != remoting.Success || resp.ExtString("queueOffset") != "1" {
		t.Fatalf("v1 send: %d %q %v", resp.Code, resp.Remark, resp.ExtFields)
	}
	_, off, _ = message.ParseOffsetMsgID(resp.ExtString("msgId"))
	m, _ = tb.Store.ReadMessage(off)
	if m.Flag != 5 || m.BornTimestamp != 1700000000000 || !message.IsUniqID(m.UniqKey()) || resp.ExtString("transactionId") != m.UniqKey() {
		t.Fatalf("v1 stored %+v, ext %v", m, resp.ExtFields)
	}
}

func TestSendAutoCreatesTopicThroughTBW102(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	resp := tb.sendV2("NewTopic", 0, "x", nil)
	if resp.Code != remoting.Success {
		t.Fatalf("code %d %q", resp.Code, resp.Remark)
	}
	tc, ok := tb.Topics.Get("NewTopic")
	if !ok || tc.WriteQueueNums != 4 || tc.Perm != PermRead|PermWrite {
		t.Fatalf("auto-created %+v %v (want 4 queues = min(request 4, TBW102 8), perm 6)", tc, ok)
	}
	def, _ := tb.Topics.Get(message.TopicDefault)
	if def.Perm&PermInherit == 0 || def.WriteQueueNums != 8 {
		t.Fatalf("TBW102 %+v", def)
	}
}

func TestSendTopicNotExistWhenAutoCreateOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.AutoCreateTopicEnable = false
	tb := startBroker(t, cfg)
	resp := tb.sendV2("Nope", 0, "x", nil)
	if resp.Code != remoting.TopicNotExist || !strings.Contains(resp.Remark, "topic[Nope] not exist, apply first please!") {
		t.Fatalf("code %d %q", resp.Code, resp.Remark)
	}
}

// TestSendBadInputs covers reliability.md section 6 rows that reach the broker.
func TestSendBadInputs(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxMessageSize = 1024
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("T", 2)); err != nil {
		t.Fatal(err)
	}
	ro := NewTopicConfig("ReadOnly", 1)
	ro.Perm = PermRead
	if err := tb.CreateTopic(ro); err != nil {
		t.Fatal(err)
	}
	bigProps := map[string]string{"k": strings.Repeat("v", 33000)}
	// Passes the header check, overflows in the store once the broker adds its own
	// properties (CLUSTER, UNIQ_KEY ...): still Apache's fixed remark (QA R6F-5).
	nearProps := map[string]string{"k": strings.Repeat("v", 32767-len("k")-2)}
	cases := []struct {
		name   string
		topic  string
		qid    int32
		body   string
		props  map[string]string
		code   int32
		remark string
	}{
		{"illegal chars", "a.b", 0, "x", nil, remoting.InvalidParameter, "contains illegal characters"},
		{"path", "../x", 0, "x", nil, remoting.InvalidParameter, "illegal characters"},
		{"too long", strings.Repeat("t", 128), 0, "x", nil, remoting.InvalidParameter, "longer than topic max length: 127"},
		{"blank", " ", 0, "x", nil, remoting.InvalidParameter, "The specified topic is blank."},
		{"schedule topic", "SCHEDULE_TOPIC_XXXX", 0, "x", nil, remoting.NoPermission, "Sending message to topic[SCHEDULE_TOPIC_XXXX] is forbidden."},
		{"half topic", "RMQ_SYS_TRANS_HALF_TOPIC", 0, "x", nil, remoting.NoPermission, "is forbidden"},
		{"body too large", "T", 0, strings.Repeat("b", 1025), nil, remoting.MessageIllegal, "msg body length limit 1024B"},
		{"empty body", "T", 0, "", nil, remoting.MessageIllegal, "zero"},
		{"properties too large", "T", 0, "x", bigProps, remoting.MessageIllegal, "properties length"},
		{"properties too large in the store", "T", 0, "x", nearProps, remoting.MessageIllegal, "the message is illegal, maybe msg body or properties length not matched. msg body length limit 1024B"},
		{"queue id", "T", 2, "x", nil, remoting.InvalidParameter, "request queueId[2] is illegal"},
		{"no write perm", "ReadOnly", 0, "x", nil, remoting.NoPermission, "sending message is forbidden"},
	}
	for _, c := range cases {
		resp := tb.sendV2(c.topic, c.qid, c.body, c.props)
		if resp.Code != c.code || !strings.Contains(resp.Remark, c.remark) {
			t.Errorf("%s: code %d %q, want %d containing %q", c.name, resp.Code, resp.Remark, c.code, c.remark)
		}
	}
	// Missing required header field.
	resp := tb.invoke(remoting.SendMessageV2, map[string]string{"a": "PG", "b": "T"}, []byte("x"))
	if resp.Code != remoting.InvalidParameter {
		t.Errorf("missing queueId: code %d %q", resp.Code, resp.Remark)
	}
	// Unknown request code: REQUEST_CODE_NOT_SUPPORTED, connection kept.
	if resp := tb.invoke(9999, nil, nil); resp.Code != remoting.RequestCodeNotSupported {
		t.Errorf("unknown code: %d", resp.Code)
	}
	// The broker keeps serving.
	tb.mustSend("T", 1, "still fine", nil)
}

// encodeBatch builds a SEND_BATCH_MESSAGE body like go2's MarshalMessageBatch.
func encodeBatch(msgs ...message.Message) []byte {
	var buf bytes.Buffer
	for _, m := range msgs {
		props := message.EncodeProperties(m.Properties)
		size := 20 + len(m.Body) + 2 + len(props)
		var hdr [20]byte
		binary.BigEndian.PutUint32(hdr[0:], uint32(size))
		binary.BigEndian.PutUint32(hdr[12:], uint32(m.Flag))
		binary.BigEndian.PutUint32(hdr[16:], uint32(len(m.Body)))
		buf.Write(hdr[:])
		buf.Write(m.Body)
		_ = binary.Write(&buf, binary.BigEndian, uint16(len(props)))
		buf.Write(props)
	}
	return buf.Bytes()
}

func TestSendBatch(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 2)); err != nil {
		t.Fatal(err)
	}
	body := encodeBatch(
		message.Message{Body: []byte("m0"), Properties: map[string]string{message.PropertyTags: "A"}},
		message.Message{Body: []byte("m1"), Flag: 3},
		message.Message{Body: []byte("m2"), Properties: map[string]string{message.PropertyKeys: "k"}},
	)
	ext := map[string]string{"a": "PG", "b": "T", "c": "TBW102", "d": "4", "e": "1", "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": "", "j": "0", "k": "false", "m": "true"}
	resp := tb.invoke(remoting.SendBatchMessage, ext, body)
	if resp.Code != remoting.Success {
		t.Fatalf("batch: %d %q", resp.Code, resp.Remark)
	}
	tb.settle()
	ids := strings.Split(resp.ExtString("msgId"), ",")
	if len(ids) != 3 || resp.ExtString("queueOffset") != "0" || resp.ExtString("queueId") != "1" {
		t.Fatalf("ext %v", resp.ExtFields)
	}
	p := tb.pull("G", "T", 1, 0, 32, 0, 0, "*")
	msgs := decodeBody(t, p)
	if len(msgs) != 3 || string(msgs[2].Body) != "m2" || msgs[1].Flag != 3 || msgs[0].Tags() != "A" {
		t.Fatalf("pulled %d messages", len(msgs))
	}
	for i, m := range msgs {
		if m.QueueOffset != int64(i) || m.UniqKey() == "" {
			t.Errorf("message %d: offset %d uniq %q", i, m.QueueOffset, m.UniqKey())
		}
	}
	// A corrupt batch body is MESSAGE_ILLEGAL and the broker keeps serving.
	resp = tb.invoke(remoting.SendBatchMessage, ext, body[:len(body)-3])
	if resp.Code != remoting.MessageIllegal {
		t.Fatalf("corrupt batch: %d %q", resp.Code, resp.Remark)
	}
	tb.mustSend("T", 0, "ok", nil)
	// The whole batch is limited by maxMessageSize, not only each body (QA R6F-7): two
	// bodies of 60% of the limit each are refused together.
	limit := tb.LiveConfig().MaxMessageSize
	big := encodeBatch(message.Message{Body: make([]byte, limit*6/10)}, message.Message{Body: make([]byte, limit*6/10)})
	if resp := tb.invoke(remoting.SendBatchMessage, ext, big); resp.Code != remoting.MessageIllegal {
		t.Fatalf("batch of %d bytes (limit %d): %d %q", len(big), limit, resp.Code, resp.Remark)
	}
	if got := tb.Store.MaxOffset("T", 1); got != 3 {
		t.Fatalf("refused batch stored something: max offset %d", got)
	}
}

func TestDecodeBatchRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{1, 2, 3}, bytes.Repeat([]byte{0xff}, 30), make([]byte, 22)} {
		if _, err := DecodeBatch(b); err == nil {
			t.Errorf("% x accepted", b)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch(message.Message{Body: []byte("a"), Properties: map[string]string{"K": "V"}}))
	f.Add([]byte{0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := DecodeBatch(b)
		if err == nil {
			n := 0
			for _, m := range msgs {
				n += 22 + len(m.Body)
			}
			if n > len(b) {
				t.Fatalf("decoded more than the input")
			}
		}
	})
}

func TestSendOverloadAnswersSystemBusy(t *testing.T) {
	cfg := testConfig(t)
	cfg.SendThreadPoolNums = 1
	cfg.SendThreadPoolQueueCapacity = 0
	tb := startBroker(t, cfg)
	// Hold the only send slot; the next send has no queue room: SYSTEM_BUSY [OVERLOAD].
	if tb.acquireSend() != nil {
		t.Fatal("slot not free")
	}
	resp := tb.sendV2("T", 0, "x", nil)
	tb.releaseSend()
	if resp.Code != remoting.SystemBusy || !strings.Contains(resp.Remark, "[OVERLOAD]") {
		t.Fatalf("code %d %q", resp.Code, resp.Remark)
	}
	tb.mustSend("T", 0, "x", nil)
}

// TestSendWaitersGetFreedSlots: with 2 slots and 40 concurrent sends held back, every send
// completes once slots free up (no waiter sleeps past a free slot until its deadline).
func TestSendWaitersGetFreedSlots(t *testing.T) {
	cfg := testConfig(t)
	cfg.SendThreadPoolNums = 2
	cfg.WaitTimeMillsInSendQueue = 10 * time.Second
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if tb.acquireSend() != nil {
			t.Fatal("slot not free")
		}
	}
	var wg sync.WaitGroup
	codes := make(chan int32, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- tb.sendV2("T", 0, "x", nil).Code
		}()
	}
	waitFor(t, 5*time.Second, "40 waiting sends", func() bool { return tb.sendQ.Load() == 40 })
	start := time.Now()
	tb.releaseSend()
	tb.releaseSend()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != remoting.Success {
			t.Fatalf("code %d", c)
		}
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("queued sends took %v", el)
	}
	if n := tb.sendActive.Load(); n != 0 {
		t.Fatalf("%d slots still held", n)
	}
}

func TestSendQueueTimeoutAnswersSystemBusy(t *testing.T) {
	cfg := testConfig(t)
	cfg.SendThreadPoolNums = 1
	cfg.WaitTimeMillsInSendQueue = 50 * time.Millisecond
	tb := startBroker(t, cfg)
	if tb.acquireSend() != nil {
		t.Fatal("slot not free")
	}
	resp := tb.sendV2("T", 0, "x", nil)
	tb.releaseSend()
	if resp.Code != remoting.SystemBusy || !strings.Contains(resp.Remark, "[TIMEOUT_CLEAN_QUEUE]") {
		t.Fatalf("code %d %q", resp.Code, resp.Remark)
	}
}

// TestBrokerSurvivesGarbageFrames: malformed frames (reliability.md section 6 rows 23-24)
// close only their own connection; the broker keeps serving others.
func TestBrokerSurvivesGarbageFrames(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	for _, junk := range [][]byte{
		{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1},               // frame length > 16 MiB
		{0, 0, 0, 8, 0, 0, 0, 100, 1, 2, 3, 4},             // header longer than the frame
		append([]byte{0, 0, 0, 9, 0, 0, 0, 5}, "{bad}"...), // malformed JSON header
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	} {
		conn, err := net.Dial("tcp", tb.ListenAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(junk)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(conn); err != nil { // nil = closed by the broker (EOF)
			t.Errorf("junk % x: connection not closed: %v", junk[:8], err)
		}
		conn.Close()
	}
	tb.mustSend("T", 0, "still serving", nil)
}
