// Package message is Rocketry's message model and the byte-exact RocketMQ codecs that every
// other package shares: the properties string (key\x01value\x02...), the stored/pulled record
// layout (commit-log record = PULL body element = CHECK_TRANSACTION_STATE body), message ids
// (offset ids and unique ids), the ConsumeQueue tag hash, and RocketMQ's topic/group naming
// rules.
//
// The package is pure: no I/O except NewUniqID reading the host's address once, no goroutines,
// no locks besides the atomic counter of the unique id generator. Decoders never panic and never
// allocate more than the input they are given (fuzzed in FuzzDecodeRecord, FuzzDecodeProperties,
// FuzzParseOffsetMsgID, FuzzValidateTopic).
//
// Usage sketch:
//
//	m := &message.Ext{Message: message.Message{Topic: "T", Body: body}}
//	m.SetProperty(message.PropertyTags, "TagA")
//	m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
//	rec, err := message.AppendRecord(buf[:0], m) // RocketMQ commit-log record bytes
//	back, n, err := message.DecodeRecord(rec, true)
//
// Record layout (all big-endian), offsets for an IPv4 born host:
//
//	0 TOTALSIZE i32 | 4 MAGICCODE i32 | 8 BODYCRC i32 | 12 QUEUEID i32 | 16 FLAG i32 |
//	20 QUEUEOFFSET i64 | 28 PHYSICALOFFSET i64 | 36 SYSFLAG i32 | 40 BORNTIMESTAMP i64 |
//	48 BORNHOST (4+4, or 16+4 with SysFlagBornHostV6) | STORETIMESTAMP i64 |
//	STOREHOST (4+4, or 16+4 with SysFlagStoreHostV6) | RECONSUMETIMES i32 |
//	PREPAREDTRANSACTIONOFFSET i64 | BODYLEN i32 + BODY | TOPICLEN i8 (V1) or i16 (V2) + TOPIC |
//	PROPLEN i16 + PROPERTIES
package message
