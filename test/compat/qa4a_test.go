//go:build !race

package compat

// QA round 4 A (docs/qa/round4-A.md): regression tests for remoting behaviour that was found
// to match Apache RocketMQ on awkward paths — malformed frames, timer properties and delay
// levels out of range, the go2 pull consumer API, batches with tags and keys read by two
// groups, orderly batches with a suspended queue.

import (
	"context"
	binenc "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// rawFrame builds one remoting frame: length, serialize type + header length, header, body.
func rawFrame(serializeType byte, header, body []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(body))
	binenc.BigEndian.PutUint32(b[0:], uint32(4+len(header)+len(body)))
	binenc.BigEndian.PutUint32(b[4:], uint32(serializeType)<<24|uint32(len(header)))
	return append(append(b, header...), body...)
}

// rawExchange writes data on a fresh connection and returns the JSON header of the first
// response frame, or closed=true when the server closed the connection without answering.
func rawExchange(t *testing.T, addr string, data []byte) (header map[string]any, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if _, err := c.Write(data); err != nil {
		return nil, true
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var pre [8]byte
	if _, err := io.ReadFull(c, pre[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: no answer and no close within 5 s for % x", addr, data[:min(len(data), 16)])
		}
		return nil, true
	}
	rest := make([]byte, binenc.BigEndian.Uint32(pre[:4])-4)
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatalf("%s: truncated response: %v", addr, err)
	}
	hl := binenc.BigEndian.Uint32(pre[4:]) & 0xffffff
	if err := json.Unmarshal(rest[:hl], &header); err != nil {
		t.Fatalf("%s: response header is not JSON: %v %q", addr, err, rest[:hl])
	}
	return header, false
}

// TestQA4ARawFramesAnswered: malformed frames on the broker and NameServer ports are closed
// (Apache NettyDecoder closes the channel on a decode error), unknown request codes get
// REQUEST_CODE_NOT_SUPPORTED with Apache's remark, binary (ROCKETMQ) headers are understood,
// and a go2 client keeps working afterwards.
func TestQA4ARawFramesAnswered(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	closes := map[string][]byte{
		"length 0":            {0, 0, 0, 0},
		"length 2":            {0, 0, 0, 2, 0, 0},
		"huge length":         {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		"negative length":     {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		"16 MiB + 1":          {0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0},
		"header > frame":      {0, 0, 0, 8, 0, 0, 0, 100, 1, 2, 3, 4},
		"JSON garbage":        rawFrame(0, []byte("{garbage"), nil),
		"JSON array":          rawFrame(0, []byte("[1,2,3]"), nil),
		"code is a string":    rawFrame(0, []byte(`{"code":"abc","flag":0,"opaque":5}`), nil),
		"serialize type 5":    rawFrame(5, []byte(`{"code":105}`), nil),
		"binary ext len huge": rawFrame(1, []byte{0, 105, 9, 1, 61, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}, nil),
	}
	for _, addr := range []string{d.ns, d.broker} {
		for name, data := range closes {
			if h, closed := rawExchange(t, addr, data); !closed {
				t.Errorf("%s %s: answered %v, want the connection closed", addr, name, h)
			}
		}
		h, closed := rawExchange(t, addr, rawFrame(0, []byte(`{"code":9999,"language":"JAVA","version":453,"opaque":7,"flag":0,"extFields":{}}`), nil))
		if closed || h["code"] != float64(3) || h["opaque"] != float64(7) || h["remark"] != " request type 9999 not supported" {
			t.Errorf("%s unknown code: %v (closed %v), want code 3, opaque 7, remark \" request type 9999 not supported\"", addr, h, closed)
		}
	}
	// GET_ROUTEINFO_BY_TOPIC with a ROCKETMQ binary header: code 105, language GO, version 317,
	// opaque 77, flag 0, no remark, ext {topic: <missing topic>}.
	missing := uniq("qa4a_nosuch")
	hdr := []byte{0, 105, 9, 1, 61, 0, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0, 0}
	var ext []byte
	ext = binenc.BigEndian.AppendUint16(ext, 5)
	ext = append(ext, "topic"...)
	ext = binenc.BigEndian.AppendUint32(ext, uint32(len(missing)))
	ext = append(ext, missing...)
	hdr = binenc.BigEndian.AppendUint32(hdr, uint32(len(ext)))
	hdr = append(hdr, ext...)
	h, closed := rawExchange(t, d.ns, rawFrame(1, hdr, nil))
	if closed || h["code"] != float64(17) || h["opaque"] != float64(77) {
		t.Errorf("binary GET_ROUTEINFO_BY_TOPIC of a missing topic: %v (closed %v), want code 17 (TOPIC_NOT_EXIST), opaque 77", h, closed)
	}
	topic := uniq("qa4a_raw")
	p := go2Producer(t, d.ns)
	sendSync(t, p, primitive.NewMessage(topic, []byte("after the garbage")))
}

// TestQA4AGo2TimerPropertiesAndDelayLevels: go2 apps can set RocketMQ 5's timer properties
// (TIMER_DELAY_SEC / TIMER_DELAY_MS / TIMER_DELIVER_MS, HookUtils.transformTimerMessage);
// bad ones are MESSAGE_ILLEGAL; a delay level beyond 18 is capped (not delivered at once) and
// a negative one is delivered at once (HookUtils.handleScheduleMessage).
func TestQA4AGo2TimerPropertiesAndDelayLevels(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("qa4a_timer"), uniq("qa4a_timer_g")
	createTopic(t, d, topic, "NORMAL", 4)
	p := go2Producer(t, d.ns)
	start := time.Now()
	want := map[string]time.Duration{"sec2": 2 * time.Second, "ms1500": 1500 * time.Millisecond, "deliver2": 2 * time.Second,
		"past": 0, "level-1": 0, "plain": 0}
	props := map[string][2]string{"sec2": {"TIMER_DELAY_SEC", "2"}, "ms1500": {"TIMER_DELAY_MS", "1500"},
		"deliver2": {"TIMER_DELIVER_MS", fmt.Sprint(start.Add(2 * time.Second).UnixMilli())},
		"past":     {"TIMER_DELIVER_MS", fmt.Sprint(start.Add(-time.Hour).UnixMilli())}}
	for body := range want {
		m := primitive.NewMessage(topic, []byte(body))
		if kv, ok := props[body]; ok {
			m.WithProperty(kv[0], kv[1])
		}
		if body == "level-1" {
			m.WithDelayTimeLevel(-1)
		}
		sendSync(t, p, m)
	}
	for _, lvl := range []int{19, 40} {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("level%d", lvl)))
		m.WithDelayTimeLevel(lvl)
		sendSync(t, p, m)
	}
	for _, bad := range [][2]string{{"TIMER_DELAY_SEC", "abc"}, {"TIMER_DELAY_SEC", fmt.Sprint(4 * 86400)}, {"DELAY", "abc"}} {
		m := primitive.NewMessage(topic, []byte("bad"))
		m.WithProperty(bad[0], bad[1])
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err := p.SendSync(ctx, m)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "CODE: 13") {
			t.Errorf("send with %s=%s: %v, want CODE: 13 (MESSAGE_ILLEGAL)", bad[0], bad[1], err)
		}
	}
	var mu sync.Mutex
	got := map[string]time.Duration{}
	go2Push(t, d.ns, group, topic, "*", func(_ context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			got[string(m.Body)] = time.Since(start)
		}
		return consumer.ConsumeSuccess, nil
	})
	waitUntil(20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) })
	time.Sleep(300 * time.Millisecond) // a level-19/40 message delivered at once would be here by now
	mu.Lock()
	defer mu.Unlock()
	for body, early := range want {
		at, ok := got[body]
		switch {
		case !ok:
			t.Errorf("%s: not delivered within 20 s", body)
		case at < early-20*time.Millisecond:
			t.Errorf("%s: delivered after %v, before its %v", body, at.Round(time.Millisecond), early)
		}
	}
	for _, body := range []string{"level19", "level40"} {
		if at, ok := got[body]; ok {
			t.Errorf("%s delivered after %v; levels above 18 must be capped at 18 (2 h)", body, at.Round(time.Millisecond))
		}
	}
}

// TestQA4AGo2PullConsumerAPI: go2's DefaultPullConsumer (PullFrom statuses, queue and topic
// errors, offsets persisted for the next consumer of the group, OffsetForTimestamp), the
// PullMessageProcessor codes Apache answers. (PullFrom at the queue's end is not tried: go2
// always asks for a long poll, so it answers PullNoNewMsg only after 20 s, as against Apache.)
func TestQA4AGo2PullConsumerAPI(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("qa4a_pull"), uniq("qa4a_pull_g")
	createTopic(t, d, topic, "NORMAL", 1)
	p := go2Producer(t, d.ns)
	for i := 0; i < 3; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("p%d", i)))
		m.WithTag([]string{"X", "Y", "X"}[i])
		sendSync(t, p, m)
	}
	newPull := func() rocketmq.PullConsumer {
		c, err := rocketmq.NewPullConsumer(consumer.WithNameServer(strings.Split(d.ns, ";")), consumer.WithGroupName(group),
			consumer.WithInstance(uniq("inst")))
		if err != nil {
			t.Fatalf("go2 NewPullConsumer: %v", err)
		}
		if err := c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		if err := c.Start(); err != nil {
			t.Fatalf("go2 pull consumer Start: %v", err)
		}
		return c
	}
	c := newPull()
	defer c.Shutdown()
	mqs, err := c.GetTopicRouteInfo(topic)
	if err != nil || len(mqs) != 1 {
		t.Fatalf("GetTopicRouteInfo: %v %v, want 1 queue", mqs, err)
	}
	mq := mqs[0]
	ctx := context.Background()
	for _, tc := range []struct {
		off    int64
		status primitive.PullStatus
		n      int
		next   int64
	}{{0, primitive.PullFound, 3, 3}, {2, primitive.PullFound, 1, 3}, {100, primitive.PullOffsetIllegal, 0, 3}} {
		r, err := c.PullFrom(ctx, mq, tc.off, 32)
		if err != nil {
			t.Fatalf("PullFrom %d: %v", tc.off, err)
		}
		if r.Status != tc.status || len(r.GetMessageExts()) != tc.n || r.NextBeginOffset != tc.next {
			t.Errorf("PullFrom %d: status %v, %d messages, next %d; want %v, %d, %d", tc.off, r.Status, len(r.GetMessageExts()), r.NextBeginOffset, tc.status, tc.n, tc.next)
		}
	}
	bad := *mq
	bad.QueueId = 7
	if _, err := c.PullFrom(ctx, &bad, 0, 5); err == nil || !strings.Contains(err.Error(), "queueId[7] is illegal") {
		t.Errorf("PullFrom queue 7 of a 1-queue topic: %v, want SYSTEM_ERROR queueId[7] is illegal", err)
	}
	gone := *mq
	gone.Topic = uniq("qa4a_pull_missing")
	if _, err := c.PullFrom(ctx, &gone, 0, 5); err == nil || !strings.Contains(err.Error(), "Code: 17") {
		t.Errorf("PullFrom a missing topic: %v, want Code: 17 (TOPIC_NOT_EXIST)", err)
	}
	if o, err := c.OffsetForTimestamp(mq, time.Now().Add(-time.Hour).UnixMilli()); err != nil || o != 0 {
		t.Errorf("OffsetForTimestamp(-1h) = %d, %v; want 0", o, err)
	}
	if err := c.UpdateOffset(mq, 2); err != nil {
		t.Fatalf("UpdateOffset: %v", err)
	}
	if err := c.PersistOffset(ctx, topic); err != nil {
		t.Fatalf("PersistOffset: %v", err)
	}
	_ = c.Shutdown()
	c2 := newPull()
	defer c2.Shutdown()
	if o, err := c2.CurrentOffset(mq); err != nil || o != 2 {
		t.Errorf("next consumer of the group: CurrentOffset = %d, %v; want the persisted 2", o, err)
	}
}

// TestQA4AGo2BatchTagsKeysTwoGroups: a go2 batch with per-message tags, keys (one with a
// space, split into two keys as Apache does) and properties is read intact by two groups with
// different tag filters, and found by key.
func TestQA4AGo2BatchTagsKeysTwoGroups(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic := uniq("qa4a_batch")
	createTopic(t, d, topic, "NORMAL", 4)
	p := go2Producer(t, d.ns)
	var batch []*primitive.Message
	for i := 0; i < 6; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("b%d", i)))
		m.WithTag([]string{"A", "B", "C"}[i%3])
		m.WithKeys([]string{fmt.Sprintf("key%d", i), "shared key"})
		m.WithProperty("idx", fmt.Sprint(i))
		batch = append(batch, m)
	}
	sendSync(t, p, batch...)
	type seen struct {
		mu   sync.Mutex
		msgs map[string]*primitive.MessageExt
	}
	handler := func(s *seen) go2Handler {
		return func(_ context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, m := range ms {
				s.msgs[string(m.Body)] = m
			}
			return consumer.ConsumeSuccess, nil
		}
	}
	ac, all := &seen{msgs: map[string]*primitive.MessageExt{}}, &seen{msgs: map[string]*primitive.MessageExt{}}
	go2Push(t, d.ns, uniq("qa4a_batch_ac"), topic, "A || C", handler(ac))
	go2Push(t, d.ns, uniq("qa4a_batch_all"), topic, "*", handler(all))
	n := func(s *seen) int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.msgs) }
	waitUntil(30*time.Second, func() bool { return n(ac) >= 4 && n(all) >= 6 })
	time.Sleep(300 * time.Millisecond)
	ac.mu.Lock()
	all.mu.Lock()
	defer ac.mu.Unlock()
	defer all.mu.Unlock()
	if len(all.msgs) != 6 {
		t.Errorf("group *: %d messages, want 6", len(all.msgs))
	}
	for i := 0; i < 6; i++ {
		body, tag := fmt.Sprintf("b%d", i), []string{"A", "B", "C"}[i%3]
		m := all.msgs[body]
		if m == nil {
			continue
		}
		if m.GetTags() != tag || m.GetKeys() != fmt.Sprintf("key%d shared key", i) || m.GetProperty("idx") != fmt.Sprint(i) {
			t.Errorf("%s: tag %q keys %q idx %q; want %q, \"key%d shared key\", %d", body, m.GetTags(), m.GetKeys(), m.GetProperty("idx"), tag, i, i)
		}
		if _, got := ac.msgs[body]; got != (tag != "B") {
			t.Errorf("group \"A || C\": %s (tag %s) delivered=%v", body, tag, got)
		}
	}
	var byKey []map[string]any
	adminJSON(t, d, &byKey, "message", "get", "--topic", topic, "--key", "shared")
	if len(byKey) != 6 {
		t.Errorf("message get --key shared: %d messages, want 6 (keys are split on spaces)", len(byKey))
	}
	if _, stderr, code := cli(20*time.Second, "admin", "-n", d.ns, "message", "get", "--topic", topic, "--key", "shared key"); code != 1 || !strings.Contains(stderr, "QUERY_NOT_FOUND") {
		t.Errorf("message get --key \"shared key\": exit %d %q, want exit 1 QUERY_NOT_FOUND (the key was split)", code, stderr)
	}
}

// TestQA4AGo2OrderlyBatchSuspend: an orderly consumer with ConsumeMessageBatchMaxSize 3 that
// suspends one batch gets that whole batch again (reconsumeTimes 1) and per-key order holds.
func TestQA4AGo2OrderlyBatchSuspend(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("qa4a_ord"), uniq("qa4a_ord_g")
	createTopic(t, d, topic, "NORMAL", 4)
	p := go2Producer(t, d.ns, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	keys := []string{"ka", "kb", "kc"}
	for i := 0; i < 8; i++ {
		for _, k := range keys {
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s-%02d", k, i)))
			m.WithShardingKey(k)
			sendSync(t, p, m)
		}
	}
	var mu sync.Mutex
	done := map[string][]string{}
	suspended, redelivered := false, 0
	go2Push(t, d.ns, group, topic, "*", func(ctx context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			if m.ReconsumeTimes > 0 {
				redelivered++
			}
			if string(m.Body) == "kb-04" && !suspended {
				suspended = true
				if oc, ok := primitive.GetOrderlyCtx(ctx); ok {
					oc.SuspendCurrentQueueTimeMillis = 500
				}
				return consumer.SuspendCurrentQueueAMoment, nil
			}
		}
		for _, m := range ms {
			k := string(m.Body[:2])
			done[k] = append(done[k], string(m.Body))
		}
		return consumer.ConsumeSuccess, nil
	}, consumer.WithConsumerOrder(true), consumer.WithConsumeMessageBatchMaxSize(3))
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range done {
			n += len(v)
		}
		return n
	}
	waitUntil(30*time.Second, func() bool { return total() >= 24 })
	mu.Lock()
	defer mu.Unlock()
	for _, k := range keys {
		var want []string
		for i := 0; i < 8; i++ {
			want = append(want, fmt.Sprintf("%s-%02d", k, i))
		}
		if strings.Join(done[k], ",") != strings.Join(want, ",") {
			t.Errorf("key %s consumed %v, want %v in order, once each", k, done[k], want)
		}
	}
	if !suspended || redelivered == 0 {
		t.Errorf("suspended=%v, messages seen again with reconsumeTimes>0: %d; want the suspended batch again", suspended, redelivered)
	}
}
