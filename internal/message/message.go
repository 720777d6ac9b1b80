package message

import (
	"net/netip"
	"strings"
)

// Magic codes of the commit-log record (MAGICCODE field).
const (
	// MagicV1 marks a record whose topic length is one byte (topics up to 127 bytes).
	MagicV1 int32 = -626843481 // 0xDAA320A7
	// MagicV2 marks a record whose topic length is two bytes (topics longer than 127 bytes).
	MagicV2 int32 = -626843477 // 0xDAA320AB
	// MagicBlank marks the blank filler at the end of a commit-log segment.
	MagicBlank int32 = -875286124 // 0xCBD43194
)

// SysFlag bits (RocketMQ MessageSysFlag).
const (
	SysFlagCompressed          int32 = 0x1
	SysFlagMultiTags           int32 = 0x2
	SysFlagTransactionNotType  int32 = 0x0
	SysFlagTransactionPrepared int32 = 0x4
	SysFlagTransactionCommit   int32 = 0x8
	SysFlagTransactionRollback int32 = 0xC
	SysFlagBornHostV6          int32 = 0x10
	SysFlagStoreHostV6         int32 = 0x20
	SysFlagNeedUnwrap          int32 = 0x40
	SysFlagInnerBatch          int32 = 0x80
	// SysFlagCompressionTypeMask selects bits 8-10: compression type (LZ4 1, ZSTD 2, ZLIB 3).
	SysFlagCompressionTypeMask int32 = 0x700
	// SysFlagTransactionMask selects the two transaction-type bits.
	SysFlagTransactionMask int32 = 0xC
)

// TransactionType returns the transaction bits of sysFlag (one of the SysFlagTransaction*
// values).
func TransactionType(sysFlag int32) int32 { return sysFlag & SysFlagTransactionMask }

// SetTransactionType replaces the transaction bits of sysFlag with t.
func SetTransactionType(sysFlag, t int32) int32 {
	return sysFlag&^SysFlagTransactionMask | t&SysFlagTransactionMask
}

// Message is what a producer sends: a topic, a flag the broker never interprets, a body and
// string properties. Properties may be nil; the helpers treat nil as empty.
type Message struct {
	Topic      string
	Flag       int32
	Body       []byte
	Properties map[string]string
}

// Property returns the property k ("" when absent).
func (m *Message) Property(k string) string { return m.Properties[k] }

// SetProperty sets property k to v, allocating the map when needed.
func (m *Message) SetProperty(k, v string) {
	if m.Properties == nil {
		m.Properties = make(map[string]string, 4)
	}
	m.Properties[k] = v
}

// RemoveProperty deletes property k.
func (m *Message) RemoveProperty(k string) { delete(m.Properties, k) }

// Tags returns the TAGS property.
func (m *Message) Tags() string { return m.Properties[PropertyTags] }

// Keys returns the KEYS property split into its keys (empty keys dropped).
func (m *Message) Keys() []string { return SplitKeys(m.Properties[PropertyKeys]) }

// SplitKeys splits a KEYS value on single spaces, RocketMQ's KEY_SEPARATOR, dropping empty
// keys: other whitespace (a tab) belongs to a key, as the index and Apache see it (QA R9N-6).
func SplitKeys(keys string) []string {
	var out []string
	for k := range strings.SplitSeq(keys, " ") {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// UniqKey returns the client-assigned unique id (UNIQ_KEY), "" when absent.
func (m *Message) UniqKey() string { return m.Properties[PropertyUniqKey] }

// Ext is a stored message: the producer's Message plus everything the broker and the store
// assign. Its fields map one to one onto the record layout (see package doc).
type Ext struct {
	Message
	QueueID                   int32
	QueueOffset               int64
	CommitLogOffset           int64
	StoreSize                 int32
	SysFlag                   int32
	BornTimestamp             int64 // milliseconds since the Unix epoch
	BornHost                  netip.AddrPort
	StoreTimestamp            int64 // milliseconds since the Unix epoch
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	BodyCRC                   uint32 // RocketMQ's body CRC: crc32 IEEE of Body & 0x7FFFFFFF
}

// MsgID is the id RocketMQ 4.x clients show: UNIQ_KEY when set, otherwise the offset id.
func (m *Ext) MsgID() string {
	if u := m.UniqKey(); u != "" {
		return u
	}
	return m.OffsetMsgID()
}

// OffsetMsgID is the broker-assigned id built from StoreHost and CommitLogOffset.
func (m *Ext) OffsetMsgID() string { return OffsetMsgID(m.StoreHost, m.CommitLogOffset) }

// Clone returns a deep copy of m (body and properties copied).
func (m *Ext) Clone() *Ext {
	c := *m
	if m.Body != nil {
		c.Body = append([]byte(nil), m.Body...)
	}
	if m.Properties != nil {
		c.Properties = make(map[string]string, len(m.Properties))
		for k, v := range m.Properties {
			c.Properties[k] = v
		}
	}
	return &c
}
