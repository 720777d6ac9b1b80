package proxy

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

// Limits from the Java proxy (ProxyConfig / GrpcValidator).
const (
	maxTopicLen          = 127
	maxRetryTopicLen     = 255
	maxGroupLen          = 120
	maxMessageGroupLen   = 64
	maxUserProperties    = 128
	maxUserPropertyBytes = 16 * 1024
	maxBatchSize         = 32
)

// systemTopics may never be used by gRPC clients.
var systemTopics = map[string]bool{
	"SCHEDULE_TOPIC_XXXX": true, "RMQ_SYS_TRANS_HALF_TOPIC": true, "RMQ_SYS_TRANS_OP_HALF_TOPIC": true,
	"TRANS_CHECK_MAX_TIME_TOPIC": true, "SELF_TEST_TOPIC": true, "OFFSET_MOVED_EVENT": true,
	"TBW102": true, "BenchmarkTest": true, "RMQ_SYS_TRACE_TOPIC": true, "CHECKPOINT_TOPIC": true,
	"rmq_sys_REVIVE_LOG": true,
}

var systemGroups = map[string]bool{
	"DEFAULT_CONSUMER": true, "DEFAULT_PRODUCER": true, "TOOLS_CONSUMER": true,
	"CLIENT_INNER_PRODUCER": true, "FILTERSRV_CONSUMER": true, "__MONITOR_CONSUMER": true,
	"SELF_TEST_P_GROUP": true, "SELF_TEST_C_GROUP": true,
}

func legalNameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '%' || c == '|' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validateTopic checks a topic name and returns it inside the resource's namespace (see
// namespace.go). forSend forbids %RETRY%/%DLQ% topics (brokers own them); consumers may read
// %DLQ%<group> to inspect dead letters.
func validateTopic(r *pb.Resource, forSend bool) (string, error) {
	name := r.GetName()
	switch {
	case strings.TrimSpace(name) == "":
		return "", statusErrorf(pb.Code_ILLEGAL_TOPIC, "topic name cannot be empty")
	case !legalNameChars(name):
		return "", statusErrorf(pb.Code_ILLEGAL_TOPIC, "topic %q contains illegal characters, allowing only ^[%%|a-zA-Z0-9_-]+$", name)
	case systemTopics[name] || strings.HasPrefix(name, "rmq_sys_"):
		return "", statusErrorf(pb.Code_ILLEGAL_TOPIC, "cannot access system topic %q", name)
	}
	internal := strings.HasPrefix(name, "%RETRY%") || strings.HasPrefix(name, "%DLQ%")
	if internal && forSend {
		return "", statusErrorf(pb.Code_ILLEGAL_TOPIC, "cannot send to internal topic %q", name)
	}
	limit := maxTopicLen
	if internal {
		limit = maxRetryTopicLen
	}
	if len(name) > limit {
		return "", statusErrorf(pb.Code_ILLEGAL_TOPIC, "topic %q is longer than %d characters", name, limit)
	}
	return wrapNamespace(r.GetResourceNamespace(), name), nil
}

// validateGroup checks a consumer group name and returns it inside the resource's namespace.
func validateGroup(r *pb.Resource) (string, error) {
	name := r.GetName()
	switch {
	case strings.TrimSpace(name) == "":
		return "", statusErrorf(pb.Code_ILLEGAL_CONSUMER_GROUP, "consumer group cannot be empty")
	case len(name) > maxGroupLen:
		return "", statusErrorf(pb.Code_ILLEGAL_CONSUMER_GROUP, "consumer group %q is longer than %d characters", name, maxGroupLen)
	case !legalNameChars(name):
		return "", statusErrorf(pb.Code_ILLEGAL_CONSUMER_GROUP, "consumer group %q contains illegal characters, allowing only ^[%%|a-zA-Z0-9_-]+$", name)
	case systemGroups[name] || strings.HasPrefix(name, "CID_RMQ_SYS_"):
		return "", statusErrorf(pb.Code_ILLEGAL_CONSUMER_GROUP, "cannot use system consumer group %q", name)
	}
	return wrapNamespace(r.GetResourceNamespace(), name), nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// validateInvisible checks an invisible duration against [min, MaxInvisible] with
// Apache's texts (GrpcValidator.validateInvisibleTime: milliseconds, QA R11B-9).
// ReceiveMessage passes MinInvisible; ChangeInvisibleDuration passes 0.
func (c *Config) validateInvisible(d, min time.Duration) error {
	if d < min {
		return statusErrorf(pb.Code_ILLEGAL_INVISIBLE_TIME, "the invisibleTime is too small. min is %d", min.Milliseconds())
	}
	if d > c.MaxInvisible {
		return statusErrorf(pb.Code_ILLEGAL_INVISIBLE_TIME, "the invisibleTime is too large. max is %d", c.MaxInvisible.Milliseconds())
	}
	return nil
}

// outgoing is a validated message ready for the backend.
type outgoing struct {
	msg      *Message
	typ      MessageType
	group    string // FIFO message group
	clientID string // the message id the client chose (echoed)
}

// buildMessage validates one SendMessage entry and converts it to a stored message
// (Java SendMessageActivity semantics). now is the proxy clock.
func (c *Config) buildMessage(m *pb.Message, topic string, now time.Time) (*outgoing, error) {
	sp := m.GetSystemProperties()
	if sp == nil {
		return nil, statusErrorf(pb.Code_BAD_REQUEST, "system properties are required")
	}
	id := sp.GetMessageId()
	if strings.TrimSpace(id) == "" {
		return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_ID, "message id cannot be empty")
	}
	if len(m.GetBody()) == 0 {
		return nil, statusErrorf(CodeMessageBodyEmpty, "message body cannot be empty")
	}
	if len(m.GetBody()) > c.MaxBodySize {
		return nil, statusErrorf(pb.Code_MESSAGE_BODY_TOO_LARGE, "message body cannot exceed the max %d", c.MaxBodySize)
	}

	props := make(map[string]string, len(m.GetUserProperties())+8)
	size := 0
	if len(m.GetUserProperties()) > maxUserProperties {
		return nil, statusErrorf(pb.Code_MESSAGE_PROPERTIES_TOO_LARGE, "too many user properties, max is %d", maxUserProperties)
	}
	for k, v := range m.GetUserProperties() {
		if hasControl(k) || hasControl(v) {
			return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_PROPERTY_KEY, "property key or value %q contains control characters", k)
		}
		if exposedOnReceive(k) {
			continue // not stored: the replayed message is not a dead letter
		}
		if IsSystemProperty(k) {
			return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_PROPERTY_KEY, "property is used by system: %s", k)
		}
		size += len(k) + len(v)
		if k == "" || v == "" {
			// Apache accepts an empty key or value, and its broker's properties decoder
			// (MessageDecoder.string2messageProperties) drops such a pair, so consumers never
			// see it (QA R11B-11).
			continue
		}
		props[k] = v
	}

	// An empty tag means no tag (Apache GrpcValidator.validateTag skips it and no TAGS property
	// is set); a blank one is refused.
	if sp.Tag != nil && sp.GetTag() != "" {
		tag := sp.GetTag()
		switch {
		case strings.TrimSpace(tag) == "":
			return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_TAG, "tag cannot be the char sequence of whitespace")
		case strings.Contains(tag, "|"):
			return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_TAG, "tag cannot contain '|'")
		case hasControl(tag):
			return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_TAG, "tag cannot contain control character")
		}
		props[PropTags] = tag
		size += len(tag)
	}
	if len(sp.GetKeys()) > 0 {
		// As Apache's SendMessageActivity.validateMessageKey: an empty key is skipped (not an
		// error, QA R9M-2); a non-empty blank one or one with control characters is refused.
		keys := make([]string, 0, len(sp.GetKeys()))
		for _, k := range sp.GetKeys() {
			if k == "" {
				continue
			}
			if strings.TrimSpace(k) == "" || hasControl(k) {
				return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_KEY, "key cannot be blank or contain control characters")
			}
			size += len(k)
			keys = append(keys, k)
		}
		if len(keys) > 0 {
			props[PropKeys] = strings.Join(keys, " ")
		}
	}
	if size > maxUserPropertyBytes {
		return nil, statusErrorf(pb.Code_MESSAGE_PROPERTIES_TOO_LARGE, "the total size of user property is too large, max is %d", maxUserPropertyBytes)
	}

	group := sp.GetMessageGroup()
	if sp.MessageGroup != nil {
		switch {
		case strings.TrimSpace(group) == "":
			return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_GROUP, "message group cannot be blank")
		case len(group) >= maxMessageGroupLen:
			return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_GROUP, "message group exceed the max size %d", maxMessageGroupLen)
		case hasControl(group):
			return nil, statusErrorf(pb.Code_ILLEGAL_MESSAGE_GROUP, "message group cannot contain control character")
		}
	}
	hasDelivery := sp.DeliveryTimestamp != nil
	// The type checked against the topic comes from the fields, as Apache's proxy derives it
	// (SendMessageActivity.buildMessageProperty, TopicMessageType.parseFromMessageProperty):
	// message_type is read only for TRANSACTION; otherwise a delivery time makes the message
	// DELAY, else a message group makes it FIFO, else it is NORMAL. The group and the
	// delivery time become properties whatever the type, so a delayed message may carry a
	// group (go5 and Node.js label it FIFO; accepted by DELAY and MIXED topics, QA R11B-1)
	// and a NORMAL-labelled message with a group is FIFO (QA R10S-2).
	typ := MessageTypeNormal
	switch {
	case MessageType(sp.GetMessageType()) == MessageTypeTransaction:
		typ = MessageTypeTransaction
	case hasDelivery:
		typ = MessageTypeDelay
	case group != "":
		typ = MessageTypeFIFO
	}
	if group != "" {
		props[PropShardingKey] = group
	}
	if hasDelivery {
		at := sp.GetDeliveryTimestamp().AsTime()
		if at.After(now.Add(c.MaxDelay)) {
			return nil, statusErrorf(pb.Code_ILLEGAL_DELIVERY_TIME, "the max delay time of message is too large, max is %s", c.MaxDelay)
		}
		props[PropTimerDeliverMS] = strconv.FormatInt(at.UnixMilli(), 10)
	}

	msg := &Message{Topic: topic, Body: m.GetBody(), Properties: props}
	props[PropUniqKey] = id
	props[PropWaitStoreMsgOK] = "true"
	// As Apache's SendMessageActivity, every message records its producer group (the topic
	// name: gRPC producers have no group; transaction check-backs are routed by it) and the
	// delivery attempt the client sent as RECONSUME_TIME.
	props[PropProducerGroup] = topic
	props[PropReconsumeTime] = strconv.FormatInt(int64(sp.GetDeliveryAttempt()), 10)
	if typ == MessageTypeTransaction {
		msg.SysFlag |= SysFlagTransactionPrepared
		props[PropTransactionPrep] = "true"
		if d := sp.GetOrphanedTransactionRecoveryDuration(); d != nil {
			if d.AsDuration() > MaxTransactionRecovery {
				return nil, statusErrorf(pb.Code_BAD_REQUEST, "the max transaction recovery time of message is too large, max is %d",
					int64(MaxTransactionRecovery/time.Second))
			}
			secs := max(d.AsDuration(), 0) / time.Second
			props[PropCheckImmunity] = strconv.FormatInt(int64(secs), 10)
		}
	}
	if sp.GetBodyEncoding() == pb.Encoding_GZIP {
		msg.SysFlag |= SysFlagCompressed
	}
	if ts := sp.GetBornTimestamp(); ts != nil {
		msg.BornTimestamp = ts.AsTime().UnixMilli()
	} else {
		msg.BornTimestamp = now.UnixMilli()
	}
	props[PropBornTimestamp] = strconv.FormatInt(msg.BornTimestamp, 10)
	if h := sp.GetBornHost(); h != "" && !hasControl(h) {
		props[PropBornHost] = h
	}
	if tc := sp.GetTraceContext(); tc != "" && !hasControl(tc) {
		props[PropTraceContext] = tc
	}
	return &outgoing{msg: msg, typ: typ, group: group, clientID: id}, nil
}

// parseTagFilter validates a TAG expression ("*", "A", "A||B").
func parseTagFilter(expr string) (string, error) {
	e := strings.TrimSpace(expr)
	if e == "" || e == "*" {
		return "*", nil
	}
	// Empty segments ("A||", "||A", "A|| ||B") are dropped, as Apache's FilterAPI does; an
	// expression with no tag left, or a control character, is refused.
	tags := make([]string, 0, 4)
	for _, t := range strings.Split(e, "||") {
		t = strings.TrimSpace(t)
		if hasControl(t) {
			return "", statusErrorf(pb.Code_ILLEGAL_FILTER_EXPRESSION, "illegal tag expression %q", expr)
		}
		if t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return "", statusErrorf(pb.Code_ILLEGAL_FILTER_EXPRESSION, "illegal tag expression %q: no tag", expr)
	}
	return strings.Join(tags, "||"), nil
}
