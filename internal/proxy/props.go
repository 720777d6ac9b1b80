package proxy

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

// systemProperties are the names users may not set as user properties and that are not
// echoed back as user properties (Java MessageConst.STRING_HASH_SET).
var systemProperties = map[string]struct{}{}

func init() {
	for _, k := range []string{
		"TRACE_ON", "MSG_REGION", PropKeys, PropTags, PropWaitStoreMsgOK, PropDelayLevel,
		PropRetryTopic, PropRealTopic, PropRealQueueID, PropTransactionPrep, PropProducerGroup,
		"MIN_OFFSET", "MAX_OFFSET", "BUYER_ID", "ORIGIN_MESSAGE_ID", "TRANSFER_FLAG",
		"CORRECTION_FLAG", "MQ2_FLAG", PropReconsumeTime, PropUniqKey, PropMaxReconsumeTimes,
		"CONSUME_START_TIME", PropPopCK, "POP_CK_OFFSET", "1ST_POP_TIME",
		"TRAN_PREPARED_QUEUE_OFFSET", "DUP_INFO", "EXTEND_UNIQ_INFO", "INSTANCE_ID",
		"CORRELATION_ID", "REPLY_TO_CLIENT", "TTL", "ARRIVE_TIME", "PUSH_REPLY_TIME", "CLUSTER",
		"MSG_TYPE", "INNER_MULTI_QUEUE_OFFSET", "INNER_MULTI_DISPATCH", "INNER_NUM", "INNER_BASE",
		PropTraceContext, PropTimerDelaySec, PropTimerDeliverMS, PropTimerDelayMS, PropBornHost,
		PropBornTimestamp, PropDLQOriginTopic, PropDLQOriginMsgID, PropShardingKey,
		"TRANSACTION_CHECK_TIMES", PropCheckImmunity, PropTransactionID, "TIMER_OUT_MS",
		"TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS", "TIMER_ROLL_TIMES", "TIMER_DEL_UNIQKEY",
		"TIMER_DELAY_LEVEL", "__STARTDELIVERTIME", "SHARDING_KEY", "__RMQ.TRANSIENT.TOPIC_SYS_FLAG",
		"__RMQ.TRANSIENT.CONSUME_START_TIME", "__RMQ.TRANSIENT.GROUP_SYS_FLAG", "CRC32",
		"WAIT_STORE_MSG_OK", "DELAY_TIME_LEVEL", "__FQN_TOPIC",
	} {
		systemProperties[k] = struct{}{}
	}
}

// IsSystemProperty reports whether k is reserved by RocketMQ.
func IsSystemProperty(k string) bool {
	_, ok := systemProperties[k]
	return ok
}
