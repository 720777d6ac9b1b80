package broker

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"strconv"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// SendBackRequest is a CONSUMER_SEND_MSG_BACK: put the message stored at CommitLogOffset back
// for Group, to its retry topic or, when exhausted, its dead-letter topic.
type SendBackRequest struct {
	Group           string
	CommitLogOffset int64
	// DelayLevel: 0 = 3 + reconsumeTimes; > 0 = that level; < 0 = straight to the DLQ.
	DelayLevel  int32
	OriginMsgID string
	OriginTopic string
	// MaxReconsumeTimes overrides the group's retryMaxTimes when >= 0.
	MaxReconsumeTimes int32
}

func (b *Broker) handleSendBack(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	group, err := req.ExtRequired("group")
	if err != nil {
		return errorResponse(err)
	}
	off, err := req.ExtInt64("offset")
	if err != nil {
		return errorResponse(err)
	}
	r := SendBackRequest{
		Group:             group,
		CommitLogOffset:   off,
		DelayLevel:        int32(req.ExtInt64Or("delayLevel", 0)),
		OriginMsgID:       req.ExtString("originMsgId"),
		OriginTopic:       req.ExtString("originTopic"),
		MaxReconsumeTimes: int32(req.ExtInt64Or("maxReconsumeTimes", -1)),
	}
	if err := b.SendBack(ctx, r); err != nil {
		return errorResponse(err)
	}
	return remoting.NewResponse(remoting.Success, "")
}

// timerProperties are dropped from a message that is re-put for retry (the retry sets its
// own delay).
var timerProperties = [...]string{message.PropertyDelayLevel, message.PropertyTimerDeliverMS,
	message.PropertyTimerDelaySec, message.PropertyTimerDelayMS}

// SendBack re-puts a consumed message for retry (RocketMQ AbstractSendMessageProcessor
// consumerSendMsgBack): to %RETRY%<group> with delay level 3+reconsumeTimes (or the requested
// level), or to %DLQ%<group> once reconsumeTimes reached the maximum or the level is < 0.
// The new message keeps RETRY_TOPIC (the original topic) and ORIGIN_MESSAGE_ID; a dead letter
// also carries DLQ_ORIGIN_TOPIC and DLQ_ORIGIN_MESSAGE_ID. Delays go through PutMessage with
// property DELAY (the timer feature's hook schedules them).
func (b *Broker) SendBack(ctx context.Context, r SendBackRequest) (err error) {
	gc, _, err := b.Groups.GetOrCreate(r.Group)
	if err != nil {
		return Coded(remoting.SubscriptionGroupNotExist, "subscription group not exist, %s%s", r.Group, faqTopicURL)
	}
	orig, err := b.Store.ReadMessage(r.CommitLogOffset)
	if err != nil {
		return Coded(remoting.SystemError, "look message by offset failed, %d: %v", r.CommitLogOffset, err)
	}
	originTopic := orig.Property(message.PropertyRetryTopic)
	if originTopic == "" {
		originTopic = orig.Topic
	}
	originID := r.OriginMsgID
	if originID == "" {
		originID = orig.MsgID()
	}
	maxTimes := gc.RetryMaxTimes
	if r.MaxReconsumeTimes >= 0 {
		maxTimes = r.MaxReconsumeTimes
	}

	m := &message.Ext{
		Message: message.Message{Body: orig.Body, Flag: orig.Flag,
			Properties: maps.Clone(orig.Properties)},
		SysFlag:        orig.SysFlag,
		BornTimestamp:  orig.BornTimestamp,
		BornHost:       orig.BornHost,
		StoreHost:      b.storeHost,
		ReconsumeTimes: orig.ReconsumeTimes + 1,
	}
	for _, k := range timerProperties {
		m.RemoveProperty(k)
	}
	m.SetProperty(message.PropertyRetryTopic, originTopic)
	m.SetProperty(message.PropertyOriginMessageID, originID)

	// As Apache's consumerSendMsgBack, the broker and the group's retry topic must be
	// writable before anything is decided, for a dead letter too (QA R12D-3).
	if !b.brokerWritable() {
		return Coded(remoting.NoPermission, "the broker[%s] sending message is forbidden", b.addr)
	}
	retry := message.RetryTopic(r.Group)
	tc, err := b.ensureGroupTopic(retry, gc.RetryQueueNums)
	if err != nil {
		return err
	}
	if !tc.Writable() {
		return Coded(remoting.NoPermission, "the topic[%s] sending message is forbidden", retry)
	}

	if orig.ReconsumeTimes >= maxTimes || r.DelayLevel < 0 {
		dlq := message.DLQTopic(r.Group)
		if _, err := b.ensureGroupTopic(dlq, 1); err != nil {
			return err
		}
		m.Topic, m.QueueID = dlq, 0
		m.SetProperty(message.PropertyDLQOriginTopic, originTopic)
		m.SetProperty(message.PropertyDLQOriginMessageID, originID)
		defer func() {
			if err == nil {
				b.mnode.SendToDLQ(originTopic, r.Group, 1)
			}
		}()
	} else {
		level := r.DelayLevel
		if level == 0 {
			level = 3 + orig.ReconsumeTimes
		}
		m.Topic = retry
		m.QueueID = rand.Int32N(max(tc.WriteQueueNums, 1))
		m.SetProperty(message.PropertyDelayLevel, strconv.Itoa(int(level)))
	}
	if m.UniqKey() == "" {
		m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
	}
	if _, err = b.PutMessage(ctx, m); errors.Is(err, store.ErrFlushTimeout) {
		return nil // stored; only the fsync was late (RocketMQ answers SUCCESS too)
	}
	return err
}
