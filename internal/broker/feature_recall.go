package broker

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/timer"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Recall (RocketMQ 5.3.2's RECALL_MESSAGE, gRPC RecallMessage): a producer cancels a timer
// (delay) message that is not delivered yet with the recall handle its send answered. The
// broker stores a recall marker through the timer hook (timer.RecallMarker); the timer service
// drops the named timer when it is due. As in RocketMQ, a recall of a message that does not
// exist, or was delivered meanwhile, succeeds without effect: the handle's due time is the only
// check (it must be in the future and within timerMaxDelaySec).

// timerDueKey carries, in a put's context, where the timer hook reports the due time (ms) of
// a timestamp-delayed message it took, so the send path can answer its recall handle. Delay
// levels (4.x DELAY, retries) get no handle, as in RocketMQ.
type timerDueKey struct{}

func withTimerDue(ctx context.Context) (context.Context, *int64) {
	p := new(int64)
	return context.WithValue(ctx, timerDueKey{}, p), p
}

// reportTimerDue records due for the send path when ctx asks for it.
func reportTimerDue(ctx context.Context, due int64) {
	if p, ok := ctx.Value(timerDueKey{}).(*int64); ok {
		*p = due
	}
}

// recallHandleFor returns the recall handle of a sent message the timer took (due > 0), or "".
func (b *Broker) recallHandleFor(topic, uniqKey string, due int64) string {
	if due <= 0 || uniqKey == "" || message.IsRetryTopic(topic) {
		return ""
	}
	return timer.RecallHandle{Topic: topic, Broker: b.Cfg.BrokerName, DueMs: due, MsgID: uniqKey}.Encode()
}

// RecallRequest is the RecallMessageRequestHeader: producerGroup, topic, recallHandle.
type RecallRequest struct {
	ProducerGroup string
	Topic         string
	Handle        string
}

// RecallMessage recalls the timer message named by req.Handle and returns its message id
// (what RECALL_MESSAGE does; the local-mode proxy calls it directly). Errors are *CodedError
// values with RocketMQ's codes and remarks (RecallMessageProcessor).
func (b *Broker) RecallMessage(ctx context.Context, req RecallRequest, bornHost netip.AddrPort) (string, error) {
	if !b.brokerWritable() {
		return "", Coded(remoting.ServiceNotAvailable, "recall failed, broker service not available")
	}
	if _, ok := b.Topics.Get(req.Topic); !ok {
		return "", Coded(remoting.TopicNotExist, "recall failed, the topic[%s] not exist", req.Topic)
	}
	h, err := timer.DecodeRecallHandle(req.Handle)
	if err != nil {
		return "", Coded(remoting.IllegalOperation, "recall handle is invalid")
	}
	if h.Topic != req.Topic {
		return "", Coded(remoting.IllegalOperation, "recall failed, topic not match")
	}
	if h.Broker != b.Cfg.BrokerName {
		return "", Coded(remoting.IllegalOperation, "recall failed, broker service not available")
	}
	left := h.DueMs - time.Now().UnixMilli()
	if left <= 0 || left >= b.live().TimerMaxDelaySec*1000 {
		return "", Coded(remoting.IllegalOperation, "recall failed, timestamp invalid")
	}
	if _, ok := timerFeatures.Load(b); !ok {
		return "", Coded(remoting.ServiceNotAvailable, "recall failed, timer service not running")
	}
	m := timer.RecallMarker(h.Topic, h.MsgID, h.DueMs, time.Now())
	m.BornHost = bornHost
	if !m.BornHost.IsValid() {
		m.BornHost = b.storeHost
	}
	if req.ProducerGroup != "" {
		m.SetProperty(message.PropertyProducerGroup, req.ProducerGroup)
	}
	if _, err := b.PutMessage(ctx, m); err != nil {
		if code, _ := ResponseFor(err); code != remoting.FlushDiskTimeout {
			return "", fmt.Errorf("recall failed, execute error: %w", err)
		}
	}
	return h.MsgID, nil
}

// handleRecallMessage serves RECALL_MESSAGE (370); the response header carries msgId.
func (b *Broker) handleRecallMessage(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, err := req.ExtRequired("topic")
	if err != nil {
		return errorResponse(err)
	}
	handle, err := req.ExtRequired("recallHandle")
	if err != nil {
		return errorResponse(err)
	}
	id, err := b.RecallMessage(ctx, RecallRequest{ProducerGroup: req.ExtString("producerGroup"), Topic: topic, Handle: handle}, b.bornHostOf(c))
	if err != nil {
		return errorResponse(err)
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.SetExt("msgId", id)
	return resp
}
