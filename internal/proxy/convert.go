package proxy

import (
	"crypto/md5"
	"net"

	"google.golang.org/protobuf/encoding/protowire"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// MessageFromExt converts a decoded stored record (backends use it for popped and checked
// messages). Body aliases e.Body; a nil property map becomes empty.
func MessageFromExt(e *message.Ext) *Message {
	m := &Message{
		Topic: e.Topic, Body: e.Body, Flag: e.Flag, SysFlag: e.SysFlag, Properties: e.Properties,
		QueueID: e.QueueID, QueueOffset: e.QueueOffset, CommitLogOffset: e.CommitLogOffset,
		BornTimestamp: e.BornTimestamp, StoreTimestamp: e.StoreTimestamp,
		ReconsumeTimes: e.ReconsumeTimes, OffsetMsgID: e.OffsetMsgID(),
	}
	if m.Properties == nil {
		m.Properties = map[string]string{}
	}
	if e.BornHost.IsValid() {
		m.BornHost = e.BornHost.String()
	}
	if e.StoreHost.IsValid() {
		m.StoreHost = e.StoreHost.String()
	}
	return m
}

// messageTypeOf derives a stored message's type from its properties (Java GrpcConverter).
func messageTypeOf(p map[string]string) MessageType {
	switch {
	case p[PropTransactionPrep] == "true":
		return MessageTypeTransaction
	case p[PropDelayLevel] != "" || p[PropTimerDeliverMS] != "" || p[PropTimerDelaySec] != "" || p[PropTimerDelayMS] != "":
		return MessageTypeDelay
	case p[PropShardingKey] != "":
		return MessageTypeFIFO
	default:
		return MessageTypeNormal
	}
}

// toPBMessage converts a stored (popped or checked) message. handle is the client-facing
// receipt handle ("" for none); invisible is the pop's invisible time (0 for none).
// bodyDigest is what the Java proxy sends (GrpcConverter): MD5 as upper-case hex. The Node.js
// SDK verifies it that way (it also expects CRC32 as a *decimal* string, unlike go5's hex) and
// its push consumer discards every message whose digest does not match; go5 computes a
// lower-case hex digest but only records the mismatch in a flag it never reads.
func bodyDigest(body []byte) *pb.Digest {
	const upperHex = "0123456789ABCDEF"
	sum := md5.Sum(body)
	var buf [2 * md5.Size]byte
	for i, c := range sum {
		buf[2*i], buf[2*i+1] = upperHex[c>>4], upperHex[c&0x0f]
	}
	return &pb.Digest{Type: pb.DigestType_MD5, Checksum: string(buf[:])}
}

func toPBMessage(m *Message, handle string, invisible time.Duration) *pb.Message {
	p := validUTF8Properties(m.Properties)
	topic := m.Topic
	if rt := p[PropRealTopic]; rt != "" && strings.HasPrefix(topic, "RMQ_SYS_TRANS_HALF_TOPIC") {
		topic = rt
	}
	id := p[PropUniqKey]
	if id == "" {
		id = m.OffsetMsgID
	}
	sp := &pb.SystemProperties{
		MessageId:    id,
		BodyDigest:   bodyDigest(m.Body),
		BodyEncoding: pb.Encoding_IDENTITY,
		MessageType:  pb.MessageType(messageTypeOf(p)),
		BornHost:     hostOnly(m.BornHost),
		StoreHost:    m.StoreHost,
		QueueId:      m.QueueID,
	}
	if m.SysFlag&SysFlagCompressed != 0 {
		sp.BodyEncoding = pb.Encoding_GZIP
	}
	if h := p[PropBornHost]; h != "" {
		sp.BornHost = h
	}
	if t, ok := p[PropTags]; ok && t != "" {
		sp.Tag = &t
	}
	if k := p[PropKeys]; k != "" {
		sp.Keys = message.SplitKeys(k)
	}
	if g := p[PropShardingKey]; g != "" {
		sp.MessageGroup = &g
	}
	sp.BornTimestamp = timestamppb.New(time.UnixMilli(m.BornTimestamp))
	if m.StoreTimestamp > 0 {
		sp.StoreTimestamp = timestamppb.New(time.UnixMilli(m.StoreTimestamp))
	}
	if v := p[PropTimerDeliverMS]; v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			sp.DeliveryTimestamp = timestamppb.New(time.UnixMilli(ms))
		}
	}
	qo := m.QueueOffset
	sp.QueueOffset = &qo
	attempt := m.ReconsumeTimes + 1
	sp.DeliveryAttempt = &attempt
	if handle != "" {
		sp.ReceiptHandle = &handle
	}
	if invisible > 0 {
		sp.InvisibleDuration = durationpb.New(invisible)
	}
	if tc := p[PropTraceContext]; tc != "" {
		sp.TraceContext = &tc
	}
	user := map[string]string{}
	for k, v := range p {
		if !hiddenProperty(k) {
			user[k] = v
		}
	}
	// dead_letter_queue (field 20) is newer than the v5.1.2 stubs; DLQ origin stays visible
	// through the (system) properties DLQ_ORIGIN_TOPIC / DLQ_ORIGIN_MESSAGE_ID, exposed to
	// clients as user properties so consumers of %DLQ%<group> can see where a message came from.
	if v := p[PropDLQOriginTopic]; v != "" {
		user[PropDLQOriginTopic] = v
	}
	if v := p[PropDLQOriginMsgID]; v != "" {
		user[PropDLQOriginMsgID] = v
	}
	if t, id := p[PropDLQOriginTopic], p[PropDLQOriginMsgID]; t != "" {
		setDeadLetterQueue(sp, t, id)
	}
	return &pb.Message{
		Topic:            namespacedResource(topic),
		UserProperties:   user,
		SystemProperties: sp,
		Body:             m.Body,
	}
}

// validUTF8Properties returns props, or a copy whose keys and values that are not valid
// UTF-8 have each run of bad bytes replaced by U+FFFD. Remoting producers may store any
// bytes there (a Latin-1 tag, say), proto3 strings must be UTF-8, and one such message would
// otherwise fail the marshalling of a whole receive (QA R10Q-4); Apache's proxy decodes
// properties with Java's UTF-8 decoder, which substitutes U+FFFD the same way.
func validUTF8Properties(props map[string]string) map[string]string {
	bad := false
	for k, v := range props {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			bad = true
			break
		}
	}
	if !bad {
		return props
	}
	out := make(map[string]string, len(props))
	for k, v := range props {
		out[strings.ToValidUTF8(k, "\uFFFD")] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return out
}

// hostOnly is the address part of "ip:port": a message without __BORNHOST (sent over
// remoting) shows its born host as Apache's MessageExt.getBornHostString, the IP alone (QA
// R9N-4); the store host keeps its port, as Apache's socketAddress2String.
func hostOnly(hostPort string) string {
	if h, _, err := net.SplitHostPort(hostPort); err == nil {
		return h
	}
	return hostPort
}

// setDeadLetterQueue writes SystemProperties.dead_letter_queue (field 20: DeadLetterQueue{
// topic = 1, message_id = 2}) as an unknown field: the v5.1.2 stubs predate it, newer clients
// decode it, older ones skip it.
func setDeadLetterQueue(sp *pb.SystemProperties, topic, msgID string) {
	var inner []byte
	inner = protowire.AppendTag(inner, 1, protowire.BytesType)
	inner = protowire.AppendString(inner, topic)
	if msgID != "" {
		inner = protowire.AppendTag(inner, 2, protowire.BytesType)
		inner = protowire.AppendString(inner, msgID)
	}
	var b []byte
	b = protowire.AppendTag(b, 20, protowire.BytesType)
	b = protowire.AppendBytes(b, inner)
	r := sp.ProtoReflect()
	r.SetUnknown(append(r.GetUnknown(), b...))
}

// namespacedResource is a stored topic as the SDKs expect it back: the name without its
// namespace, the namespace in resource_namespace (Apache's GrpcConverter does the same).
func namespacedResource(topic string) *pb.Resource {
	ns, bare := withoutNamespace(topic)
	return &pb.Resource{Name: bare, ResourceNamespace: ns}
}
