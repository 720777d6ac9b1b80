package broker

import (
	"context"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// uniqueKeyQueryFlag marks a QUERY_MESSAGE by unique id (RocketMQ MixAll.UNIQUE_MSG_QUERY_FLAG).
const uniqueKeyQueryFlag = "_UNIQUE_KEY_QUERY"

// defaultQueryMaxNum is RocketMQ's defaultQueryMaxNum, the cap of a query by unique key.
const defaultQueryMaxNum = 32

// handleQueryMessage serves QUERY_MESSAGE (12): messages whose KEYS (or, with
// _UNIQUE_KEY_QUERY=true, UNIQ_KEY) contain key, stored within [beginTimestamp,
// endTimestamp]. The body is the concatenated records; none found is QUERY_NOT_FOUND.
func (b *Broker) handleQueryMessage(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, err := req.ExtRequired("topic")
	if err != nil {
		return errorResponse(err)
	}
	key, err := req.ExtRequired("key")
	if err != nil {
		return errorResponse(err)
	}
	maxNum := int(req.ExtInt64Or("maxNum", defaultQueryMaxNum))
	if req.ExtBoolOr(uniqueKeyQueryFlag, false) || maxNum <= 0 {
		maxNum = defaultQueryMaxNum
	}
	begin := req.ExtInt64Or("beginTimestamp", 0)
	end := req.ExtInt64Or("endTimestamp", 1<<62)
	offs, err := b.Store.QueryByKey(topic, key, maxNum, begin, end)
	if err != nil {
		return errorResponse(err)
	}
	var body []byte
	for _, off := range offs {
		rec, err := b.Store.ReadRecord(off)
		if err != nil {
			continue // deleted by retention since it was indexed
		}
		body = append(body, rec...)
	}
	if len(body) == 0 {
		return remoting.NewResponse(remoting.QueryNotFound, "can not find message, maybe time range not correct")
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.SetExtInt64("indexLastUpdateTimestamp", 0)
	resp.SetExtInt64("indexLastUpdatePhyoffset", 0)
	resp.Body = body
	return resp
}

// handleViewMessage serves VIEW_MESSAGE_BY_ID (33): the record at commit-log offset
// `offset` (decoded from an offset message id by the client).
func (b *Broker) handleViewMessage(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	off, err := req.ExtInt64("offset")
	if err != nil {
		return errorResponse(err)
	}
	rec, err := b.Store.ReadRecord(off)
	if err != nil {
		return respond(remoting.SystemError, "can not find message by the offset, %d", off)
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = rec
	return resp
}
