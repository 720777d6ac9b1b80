package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// Fixed byte offsets inside an encoded record (the appender patches these in place).
const (
	OffTotalSize      = 0
	OffMagic          = 4
	OffBodyCRC        = 8
	OffQueueID        = 12
	OffFlag           = 16
	OffQueueOffset    = 20
	OffPhysicalOffset = 28
	OffSysFlag        = 36
	OffBornTimestamp  = 40
	OffBornHost       = 48

	// MinRecordSize is the size of a record with IPv4 hosts, an empty body, a one-byte topic
	// and no properties minus that one topic byte: no valid record is smaller.
	MinRecordSize = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + 1 + 2

	// BlankHeaderSize is the size of the end-of-segment marker: TOTALSIZE + MagicBlank.
	BlankHeaderSize = 8

	// MaxTopicLengthV1 is the longest topic (in bytes) a V1 record can carry.
	MaxTopicLengthV1 = 127
)

// Errors returned by the record codec.
var (
	// ErrBlank is returned by DecodeRecord for the blank end-of-segment marker; the int result
	// is then the marker's TOTALSIZE (the rest of the segment).
	ErrBlank = errors.New("message: blank end-of-segment record")
	// ErrCorrupt wraps every structural or CRC failure.
	ErrCorrupt = errors.New("message: corrupt record")
	// ErrShort means b ends before the record does (a torn tail when reading a log).
	ErrShort = errors.New("message: truncated record")
	// ErrInvalidMessage wraps encoding failures (bad properties, oversize fields).
	ErrInvalidMessage = errors.New("message: invalid message")
)

// hostLen is the encoded size of a host (ip + i32 port) given its v6 bit.
func hostLen(v6 bool) int {
	if v6 {
		return 20
	}
	return 8
}

// StoreTimestampOffset is the byte offset of STORETIMESTAMP in a record with sysFlag.
func StoreTimestampOffset(sysFlag int32) int {
	return OffBornHost + hostLen(sysFlag&SysFlagBornHostV6 != 0)
}

// StoreHostOffset is the byte offset of STOREHOST in a record with sysFlag.
func StoreHostOffset(sysFlag int32) int { return StoreTimestampOffset(sysFlag) + 8 }

// ReconsumeTimesOffset is the byte offset of RECONSUMETIMES in a record with sysFlag.
func ReconsumeTimesOffset(sysFlag int32) int {
	return StoreHostOffset(sysFlag) + hostLen(sysFlag&SysFlagStoreHostV6 != 0)
}

// bodyLenOffset is the byte offset of BODYLEN in a record with sysFlag.
func bodyLenOffset(sysFlag int32) int { return ReconsumeTimesOffset(sysFlag) + 4 + 8 }

// isV6 reports whether ap must be encoded as a 16-byte address.
func isV6(ap netip.AddrPort) bool {
	a := ap.Addr()
	return a.IsValid() && a.Is6() && !a.Is4In6()
}

// EffectiveSysFlag is m.SysFlag with the BornHostV6/StoreHostV6 bits set from the address
// families of m.BornHost and m.StoreHost: the SYSFLAG AppendRecord writes.
func EffectiveSysFlag(m *Ext) int32 {
	f := m.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
	if isV6(m.BornHost) {
		f |= SysFlagBornHostV6
	}
	if isV6(m.StoreHost) {
		f |= SysFlagStoreHostV6
	}
	return f
}

// BodyCRC is RocketMQ's body checksum (UtilAll.crc32): CRC-32 IEEE masked to 31 bits.
func BodyCRC(body []byte) uint32 { return crc32.ChecksumIEEE(body) & 0x7FFFFFFF }

// RecordSize returns the encoded size of m, or an error when m cannot be encoded.
func RecordSize(m *Ext) (int, error) {
	var buf [16]property
	_, propLen, err := checkEncodable(m, buf[:])
	if err != nil {
		return 0, err
	}
	return recordSize(m, EffectiveSysFlag(m), propLen), nil
}

func recordSize(m *Ext, sysFlag int32, propLen int) int {
	topicLenSize := 1
	if len(m.Topic) > MaxTopicLengthV1 {
		topicLenSize = 2
	}
	return bodyLenOffset(sysFlag) + 4 + len(m.Body) + topicLenSize + len(m.Topic) + 2 + propLen
}

// checkEncodable validates m for AppendRecord and returns its properties sorted by key (in
// buf's storage while they fit) with their encoded length.
func checkEncodable(m *Ext, buf []property) ([]property, int, error) {
	if len(m.Topic) == 0 {
		return nil, 0, fmt.Errorf("%w: empty topic", ErrInvalidMessage)
	}
	if len(m.Topic) > 32767 {
		return nil, 0, fmt.Errorf("%w: topic longer than 32767 bytes", ErrInvalidMessage)
	}
	if len(m.Body) > 1<<31-1-1024 {
		return nil, 0, fmt.Errorf("%w: body too large", ErrInvalidMessage)
	}
	ps, n, err := sortedProperties(m.Properties, buf)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if n > MaxPropertiesSize {
		return nil, 0, fmt.Errorf("%w: %w: %d bytes > %d", ErrInvalidMessage, ErrPropertiesTooLarge, n, MaxPropertiesSize)
	}
	return ps, n, nil
}

func appendHost(dst []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	switch {
	case !a.IsValid():
		dst = append(dst, 0, 0, 0, 0)
	case a.Is4() || a.Is4In6():
		b := a.Unmap().As4()
		dst = append(dst, b[:]...)
	default:
		b := a.As16()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(ap.Port()))
}

// AppendRecord appends m encoded in RocketMQ's record layout to dst and returns the extended
// slice. It computes TOTALSIZE and BODYCRC (m.BodyCRC is ignored), writes MagicV2 only when the
// topic is longer than 127 bytes, and sets the host-v6 sysflag bits from the address families
// (EffectiveSysFlag). It fails, leaving dst unchanged, when the topic is empty, properties are
// invalid or encode to more than 32767 bytes.
func AppendRecord(dst []byte, m *Ext) ([]byte, error) {
	var buf [16]property
	props, propLen, err := checkEncodable(m, buf[:])
	if err != nil {
		return dst, err
	}
	sysFlag := EffectiveSysFlag(m)
	size := recordSize(m, sysFlag, propLen)
	magic := MagicV1
	if len(m.Topic) > MaxTopicLengthV1 {
		magic = MagicV2
	}
	if cap(dst)-len(dst) < size {
		// Grow geometrically (like append) so that encoding many records into one buffer,
		// as PutBatch does, stays linear rather than copying the prefix for every record.
		n := make([]byte, len(dst), max(len(dst)+size, 2*cap(dst)))
		copy(n, dst)
		dst = n
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(size))
	dst = be.AppendUint32(dst, uint32(magic))
	dst = be.AppendUint32(dst, BodyCRC(m.Body))
	dst = be.AppendUint32(dst, uint32(m.QueueID))
	dst = be.AppendUint32(dst, uint32(m.Flag))
	dst = be.AppendUint64(dst, uint64(m.QueueOffset))
	dst = be.AppendUint64(dst, uint64(m.CommitLogOffset))
	dst = be.AppendUint32(dst, uint32(sysFlag))
	dst = be.AppendUint64(dst, uint64(m.BornTimestamp))
	dst = appendHost(dst, m.BornHost)
	dst = be.AppendUint64(dst, uint64(m.StoreTimestamp))
	dst = appendHost(dst, m.StoreHost)
	dst = be.AppendUint32(dst, uint32(m.ReconsumeTimes))
	dst = be.AppendUint64(dst, uint64(m.PreparedTransactionOffset))
	dst = be.AppendUint32(dst, uint32(len(m.Body)))
	dst = append(dst, m.Body...)
	if magic == MagicV1 {
		dst = append(dst, byte(len(m.Topic)))
	} else {
		dst = be.AppendUint16(dst, uint16(len(m.Topic)))
	}
	dst = append(dst, m.Topic...)
	dst = be.AppendUint16(dst, uint16(propLen))
	dst = appendSortedProperties(dst, props)
	return dst, nil
}

// AppendBlank appends the end-of-segment marker covering size bytes: TOTALSIZE=size then
// MagicBlank. Only the 8 header bytes are appended; the rest of the segment is filler.
func AppendBlank(dst []byte, size int32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	blank := MagicBlank
	return binary.BigEndian.AppendUint32(dst, uint32(blank))
}

// RecordHeader locates the fields of one encoded record without copying anything. All
// offsets are relative to the record start. ParseRecordHeader validates lengths and magic
// (not the CRC; see VerifyBodyCRC).
type RecordHeader struct {
	TotalSize      int32
	Magic          int32
	BodyCRC        uint32
	QueueID        int32
	Flag           int32
	QueueOffset    int64
	PhysicalOffset int64
	SysFlag        int32
	BornTimestamp  int64
	StoreTimestamp int64
	ReconsumeTimes int32
	PreparedTxOff  int64
	BodyOff        int
	BodyLen        int
	TopicOff       int
	TopicLen       int
	PropsOff       int
	PropsLen       int
}

// Body returns the body bytes of rec described by h.
func (h *RecordHeader) Body(rec []byte) []byte { return rec[h.BodyOff : h.BodyOff+h.BodyLen] }

// Topic returns the topic bytes of rec described by h.
func (h *RecordHeader) Topic(rec []byte) []byte { return rec[h.TopicOff : h.TopicOff+h.TopicLen] }

// Props returns the encoded properties of rec described by h.
func (h *RecordHeader) Props(rec []byte) []byte { return rec[h.PropsOff : h.PropsOff+h.PropsLen] }

// ParseRecordHeader parses the record at the start of b. Results:
//   - ErrBlank: b starts with the end-of-segment marker (h.TotalSize is its length);
//   - ErrShort: b is shorter than the record claims (or than a header);
//   - ErrCorrupt: any field is out of range or the field lengths do not add up to TOTALSIZE.
//
// It never reads past len(b) and never allocates.
func ParseRecordHeader(b []byte, h *RecordHeader) error {
	be := binary.BigEndian
	if len(b) < BlankHeaderSize {
		return fmt.Errorf("%w: %d bytes, need a header", ErrShort, len(b))
	}
	h.TotalSize = int32(be.Uint32(b[OffTotalSize:]))
	h.Magic = int32(be.Uint32(b[OffMagic:]))
	switch h.Magic {
	case MagicBlank:
		if h.TotalSize < BlankHeaderSize {
			return fmt.Errorf("%w: blank record size %d", ErrCorrupt, h.TotalSize)
		}
		return ErrBlank
	case MagicV1, MagicV2:
	default:
		return fmt.Errorf("%w: bad magic %#x", ErrCorrupt, uint32(h.Magic))
	}
	size := int(h.TotalSize)
	if size < MinRecordSize {
		return fmt.Errorf("%w: total size %d below minimum", ErrCorrupt, size)
	}
	if size > len(b) {
		return fmt.Errorf("%w: record of %d bytes, %d available", ErrShort, size, len(b))
	}
	rec := b[:size]
	h.BodyCRC = be.Uint32(rec[OffBodyCRC:])
	h.QueueID = int32(be.Uint32(rec[OffQueueID:]))
	h.Flag = int32(be.Uint32(rec[OffFlag:]))
	h.QueueOffset = int64(be.Uint64(rec[OffQueueOffset:]))
	h.PhysicalOffset = int64(be.Uint64(rec[OffPhysicalOffset:]))
	h.SysFlag = int32(be.Uint32(rec[OffSysFlag:]))
	h.BornTimestamp = int64(be.Uint64(rec[OffBornTimestamp:]))
	if h.QueueID < 0 || h.QueueOffset < 0 || h.PhysicalOffset < 0 {
		return fmt.Errorf("%w: negative queue id or offset", ErrCorrupt)
	}
	bl := bodyLenOffset(h.SysFlag)
	if bl+4 > size {
		return fmt.Errorf("%w: header longer than record", ErrCorrupt)
	}
	st := StoreTimestampOffset(h.SysFlag)
	h.StoreTimestamp = int64(be.Uint64(rec[st:]))
	rt := ReconsumeTimesOffset(h.SysFlag)
	h.ReconsumeTimes = int32(be.Uint32(rec[rt:]))
	h.PreparedTxOff = int64(be.Uint64(rec[rt+4:]))
	bodyLen := int(int32(be.Uint32(rec[bl:])))
	p := bl + 4
	if bodyLen < 0 || bodyLen > size-p {
		return fmt.Errorf("%w: body length %d", ErrCorrupt, bodyLen)
	}
	h.BodyOff, h.BodyLen = p, bodyLen
	p += bodyLen
	var topicLen int
	if h.Magic == MagicV1 {
		if p+1 > size {
			return fmt.Errorf("%w: no topic length", ErrCorrupt)
		}
		topicLen = int(int8(rec[p]))
		p++
	} else {
		if p+2 > size {
			return fmt.Errorf("%w: no topic length", ErrCorrupt)
		}
		topicLen = int(int16(be.Uint16(rec[p:])))
		p += 2
	}
	if topicLen <= 0 || topicLen > size-p {
		return fmt.Errorf("%w: topic length %d", ErrCorrupt, topicLen)
	}
	h.TopicOff, h.TopicLen = p, topicLen
	p += topicLen
	if p+2 > size {
		return fmt.Errorf("%w: no properties length", ErrCorrupt)
	}
	propLen := int(int16(be.Uint16(rec[p:])))
	p += 2
	if propLen < 0 || p+propLen != size {
		return fmt.Errorf("%w: properties length %d does not end the record (size %d)", ErrCorrupt, propLen, size)
	}
	h.PropsOff, h.PropsLen = p, propLen
	return nil
}

// VerifyBodyCRC reports whether the BODYCRC field of rec matches its body.
func (h *RecordHeader) VerifyBodyCRC(rec []byte) bool {
	return BodyCRC(h.Body(rec)) == h.BodyCRC
}

func readHost(b []byte, v6 bool) netip.AddrPort {
	if v6 {
		a := netip.AddrFrom16([16]byte(b[:16]))
		return netip.AddrPortFrom(a, uint16(binary.BigEndian.Uint32(b[16:])))
	}
	a := netip.AddrFrom4([4]byte(b[:4]))
	return netip.AddrPortFrom(a, uint16(binary.BigEndian.Uint32(b[4:])))
}

// DecodeRecord decodes the record at the start of b and returns it with the number of bytes
// it occupies. Body aliases b (copy b first when its lifetime is limited); topic and
// properties are copied. With verifyCRC the body CRC must match. For the end-of-segment marker
// it returns (nil, TOTALSIZE of the marker, ErrBlank). It never panics and allocates at most
// the size of the record plus the properties map.
func DecodeRecord(b []byte, verifyCRC bool) (*Ext, int, error) {
	var h RecordHeader
	if err := ParseRecordHeader(b, &h); err != nil {
		if errors.Is(err, ErrBlank) {
			return nil, int(h.TotalSize), err
		}
		return nil, 0, err
	}
	rec := b[:h.TotalSize]
	if verifyCRC && !h.VerifyBodyCRC(rec) {
		return nil, 0, fmt.Errorf("%w: body CRC mismatch at physical offset %d", ErrCorrupt, h.PhysicalOffset)
	}
	props, err := DecodeProperties(h.Props(rec))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	m := &Ext{
		Message: Message{
			Topic:      string(h.Topic(rec)),
			Flag:       h.Flag,
			Body:       h.Body(rec),
			Properties: props,
		},
		QueueID:                   h.QueueID,
		QueueOffset:               h.QueueOffset,
		CommitLogOffset:           h.PhysicalOffset,
		StoreSize:                 h.TotalSize,
		SysFlag:                   h.SysFlag,
		BornTimestamp:             h.BornTimestamp,
		BornHost:                  readHost(rec[OffBornHost:], h.SysFlag&SysFlagBornHostV6 != 0),
		StoreTimestamp:            h.StoreTimestamp,
		StoreHost:                 readHost(rec[StoreHostOffset(h.SysFlag):], h.SysFlag&SysFlagStoreHostV6 != 0),
		ReconsumeTimes:            h.ReconsumeTimes,
		PreparedTransactionOffset: h.PreparedTxOff,
		BodyCRC:                   h.BodyCRC,
	}
	return m, int(h.TotalSize), nil
}

// DecodeRecords decodes consecutive records (a PULL response body, or a stretch of commit
// log) verifying body CRCs. It stops without error at a blank marker.
func DecodeRecords(b []byte) ([]*Ext, error) {
	var out []*Ext
	for len(b) > 0 {
		m, n, err := DecodeRecord(b, true)
		if errors.Is(err, ErrBlank) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
		b = b[n:]
	}
	return out, nil
}

// PutQueueOffset patches QUEUEOFFSET in an encoded record.
func PutQueueOffset(rec []byte, v int64) {
	binary.BigEndian.PutUint64(rec[OffQueueOffset:], uint64(v))
}

// PutPhysicalOffset patches PHYSICALOFFSET in an encoded record.
func PutPhysicalOffset(rec []byte, v int64) {
	binary.BigEndian.PutUint64(rec[OffPhysicalOffset:], uint64(v))
}

// PutStoreTimestamp patches STORETIMESTAMP in an encoded record.
func PutStoreTimestamp(rec []byte, v int64) {
	sf := int32(binary.BigEndian.Uint32(rec[OffSysFlag:]))
	binary.BigEndian.PutUint64(rec[StoreTimestampOffset(sf):], uint64(v))
}

// PutReconsumeTimes patches RECONSUMETIMES in an encoded record.
func PutReconsumeTimes(rec []byte, v int32) {
	sf := int32(binary.BigEndian.Uint32(rec[OffSysFlag:]))
	binary.BigEndian.PutUint32(rec[ReconsumeTimesOffset(sf):], uint32(v))
}
