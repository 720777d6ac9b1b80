package broker

import (
	"context"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// callConsumerTimeout bounds a request forwarded to a consumer client (Apache's
// callConsumer uses the admin request's own timeout; tools wait 5-10 s).
const callConsumerTimeout = 5 * time.Second

// handleConsumerRunningInfo serves GET_CONSUMER_RUNNING_INFO (307) from admin tools
// (dashboard "consumer running info", mqadmin consumerStatus): the request goes to the named
// client of the group on its connection and the client's answer comes back as is (Apache
// AdminBrokerProcessor.getConsumerRunningInfo -> callConsumer).
func (b *Broker) handleConsumerRunningInfo(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	return b.callConsumer(ctx, req, remoting.NewRequest(remoting.GetConsumerRunningInfo, req.ExtFields, req.Body))
}

// handleConsumeMessageDirectly serves CONSUME_MESSAGE_DIRECTLY (309) from admin tools
// (dashboard "resend" of a message to one consumer, mqadmin consumeMessage): the broker
// reads the message named by msgId (an offset message id of this broker), and the named
// client consumes it and reports the result (Apache AdminBrokerProcessor.consumeMessageDirectly).
func (b *Broker) handleConsumeMessageDirectly(ctx context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	msgID, err := req.ExtRequired("msgId")
	if err != nil {
		return errorResponse(err)
	}
	_, off, err := message.ParseOffsetMsgID(msgID)
	if err != nil {
		return respond(remoting.SystemError, "the msgId %s is not an offset message id: %v", msgID, err)
	}
	rec, err := b.Store.ReadRecord(off)
	if err != nil {
		return respond(remoting.SystemError, "can not find message by the offset, %d", off)
	}
	fields := make(map[string]string, len(req.ExtFields)+1)
	for k, v := range req.ExtFields {
		fields[k] = v
	}
	fields["brokerName"] = b.Cfg.BrokerName
	return b.callConsumer(ctx, req, remoting.NewRequest(remoting.ConsumeMessageDirectly, fields, rec))
}

// callConsumer sends out to the client named by req's consumerGroup and clientId and returns
// its response. A client that is not connected here, or reached in-process (gRPC consumers
// through a local proxy, which have no remoting connection), is SYSTEM_ERROR with Apache's
// text.
func (b *Broker) callConsumer(ctx context.Context, req, out *remoting.Command) *remoting.Command {
	group, err := req.ExtRequired("consumerGroup")
	if err != nil {
		return errorResponse(err)
	}
	clientID, err := req.ExtRequired("clientId")
	if err != nil {
		return errorResponse(err)
	}
	info, _ := b.Clients.ConsumerGroup(group)
	for _, ch := range info.Channels {
		if ch.ClientID != clientID {
			continue
		}
		if ch.Conn == nil {
			return respond(remoting.SystemError, "The Consumer <%s> <%s> is a gRPC client: not supported for this request", group, clientID)
		}
		cctx, cancel := context.WithTimeout(ctx, callConsumerTimeout)
		defer cancel()
		resp, err := ch.Conn.Invoke(cctx, out)
		if err != nil {
			return respond(remoting.SystemError, "invoke consumer <%s> <%s> failed: %v", group, clientID, err)
		}
		return resp
	}
	return respond(remoting.SystemError, "The Consumer <%s> <%s> not online", group, clientID)
}
