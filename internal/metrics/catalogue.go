package metrics

// Metric names. They are Apache RocketMQ 5's names (BrokerMetricsConstant,
// RemotingMetricsConstant, ProxyMetricsConstant) so dashboards written for RocketMQ keep
// working; units follow RocketMQ (bytes, milliseconds), not Prometheus' seconds convention.
// docs/metrics.md is the user-facing catalogue; keep the two in step.
const (
	NameMessagesIn              = "rocketmq_messages_in_total"
	NameMessagesOut             = "rocketmq_messages_out_total"
	NameThroughputIn            = "rocketmq_throughput_in_total"
	NameThroughputOut           = "rocketmq_throughput_out_total"
	NameMessageSize             = "rocketmq_message_size"
	NameSendToDLQ               = "rocketmq_send_to_dlq_messages_total"
	NameConsumerLag             = "rocketmq_consumer_lag_messages"
	NameConsumerInflight        = "rocketmq_consumer_inflight_messages"
	NameConsumerReady           = "rocketmq_consumer_ready_messages"
	NameConsumerLagLatency      = "rocketmq_consumer_lag_latency"
	NameConsumerQueueingLatency = "rocketmq_consumer_queueing_latency"
	NameTimerEnqueueLag         = "rocketmq_timer_enqueue_lag"
	NameTimerEnqueueLatency     = "rocketmq_timer_enqueue_latency"
	NameTimerDequeueLatency     = "rocketmq_timer_dequeue_latency"
	NameStorageSize             = "rocketmq_storage_size"
	NameStorageFlushBehind      = "rocketmq_storage_flush_behind_bytes"
	NameStorageDispatchBehind   = "rocketmq_storage_dispatch_behind_bytes"
	NameStorageReserveTime      = "rocketmq_storage_message_reserve_time"
	NameRPCLatency              = "rocketmq_rpc_latency"
	NameProducerConnections     = "rocketmq_producer_connections"
	NameConsumerConnections     = "rocketmq_consumer_connections"
	NameTopicNumber             = "rocketmq_topic_number"
	NameConsumerGroupNumber     = "rocketmq_consumer_group_number"
	NameHalfMessages            = "rocketmq_half_messages"
	NameCommitMessages          = "rocketmq_commit_messages_total"
	NameRollbackMessages        = "rocketmq_rollback_messages_total"
	NameTimingMessages          = "rocketmq_timing_messages"
	NameProxyUp                 = "rocketmq_proxy_up"
)

// Label names (RocketMQ's).
const (
	LabelCluster       = "cluster"
	LabelNodeType      = "node_type"
	LabelNodeID        = "node_id"
	LabelTopic         = "topic"
	LabelConsumerGroup = "consumer_group"
	LabelMessageType   = "message_type"
	LabelIsSystem      = "is_system" // "true" for system topics (and system groups on out)
	LabelIsRetry       = "is_retry"  // "true" for %RETRY% topics
	LabelProtocolType  = "protocol_type"
	LabelRequestCode   = "request_code"
	LabelResponseCode  = "response_code"
	LabelLanguage      = "language"
	LabelVersion       = "version"
	LabelConsumeMode   = "consume_mode"
)

// Node types (label node_type).
const (
	NodeBroker  = "broker"
	NodeProxy   = "proxy"
	NodeNamesrv = "namesrv"
)

// Protocol types (label protocol_type of rocketmq_rpc_latency).
const (
	ProtocolRemoting = "remoting"
	ProtocolGRPC     = "grpc"
)

// Consume modes (label consume_mode of rocketmq_consumer_connections).
const (
	ConsumeModePull = "pull"
	ConsumeModePush = "push"
	ConsumeModePop  = "pop"
)

// MessageSizeBuckets are the upper bounds (bytes) of rocketmq_message_size, as in RocketMQ:
// 1 KiB, 4 KiB, 512 KiB, 1 MiB, 2 MiB, 4 MiB.
var MessageSizeBuckets = []float64{1 << 10, 4 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}

// RPCLatencyBuckets are the upper bounds (milliseconds) of rocketmq_rpc_latency.
var RPCLatencyBuckets = []float64{1, 3, 5, 7, 10, 100, 1000, 3000}
