package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// ResendTrackingGroup is the consumer group under which ResendDLQ records how far it has
// replayed each %DLQ%<group> queue, so a second run does not replay a message twice.
const ResendTrackingGroup = "rocketry_dlq_resend"

// ResendOptions bound ResendDLQ.
type ResendOptions struct {
	Max    int  // messages to replay at most; 0 = all
	DryRun bool // list what would be replayed, send nothing, record nothing
}

// ResentMessage is one replayed (or, in a dry run, replayable) dead letter.
type ResentMessage struct {
	DLQMsgID    string `json:"dlqMsgId"`
	OriginTopic string `json:"originTopic"`
	// NewMsgID is the message id consumers of the original topic see for the replayed copy:
	// the dead letter's own id (its UNIQ_KEY, which is the original message's), so a replay
	// reads as one more delivery of the message that failed, as a direct redelivery from
	// Apache's dashboard does. NewOffsetMsgID is the broker's offset id of the stored copy.
	NewMsgID       string `json:"newMsgId,omitempty"`
	NewOffsetMsgID string `json:"newOffsetMsgId,omitempty"`
	Error          string `json:"error,omitempty"`
}

// ResendResult is `message resend-dlq`.
type ResendResult struct {
	Group    string          `json:"group"`
	DLQTopic string          `json:"dlqTopic"`
	Resent   int             `json:"resent"`
	Failed   int             `json:"failed"`
	DryRun   bool            `json:"dryRun"`
	Messages []ResentMessage `json:"messages"`
}

// ResendDLQ replays the dead letters of group to their original topics: it reads
// %DLQ%<group> queue by queue from the replay position recorded under ResendTrackingGroup
// (PULL_MESSAGE), sends each message to its original topic (DLQ_ORIGIN_TOPIC, else
// RETRY_TOPIC) as a new message with the same message id (UNIQ_KEY), body, tags, keys,
// message group and user properties (property ORIGIN_MESSAGE_ID names the dead letter), and records the position
// after each batch (UPDATE_CONSUMER_OFFSET). A dead letter whose origin is unknown or whose
// send fails is reported and skipped (it stays in the DLQ). A group that never dead-lettered
// (no DLQ topic yet) resends nothing; an unknown group with no DLQ is ErrNotFound.
func (a *Admin) ResendDLQ(ctx context.Context, group string, opts ResendOptions) (*ResendResult, error) {
	dlq := message.DLQTopic(group)
	res := &ResendResult{Group: group, DLQTopic: dlq, DryRun: opts.DryRun, Messages: []ResentMessage{}}
	r, err := a.route(ctx, dlq)
	if errors.Is(err, ErrNotFound) {
		// A redrive job runs on clean days too (QA R7H-10): an existing group without dead
		// letters is "resent 0", not an error.
		if groups, lerr := a.ListGroups(ctx, "", true); lerr == nil {
			for _, g := range groups {
				if g.Name == group {
					return res, nil
				}
			}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	masters := r.masters()
	qds := append([]wireQueueData(nil), r.QueueDatas...)
	sort.Slice(qds, func(i, j int) bool { return qds[i].BrokerName < qds[j].BrokerName })
	routes := map[string]*sendTarget{}
	for _, qd := range qds {
		addr := masters[qd.BrokerName]
		for qid := range qd.ReadQueueNums {
			if err := a.resendQueue(ctx, group, dlq, qd.BrokerName, addr, qid, opts, res, routes); err != nil {
				return res, err
			}
			if opts.Max > 0 && res.Resent+res.Failed >= opts.Max {
				return res, nil
			}
		}
	}
	return res, nil
}

func (a *Admin) resendQueue(ctx context.Context, group, dlq, broker, addr string, qid int32, opts ResendOptions, res *ResendResult, routes map[string]*sendTarget) error {
	q := strconv.Itoa(int(qid))
	minOff, err := a.offset(ctx, addr, remoting.GetMinOffset, map[string]string{"topic": dlq, "queueId": q, "bname": broker})
	if err != nil {
		return err
	}
	maxOff, err := a.offset(ctx, addr, remoting.GetMaxOffset, map[string]string{"topic": dlq, "queueId": q, "bname": broker})
	if err != nil {
		return err
	}
	pos := minOff
	resp, err := a.invoke(ctx, addr, remoting.QueryConsumerOffset, map[string]string{"consumerGroup": ResendTrackingGroup, "topic": dlq,
		"queueId": q, "setZeroIfNotFound": "false", "bname": broker}, nil)
	if err == nil {
		pos = max(resp.ExtInt64Or("offset", minOff), minOff)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	for pos < maxOff {
		n := 32
		if opts.Max > 0 {
			n = min(n, opts.Max-(res.Resent+res.Failed))
			if n <= 0 {
				return nil
			}
		}
		// Read as TOOLS_CONSUMER, as Apache's mqadmin reads: the broker labels the delivery
		// is_system="true" (no user group's consumption, QA R7H-4); the replay position is
		// still recorded under ResendTrackingGroup.
		msgs, next, err := a.pull(ctx, addr, "", dlq, broker, qid, pos, n)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			if next <= pos {
				return nil
			}
			pos = next
			continue
		}
		for _, m := range msgs {
			rm := ResentMessage{DLQMsgID: m.MsgID(), OriginTopic: originTopic(m)}
			switch {
			case rm.OriginTopic == "":
				rm.Error = "original topic unknown (no DLQ_ORIGIN_TOPIC or RETRY_TOPIC property)"
			case !opts.DryRun:
				id, offID, err := a.resendOne(ctx, m, rm.OriginTopic, routes)
				if err != nil {
					rm.Error = err.Error()
				} else {
					rm.NewMsgID, rm.NewOffsetMsgID = id, offID
				}
			}
			if rm.Error != "" {
				res.Failed++
			} else {
				res.Resent++
			}
			res.Messages = append(res.Messages, rm)
			pos = m.QueueOffset + 1
		}
		if !opts.DryRun {
			if err := a.commitReplayPosition(ctx, addr, dlq, broker, q, pos); err != nil {
				return err
			}
		}
	}
	return nil
}

// commitReplayPosition records pos under ResendTrackingGroup (UPDATE_CONSUMER_OFFSET). The
// broker refuses offsets of unknown groups, so the tracking group is created on that broker
// the first time (its reads are TOOLS_CONSUMER's, so nothing creates it implicitly).
func (a *Admin) commitReplayPosition(ctx context.Context, addr, dlq, broker, q string, pos int64) error {
	ext := map[string]string{"consumerGroup": ResendTrackingGroup, "topic": dlq, "queueId": q,
		"commitOffset": strconv.FormatInt(pos, 10), "bname": broker}
	_, err := a.invoke(ctx, addr, remoting.UpdateConsumerOffset, ext, nil)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	body, _ := json.Marshal(wireGroupConfig{GroupName: ResendTrackingGroup, ConsumeEnable: true, RetryQueueNums: 1,
		RetryMaxTimes: 16, WhichBrokerWhenConsumeSlowly: 1, ConsumeTimeoutMinute: 15})
	if _, err := a.invoke(ctx, addr, remoting.UpdateAndCreateSubscriptionGroup, nil, body); err != nil {
		return fmt.Errorf("create %s: %w", ResendTrackingGroup, err)
	}
	_, err = a.invoke(ctx, addr, remoting.UpdateConsumerOffset, ext, nil)
	return err
}

func originTopic(m *message.Ext) string {
	if t := m.Property(message.PropertyDLQOriginTopic); t != "" {
		return t
	}
	if t := m.Property(message.PropertyRetryTopic); t != "" && !message.IsRetryTopic(t) {
		return t
	}
	return ""
}

// sendTarget round-robins the writable queues of a topic.
type sendTarget struct {
	queues []struct {
		broker, addr string
		qid          int32
	}
	next int
}

// resendOne sends a copy of dead letter m to topic and returns the copy's message id (the
// dead letter's UNIQ_KEY, a new one only when it has none) and its offset message id.
func (a *Admin) resendOne(ctx context.Context, m *message.Ext, topic string, routes map[string]*sendTarget) (id, offsetID string, err error) {
	t := routes[topic]
	if t == nil {
		r, err := a.route(ctx, topic)
		if err != nil {
			return "", "", err
		}
		t = &sendTarget{}
		masters := r.masters()
		for _, qd := range r.QueueDatas {
			if qd.Perm&PermWrite == 0 || masters[qd.BrokerName] == "" {
				continue
			}
			for q := range qd.WriteQueueNums {
				t.queues = append(t.queues, struct {
					broker, addr string
					qid          int32
				}{qd.BrokerName, masters[qd.BrokerName], q})
			}
		}
		if len(t.queues) == 0 {
			return "", "", fmt.Errorf("topic %s has no writable queue", topic)
		}
		routes[topic] = t
	}
	q := t.queues[t.next%len(t.queues)]
	t.next++
	body, note := decompressBody(m)
	if note != "" {
		return "", "", errors.New(note)
	}
	props := make(map[string]string, len(m.Properties)+4)
	for k, v := range m.Properties {
		if !message.IsSystemProperty(k) || k == message.PropertyKeys || k == message.PropertyTags || k == message.PropertyShardingKey {
			props[k] = v
		}
	}
	id = m.UniqKey()
	if id == "" {
		id = message.NewUniqID()
	}
	props[message.PropertyUniqKey] = id
	props[message.PropertyOriginMessageID] = m.MsgID()
	props[message.PropertyWaitStoreMsgOK] = "true"
	offsetID, err = a.send(ctx, q.addr, q.broker, q.qid, &message.Message{Topic: topic, Flag: m.Flag, Body: body, Properties: props})
	if err != nil {
		return "", "", err
	}
	return id, offsetID, nil
}
