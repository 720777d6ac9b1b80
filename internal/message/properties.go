package message

import (
	"bytes"
	"errors"
	"fmt"
)

// Property keys (RocketMQ MessageConst). Values are the on-wire names.
const (
	PropertyKeys                           = "KEYS"
	PropertyTags                           = "TAGS"
	PropertyWaitStoreMsgOK                 = "WAIT"
	PropertyDelayLevel                     = "DELAY"
	PropertyRetryTopic                     = "RETRY_TOPIC"
	PropertyRealTopic                      = "REAL_TOPIC"
	PropertyRealQueueID                    = "REAL_QID"
	PropertyTransactionPrepared            = "TRAN_MSG"
	PropertyProducerGroup                  = "PGROUP"
	PropertyMinOffset                      = "MIN_OFFSET"
	PropertyMaxOffset                      = "MAX_OFFSET"
	PropertyBuyerID                        = "BUYER_ID"
	PropertyOriginMessageID                = "ORIGIN_MESSAGE_ID"
	PropertyTransferFlag                   = "TRANSFER_FLAG"
	PropertyCorrectionFlag                 = "CORRECTION_FLAG"
	PropertyMQ2Flag                        = "MQ2_FLAG"
	PropertyReconsumeTime                  = "RECONSUME_TIME"
	PropertyMsgRegion                      = "MSG_REGION"
	PropertyTraceSwitch                    = "TRACE_ON"
	PropertyUniqKey                        = "UNIQ_KEY"
	PropertyExtendUniqInfo                 = "EXTEND_UNIQ_INFO"
	PropertyMaxReconsumeTimes              = "MAX_RECONSUME_TIMES"
	PropertyConsumeStartTimestamp          = "CONSUME_START_TIME"
	PropertyInnerNum                       = "INNER_NUM"
	PropertyInnerBase                      = "INNER_BASE"
	PropertyDupInfo                        = "DUP_INFO"
	PropertyCheckImmunityTimeInSeconds     = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropertyTransactionPreparedQueueOffset = "TRAN_PREPARED_QUEUE_OFFSET"
	PropertyTransactionID                  = "__transactionId__"
	PropertyTransactionCheckTimes          = "TRANSACTION_CHECK_TIMES"
	PropertyInstanceID                     = "INSTANCE_ID"
	PropertyCorrelationID                  = "CORRELATION_ID"
	PropertyMessageReplyToClient           = "REPLY_TO_CLIENT"
	PropertyMessageTTL                     = "TTL"
	PropertyReplyMessageArriveTime         = "ARRIVE_TIME"
	PropertyPushReplyTime                  = "PUSH_REPLY_TIME"
	PropertyCluster                        = "CLUSTER"
	PropertyMessageType                    = "MSG_TYPE"
	PropertyPopCK                          = "POP_CK"
	PropertyPopCKOffset                    = "POP_CK_OFFSET"
	PropertyFirstPopTime                   = "1ST_POP_TIME"
	PropertyShardingKey                    = "__SHARDINGKEY"
	PropertyForwardQueueID                 = "PROPERTY_FORWARD_QUEUE_ID"
	PropertyRedirect                       = "REDIRECT"
	PropertyInnerMultiDispatch             = "INNER_MULTI_DISPATCH"
	PropertyInnerMultiQueueOffset          = "INNER_MULTI_QUEUE_OFFSET"
	PropertyTraceContext                   = "TRACE_CONTEXT"
	PropertyTimerDelaySec                  = "TIMER_DELAY_SEC"
	PropertyTimerDeliverMS                 = "TIMER_DELIVER_MS"
	PropertyTimerDelayMS                   = "TIMER_DELAY_MS"
	PropertyTimerEnqueueMS                 = "TIMER_ENQUEUE_MS"
	PropertyTimerDequeueMS                 = "TIMER_DEQUEUE_MS"
	PropertyTimerRollTimes                 = "TIMER_ROLL_TIMES"
	PropertyTimerOutMS                     = "TIMER_OUT_MS"
	PropertyTimerDelUniqKey                = "TIMER_DEL_UNIQKEY"
	PropertyTimerDelMS                     = "TIMER_DEL_MS"
	PropertyTimerDelayLevel                = "TIMER_DELAY_LEVEL"
	PropertyBornHost                       = "__BORNHOST"
	PropertyBornTimestamp                  = "BORN_TIMESTAMP"
	PropertyDLQOriginTopic                 = "DLQ_ORIGIN_TOPIC"
	PropertyDLQOriginMessageID             = "DLQ_ORIGIN_MESSAGE_ID"
	PropertyCRC32                          = "__CRC32#"

	// PropertyTransientPrefix marks properties that are never stored (set by clients locally).
	PropertyTransientPrefix = "__RMQ.TRANSIENT."

	// KeySeparator separates several keys inside the KEYS property.
	KeySeparator = " "

	// NameValueSeparator and PropertySeparator delimit the properties string.
	NameValueSeparator byte = 0x01
	PropertySeparator  byte = 0x02

	// MaxPropertiesSize is the largest encoded properties string a record can hold (PROPLEN is
	// a signed 16-bit field).
	MaxPropertiesSize = 32767
)

// systemProperties is RocketMQ's MessageConst.STRING_HASH_SET: names reserved for the system.
var systemProperties = map[string]struct{}{
	PropertyTraceSwitch: {}, PropertyMsgRegion: {}, PropertyKeys: {}, PropertyTags: {},
	PropertyWaitStoreMsgOK: {}, PropertyDelayLevel: {}, PropertyRetryTopic: {},
	PropertyRealTopic: {}, PropertyRealQueueID: {}, PropertyTransactionPrepared: {},
	PropertyProducerGroup: {}, PropertyMinOffset: {}, PropertyMaxOffset: {},
	PropertyBuyerID: {}, PropertyOriginMessageID: {}, PropertyTransferFlag: {},
	PropertyCorrectionFlag: {}, PropertyMQ2Flag: {}, PropertyReconsumeTime: {},
	PropertyUniqKey: {}, PropertyMaxReconsumeTimes: {}, PropertyConsumeStartTimestamp: {},
	PropertyPopCK: {}, PropertyPopCKOffset: {}, PropertyFirstPopTime: {},
	PropertyTransactionPreparedQueueOffset: {}, PropertyDupInfo: {},
	PropertyExtendUniqInfo: {}, PropertyInstanceID: {}, PropertyCorrelationID: {},
	PropertyMessageReplyToClient: {}, PropertyMessageTTL: {},
	PropertyReplyMessageArriveTime: {}, PropertyPushReplyTime: {}, PropertyCluster: {},
	PropertyMessageType: {}, PropertyInnerMultiQueueOffset: {}, PropertyTimerDelayMS: {},
	PropertyTimerDelaySec: {}, PropertyTimerDeliverMS: {}, PropertyTimerEnqueueMS: {},
	PropertyTimerDequeueMS: {}, PropertyTimerRollTimes: {}, PropertyTimerOutMS: {},
	PropertyTimerDelUniqKey: {}, PropertyTimerDelMS: {}, PropertyTimerDelayLevel: {},
	PropertyBornHost: {}, PropertyBornTimestamp: {}, PropertyDLQOriginTopic: {},
	PropertyDLQOriginMessageID: {}, PropertyCRC32: {},
}

// IsSystemProperty reports whether key is reserved by RocketMQ (MessageConst.STRING_HASH_SET).
// The gRPC proxy rejects user properties with these names (ILLEGAL_MESSAGE_PROPERTY_KEY).
func IsSystemProperty(key string) bool {
	_, ok := systemProperties[key]
	return ok
}

// Errors returned by the properties codec.
var (
	ErrMalformedProperties = errors.New("message: malformed properties")
	ErrInvalidProperty     = errors.New("message: invalid property")
	ErrPropertiesTooLarge  = errors.New("message: properties too large")
)

// ValidateProperties checks that every key is non-empty and that no key or value contains a
// separator byte (0x01 or 0x02), which would corrupt the encoded string. It does not check the
// total size (AppendRecord does).
func ValidateProperties(props map[string]string) error {
	for k, v := range props {
		if k == "" {
			return fmt.Errorf("%w: empty key", ErrInvalidProperty)
		}
		if hasSeparator(k) {
			return fmt.Errorf("%w: key %q contains a separator byte", ErrInvalidProperty, k)
		}
		if hasSeparator(v) {
			return fmt.Errorf("%w: value of %q contains a separator byte", ErrInvalidProperty, k)
		}
	}
	return nil
}

// property is one key/value entry of a properties map.
type property struct{ k, v string }

// sortedProperties validates props (as ValidateProperties) and returns its entries in
// ascending key order, stored in buf while they fit, with their encoded length: the one pass
// over the map that encoding a record needs (no lookups, no allocation up to len(buf)).
func sortedProperties(props map[string]string, buf []property) ([]property, int, error) {
	out, n, bad := collectProperties(props, buf)
	if bad {
		return nil, 0, ValidateProperties(props)
	}
	return out, n, nil
}

// collectProperties returns props' entries sorted by key (in buf while they fit), their
// encoded length, and whether some key or value would not encode (see ValidateProperties).
func collectProperties(props map[string]string, buf []property) (out []property, n int, bad bool) {
	out = buf[:0]
	for k, v := range props {
		bad = bad || k == "" || hasSeparator(k) || hasSeparator(v)
		n += len(k) + len(v) + 2
		out = append(out, property{k, v})
	}
	// Insertion sort: a message carries a handful of properties.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].k < out[j-1].k; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, n, bad
}

// appendSortedProperties appends the encoding of ps (from sortedProperties) to dst.
func appendSortedProperties(dst []byte, ps []property) []byte {
	for _, p := range ps {
		dst = append(dst, p.k...)
		dst = append(dst, NameValueSeparator)
		dst = append(dst, p.v...)
		dst = append(dst, PropertySeparator)
	}
	return dst
}

func hasSeparator(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == NameValueSeparator || s[i] == PropertySeparator {
			return true
		}
	}
	return false
}

// PropertiesSize is the encoded length of props (what EncodeProperties would return).
func PropertiesSize(props map[string]string) int {
	n := 0
	for k, v := range props {
		n += len(k) + len(v) + 2
	}
	return n
}

// EncodeProperties returns props as RocketMQ's properties string, key\x01value\x02 for each
// entry, keys in ascending byte order (deterministic output). Callers must have validated props
// (ValidateProperties); an empty or nil map encodes to nil.
func EncodeProperties(props map[string]string) []byte {
	if len(props) == 0 {
		return nil
	}
	return AppendProperties(make([]byte, 0, PropertiesSize(props)), props)
}

// AppendProperties appends the encoding of props to dst (see EncodeProperties). It does not
// allocate when dst has room and props has at most 16 entries.
func AppendProperties(dst []byte, props map[string]string) []byte {
	var buf [16]property
	ps, _, _ := collectProperties(props, buf[:])
	return appendSortedProperties(dst, ps)
}

// DecodeProperties parses a properties string. Like RocketMQ it accepts a missing trailing
// \x02 and lets the last duplicate key win. An entry without \x01, an empty key or an empty
// entry in the middle of the string is ErrMalformedProperties. Empty input gives an empty,
// non-nil map.
func DecodeProperties(b []byte) (map[string]string, error) {
	m := make(map[string]string, countEntries(b))
	err := walkProperties(b, func(k, v []byte) bool {
		m[string(k)] = string(v)
		return true
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func countEntries(b []byte) int {
	n := 0
	for _, c := range b {
		if c == PropertySeparator {
			n++
		}
	}
	if len(b) > 0 && b[len(b)-1] != PropertySeparator {
		n++
	}
	return n
}

// walkProperties calls fn for each entry until fn returns false; it validates the whole
// string's structure up to the point it stops.
func walkProperties(b []byte, fn func(k, v []byte) bool) error {
	for i := 0; i < len(b); {
		end := len(b)
		if n := bytes.IndexByte(b[i:], PropertySeparator); n >= 0 {
			end = i + n
		}
		entry := b[i:end]
		sep := bytes.IndexByte(entry, NameValueSeparator)
		if sep <= 0 {
			return fmt.Errorf("%w: entry at byte %d has no key", ErrMalformedProperties, i)
		}
		v := entry[sep+1:]
		if bytes.IndexByte(v, NameValueSeparator) >= 0 {
			return fmt.Errorf("%w: entry at byte %d has two name/value separators", ErrMalformedProperties, i)
		}
		if !fn(entry[:sep], v) {
			return nil
		}
		i = end + 1
	}
	return nil
}

// LookupProperty finds key in an encoded properties string without allocating. It returns
// the value (a sub-slice of b) and whether the key was present; malformed input reports false.
// When a key repeats the last occurrence wins, as in DecodeProperties.
func LookupProperty(b []byte, key string) ([]byte, bool) {
	var val []byte
	found := false
	err := walkProperties(b, func(k, v []byte) bool {
		if string(k) == key {
			val, found = v, true
		}
		return true
	})
	if err != nil {
		return nil, false
	}
	return val, found
}

// LookupProperties is LookupProperty for several keys in one pass over b: vals[i] and
// found[i] answer keys[i] (the last entry wins when a key repeats). It returns false, with
// nothing found, when b is malformed.
func LookupProperties(b []byte, keys []string, vals [][]byte, found []bool) bool {
	clear(vals)
	clear(found)
	err := walkProperties(b, func(k, v []byte) bool {
		for i, key := range keys {
			if string(k) == key {
				vals[i], found[i] = v, true
			}
		}
		return true
	})
	if err != nil {
		clear(vals)
		clear(found)
		return false
	}
	return true
}

// CheckProperties validates the structure of an encoded properties string (the rules of
// DecodeProperties) without allocating.
func CheckProperties(b []byte) error {
	return walkProperties(b, func(k, v []byte) bool { return true })
}
