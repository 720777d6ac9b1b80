package txn

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// Topic and queue of the records this package writes (RocketMQ TopicValidator names).
const (
	HalfTopic     = message.TopicTransHalf     // RMQ_SYS_TRANS_HALF_TOPIC
	OpTopic       = message.TopicTransOpHalf   // RMQ_SYS_TRANS_OP_HALF_TOPIC
	CheckMaxTopic = message.TopicTransCheckMax // TRANS_CHECK_MAX_TIME_TOPIC
	// HalfQueueID is the only queue of HalfTopic, OpTopic and CheckMaxTopic.
	HalfQueueID int32 = 0

	// OpTag tags op records ("d" = delete, RocketMQ TransactionalMessageUtil.REMOVE_TAG).
	OpTag = "d"
	// PropertyOutcome records the outcome on an op record (Rocketry-specific; RocketMQ's op
	// records carry only the offset, so readers that ignore it lose nothing).
	PropertyOutcome = "TXN_OUTCOME"
)

// Resolution is END_TRANSACTION's commitOrRollback: the sysflag transaction type values.
type Resolution int32

// Resolutions (MessageSysFlag TRANSACTION_*_TYPE).
const (
	ResolutionUnknown  Resolution = Resolution(message.SysFlagTransactionNotType)  // 0
	ResolutionCommit   Resolution = Resolution(message.SysFlagTransactionCommit)   // 8
	ResolutionRollback Resolution = Resolution(message.SysFlagTransactionRollback) // 12
)

func (r Resolution) String() string {
	switch r {
	case ResolutionUnknown:
		return "UNKNOWN"
	case ResolutionCommit:
		return "COMMIT"
	case ResolutionRollback:
		return "ROLLBACK"
	}
	return "Resolution(" + strconv.Itoa(int(r)) + ")"
}

// Outcome is how a half message ended.
type Outcome uint8

// Outcomes. OutcomeResolved is an op record without (or with an unknown) outcome property:
// finished, way unknown (e.g. written by another implementation).
const (
	OutcomeNone Outcome = iota
	OutcomeCommit
	OutcomeRollback
	OutcomeDiscard
	OutcomeResolved
)

var outcomeNames = [...]string{"", "commit", "rollback", "discard", "resolved"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

func parseOutcome(s string) Outcome {
	for i, n := range outcomeNames {
		if i > 0 && n == s {
			return Outcome(i)
		}
	}
	return OutcomeResolved
}

// IsPrepared reports whether a put is a producer's prepared (half) message that the
// transaction service must take over: the sysflag carries TransactionPrepared (0x4), or the
// sysflag carries no transaction type and property TRAN_MSG is "true" (RocketMQ's send path
// decides on the property alone). Messages whose sysflag says commit or rollback are never
// prepared, so a committed message that kept TRAN_MSG=true (and a retry copy of it) is not
// captured again. Messages for system, retry and DLQ topics are never prepared.
func IsPrepared(m *message.Ext) bool {
	switch message.TransactionType(m.SysFlag) {
	case message.SysFlagTransactionPrepared:
	case message.SysFlagTransactionNotType:
		if !parseBool(m.Property(message.PropertyTransactionPrepared)) {
			return false
		}
	default:
		return false
	}
	t := m.Topic
	return !message.IsSystemTopic(t) && !message.IsRetryTopic(t) && !message.IsDLQTopic(t)
}

// parseBool is Java's Boolean.parseBoolean: "true" in any case.
func parseBool(s string) bool { return strings.EqualFold(s, "true") }

// ToHalf returns the half record for prepared message m: topic RMQ_SYS_TRANS_HALF_TOPIC queue
// 0, the real topic and queue in REAL_TOPIC / REAL_QID, the transaction id (= UNIQ_KEY) in
// __transactionId__, TRAN_MSG=true, and the sysflag's transaction bits cleared (like RocketMQ's
// TransactionalMessageBridge, so the half queue is dispatched like any other queue). The body
// is shared with m (never modified); properties are copied. When m has no UNIQ_KEY one is
// assigned to m itself first, so the send response's transactionId and crash recovery (which
// looks the key up) have one.
func ToHalf(m *message.Ext) *message.Ext {
	if m.UniqKey() == "" {
		m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
	}
	h := *m
	h.Properties = make(map[string]string, len(m.Properties)+4)
	maps.Copy(h.Properties, m.Properties)
	h.Properties[message.PropertyRealTopic] = m.Topic
	h.Properties[message.PropertyRealQueueID] = strconv.Itoa(int(m.QueueID))
	h.Properties[message.PropertyTransactionID] = m.UniqKey()
	h.Properties[message.PropertyTransactionPrepared] = "true"
	h.Topic = HalfTopic
	h.QueueID = HalfQueueID
	h.SysFlag = message.SetTransactionType(m.SysFlag, message.SysFlagTransactionNotType)
	return &h
}

// ErrNotHalf is returned for a record that is not a well-formed half message.
var ErrNotHalf = errors.New("txn: not a half message")

// half is what the state table keeps about one half record.
type half struct {
	QueueOffset     int64 // offset in the half queue = tranStateTableOffset
	CommitLogOffset int64
	Group           string // PGROUP
	TxID            string // __transactionId__, else UNIQ_KEY
	UniqKey         string
	RealTopic       string
	StoreTime       int64         // ms, broker clock
	Immunity        time.Duration // CHECK_IMMUNITY_TIME_IN_SECONDS*1s, 0 when absent
}

// halfOf validates a record read from the half queue (or at an END_TRANSACTION offset).
func halfOf(m *message.Ext) (half, error) {
	if m.Topic != HalfTopic {
		return half{}, fmt.Errorf("%w: record at %d is in topic %q", ErrNotHalf, m.CommitLogOffset, m.Topic)
	}
	real := m.Property(message.PropertyRealTopic)
	if real == "" {
		return half{}, fmt.Errorf("%w: record at %d has no %s", ErrNotHalf, m.CommitLogOffset, message.PropertyRealTopic)
	}
	if _, err := strconv.ParseInt(m.Property(message.PropertyRealQueueID), 10, 32); err != nil {
		return half{}, fmt.Errorf("%w: record at %d has a bad %s", ErrNotHalf, m.CommitLogOffset, message.PropertyRealQueueID)
	}
	h := half{
		QueueOffset:     m.QueueOffset,
		CommitLogOffset: m.CommitLogOffset,
		Group:           m.Property(message.PropertyProducerGroup),
		UniqKey:         m.UniqKey(),
		RealTopic:       real,
		StoreTime:       m.StoreTimestamp,
	}
	h.TxID = m.Property(message.PropertyTransactionID)
	if h.TxID == "" {
		h.TxID = h.UniqKey
	}
	if s := m.Property(message.PropertyCheckImmunityTimeInSeconds); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < 1<<31 {
			h.Immunity = time.Duration(n) * time.Second
		}
	}
	return h, nil
}

// parseHalfRecord extracts the state table's view of a raw half record (queue offset qo)
// without decoding the body or every property: header fields plus a few property lookups. It
// agrees with halfOf(DecodeRecord(rec)) (FuzzParseHalfRecord checks it).
func parseHalfRecord(rec []byte, qo int64) (half, error) {
	var hd message.RecordHeader
	if err := message.ParseRecordHeader(rec, &hd); err != nil {
		return half{}, fmt.Errorf("%w: %w", ErrNotHalf, err)
	}
	rec = rec[:hd.TotalSize]
	if string(hd.Topic(rec)) != HalfTopic {
		return half{}, fmt.Errorf("%w: record at %d is in topic %q", ErrNotHalf, hd.PhysicalOffset, hd.Topic(rec))
	}
	props := hd.Props(rec)
	if _, err := message.DecodeProperties(props); err != nil { // malformed properties: like DecodeRecord
		return half{}, fmt.Errorf("%w: %w", ErrNotHalf, err)
	}
	get := func(k string) string {
		v, _ := message.LookupProperty(props, k)
		return string(v)
	}
	m := message.Ext{Message: message.Message{Topic: HalfTopic, Properties: map[string]string{
		message.PropertyRealTopic:                  get(message.PropertyRealTopic),
		message.PropertyRealQueueID:                get(message.PropertyRealQueueID),
		message.PropertyProducerGroup:              get(message.PropertyProducerGroup),
		message.PropertyUniqKey:                    get(message.PropertyUniqKey),
		message.PropertyTransactionID:              get(message.PropertyTransactionID),
		message.PropertyCheckImmunityTimeInSeconds: get(message.PropertyCheckImmunityTimeInSeconds),
	}}, QueueOffset: qo, CommitLogOffset: hd.PhysicalOffset, StoreTimestamp: hd.StoreTimestamp}
	return halfOf(&m)
}

// committedFrom builds the message a commit puts into the real topic: the half's body, flag,
// born fields, properties (UNIQ_KEY included) minus REAL_TOPIC/REAL_QID (and TRAN_MSG unless
// keepFlag), the sysflag's transaction bits set to commit and PREPARED_TX_OFFSET = the half's
// commit-log offset (what recovery looks for). RocketMQ EndTransactionProcessor.
func committedFrom(h *message.Ext, keepFlag bool) (*message.Ext, error) {
	real := h.Property(message.PropertyRealTopic)
	qid, err := strconv.ParseInt(h.Property(message.PropertyRealQueueID), 10, 32)
	if real == "" || err != nil {
		return nil, fmt.Errorf("%w: record at %d lacks its real topic/queue", ErrNotHalf, h.CommitLogOffset)
	}
	props := maps.Clone(h.Properties)
	delete(props, message.PropertyRealTopic)
	delete(props, message.PropertyRealQueueID)
	if !keepFlag {
		delete(props, message.PropertyTransactionPrepared)
	}
	return &message.Ext{
		Message: message.Message{
			Topic:      real,
			Flag:       h.Flag,
			Body:       h.Body,
			Properties: props,
		},
		QueueID:                   int32(qid),
		SysFlag:                   message.SetTransactionType(h.SysFlag, message.SysFlagTransactionCommit),
		BornTimestamp:             h.BornTimestamp,
		BornHost:                  h.BornHost,
		StoreHost:                 h.StoreHost,
		ReconsumeTimes:            h.ReconsumeTimes,
		PreparedTransactionOffset: h.CommitLogOffset,
	}, nil
}

// checkMessageFrom is the message sent with CHECK_TRANSACTION_STATE: the half record with its
// real topic and queue restored and PGROUP set, offsets and hosts of the half kept (RocketMQ
// AbstractTransactionalMessageCheckListener.sendCheckMessage).
func checkMessageFrom(h *message.Ext, group string, check int) *message.Ext {
	c := *h
	c.Properties = maps.Clone(h.Properties)
	// Apache's needDiscard counts the checks in TRANSACTION_CHECK_TIMES (1 on the first);
	// applications read it to give up after N unresolved checks (QA R6F-6).
	c.SetProperty(message.PropertyTransactionCheckTimes, strconv.Itoa(check))
	c.Topic = h.Property(message.PropertyRealTopic)
	if q, err := strconv.ParseInt(h.Property(message.PropertyRealQueueID), 10, 32); err == nil {
		c.QueueID = int32(q)
	}
	c.SetProperty(message.PropertyProducerGroup, group)
	c.StoreSize = 0
	return &c
}

// discardFrom is the copy written to TRANS_CHECK_MAX_TIME_TOPIC when a half message was
// checked CheckMax times (RocketMQ DefaultTransactionalMessageCheckListener.resolveDiscardMsg:
// same body, flag, sysflag and properties, queue 0).
func discardFrom(h *message.Ext) *message.Ext {
	return &message.Ext{
		Message: message.Message{
			Topic:      CheckMaxTopic,
			Flag:       h.Flag,
			Body:       h.Body,
			Properties: maps.Clone(h.Properties),
		},
		QueueID:        HalfQueueID,
		SysFlag:        h.SysFlag,
		BornTimestamp:  h.BornTimestamp,
		BornHost:       h.BornHost,
		StoreHost:      h.StoreHost,
		ReconsumeTimes: h.ReconsumeTimes,
	}
}

// opRecord is the op record (never waited for by sync flush) marking half queue offsets qos
// as finished with outcome o; several offsets are comma separated, as RocketMQ 5 merges them.
func opRecord(qos []int64, o Outcome, nowMs int64) *message.Ext {
	var body []byte
	for i, qo := range qos {
		if i > 0 {
			body = append(body, ',')
		}
		body = strconv.AppendInt(body, qo, 10)
	}
	return &message.Ext{
		Message: message.Message{
			Topic: OpTopic,
			Body:  body,
			Properties: map[string]string{
				message.PropertyTags: OpTag,
				PropertyOutcome:      o.String(),
				// An op record need not be durable before END_TRANSACTION answers: a lost one
				// is re-derived after a restart (crash-window verification, or a check-back).
				message.PropertyWaitStoreMsgOK: "false",
			},
		},
		QueueID:       HalfQueueID,
		BornTimestamp: nowMs,
	}
}

// parseOpRecord decodes a raw op record (see parseOp).
func parseOpRecord(rec []byte) ([]int64, Outcome, error) {
	var hd message.RecordHeader
	if err := message.ParseRecordHeader(rec, &hd); err != nil {
		return nil, OutcomeNone, fmt.Errorf("%w: %w", ErrBadOp, err)
	}
	rec = rec[:hd.TotalSize]
	props := hd.Props(rec)
	tags, _ := message.LookupProperty(props, message.PropertyTags)
	outcome, _ := message.LookupProperty(props, PropertyOutcome)
	return parseOp(string(tags), hd.Body(rec), string(outcome))
}

// ErrBadOp is returned by parseOp for a malformed op record.
var ErrBadOp = errors.New("txn: malformed op record")

// parseOp decodes an op record: tag "d", body = one half queue offset in decimal or, as
// RocketMQ 5 merges them, several separated by commas. Records with another tag return no
// offsets and no error (RocketMQ writes none, but they would not concern us).
func parseOp(tags string, body []byte, outcome string) ([]int64, Outcome, error) {
	if tags != OpTag {
		return nil, OutcomeNone, nil
	}
	var out []int64
	for s := range strings.SplitSeq(string(body), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, OutcomeNone, fmt.Errorf("%w: body %q", ErrBadOp, truncate(body, 64))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, OutcomeNone, fmt.Errorf("%w: empty body", ErrBadOp)
	}
	return out, parseOutcome(outcome), nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
