package broker

import (
	"context"
	"strconv"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Request-reply (RPC over messages; go2 Producer.Request, Java request()). The requester sends
// a request message carrying CORRELATION_ID and REPLY_TO_CLIENT (its client id); the replier
// answers with a reply message, sent as SEND_REPLY_MESSAGE(_V2) to the reply topic
// "<cluster>_REPLY_TOPIC". The broker pushes the reply to the requester's connection with
// PUSH_REPLY_MESSAGE_TO_CLIENT and then stores it like any send (Apache ReplyMessageProcessor,
// storeReplyMessageEnable's default). The requester must be connected to this broker: it is
// found among the producers registered by heartbeat.

// replyTopic is the reply topic every broker creates: "<brokerClusterName>_REPLY_TOPIC".
func (b *Broker) replyTopic() string { return b.Cfg.ClusterName + "_REPLY_TOPIC" }

// replyPushTimeout bounds the push of a reply to its requester.
const replyPushTimeout = 3 * time.Second

// handleSendReply serves SEND_REPLY_MESSAGE (324) and SEND_REPLY_MESSAGE_V2 (325).
func (b *Broker) handleSendReply(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	h, err := ParseSendHeader(req)
	if err != nil {
		return errorResponse(err)
	}
	if busy := b.acquireSend(); busy != nil {
		return busy
	}
	defer b.releaseSend()
	m, err := b.buildMessageAnyBody(c, &h, req.Body)
	if err != nil {
		return errorResponse(err)
	}
	to := m.Properties[message.PropertyMessageReplyToClient]
	conn := b.requesterConn(to)
	if conn == nil {
		return respond(remoting.SystemError, "push reply message fail, channel of <%s> not found.", to)
	}
	push := remoting.NewRequest(remoting.PushReplyMessageToClient, map[string]string{
		"producerGroup": h.ProducerGroup, "topic": h.Topic, "defaultTopic": h.DefaultTopic,
		"defaultTopicQueueNums": strconv.Itoa(int(h.DefaultTopicQueueNums)), "queueId": strconv.Itoa(int(h.QueueID)),
		"sysFlag": strconv.Itoa(int(h.SysFlag)), "bornTimestamp": strconv.FormatInt(h.BornTimestamp, 10),
		"flag": strconv.Itoa(int(h.Flag)), "properties": h.Properties, "reconsumeTimes": strconv.Itoa(int(h.ReconsumeTimes)),
		"unitMode": "false", "bornHost": m.BornHost.String(), "storeHost": b.storeHost.String(),
		"storeTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}, req.Body)
	pctx, cancel := context.WithTimeout(ctx, replyPushTimeout)
	resp, err := conn.Invoke(pctx, push)
	cancel()
	if err != nil {
		return respond(remoting.SystemError, "push reply message to <%s> fail: %v", to, err)
	}
	if resp.Code != remoting.Success {
		return respond(remoting.SystemError, "push reply message to <%s> fail: code %d %s", to, resp.Code, resp.Remark)
	}
	// Stored too, as Apache does by default (storeReplyMessageEnable).
	return b.storeSent(ctx, &h, m, remoteAddr(c), len(req.Body))
}

// noteRequester remembers the connection a request message (one naming REPLY_TO_CLIENT) came
// on: its sender may not have sent a heartbeat to this broker yet (go2 heartbeats only brokers
// it already knew), and the reply must be pushed to it.
func (b *Broker) noteRequester(c *remoting.Conn, m *message.Ext) {
	if c == nil {
		return
	}
	if id := m.Properties[message.PropertyMessageReplyToClient]; id != "" {
		if cur, ok := b.requesters.Load(id); !ok || cur.(*remoting.Conn) != c {
			b.requesters.Store(id, c)
		}
	}
}

// requesterConn returns an open connection of client id: one it registered as a producer by
// heartbeat, else the one it last sent a request on; nil when there is none.
func (b *Broker) requesterConn(id string) *remoting.Conn {
	if id == "" {
		return nil
	}
	if ch, ok := b.Clients.ProducerByClientID(id); ok {
		return ch.Conn
	}
	if v, ok := b.requesters.Load(id); ok {
		c := v.(*remoting.Conn)
		if !c.Closed() {
			return c
		}
		b.requesters.CompareAndDelete(id, c)
	}
	return nil
}
