package message

import (
	"errors"
	"strings"
)

// System topic names (RocketMQ TopicValidator and friends).
const (
	TopicDefault          = "TBW102"
	TopicSchedule         = "SCHEDULE_TOPIC_XXXX"
	TopicScheduleV2       = "SCHEDULE_TOPIC_XXXX_V2"
	TopicBenchmark        = "BenchmarkTest"
	TopicTransHalf        = "RMQ_SYS_TRANS_HALF_TOPIC"
	TopicTransOpHalf      = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	TopicTransCheckMax    = "TRANS_CHECK_MAX_TIME_TOPIC"
	TopicTrace            = "RMQ_SYS_TRACE_TOPIC"
	TopicSelfTest         = "SELF_TEST_TOPIC"
	TopicOffsetMovedEvent = "OFFSET_MOVED_EVENT"
	TopicCheckpoint       = "CHECKPOINT_TOPIC"
	TopicTimer            = "rmq_sys_wheel_timer"
	// SystemTopicPrefix: every topic starting with it is a system topic.
	SystemTopicPrefix = "rmq_sys_"
	// TopicReviveLogPrefix + cluster name is the pop revive topic.
	TopicReviveLogPrefix = "rmq_sys_REVIVE_LOG_"

	RetryGroupTopicPrefix = "%RETRY%"
	DLQGroupTopicPrefix   = "%DLQ%"

	// TopicMaxLength is the longest ordinary topic; retry and DLQ topics may reach
	// TopicMaxLengthRetry.
	TopicMaxLength      = 127
	TopicMaxLengthRetry = 255
	// GroupMaxLength is the longest consumer/producer group name.
	GroupMaxLength = 120

	// Reserved group names (RocketMQ MixAll).
	GroupDefaultProducer     = "DEFAULT_PRODUCER"
	GroupDefaultConsumer     = "DEFAULT_CONSUMER"
	GroupToolsConsumer       = "TOOLS_CONSUMER"
	GroupScheduleConsumer    = "SCHEDULE_CONSUMER"
	GroupFilterSrvConsumer   = "FILTERSRV_CONSUMER"
	GroupMonitorConsumer     = "__MONITOR_CONSUMER"
	GroupClientInnerProducer = "CLIENT_INNER_PRODUCER"
	GroupSelfTestProducer    = "SELF_TEST_P_GROUP"
	GroupSelfTestConsumer    = "SELF_TEST_C_GROUP"
	GroupOnsHTTPProxy        = "CID_ONS-HTTP-PROXY"
	GroupOnsAPIPermission    = "CID_ONSAPI_PERMISSION"
	GroupOnsAPIOwner         = "CID_ONSAPI_OWNER"
	GroupOnsAPIPull          = "CID_ONSAPI_PULL"
	// SystemGroupPrefix: every group starting with it is reserved.
	SystemGroupPrefix = "CID_RMQ_SYS_"
)

var systemTopics = map[string]struct{}{
	TopicDefault: {}, TopicSchedule: {}, TopicScheduleV2: {}, TopicBenchmark: {},
	TopicTransHalf: {}, TopicTransOpHalf: {}, TopicTransCheckMax: {}, TopicTrace: {},
	TopicSelfTest: {}, TopicOffsetMovedEvent: {}, TopicCheckpoint: {},
}

var notAllowedSendTopics = map[string]struct{}{
	TopicSchedule: {}, TopicScheduleV2: {}, TopicTransHalf: {}, TopicTransOpHalf: {},
	TopicTransCheckMax: {}, TopicSelfTest: {}, TopicOffsetMovedEvent: {},
}

var reservedGroups = map[string]struct{}{
	GroupDefaultProducer: {}, GroupDefaultConsumer: {}, GroupToolsConsumer: {},
	GroupScheduleConsumer: {}, GroupFilterSrvConsumer: {}, GroupMonitorConsumer: {},
	GroupClientInnerProducer: {}, GroupSelfTestProducer: {}, GroupSelfTestConsumer: {},
	GroupOnsHTTPProxy: {}, GroupOnsAPIPermission: {}, GroupOnsAPIOwner: {}, GroupOnsAPIPull: {},
}

// RetryTopic is the retry topic of a consumer group: "%RETRY%" + group.
func RetryTopic(group string) string { return RetryGroupTopicPrefix + group }

// DLQTopic is the dead-letter topic of a consumer group: "%DLQ%" + group.
func DLQTopic(group string) string { return DLQGroupTopicPrefix + group }

// IsRetryTopic reports whether topic starts with "%RETRY%".
func IsRetryTopic(topic string) bool { return strings.HasPrefix(topic, RetryGroupTopicPrefix) }

// IsDLQTopic reports whether topic starts with "%DLQ%".
func IsDLQTopic(topic string) bool { return strings.HasPrefix(topic, DLQGroupTopicPrefix) }

// IsSystemTopic reports whether topic is one of RocketMQ's system topics (TBW102,
// SCHEDULE_TOPIC_XXXX, the transaction topics, RMQ_SYS_TRACE_TOPIC, ...) or starts with
// "rmq_sys_". Retry and DLQ topics are not system topics (see IsRetryTopic, IsDLQTopic).
func IsSystemTopic(topic string) bool {
	if _, ok := systemTopics[topic]; ok {
		return true
	}
	return strings.HasPrefix(topic, SystemTopicPrefix)
}

// IsNotAllowedSendTopic reports whether clients may never send to topic (RocketMQ
// NOT_ALLOWED_SEND_TOPIC_SET: NO_PERMISSION "Sending message to topic[X] is forbidden.").
func IsNotAllowedSendTopic(topic string) bool {
	_, ok := notAllowedSendTopics[topic]
	return ok
}

// IsReservedGroup reports whether group is reserved for RocketMQ internals (DEFAULT_CONSUMER,
// TOOLS_CONSUMER, CLIENT_INNER_PRODUCER, CID_RMQ_SYS_*, ...).
func IsReservedGroup(group string) bool {
	if _, ok := reservedGroups[group]; ok {
		return true
	}
	return strings.HasPrefix(group, SystemGroupPrefix)
}

// Name validation errors. The error text of ValidateTopic/ValidateGroup is the RocketMQ
// remark, ready to be returned to clients; errors.Is distinguishes the cause.
var (
	ErrNameBlank   = errors.New("name is blank")
	ErrNameIllegal = errors.New("name contains illegal characters")
	ErrNameTooLong = errors.New("name too long")
)

type nameError struct {
	kind   error
	remark string
}

func (e *nameError) Error() string { return e.remark }
func (e *nameError) Unwrap() error { return e.kind }

// validChar is RocketMQ's ^[%|a-zA-Z0-9_-]+$ character class.
func validChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '%' || c == '|' || c == '_' || c == '-'
}

func hasIllegalChar(s string) bool {
	for i := 0; i < len(s); i++ {
		if !validChar(s[i]) {
			return true
		}
	}
	return false
}

func isBlank(s string) bool { return strings.TrimSpace(s) == "" }

// ValidateTopic applies RocketMQ's topic rules: not blank, only ^[%|a-zA-Z0-9_-]+$, at most
// 127 characters (255 for %RETRY% and %DLQ% topics).
func ValidateTopic(name string) error {
	if isBlank(name) {
		return &nameError{ErrNameBlank, "The specified topic is blank."}
	}
	if hasIllegalChar(name) {
		return &nameError{ErrNameIllegal, "The specified topic: " + name +
			", contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"}
	}
	limit := TopicMaxLength
	if IsRetryTopic(name) || IsDLQTopic(name) {
		limit = TopicMaxLengthRetry
	}
	if len(name) > limit {
		return &nameError{ErrNameTooLong, "The specified topic: " + name +
			", is longer than topic max length: " + itoa(limit)}
	}
	return nil
}

// ValidateGroup applies RocketMQ's group rules: not blank, only ^[%|a-zA-Z0-9_-]+$, at most
// 120 characters. Reserved names are checked separately (IsReservedGroup).
func ValidateGroup(name string) error {
	if isBlank(name) {
		return &nameError{ErrNameBlank, "The specified group is blank."}
	}
	if hasIllegalChar(name) {
		return &nameError{ErrNameIllegal, "The specified group: " + name +
			", contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"}
	}
	if len(name) > GroupMaxLength {
		return &nameError{ErrNameTooLong, "The specified group: " + name +
			", is longer than group max length: " + itoa(GroupMaxLength)}
	}
	return nil
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
