package timer

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// Topic is the system topic that holds pending timer messages (one queue, id 0), as in RocketMQ.
const Topic = message.TopicTimer

var (
	// ErrIllegal matches every rejected timer or delay message. The broker maps it to
	// MESSAGE_ILLEGAL (13) with err.Error() as the remark; the gRPC proxy to
	// ILLEGAL_DELIVERY_TIME (40012).
	ErrIllegal = errors.New("timer message illegal")
	// ErrDelayTooLong matches a timer beyond Config.MaxDelay (it also matches ErrIllegal).
	ErrDelayTooLong = errors.New("timer: delay exceeds the max delay")
)

// delayTooLongError carries RocketMQ's remark text.
type delayTooLongError struct{ maxMs int64 }

func (e *delayTooLongError) Error() string {
	return fmt.Sprintf("timer message illegal, the delay time should not be bigger than the max delay %dms", e.maxMs)
}

func (e *delayTooLongError) Is(target error) bool {
	return target == ErrIllegal || target == ErrDelayTooLong
}

// HasTimerProperty reports whether props carry one of the properties Intercept acts on. A
// message without any of them is never taken and never rejected, so callers can skip the
// copy Intercept needs on the common path.
func HasTimerProperty(props map[string]string) bool {
	for _, k := range [...]string{message.PropertyDelayLevel, message.PropertyTimerDelaySec,
		message.PropertyTimerDelayMS, message.PropertyTimerDeliverMS} {
		if _, ok := props[k]; ok {
			return true
		}
	}
	return false
}

// Intercept decides whether m must wait on the timer and, when it must, rewrites it in place
// into a timer record: topic Topic, queue 0, properties REAL_TOPIC, REAL_QID and TIMER_OUT_MS
// (the due time, ms since the epoch). It returns taken=false, m untouched, for every message to
// be stored as it is (no timer property, transaction half messages, timers due now or in the
// past, and already-processed timer messages carrying TIMER_OUT_MS).
//
// Rules (RocketMQ HookUtils): a DELAY level > 0 wins and clears TIMER_DELIVER_MS,
// TIMER_DELAY_SEC and TIMER_DELAY_MS; a level above the table's maximum is clamped to it; the
// due time is now + level delay and is not subject to maxDelay. Otherwise TIMER_DELAY_SEC, then
// TIMER_DELAY_MS (relative to now), then TIMER_DELIVER_MS (absolute) give the due time, which
// may not be more than maxDelay ahead (ErrDelayTooLong). Unparsable values are ErrIllegal.
func Intercept(m *message.Ext, now time.Time, maxDelay time.Duration, levels Levels) (taken bool, err error) {
	tt := message.TransactionType(m.SysFlag)
	if tt != message.SysFlagTransactionNotType && tt != message.SysFlagTransactionCommit {
		return false, nil
	}
	if m.Topic == Topic {
		return false, nil
	}
	nowMs := now.UnixMilli()
	if v, ok := m.Properties[message.PropertyDelayLevel]; ok {
		level, err := strconv.Atoi(v)
		if err != nil {
			return false, fmt.Errorf("%w: DELAY %q is not a number", ErrIllegal, v)
		}
		if level > 0 {
			m.RemoveProperty(message.PropertyTimerDeliverMS)
			m.RemoveProperty(message.PropertyTimerDelaySec)
			m.RemoveProperty(message.PropertyTimerDelayMS)
			if level > levels.Max() {
				level = levels.Max()
				m.SetProperty(message.PropertyDelayLevel, strconv.Itoa(level))
			}
			d, _ := levels.Delay(level)
			toTimerRecord(m, nowMs+d.Milliseconds())
			return true, nil
		}
	}
	if _, ok := m.Properties[message.PropertyTimerOutMS]; ok {
		return false, nil
	}
	if _, ok := m.Properties[message.PropertyTimerDelUniqKey]; ok {
		// A recall marker always goes through the wheel, which drops it: one whose due time
		// passed while it was being stored must not reach the topic's consumers.
		due, err := strconv.ParseInt(m.Properties[message.PropertyTimerDeliverMS], 10, 64)
		if err != nil {
			return false, fmt.Errorf("%w: recall without a valid TIMER_DELIVER_MS", ErrIllegal)
		}
		toTimerRecord(m, max(due, nowMs+1))
		return true, nil
	}
	var due int64
	if v, ok := m.Properties[message.PropertyTimerDelaySec]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > (1<<62)/1000 || n < -(1<<62)/1000 {
			return false, fmt.Errorf("%w: TIMER_DELAY_SEC %q is not a number of seconds", ErrIllegal, v)
		}
		due = nowMs + n*1000
	} else if v, ok := m.Properties[message.PropertyTimerDelayMS]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > 1<<62 || n < -(1<<62) {
			return false, fmt.Errorf("%w: TIMER_DELAY_MS %q is not a number of milliseconds", ErrIllegal, v)
		}
		due = nowMs + n
	} else if v, ok := m.Properties[message.PropertyTimerDeliverMS]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false, fmt.Errorf("%w: TIMER_DELIVER_MS %q is not a timestamp", ErrIllegal, v)
		}
		due = n
	} else {
		return false, nil
	}
	if due <= nowMs {
		return false, nil
	}
	if due-nowMs > maxDelay.Milliseconds() {
		return false, &delayTooLongError{maxMs: maxDelay.Milliseconds()}
	}
	toTimerRecord(m, due)
	return true, nil
}

// toTimerRecord moves m to the timer topic, remembering where it belongs.
func toTimerRecord(m *message.Ext, due int64) {
	m.SetProperty(message.PropertyRealTopic, m.Topic)
	m.SetProperty(message.PropertyRealQueueID, strconv.Itoa(int(m.QueueID)))
	m.SetProperty(message.PropertyTimerOutMS, strconv.FormatInt(due, 10))
	m.Topic = Topic
	m.QueueID = 0
}

// dueOf returns the due time of a timer record (its TIMER_OUT_MS).
func dueOf(rec *message.Ext) (int64, bool) {
	n, err := strconv.ParseInt(rec.Properties[message.PropertyTimerOutMS], 10, 64)
	return n, err == nil
}

// Restore builds the message delivered to the real topic from timer record rec (stored at
// rec.CommitLogOffset), at time now:
//   - topic and queue from REAL_TOPIC / REAL_QID (both removed); when queueCount reports n > 0
//     queues and the id is out of range (the topic shrank) it is folded into range (id mod n);
//   - DELAY, TIMER_DELAY_SEC and TIMER_DELAY_MS are removed (relative delays would fire again
//     if the message were ever re-put through the hooks); for a timestamp delay
//     TIMER_DELIVER_MS is set to the due time when absent, so the gRPC proxy still classifies
//     the message as DELAY, and TIMER_OUT_MS stays (it marks the message as processed, as in
//     RocketMQ's timer wheel); a delay-level record (DELAY > 0) loses TIMER_OUT_MS and
//     TIMER_DELIVER_MS, as RocketMQ's schedule service delivers it; TIMER_ENQUEUE_MS is the
//     record's store time and TIMER_DEQUEUE_MS is now (the delivery mark needs it);
//   - UNIQ_KEY and every other property, body, flag, sys flag, born host/time and reconsume
//     times are kept, so the message id is unchanged;
//   - the delivery mark (see deliveryMark) names the record.
func Restore(rec *message.Ext, now time.Time, queueCount func(topic string) int) (*message.Ext, error) {
	topic := rec.Properties[message.PropertyRealTopic]
	if topic == "" {
		return nil, fmt.Errorf("timer: record at %d has no REAL_TOPIC", rec.CommitLogOffset)
	}
	qid, err := strconv.Atoi(rec.Properties[message.PropertyRealQueueID])
	if err != nil || qid < 0 {
		qid = 0
	}
	if queueCount != nil {
		if n := queueCount(topic); n > 0 && qid >= n {
			qid %= n
		}
	}
	props := make(map[string]string, len(rec.Properties)+2)
	for k, v := range rec.Properties {
		props[k] = v
	}
	levelOrigin := false
	if n, err := strconv.Atoi(props[message.PropertyDelayLevel]); err == nil && n > 0 {
		levelOrigin = true
	}
	delete(props, message.PropertyRealTopic)
	delete(props, message.PropertyRealQueueID)
	delete(props, message.PropertyDelayLevel)
	delete(props, message.PropertyTimerDelaySec)
	delete(props, message.PropertyTimerDelayMS)
	if levelOrigin {
		// A delay level (every go2/4.x retry too) is served by Apache's schedule service,
		// which leaves no TIMER_* mark: a consumer that re-sends the message with a new
		// TIMER_DELIVER_MS gets that delay (QA R6E-2), and gRPC shows it as NORMAL.
		delete(props, message.PropertyTimerOutMS)
		delete(props, message.PropertyTimerDeliverMS)
	} else if _, ok := props[message.PropertyTimerDeliverMS]; !ok {
		props[message.PropertyTimerDeliverMS] = props[message.PropertyTimerOutMS]
	}
	props[message.PropertyTimerEnqueueMS] = strconv.FormatInt(rec.StoreTimestamp, 10)
	props[message.PropertyTimerDequeueMS] = strconv.FormatInt(now.UnixMilli(), 10)
	out := &message.Ext{
		Message: message.Message{
			Topic:      topic,
			Flag:       rec.Flag,
			Body:       rec.Body,
			Properties: props,
		},
		QueueID:        int32(qid),
		SysFlag:        rec.SysFlag,
		BornTimestamp:  rec.BornTimestamp,
		BornHost:       rec.BornHost,
		StoreHost:      rec.StoreHost,
		ReconsumeTimes: rec.ReconsumeTimes,
	}
	setDeliveryMark(out, rec.CommitLogOffset)
	return out, nil
}

// The delivery mark ties a delivered message to its timer record so recovery can tell which
// timers were already delivered: PREPAREDTRANSACTIONOFFSET (a record field no client reads for
// non-prepared messages) holds the record's commit-log offset plus one (so offset 0 is
// representable), and TIMER_DEQUEUE_MS is present.
// A message carrying a mark for record r exists only if r was delivered (a copy of a delivered
// message can only carry the mark of a record that was delivered), and commit-log offsets are
// unique, so a mark never names a pending record by accident.
func setDeliveryMark(m *message.Ext, recordOffset int64) {
	m.PreparedTransactionOffset = recordOffset + 1
}

// deliveryMark returns the record offset named by m's delivery mark.
func deliveryMark(m *message.Ext) (int64, bool) {
	if m.Topic == Topic || m.PreparedTransactionOffset <= 0 {
		return 0, false
	}
	if _, ok := m.Properties[message.PropertyTimerDequeueMS]; !ok {
		return 0, false
	}
	return m.PreparedTransactionOffset - 1, true
}

// recallTag is the tag of a recall marker (RocketMQ's RecallMessageProcessor uses it too).
const recallTag = "_RECALL_TAG_"

// RecallMarker builds the message that recalls the pending timer message msgID of topic, due
// at dueMs: a timer record-to-be carrying TIMER_DEL_UNIQKEY, stored through the put hooks like
// any timer message (Intercept always takes it). When the service ingests it, the timer of
// that topic with that UNIQ_KEY is dropped instead of delivered; the marker itself is never
// delivered. Recalling a message that does not exist, or that was delivered already, has no
// effect (as in RocketMQ, the caller cannot tell).
func RecallMarker(topic, msgID string, dueMs int64, now time.Time) *message.Ext {
	m := &message.Ext{
		Message:       message.Message{Topic: topic, Body: []byte("0")},
		BornTimestamp: now.UnixMilli(),
	}
	m.SetProperty(message.PropertyTags, recallTag)
	m.SetProperty(message.PropertyTimerDelUniqKey, msgID)
	m.SetProperty(message.PropertyUniqKey, msgID)
	m.SetProperty(message.PropertyTimerDeliverMS, strconv.FormatInt(dueMs, 10))
	return m
}

// recallOf reports whether timer record rec is a recall marker, and the key of the timer it
// recalls.
func recallOf(rec *message.Ext) (string, bool) {
	id, ok := rec.Properties[message.PropertyTimerDelUniqKey]
	if !ok {
		return "", false
	}
	return recallKey(rec.Properties[message.PropertyRealTopic], id), true
}

// recallKey identifies a timer for recalls: its real topic and message id (UNIQ_KEY). A
// recall names both, so a handle rewritten with another topic recalls nothing.
func recallKey(topic, msgID string) string { return topic + "\x00" + msgID }
