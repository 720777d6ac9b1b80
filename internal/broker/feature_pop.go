package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/pop"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// Pop consumption (POP_MESSAGE, ACK_MESSAGE, BATCH_ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLETIME)
// as specified in docs/broker-proxy-protocol.md. The state lives in package pop; this file
// adapts the broker's store and tables to it, registers the remoting handlers and runs the
// revive loop. The local-mode proxy calls the same pop.Service through b.PopService().

func init() {
	featureInits = append(featureInits, initPop)
	featureStarts = append(featureStarts, startPop)
}

// popDirName is the pop state directory inside the broker's data dir.
const popDirName = "pop"

// popServices maps each Broker to its pop.Service (the Broker struct belongs to the core).
var popServices sync.Map // *Broker -> *pop.Service

// PopService returns the broker's pop service (nil before New finished). The local-mode
// proxy calls Pop, Ack, BatchAck and ChangeInvisible on it directly.
func (b *Broker) PopService() *pop.Service {
	if s, ok := popServices.Load(b); ok {
		return s.(*pop.Service)
	}
	return nil
}

// popConfig derives the pop configuration from the broker's.
func (b *Broker) popConfig() pop.Config {
	cfg := pop.DefaultConfig()
	cfg.Dir = filepath.Join(b.Cfg.DataDir, popDirName)
	cfg.BrokerName = b.Cfg.BrokerName
	cfg.MinInvisibleTime = b.Cfg.PopMinInvisibleTime
	cfg.MaxInvisibleTime = b.Cfg.PopMaxInvisibleTime
	cfg.MaxPollTime = b.Cfg.PopPollingTimeout
	// Pop state follows the broker's flushDiskType, as RocketMQ's checkpoints and acks do
	// (they are commit-log records): with SYNC_FLUSH every pop/ack/change is fdatasynced
	// before it is answered; with ASYNC_FLUSH it is written (so it survives a process crash:
	// the page cache keeps it) but not synced per request. Losing pop state to a power loss
	// can only redeliver messages (at-least-once), never lose one: the messages themselves
	// are in the commit log.
	cfg.SyncFlush = b.Cfg.FlushDiskType == FlushSync
	return cfg
}

func initPop(b *Broker) error {
	deps := pop.Deps{
		Store:      pop.StoreReader{S: b.Store},
		Topics:     popTopics{b},
		Groups:     popGroups{b},
		Offsets:    popOffsets{b},
		DeadLetter: b.popDeadLetter,
		// Pops count in rocketmq_messages_out_total, the broker's get totals and the group's
		// consume TPS like pulls (Apache PopMessageProcessor: incBrokerGetNums,
		// incGroupGetNums), whether they come over remoting or from the local-mode proxy
		// (QA R7H-1, R7H-2).
		Delivered: func(topic, group string, n, size int) {
			b.stats.delivered(group, topic, n)
			b.mnode.Out(topic, group).Add(n, size)
		},
	}
	svc, err := pop.New(b.popConfig(), deps, b.Log)
	if err != nil {
		return fmt.Errorf("pop: %w", err)
	}
	popServices.Store(b, svc)
	b.Store.OnDispatch(func(ev store.DispatchEvent) { svc.Notify(ev.Topic, ev.QueueID) })
	b.SetInflightCounter(svc.Inflight)
	b.Handle(remoting.PopMessage, b.handlePop)
	b.Handle(remoting.AckMessage, b.handleAck)
	b.Handle(remoting.BatchAckMessage, b.handleBatchAck)
	b.Handle(remoting.ChangeMessageInvisibleTime, b.handleChangeInvisible)
	// Closed with the broker even when Run is never called (Run's loop closes it otherwise).
	b.Go(func() {
		<-b.Context().Done()
		if err := svc.Close(); err != nil {
			b.Log.Warn("pop: close", "err", err)
		}
		popServices.Delete(b)
	})
	return nil
}

func startPop(ctx context.Context, b *Broker) error {
	svc := b.PopService()
	if svc == nil {
		return errors.New("pop: service not initialised")
	}
	b.Go(func() {
		if err := svc.Run(ctx); err != nil {
			b.Log.Warn("pop: revive loop", "err", err)
		}
	})
	return nil
}

// popTopics adapts TopicTable.
type popTopics struct{ b *Broker }

func (t popTopics) ReadQueues(topic string) (int32, bool) {
	tc, ok := t.b.Topics.Get(topic)
	if !ok {
		return 0, false
	}
	return tc.ReadQueueNums, true
}

// popGroups adapts GroupTable (auto-creating groups when the broker is configured to).
type popGroups struct{ b *Broker }

func (g popGroups) Group(name string) (pop.GroupInfo, bool) {
	gc, _, err := g.b.Groups.GetOrCreate(name)
	if err != nil {
		return pop.GroupInfo{}, false
	}
	return pop.GroupInfo{RetryMaxTimes: gc.RetryMaxTimes, Orderly: gc.ConsumeMessageOrderly, Disabled: !gc.ConsumeEnable}, true
}

// popOffsets adapts OffsetTable and the shared InitialOffset rule.
type popOffsets struct{ b *Broker }

func (o popOffsets) Query(group, topic string, qid int32) (int64, bool) {
	return o.b.Offsets.Query(group, topic, qid)
}

func (o popOffsets) Commit(group, topic string, qid int32, off int64) {
	o.b.Offsets.Commit(group, topic, qid, off)
}

func (o popOffsets) ResetGeneration(group, topic string, qid int32) uint64 {
	return o.b.Offsets.ResetGeneration(group, topic, qid)
}

func (o popOffsets) Initial(group, topic string, qid int32) int64 {
	return o.b.InitialOffset(group, topic, qid)
}

// popTimerProperties must not survive into the DLQ (the copy is stored, never delayed again).
var popTimerProperties = [...]string{message.PropertyDelayLevel, message.PropertyTimerDeliverMS,
	message.PropertyTimerDelaySec, message.PropertyTimerDelayMS}

// popDeadLetter stores a pop message whose retry budget is spent in %DLQ%<group> (1 queue,
// created on demand, readable so users can inspect and replay it).
func (b *Broker) popDeadLetter(ctx context.Context, m *message.Ext) error {
	if _, _, err := b.Topics.Ensure(NewTopicConfig(m.Topic, 1)); err != nil {
		return fmt.Errorf("pop: create %s: %w", m.Topic, err)
	}
	for _, k := range popTimerProperties {
		m.RemoveProperty(k)
	}
	m.StoreHost = b.StoreHost()
	if _, err := b.PutMessageDirect(ctx, m); err != nil {
		return err
	}
	// Counted like the remoting send-back path (QA R7H-3): per original topic and group.
	if group, ok := strings.CutPrefix(m.Topic, message.DLQGroupTopicPrefix); ok {
		b.mnode.SendToDLQ(m.Property(message.PropertyDLQOriginTopic), group, 1)
	}
	return nil
}

// popErrorResponse maps pop errors to the codes of docs/broker-proxy-protocol.md.
func popErrorResponse(err error) *remoting.Command {
	switch {
	case errors.Is(err, pop.ErrHandleInvalid):
		return remoting.NewResponse(remoting.InvalidParameter, "receipt handle is invalid")
	case errors.Is(err, pop.ErrHandleExpired):
		return remoting.NewResponse(remoting.NoMessage, "receipt handle is expired")
	case errors.Is(err, pop.ErrTopicNotFound):
		return remoting.NewResponse(remoting.TopicNotExist, err.Error())
	case errors.Is(err, pop.ErrGroupNotFound):
		return remoting.NewResponse(remoting.SubscriptionGroupNotExist, err.Error())
	case errors.Is(err, pop.ErrInvalidFilter):
		return remoting.NewResponse(remoting.SubscriptionParseFailed, err.Error())
	case errors.Is(err, pop.ErrInvalidParameter):
		return remoting.NewResponse(remoting.InvalidParameter, err.Error())
	case errors.Is(err, pop.ErrNoPermission):
		return remoting.NewResponse(remoting.NoPermission, err.Error())
	case errors.Is(err, pop.ErrClosed):
		return remoting.NewResponse(remoting.ServiceNotAvailable, "broker is shutting down")
	case errors.Is(err, pop.ErrPollingFull):
		return remoting.NewResponse(remoting.PollingFull, err.Error())
	}
	return errorResponse(err)
}

// popUnavailable answers requests that arrive while the broker shuts down (the service is
// closed and unregistered).
func popUnavailable() *remoting.Command {
	return remoting.NewResponse(remoting.ServiceNotAvailable, "pop service is not running")
}

func (b *Broker) handlePop(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	group, err := req.ExtRequired("consumerGroup")
	if err != nil {
		return errorResponse(err)
	}
	topic, err := req.ExtRequired("topic")
	if err != nil {
		return errorResponse(err)
	}
	qid, err := req.ExtInt32("queueId")
	if err != nil {
		return errorResponse(err)
	}
	maxNums, err := req.ExtInt32("maxMsgNums")
	if err != nil {
		return errorResponse(err)
	}
	invisible, err := req.ExtInt64("invisibleTime")
	if err != nil {
		return errorResponse(err)
	}
	if !b.brokerReadable() {
		return respond(remoting.NoPermission, "the broker[%s] peeking message is forbidden", b.addr)
	}
	if tc, ok := b.Topics.Get(topic); ok && !tc.Readable() {
		return respond(remoting.NoPermission, "the topic[%s] peeking message is forbidden", topic)
	}
	pr := pop.PopRequest{
		Group: group, Topic: topic, QueueID: qid, MaxMessages: int(maxNums),
		InvisibleTime: time.Duration(invisible) * time.Millisecond,
		PollTime:      time.Duration(max(req.ExtInt64Or("pollTime", 0), 0)) * time.Millisecond,
		FilterType:    req.ExtString("expType"),
		FilterExpr:    req.ExtString("exp"),
		Order:         req.ExtBoolOr("order", false),
		AttemptID:     req.ExtString("attemptId"),
	}
	svc := b.PopService()
	if svc == nil {
		return popUnavailable()
	}
	res, err := svc.Pop(ctx, pr)
	if err != nil {
		return popErrorResponse(err)
	}
	if len(res.Messages) == 0 {
		resp := remoting.NewResponse(remoting.PollingTimeout, "")
		resp.SetExtInt64("popTime", res.PopTime)
		resp.SetExtInt64("invisibleTime", invisible)
		resp.SetExtInt64("reviveQid", 0)
		resp.SetExtInt64("restNum", res.RestNum)
		return resp
	}
	n := 0
	for _, m := range res.Messages {
		n += len(m.Record)
	}
	body := make([]byte, 0, n)
	for _, m := range res.Messages {
		body = append(body, m.Record...)
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = body
	resp.SetExtInt64("popTime", res.PopTime)
	resp.SetExtInt64("invisibleTime", invisible)
	resp.SetExtInt64("reviveQid", 0)
	resp.SetExtInt64("restNum", res.RestNum)
	return resp
}

func (b *Broker) handleAck(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	group, err := req.ExtRequired("consumerGroup")
	if err != nil {
		return errorResponse(err)
	}
	handle, err := req.ExtRequired("extraInfo")
	if err != nil {
		return errorResponse(err)
	}
	svc := b.PopService()
	if svc == nil {
		return popUnavailable()
	}
	if err := svc.Ack(ctx, group, req.ExtString("topic"), handle); err != nil {
		return popErrorResponse(err)
	}
	return remoting.NewResponse(remoting.Success, "")
}

// batchAckBody is the BATCH_ACK_MESSAGE request body (docs/broker-proxy-protocol.md).
type batchAckBody struct {
	ConsumerGroup  string   `json:"consumerGroup"`
	Topic          string   `json:"topic"`
	ReceiptHandles []string `json:"receiptHandles"`
}

type batchAckResult struct {
	Code   int32  `json:"code"`
	Remark string `json:"remark"`
}

func (b *Broker) handleBatchAck(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	var body batchAckBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return respond(remoting.InvalidParameter, "batch ack body is not valid JSON: %v", err)
	}
	if body.ConsumerGroup == "" {
		return respond(remoting.InvalidParameter, "batch ack body lacks consumerGroup")
	}
	svc := b.PopService()
	if svc == nil {
		return popUnavailable()
	}
	errs := svc.BatchAck(ctx, body.ConsumerGroup, body.Topic, body.ReceiptHandles)
	out := struct {
		Results []batchAckResult `json:"results"`
	}{Results: make([]batchAckResult, len(errs))}
	for i, err := range errs {
		if err != nil {
			r := popErrorResponse(err)
			out.Results[i] = batchAckResult{Code: r.Code, Remark: r.Remark}
		}
	}
	enc, err := json.Marshal(out)
	if err != nil {
		return errorResponse(err)
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = enc
	return resp
}

func (b *Broker) handleChangeInvisible(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	group, err := req.ExtRequired("consumerGroup")
	if err != nil {
		return errorResponse(err)
	}
	handle, err := req.ExtRequired("extraInfo")
	if err != nil {
		return errorResponse(err)
	}
	invisible, err := req.ExtInt64("invisibleTime")
	if err != nil {
		return errorResponse(err)
	}
	svc := b.PopService()
	if svc == nil {
		return popUnavailable()
	}
	cr, err := svc.ChangeInvisible(ctx, group, req.ExtString("topic"), handle,
		time.Duration(invisible)*time.Millisecond)
	if err != nil {
		return popErrorResponse(err)
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.SetExt("extraInfo", cr.Handle)
	resp.SetExtInt64("popTime", cr.PopTime)
	resp.SetExtInt64("invisibleTime", cr.InvisibleTime.Milliseconds())
	return resp
}
