package broker

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
	"github.com/rocketry-mq/rocketry/internal/version"
)

// registerCoreHandlers installs every request the core serves. Feature files register
// theirs from featureInits (which run after this, so they may also replace a core handler).
func (b *Broker) registerCoreHandlers() {
	b.Handle(remoting.SendMessage, b.handleSend)
	b.Handle(remoting.SendMessageV2, b.handleSend)
	b.Handle(remoting.SendReplyMessage, b.handleSendReply)
	b.Handle(remoting.SendReplyMessageV2, b.handleSendReply)
	b.Handle(remoting.SendBatchMessage, b.handleSend)
	b.Handle(remoting.PullMessage, b.handlePull)
	b.Handle(remoting.QueryConsumerOffset, b.handleQueryConsumerOffset)
	b.Handle(remoting.UpdateConsumerOffset, b.handleUpdateConsumerOffset)
	b.Handle(remoting.GetMaxOffset, b.handleGetMaxOffset)
	b.Handle(remoting.GetMinOffset, b.handleGetMinOffset)
	b.Handle(remoting.SearchOffsetByTimestamp, b.handleSearchOffset)
	b.Handle(remoting.GetEarliestMsgStoretime, b.handleEarliestMsgStoreTime)
	b.Handle(remoting.HeartBeat, b.handleHeartbeat)
	b.Handle(remoting.UnregisterClient, b.handleUnregisterClient)
	b.Handle(remoting.CheckClientConfig, b.handleCheckClientConfig)
	b.Handle(remoting.GetConsumerListByGroup, b.handleGetConsumerList)
	b.Handle(remoting.LockBatchMQ, b.handleLockBatch)
	b.Handle(remoting.UnlockBatchMQ, b.handleUnlockBatch)
	b.Handle(remoting.ConsumerSendMsgBack, b.handleSendBack)
	b.Handle(remoting.QueryMessage, b.handleQueryMessage)
	b.Handle(remoting.ViewMessageByID, b.handleViewMessage)
	b.registerAdminHandlers()
}

// ---- offsets ----

func (b *Broker) handleQueryConsumerOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	group, topic, qid, err := groupTopicQueue(req, "consumerGroup")
	if err != nil {
		return errorResponse(err)
	}
	if off, ok := b.Offsets.Query(group, topic, qid); ok {
		resp := remoting.NewResponse(remoting.Success, "")
		resp.SetExtInt64("offset", off)
		return resp
	}
	// RocketMQ ConsumerManageProcessor: a new group starts at 0 while the queue's first
	// message is still retained and within the in-memory window; otherwise the client
	// decides (QUERY_NOT_FOUND: ConsumeFromWhere).
	if b.newGroupStartsAtZero(topic, qid) && req.ExtBoolOr("setZeroIfNotFound", true) {
		resp := remoting.NewResponse(remoting.Success, "")
		resp.SetExtInt64("offset", 0)
		return resp
	}
	return remoting.NewResponse(remoting.QueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
}

func (b *Broker) handleUpdateConsumerOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	group, topic, qid, err := groupTopicQueue(req, "consumerGroup")
	if err != nil {
		return errorResponse(err)
	}
	off, err := req.ExtInt64("commitOffset")
	if err != nil {
		return errorResponse(err)
	}
	// ConsumerManageProcessor.updateConsumerOffset: the group must exist (heartbeats, pulls
	// and pops create it while autoCreateSubscriptionGroup is on), then the topic; a commit
	// never creates a group, so a typo cannot leave a ghost group behind.
	if _, ok := b.Groups.Get(group); !ok {
		return respond(remoting.SubscriptionGroupNotExist, "Group %s not exist!", group)
	}
	if _, ok := b.Topics.Get(topic); !ok {
		return respond(remoting.TopicNotExist, "topic[%s] not exist, apply first please!", topic)
	}
	b.Offsets.Commit(group, topic, qid, off)
	return remoting.NewResponse(remoting.Success, "")
}

func groupTopicQueue(req *remoting.Command, groupKey string) (string, string, int32, error) {
	group, err := req.ExtRequired(groupKey)
	if err != nil {
		return "", "", 0, err
	}
	topic, qid, err := topicQueue(req)
	return group, topic, qid, err
}

func topicQueue(req *remoting.Command) (string, int32, error) {
	topic, err := req.ExtRequired("topic")
	if err != nil {
		return "", 0, err
	}
	qid, err := req.ExtInt32("queueId")
	return topic, qid, err
}

func offsetResponse(off int64) *remoting.Command {
	resp := remoting.NewResponse(remoting.Success, "")
	resp.SetExtInt64("offset", off)
	return resp
}

func (b *Broker) handleGetMaxOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, qid, err := topicQueue(req)
	if err != nil {
		return errorResponse(err)
	}
	return offsetResponse(b.Store.MaxOffset(topic, qid))
}

func (b *Broker) handleGetMinOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, qid, err := topicQueue(req)
	if err != nil {
		return errorResponse(err)
	}
	return offsetResponse(b.Store.MinOffset(topic, qid))
}

func (b *Broker) handleSearchOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, qid, err := topicQueue(req)
	if err != nil {
		return errorResponse(err)
	}
	ts, err := req.ExtInt64("timestamp")
	if err != nil {
		return errorResponse(err)
	}
	// boundaryType (RocketMQ 5, case-insensitive): LOWER (the default) is the first message
	// stored at or after the time, UPPER the last one stored at or before it.
	if strings.EqualFold(req.ExtString("boundaryType"), "upper") {
		return offsetResponse(b.Store.OffsetByTimeUpper(topic, qid, ts))
	}
	return offsetResponse(b.Store.OffsetByTime(topic, qid, ts))
}

func (b *Broker) handleEarliestMsgStoreTime(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic, qid, err := topicQueue(req)
	if err != nil {
		return errorResponse(err)
	}
	t, err := b.Store.EarliestMessageTime(topic, qid)
	if errors.Is(err, store.ErrNotFound) {
		t, err = -1, nil // no queue or no message: Apache answers SUCCESS with -1
	}
	if err != nil {
		return errorResponse(err)
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.SetExtInt64("timestamp", t)
	return resp
}

// ---- clients ----

func (b *Broker) clientChannel(c *remoting.Conn, clientID string, req *remoting.Command) ClientChannel {
	return ClientChannel{ClientID: clientID, Conn: c, RemoteAddr: remoteAddr(c), Language: req.Language,
		Version: req.Version, LastUpdate: time.Now()}
}

func (b *Broker) handleHeartbeat(_ context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	var hb heartbeatData
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		return respond(remoting.SystemError, "heartbeat body is not valid JSON: %v", err)
	}
	if hb.ClientID == "" {
		return respond(remoting.InvalidParameter, "heartbeat without clientID")
	}
	ch := b.clientChannel(c, hb.ClientID, req)
	for _, cd := range hb.ConsumerDataSet {
		if cd.GroupName == "" {
			continue
		}
		// The consumer is registered even when its group is unknown and cannot be created
		// (RocketMQ does the same); the group config only adds the retry topic.
		if gc, _, err := b.Groups.GetOrCreate(cd.GroupName); err == nil && cd.MessageModel != ModelBroadcast {
			if _, err := b.ensureGroupTopic(message.RetryTopic(cd.GroupName), gc.RetryQueueNums); err != nil {
				return errorResponse(err)
			}
		}
		subs := make([]SubscriptionData, 0, len(cd.SubscriptionDataSet))
		for _, raw := range cd.SubscriptionDataSet {
			sd, err := decodeSubscription(raw)
			if err != nil {
				return respond(remoting.SubscriptionParseFailed, "bad subscription in heartbeat: %v", err)
			}
			subs = append(subs, sd)
		}
		b.Clients.RegisterConsumer(cd.GroupName, cd.ConsumeType, cd.MessageModel, cd.ConsumeFromWhere, subs, ch)
	}
	for _, pd := range hb.ProducerDataSet {
		if pd.GroupName != "" {
			b.Clients.RegisterProducer(pd.GroupName, ch)
		}
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Version = version.RocketMQVersion
	return resp
}

func (b *Broker) handleUnregisterClient(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	clientID, err := req.ExtRequired("clientID")
	if err != nil {
		return errorResponse(err)
	}
	if g := req.ExtString("producerGroup"); g != "" {
		b.Clients.UnregisterProducer(g, clientID)
	}
	if g := req.ExtString("consumerGroup"); g != "" {
		b.Clients.UnregisterConsumer(g, clientID)
	}
	return remoting.NewResponse(remoting.Success, "")
}

// handleCheckClientConfig serves CHECK_CLIENT_CONFIG (46): Java remoting consumers send it at
// start for every subscription that is not a tag expression (CheckClientRequestBody JSON:
// clientId, group, subscriptionData). As Apache's ClientManageProcessor: a SQL92 selector is
// compiled (SUBSCRIPTION_PARSE_FAILED when it does not parse), refused with SYSTEM_ERROR
// naming the type without enablePropertyFilter, the text the pull path gives (QA R10R-3).
func (b *Broker) handleCheckClientConfig(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	var body struct {
		Group            string `json:"group"`
		SubscriptionData *struct {
			ExpressionType string `json:"expressionType"`
			SubString      string `json:"subString"`
		} `json:"subscriptionData"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return remoting.NewResponse(remoting.SystemError, "the request body is not a CheckClientRequestBody: "+err.Error())
	}
	if sd := body.SubscriptionData; sd != nil {
		if _, err := b.subscriptionFilter(sd.ExpressionType, sd.SubString); err != nil {
			return errorResponse(err)
		}
	}
	return remoting.NewResponse(remoting.Success, "")
}

func (b *Broker) handleGetConsumerList(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	group, err := req.ExtRequired("consumerGroup")
	if err != nil {
		return errorResponse(err)
	}
	ids := b.Clients.ConsumerIDs(group)
	if len(ids) == 0 {
		return respond(remoting.SystemError, "no consumer for this group, %s", group)
	}
	body, _ := json.Marshal(struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}{ids})
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = body
	return resp
}

// lockBatchBody is the LOCK_BATCH_MQ / UNLOCK_BATCH_MQ body.
type lockBatchBody struct {
	ConsumerGroup string         `json:"consumerGroup"`
	ClientID      string         `json:"clientId"`
	MQSet         []MessageQueue `json:"mqSet"`
}

func (b *Broker) handleLockBatch(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	var body lockBatchBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return respond(remoting.InvalidParameter, "bad lock body: %v", err)
	}
	locked := b.Locks.TryLock(body.ConsumerGroup, body.ClientID, body.MQSet, time.Now())
	out, _ := json.Marshal(struct {
		LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
	}{locked})
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = out
	return resp
}

func (b *Broker) handleUnlockBatch(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	var body lockBatchBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return respond(remoting.InvalidParameter, "bad unlock body: %v", err)
	}
	b.Locks.Unlock(body.ConsumerGroup, body.ClientID, body.MQSet)
	return remoting.NewResponse(remoting.Success, "")
}
