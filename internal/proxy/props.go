package proxy

import (
	"strings"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// RocketMQ message property names (MessageConst) the proxy reads or writes.
const (
	PropKeys              = "KEYS"
	PropTags              = "TAGS"
	PropWaitStoreMsgOK    = "WAIT"
	PropDelayLevel        = "DELAY"
	PropRetryTopic        = "RETRY_TOPIC"
	PropRealTopic         = "REAL_TOPIC"
	PropRealQueueID       = "REAL_QID"
	PropTransactionPrep   = "TRAN_MSG"
	PropProducerGroup     = "PGROUP"
	PropUniqKey           = "UNIQ_KEY"
	PropReconsumeTime     = "RECONSUME_TIME"
	PropMaxReconsumeTimes = "MAX_RECONSUME_TIMES"
	PropShardingKey       = "__SHARDINGKEY"
	PropTimerDeliverMS    = "TIMER_DELIVER_MS"
	PropTimerDelaySec     = "TIMER_DELAY_SEC"
	PropTimerDelayMS      = "TIMER_DELAY_MS"
	PropPopCK             = "POP_CK"
	PropTraceContext      = "TRACE_CONTEXT"
	PropBornHost          = "__BORNHOST"
	PropBornTimestamp     = "BORN_TIMESTAMP"
	PropDLQOriginTopic    = "DLQ_ORIGIN_TOPIC"
	PropDLQOriginMsgID    = "DLQ_ORIGIN_MESSAGE_ID"
	PropCheckImmunity     = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropTransactionID     = "__transactionId__"
)

// IsSystemProperty reports whether k is reserved by RocketMQ (MessageConst.STRING_HASH_SET,
// message.IsSystemProperty): refused as a user property on send
// (ILLEGAL_MESSAGE_PROPERTY_KEY) and never echoed back as one, as Apache's proxy. Other
// names, however system-like ("CRC32", "SHARDING_KEY"), are ordinary user properties.
func IsSystemProperty(k string) bool { return message.IsSystemProperty(k) }

// hiddenProperty reports whether a stored property stays out of the user properties of a
// received message: reserved names (Apache's GrpcConverter.buildUserAttributes shows every
// other one, __SHARDINGKEY and __transactionId__ included: QA R9N-5) and transient ones
// ("__RMQ.TRANSIENT.", which Apache never stores).
func hiddenProperty(k string) bool {
	return IsSystemProperty(k) || strings.HasPrefix(k, "__RMQ.TRANSIENT.")
}

// exposedOnReceive are the reserved names the proxy nevertheless shows among a received
// message's user properties (see toPBMessage): a client that sends a received message's
// properties back (a dead-letter replay) has them dropped instead of refused (QA R9N-3).
func exposedOnReceive(k string) bool { return k == PropDLQOriginTopic || k == PropDLQOriginMsgID }
