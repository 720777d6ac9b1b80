package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/timer"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// Response ext values RocketMQ brokers always send with a send result.
const (
	defaultRegion = "DefaultRegion"
	faqTopicURL   = "\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details."
)

// SendHeader is a decoded SEND_MESSAGE / SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE header.
type SendHeader struct {
	ProducerGroup         string
	Topic                 string
	DefaultTopic          string
	DefaultTopicQueueNums int32
	QueueID               int32
	SysFlag               int32
	BornTimestamp         int64
	Flag                  int32
	Properties            string
	ReconsumeTimes        int32
	UnitMode              bool
	MaxReconsumeTimes     int32 // -1 when absent
	Batch                 bool
	BrokerName            string
}

// Send header fields, in SendMessageRequestHeaderV2's order (keys a..n).
const (
	hProducerGroup = iota
	hTopic
	hDefaultTopic
	hDefaultTopicQueueNums
	hQueueID
	hSysFlag
	hBornTimestamp
	hFlag
	hProperties
	hReconsumeTimes
	hUnitMode
	hMaxReconsumeTimes
	hBatch
	hBrokerName
)

// v1Names and v2Names are the ext keys of the send header fields (V1 long names, V2 one
// letter each).
var (
	v1Names = [...]string{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId", "sysFlag",
		"bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode", "maxReconsumeTimes", "batch", "bname"}
	v2Names = [...]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n"}
)

// ParseSendHeader decodes a send request header; V2 short keys (a..n) are accepted on any
// send code, as RocketMQ does.
func ParseSendHeader(req *remoting.Command) (SendHeader, error) {
	ext := req.ExtFields
	names := v1Names
	if _, v1 := ext["topic"]; !v1 {
		if _, v2 := ext["b"]; v2 {
			names = v2Names
		}
	}
	get := func(i int) (string, bool) {
		v, ok := ext[names[i]]
		return v, ok
	}
	integer := func(i int, def int64, required bool) (int64, error) {
		v, ok := get(i)
		if !ok || v == "" {
			if required {
				return 0, fmt.Errorf("%w: %s", remoting.ErrMissingField, v1Names[i])
			}
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if required {
				return 0, fmt.Errorf("%w: %s=%q is not an integer", remoting.ErrBadField, v1Names[i], v)
			}
			return def, nil
		}
		return n, nil
	}
	var h SendHeader
	var ok bool
	if h.ProducerGroup, ok = get(hProducerGroup); !ok || h.ProducerGroup == "" {
		return h, fmt.Errorf("%w: producerGroup", remoting.ErrMissingField)
	}
	if h.Topic, ok = get(hTopic); !ok || h.Topic == "" {
		return h, fmt.Errorf("%w: topic", remoting.ErrMissingField)
	}
	h.DefaultTopic, _ = get(hDefaultTopic)
	n, _ := integer(hDefaultTopicQueueNums, 4, false)
	h.DefaultTopicQueueNums = int32(n)
	qid, err := integer(hQueueID, 0, true)
	if err != nil {
		return h, err
	}
	if qid < math.MinInt32 || qid > math.MaxInt32 {
		return h, fmt.Errorf("%w: queueId=%d out of range", remoting.ErrBadField, qid)
	}
	h.QueueID = int32(qid)
	n, _ = integer(hSysFlag, 0, false)
	h.SysFlag = int32(n)
	h.BornTimestamp, _ = integer(hBornTimestamp, time.Now().UnixMilli(), false)
	n, _ = integer(hFlag, 0, false)
	h.Flag = int32(n)
	h.Properties, _ = get(hProperties)
	n, _ = integer(hReconsumeTimes, 0, false)
	h.ReconsumeTimes = int32(n)
	v, _ := get(hUnitMode)
	h.UnitMode = strings.EqualFold(v, "true")
	n, _ = integer(hMaxReconsumeTimes, -1, false)
	h.MaxReconsumeTimes = int32(n)
	v, _ = get(hBatch)
	h.Batch = strings.EqualFold(v, "true")
	h.BrokerName, _ = get(hBrokerName)
	return h, nil
}

// acquireSend takes a send slot, waiting at most WaitTimeMillsInSendQueue. It answers
// SYSTEM_BUSY when too many sends wait ([OVERLOAD]) or the wait times out
// ([TIMEOUT_CLEAN_QUEUE]); the broker never queues without bound. On success the caller
// must call releaseSend. The fast path is one atomic add (no channel, no allocation).
func (b *Broker) acquireSend() *remoting.Command {
	if b.tryAcquireSend() {
		return nil
	}
	if n := b.sendQ.Add(1); n > int64(b.live().SendThreadPoolQueueCapacity) {
		b.sendQ.Add(-1)
		return remoting.NewResponse(remoting.SystemBusy, remarkOverload)
	}
	defer b.sendQ.Add(-1)
	start := time.Now()
	t := time.NewTimer(b.live().WaitTimeMillsInSendQueue)
	defer t.Stop()
	for {
		if b.tryAcquireSend() {
			// Pass the wake-up on while slots remain, so no waiter sleeps past a free slot.
			if b.sendQ.Load() > 1 && b.sendActive.Load() < int64(b.Cfg.SendThreadPoolNums) {
				b.signalSendFree()
			}
			return nil
		}
		// The wait ignores the caller's context on purpose: for remoting requests it is the
		// connection's, and a send the broker has read is stored even if its producer closed
		// the connection meanwhile (a oneway burst followed by exit), as Apache runs every
		// queued send task whatever became of its channel. The queue time bound below is what
		// limits the wait.
		select {
		case <-b.sendFree:
		case <-t.C:
			return respond(remoting.SystemBusy, remarkTimeoutInQueue, time.Since(start).Milliseconds(), b.sendQ.Load())
		}
	}
}

func (b *Broker) tryAcquireSend() bool {
	if b.sendActive.Add(1) <= int64(b.Cfg.SendThreadPoolNums) {
		return true
	}
	b.sendActive.Add(-1)
	return false
}

// releaseSend frees the slot taken by acquireSend and wakes a waiting send, if any.
func (b *Broker) releaseSend() {
	b.sendActive.Add(-1)
	if b.sendQ.Load() > 0 {
		b.signalSendFree()
	}
}

func (b *Broker) signalSendFree() {
	select {
	case b.sendFree <- struct{}{}:
	default:
	}
}

func (b *Broker) handleSend(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	if busy := b.acquireSend(); busy != nil {
		return busy
	}
	defer b.releaseSend()
	h, err := ParseSendHeader(req)
	if err != nil {
		return errorResponse(err)
	}
	if req.Code == remoting.SendBatchMessage || h.Batch {
		return b.sendBatch(ctx, c, &h, req.Body)
	}
	m, err := b.buildMessage(c, &h, req.Body)
	if err != nil {
		return errorResponse(err)
	}
	b.noteRequester(c, m)
	return b.storeSent(ctx, &h, m, remoteAddr(c), len(req.Body))
}

// storeSent is the common end of every send path (SEND_MESSAGE, the in-process send, replies):
// topic checks (auto-creating it), queue choice, retry-topic handling, the put, the in
// metrics and the response. from names the producer in error remarks.
func (b *Broker) storeSent(ctx context.Context, h *SendHeader, m *message.Ext, from string, bodySize int) *remoting.Command {
	tc, err := b.checkSendTopic(h, from)
	if err != nil {
		return errorResponse(err)
	}
	m.QueueID = h.QueueID
	if m.QueueID < 0 {
		m.QueueID = rand.Int32N(max(tc.WriteQueueNums, 1))
	}
	if message.IsRetryTopic(h.Topic) {
		if err := b.retryToDLQ(h, m); err != nil {
			return errorResponse(err)
		}
	}
	qid, uniq, topic := m.QueueID, m.UniqKey(), m.Topic // hooks may rewrite the topic and queue
	var due *int64
	if timer.HasTimerProperty(m.Properties) { // only a timer can answer a recall handle: no context on the common path
		ctx, due = withTimerDue(ctx)
	}
	res, err := b.PutMessage(ctx, m)
	b.countIn(topic, tc, bodySize, err)
	resp := b.sendResponse(uniq, qid, res, err)
	if due == nil {
		return resp
	}
	if rh := b.recallHandleFor(topic, uniq, *due); rh != "" && (err == nil || resp.Code == remoting.FlushDiskTimeout) {
		resp.SetExt("recallHandle", rh)
	}
	return resp
}

// SendMessage is the in-process send path (local-mode proxy): the same checks and put as
// SEND_MESSAGE_V2, returning the same response command.
func (b *Broker) SendMessage(ctx context.Context, h SendHeader, body []byte, bornHost netip.AddrPort) *remoting.Command {
	if busy := b.acquireSend(); busy != nil {
		return busy
	}
	defer b.releaseSend()
	m, err := b.buildMessage(nil, &h, body)
	if err != nil {
		return errorResponse(err)
	}
	if bornHost.IsValid() {
		m.BornHost = bornHost
	}
	return b.storeSent(ctx, &h, m, bornHost.String(), len(body))
}

// countIn records a stored message in rocketmq_messages_in_total and friends (a flush
// timeout still stored it). A message diverted to the DLQ counts on its DLQ topic.
func (b *Broker) countIn(topic string, tc TopicConfig, bodySize int, err error) {
	if b.mnode == nil || (err != nil && !errors.Is(err, store.ErrFlushTimeout)) {
		return
	}
	mt := tc.MessageType()
	if tc.TopicName != topic {
		mt = "NORMAL"
	}
	b.mnode.In(topic, mt).Message(bodySize)
}

func remoteAddr(c *remoting.Conn) string {
	if c == nil {
		return "in-process"
	}
	return c.RemoteAddr()
}

// bornHostOf returns the connection's remote address (the store host for in-process calls).
func (b *Broker) bornHostOf(c *remoting.Conn) netip.AddrPort {
	if c != nil {
		if ap, err := netip.ParseAddrPort(c.RemoteAddr()); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	return b.storeHost
}

// buildMessage validates body and properties and builds the message to store (topic and
// queue are checked separately by checkSendTopic).
func (b *Broker) buildMessage(c *remoting.Conn, h *SendHeader, body []byte) (*message.Ext, error) {
	if len(body) == 0 {
		return nil, Coded(remoting.MessageIllegal, "the message body length is zero")
	}
	return b.buildMessageAnyBody(c, h, body)
}

// buildMessageAnyBody is buildMessage without the empty-body check (replies: Apache's
// ReplyMessageProcessor stores them whatever their body, and go2's CreateReplyMessage sends
// an empty one).
func (b *Broker) buildMessageAnyBody(c *remoting.Conn, h *SendHeader, body []byte) (*message.Ext, error) {
	if len(body) > b.live().MaxMessageSize {
		return nil, Coded(remoting.MessageIllegal, remarkMessageIllegal, b.live().MaxMessageSize)
	}
	if len(h.Properties) > message.MaxPropertiesSize {
		return nil, Coded(remoting.MessageIllegal, remarkMessageIllegal, b.live().MaxMessageSize)
	}
	props, err := message.DecodeProperties([]byte(h.Properties))
	if err != nil {
		return nil, Coded(remoting.MessageIllegal, "the message properties are malformed: %v", err)
	}
	for k := range props {
		if strings.HasPrefix(k, message.PropertyTransientPrefix) {
			delete(props, k)
		}
	}
	// Only RECALL_MESSAGE makes recall markers: a sent message naming one would cancel
	// another producer's timer.
	delete(props, message.PropertyTimerDelUniqKey)
	m := &message.Ext{
		Message:        message.Message{Topic: h.Topic, Flag: h.Flag, Body: body, Properties: props},
		SysFlag:        h.SysFlag,
		BornTimestamp:  h.BornTimestamp,
		BornHost:       b.bornHostOf(c),
		StoreHost:      b.storeHost,
		ReconsumeTimes: h.ReconsumeTimes,
	}
	if m.UniqKey() == "" {
		m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
	}
	m.SetProperty(message.PropertyCluster, b.Cfg.ClusterName)
	if v := props[message.PropertyTransactionPrepared]; v == "true" {
		m.SysFlag = message.SetTransactionType(m.SysFlag, message.SysFlagTransactionPrepared)
	}
	return m, nil
}

// checkSendTopic validates the topic of a send (RocketMQ AbstractSendMessageProcessor
// msgCheck), auto-creating it through the default topic when allowed, and checks the queue
// id and write permission.
func (b *Broker) checkSendTopic(h *SendHeader, from string) (TopicConfig, error) {
	if !b.brokerWritable() {
		return TopicConfig{}, Coded(remoting.NoPermission, "the broker[%s] sending message is forbidden", b.addr)
	}
	if err := message.ValidateTopic(h.Topic); err != nil {
		return TopicConfig{}, Coded(remoting.InvalidParameter, "%s", err.Error())
	}
	if message.IsNotAllowedSendTopic(h.Topic) {
		return TopicConfig{}, Coded(remoting.NoPermission, "Sending message to topic[%s] is forbidden.", h.Topic)
	}
	tc, ok := b.Topics.peek(h.Topic)
	if !ok {
		var err error
		tc, ok, err = b.autoCreateTopic(h, from)
		if err != nil {
			return TopicConfig{}, err
		}
		if !ok {
			return TopicConfig{}, Coded(remoting.TopicNotExist, "topic[%s] not exist, apply first please!%s", h.Topic, faqTopicURL)
		}
	}
	if h.QueueID >= tc.QueueNums() {
		return TopicConfig{}, Coded(remoting.InvalidParameter, "request queueId[%d] is illegal, %s Producer: %s",
			h.QueueID, topicString(tc), from)
	}
	if !tc.Writable() {
		return TopicConfig{}, Coded(remoting.NoPermission, "the topic[%s] sending message is forbidden", h.Topic)
	}
	return tc, nil
}

func topicString(tc TopicConfig) string {
	return fmt.Sprintf("TopicConfig [topicName=%s, readQueueNums=%d, writeQueueNums=%d, perm=%d]",
		tc.TopicName, tc.ReadQueueNums, tc.WriteQueueNums, tc.Perm)
}

// autoCreateTopic creates a topic on first send: retry topics get 1 queue; others inherit
// from the default topic (TBW102) when it carries the INHERIT bit, with
// min(request defaultTopicQueueNums, default topic's write queues) queues.
func (b *Broker) autoCreateTopic(h *SendHeader, from string) (TopicConfig, bool, error) {
	if message.IsRetryTopic(h.Topic) {
		tc, err := b.ensureGroupTopic(h.Topic, 1)
		return tc, err == nil, err
	}
	if !b.autoCreateEnabled() {
		return TopicConfig{}, false, nil
	}
	defName := h.DefaultTopic
	if defName == "" {
		defName = message.TopicDefault
	}
	def, ok := b.Topics.Get(defName)
	if !ok || def.Perm&PermInherit == 0 {
		return TopicConfig{}, false, nil
	}
	n := h.DefaultTopicQueueNums
	if n <= 0 || n > def.WriteQueueNums {
		n = def.WriteQueueNums
	}
	tc := NewTopicConfig(h.Topic, n)
	tc.Perm = def.Perm &^ PermInherit
	cur, created, err := b.Topics.Ensure(tc)
	if err != nil {
		if !errors.Is(err, errMetadataPersist) {
			return TopicConfig{}, false, err
		}
		// Created and live; only topics.json could not be written (a full disk): the send
		// goes on and meets the store's own answer (SERVICE_NOT_AVAILABLE), as Apache's
		// (QA R10T-5). The table is written with the next topic change.
		b.Log.Error("auto-created topic but topics.json could not be written", "topic", h.Topic, "err", err)
	}
	if created {
		b.Log.Info("auto-created topic", "topic", h.Topic, "queues", n, "from", from)
		// As Apache's createTopicInSendMessageMethod: register with the NameServers before
		// the send is answered, so a client that routes the topic right after (a consumer
		// started next) finds it (QA F25). Bounded: a NameServer that does not answer only
		// delays this first send.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		b.registerSync(ctx, h.Topic)
		cancel()
	}
	return cur, true, nil
}

func (b *Broker) autoCreateEnabled() bool { return b.live().AutoCreateTopicEnable }

// ensureGroupTopic creates a %RETRY% or %DLQ% topic with n read-write queues when absent.
func (b *Broker) ensureGroupTopic(topic string, n int32) (TopicConfig, error) {
	if n <= 0 {
		n = 1
	}
	tc, _, err := b.Topics.Ensure(NewTopicConfig(topic, n))
	if errors.Is(err, errMetadataPersist) {
		b.Log.Error("created topic but topics.json could not be written", "topic", topic, "err", err)
		err = nil
	}
	return tc, err
}

// retryToDLQ applies RocketMQ's handleRetryAndDLQ to a client send to a %RETRY% topic (the
// go2 and Java consumers' fallback when CONSUMER_SEND_MSG_BACK fails): the group is found
// or auto-created; the message goes to %DLQ%<group> when reconsumeTimes exceeds the maximum
// (the header's maxReconsumeTimes, else the group's retryMaxTimes; equal still retries, QA
// R11A-4), or at once while the group holds a live queue lock, i.e. consumes orderly (a
// retry would break the order, QA R11A-5).
func (b *Broker) retryToDLQ(h *SendHeader, m *message.Ext) error {
	group := strings.TrimPrefix(h.Topic, message.RetryGroupTopicPrefix)
	gc, _, err := b.Groups.GetOrCreate(group)
	if err != nil {
		return Coded(remoting.SubscriptionGroupNotExist, "subscription group not exist, %s%s", group, faqTopicURL)
	}
	maxTimes := gc.RetryMaxTimes
	if h.MaxReconsumeTimes >= 0 {
		maxTimes = h.MaxReconsumeTimes
	}
	if h.ReconsumeTimes <= maxTimes && !b.Locks.HasLiveLock(group, time.Now()) {
		return nil
	}
	dlq := message.DLQTopic(group)
	if _, err := b.ensureGroupTopic(dlq, 1); err != nil {
		return err
	}
	origin := m.Property(message.PropertyRetryTopic)
	if origin == "" {
		origin = h.Topic
	}
	m.Topic = dlq
	m.QueueID = 0
	m.RemoveProperty(message.PropertyDelayLevel)
	m.SetProperty(message.PropertyDLQOriginTopic, origin)
	m.SetProperty(message.PropertyDLQOriginMessageID, m.UniqKey())
	b.mnode.SendToDLQ(origin, group, 1)
	return nil
}

// sendResponse builds the send response: SUCCESS (or FLUSH_DISK_TIMEOUT, still a send
// result) with msgId, queueId, queueOffset, transactionId, MSG_REGION and TRACE_ON.
func (b *Broker) sendResponse(uniqKey string, qid int32, res store.PutResult, err error) *remoting.Command {
	code, remark := ResponseFor(err)
	if code == remoting.MessageIllegal && (errors.Is(err, store.ErrMessageTooLarge) || errors.Is(err, message.ErrPropertiesTooLarge)) {
		// The store's own size checks (properties grown by the broker's additions) answer
		// with Apache's fixed text, not the error chain (QA R6F-5).
		remark = fmt.Sprintf(remarkMessageIllegal, b.live().MaxMessageSize)
	}
	resp := remoting.NewResponse(code, remark)
	if code != remoting.Success && code != remoting.FlushDiskTimeout {
		return resp
	}
	msgID := res.MsgID
	if msgID == "" {
		msgID = message.OffsetMsgID(b.storeHost, res.CommitLogOffset)
	}
	resp.SetExt("msgId", msgID)
	resp.SetExtInt64("queueId", int64(qid))
	resp.SetExtInt64("queueOffset", res.QueueOffset)
	resp.SetExt("transactionId", uniqKey)
	resp.SetExt(message.PropertyMsgRegion, defaultRegion)
	resp.SetExt(message.PropertyTraceSwitch, "true")
	return resp
}

// ErrBadBatch is wrapped by batch body decoding errors.
var ErrBadBatch = errors.New("broker: malformed batch body")

// DecodeBatch decodes a SEND_BATCH_MESSAGE body: per message TOTALSIZE i32, MAGIC i32,
// BODYCRC i32, FLAG i32, BODYLEN i32, BODY, PROPLEN i16, PROPERTIES (reference B.2).
func DecodeBatch(b []byte) ([]message.Message, error) {
	var out []message.Message
	for len(b) > 0 {
		if len(b) < 20 {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadBatch, len(b))
		}
		total := int(int32(binary.BigEndian.Uint32(b)))
		if total < 22 || total > len(b) {
			return nil, fmt.Errorf("%w: message size %d with %d bytes left", ErrBadBatch, total, len(b))
		}
		rec := b[:total]
		flag := int32(binary.BigEndian.Uint32(rec[12:]))
		bodyLen := int(int32(binary.BigEndian.Uint32(rec[16:])))
		if bodyLen < 0 || 20+bodyLen+2 > total {
			return nil, fmt.Errorf("%w: body length %d in a %d-byte message", ErrBadBatch, bodyLen, total)
		}
		body := rec[20 : 20+bodyLen]
		p := 20 + bodyLen
		propLen := int(binary.BigEndian.Uint16(rec[p:]))
		if p+2+propLen != total {
			return nil, fmt.Errorf("%w: properties length %d does not fill the message", ErrBadBatch, propLen)
		}
		props, err := message.DecodeProperties(rec[p+2 : p+2+propLen])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadBatch, err)
		}
		out = append(out, message.Message{Flag: flag, Body: body, Properties: props})
		b = b[total:]
	}
	return out, nil
}

// needsHooks reports whether a message must go through the put hooks one by one (delay,
// timer or transactional messages inside a batch).
func needsHooks(m *message.Ext) bool {
	if message.TransactionType(m.SysFlag) == message.SysFlagTransactionPrepared {
		return true
	}
	for _, k := range [...]string{message.PropertyDelayLevel, message.PropertyTimerDeliverMS,
		message.PropertyTimerDelaySec, message.PropertyTimerDelayMS, message.PropertyTransactionPrepared} {
		if m.Property(k) != "" {
			return true
		}
	}
	return false
}

func (b *Broker) sendBatch(ctx context.Context, c *remoting.Conn, h *SendHeader, body []byte) *remoting.Command {
	if message.IsRetryTopic(h.Topic) {
		return respond(remoting.MessageIllegal, "batch request does not support retry group %s", h.Topic)
	}
	tc, err := b.checkSendTopic(h, remoteAddr(c))
	if err != nil {
		return errorResponse(err)
	}
	// Apache limits the whole batch (the request body, every inner message with its
	// per-message header: MessageExtEncoder.encode(MessageExtBatch)), not only each body
	// (QA R6F-7); the Java client refuses such a batch before sending it.
	if len(body) > b.live().MaxMessageSize {
		return respond(remoting.MessageIllegal, remarkMessageIllegal, b.live().MaxMessageSize)
	}
	inner, err := DecodeBatch(body)
	if err != nil {
		return respond(remoting.MessageIllegal, "%s", err.Error())
	}
	if len(inner) == 0 {
		return respond(remoting.MessageIllegal, "the message body length is zero")
	}
	qid := h.QueueID
	if qid < 0 {
		qid = rand.Int32N(max(tc.WriteQueueNums, 1))
	}
	bornHost := b.bornHostOf(c)
	msgs := make([]*message.Ext, 0, len(inner))
	hooked := false
	for i := range inner {
		im := &inner[i]
		if len(im.Body) > b.live().MaxMessageSize {
			return respond(remoting.MessageIllegal, remarkMessageIllegal, b.live().MaxMessageSize)
		}
		m := &message.Ext{Message: *im, QueueID: qid, SysFlag: h.SysFlag &^ message.SysFlagInnerBatch,
			BornTimestamp: h.BornTimestamp, BornHost: bornHost, StoreHost: b.storeHost}
		m.Topic = h.Topic
		if m.UniqKey() == "" {
			m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
		}
		m.SetProperty(message.PropertyCluster, b.Cfg.ClusterName)
		m.RemoveProperty(message.PropertyTimerDelUniqKey) // as buildMessageAnyBody
		hooked = hooked || needsHooks(m)
		msgs = append(msgs, m)
	}
	var results []store.PutResult
	if hooked {
		for _, m := range msgs {
			res, err := b.PutMessage(ctx, m)
			if err != nil && !errors.Is(err, store.ErrFlushTimeout) {
				return errorResponse(err)
			}
			results = append(results, res)
		}
	} else {
		results, err = b.Store.PutBatch(ctx, msgs)
		if err != nil && !errors.Is(err, store.ErrFlushTimeout) {
			return errorResponse(err)
		}
		b.stats.put.Add(int64(len(results)))
		if b.mnode != nil {
			in := b.mnode.In(h.Topic, tc.MessageType())
			for _, m := range msgs {
				in.Message(len(m.Body))
			}
		}
	}
	code, remark := ResponseFor(err)
	resp := remoting.NewResponse(code, remark)
	ids := make([]string, len(results))
	for i, r := range results {
		ids[i] = r.MsgID
		if ids[i] == "" {
			ids[i] = message.OffsetMsgID(b.storeHost, r.CommitLogOffset)
		}
	}
	resp.SetExt("msgId", strings.Join(ids, ","))
	resp.SetExtInt64("queueId", int64(qid))
	if len(results) > 0 {
		resp.SetExtInt64("queueOffset", results[0].QueueOffset)
	}
	resp.SetExt(message.PropertyMsgRegion, defaultRegion)
	resp.SetExt(message.PropertyTraceSwitch, "true")
	return resp
}
