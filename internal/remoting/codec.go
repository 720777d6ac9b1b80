package remoting

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"unicode/utf8"
)

// SerializeType selects the header encoding of a frame (high byte of the second int32).
type SerializeType byte

const (
	// SerializeJSON is RocketMQ's JSON header, the default of Java and Go clients.
	SerializeJSON SerializeType = 0
	// SerializeRocketMQ is RocketMQ's compact binary header (RocketMQSerializable).
	SerializeRocketMQ SerializeType = 1
)

// String returns "JSON" or "ROCKETMQ".
func (t SerializeType) String() string {
	switch t {
	case SerializeJSON:
		return "JSON"
	case SerializeRocketMQ:
		return "ROCKETMQ"
	}
	return "SerializeType(" + strconv.Itoa(int(t)) + ")"
}

// ParseSerializeType parses "JSON" or "ROCKETMQ" (as RocketMQ's ROCKETMQ_SERIALIZE_TYPE).
func ParseSerializeType(s string) (SerializeType, error) {
	switch s {
	case "", "JSON", "json":
		return SerializeJSON, nil
	case "ROCKETMQ", "rocketmq":
		return SerializeRocketMQ, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownSerializeType, s)
}

// DefaultMaxFrameSize is RocketMQ's com.rocketmq.remoting.frameMaxLength default (16 MiB).
const DefaultMaxFrameSize = 16 << 20

// maxHeaderLen is the largest header the 24-bit length field can describe.
const maxHeaderLen = 0xFFFFFF

// Frame errors. Each malformed frame yields exactly one of these (possibly wrapped).
var (
	ErrFrameTooLarge        = errors.New("remoting: frame too large")
	ErrBadFrameLength       = errors.New("remoting: bad frame length")
	ErrBadHeaderLength      = errors.New("remoting: bad header length")
	ErrUnknownSerializeType = errors.New("remoting: unknown serialize type")
	ErrBadHeader            = errors.New("remoting: bad header")
)

// Encode returns the frame of c as buffers ready for writev: the first holds the length
// prefix and the header, then Body and each BodyParts piece (not copied).
func Encode(c *Command, st SerializeType) (net.Buffers, error) {
	head, err := appendPrefixAndHeader(make([]byte, 0, 256), c, st)
	if err != nil {
		return nil, err
	}
	bufs := make(net.Buffers, 0, 2+len(c.BodyParts))
	bufs = append(bufs, head)
	if len(c.Body) > 0 {
		bufs = append(bufs, c.Body)
	}
	for _, p := range c.BodyParts {
		if len(p) > 0 {
			bufs = append(bufs, p)
		}
	}
	return bufs, nil
}

// AppendFrame appends the whole frame of c (prefix, header, body, body parts) to dst.
func AppendFrame(dst []byte, c *Command, st SerializeType) ([]byte, error) {
	dst, err := appendPrefixAndHeader(dst, c, st)
	if err != nil {
		return nil, err
	}
	dst = append(dst, c.Body...)
	for _, p := range c.BodyParts {
		dst = append(dst, p...)
	}
	return dst, nil
}

// EncodeFrame returns the whole frame of c as one slice.
func EncodeFrame(c *Command, st SerializeType) ([]byte, error) {
	return AppendFrame(make([]byte, 0, 256+c.BodyLen()), c, st)
}

func appendPrefixAndHeader(dst []byte, c *Command, st SerializeType) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	switch st {
	case SerializeJSON:
		dst = appendJSONHeader(dst, c)
	case SerializeRocketMQ:
		var err error
		if dst, err = appendBinaryHeader(dst, c); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownSerializeType, st)
	}
	headerLen := len(dst) - start - 8
	if headerLen > maxHeaderLen {
		return nil, fmt.Errorf("%w: header of %d bytes exceeds 24 bits", ErrBadHeaderLength, headerLen)
	}
	total := int64(4) + int64(headerLen) + int64(c.BodyLen())
	if total > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, total)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(total))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(st)<<24|uint32(headerLen))
	return dst, nil
}

// Decode decodes one complete frame, including its 4-byte length prefix, which must equal
// len(frame)-4. It enforces DefaultMaxFrameSize. Body aliases frame.
func Decode(frame []byte) (*Command, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadFrameLength, len(frame))
	}
	n := int32(binary.BigEndian.Uint32(frame))
	if err := CheckFrameLength(n, DefaultMaxFrameSize); err != nil {
		return nil, err
	}
	if int(n) != len(frame)-4 {
		return nil, fmt.Errorf("%w: length field %d, have %d bytes", ErrBadFrameLength, n, len(frame)-4)
	}
	return DecodePayload(frame[4:])
}

// CheckFrameLength validates the length prefix of a frame: at least 4 (the header length
// field) and at most max.
func CheckFrameLength(n int32, max int) error {
	if n < 4 {
		return fmt.Errorf("%w: %d", ErrBadFrameLength, n)
	}
	if int64(n) > int64(max) {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	return nil
}

// DecodePayload decodes a frame without its length prefix: the header length and type,
// the header and the body. Body aliases p.
func DecodePayload(p []byte) (*Command, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: payload of %d bytes", ErrBadFrameLength, len(p))
	}
	lt := binary.BigEndian.Uint32(p)
	st := SerializeType(lt >> 24)
	headerLen := int(lt & maxHeaderLen)
	if headerLen > len(p)-4 {
		return nil, fmt.Errorf("%w: %d, frame holds %d", ErrBadHeaderLength, headerLen, len(p)-4)
	}
	header := p[4 : 4+headerLen]
	var (
		c   *Command
		err error
	)
	switch st {
	case SerializeJSON:
		c, err = DecodeJSONHeader(header)
	case SerializeRocketMQ:
		c, err = DecodeBinaryHeader(header)
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownSerializeType, st)
	}
	if err != nil {
		return nil, err
	}
	if body := p[4+headerLen:]; len(body) > 0 {
		c.Body = body
	}
	return c, nil
}

// ReadFrame reads one frame from r and returns its payload (everything after the length
// prefix) in a freshly allocated slice. Large frames are read in growing chunks so that
// a peer announcing a big frame and stalling cannot make us allocate it up front.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var pre [4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(pre[:]))
	if err := CheckFrameLength(n, max); err != nil {
		return nil, err
	}
	const chunk = 256 << 10
	if n <= chunk {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpectedEOF(err)
		}
		return buf, nil
	}
	buf := make([]byte, 0, chunk)
	for len(buf) < int(n) {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), int(n)-len(buf)))
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), int(n))])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < int(n) {
			return nil, unexpectedEOF(err)
		}
	}
	return buf, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ---- JSON header ----

// appendJSONHeader writes the header with go2's field order and no spaces:
// {"code":..,"language":"GO","version":..,"opaque":..,"flag":..,"remark":"..","extFields":{..}}
// Map keys are sorted so that encoding is deterministic.
func appendJSONHeader(dst []byte, c *Command) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"language":`...)
	lang := c.Language
	if lang == "" {
		lang = LanguageGo
	}
	dst = appendJSONString(dst, lang)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	dst = append(dst, `,"remark":`...)
	dst = appendJSONString(dst, c.Remark)
	dst = append(dst, `,"extFields":{`...)
	switch len(c.ExtFields) {
	case 0:
	case 1:
		for k, v := range c.ExtFields {
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, v)
		}
	default:
		keys := make([]string, 0, len(c.ExtFields))
		for k := range c.ExtFields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, c.ExtFields[k])
		}
	}
	return append(dst, '}', '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD as in
// encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

type jsonHeader struct {
	Code      int32             `json:"code"`
	Language  json.RawMessage   `json:"language"`
	Version   int32             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    *string           `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

// DecodeJSONHeader decodes a JSON header. extFields values must be JSON strings, as both
// Java (fastjson) and go2 write them; language may be a name or an ordinal.
func DecodeJSONHeader(b []byte) (*Command, error) {
	if c, ok := decodeJSONHeaderFast(b); ok {
		return c, nil
	}
	return decodeJSONHeaderStd(b)
}

// decodeJSONHeaderStd is the reference decoder (encoding/json).
func decodeJSONHeaderStd(b []byte) (*Command, error) {
	var h jsonHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: json: %v", ErrBadHeader, err)
	}
	c := &Command{Code: h.Code, Version: h.Version, Opaque: h.Opaque, Flag: h.Flag, ExtFields: h.ExtFields}
	if h.Remark != nil {
		c.Remark = *h.Remark
	}
	if len(c.ExtFields) == 0 {
		c.ExtFields = nil
	}
	if len(h.Language) > 0 {
		switch h.Language[0] {
		case '"':
			if err := json.Unmarshal(h.Language, &c.Language); err != nil {
				return nil, fmt.Errorf("%w: language: %v", ErrBadHeader, err)
			}
		case 'n': // null
		default:
			n, err := strconv.ParseUint(string(h.Language), 10, 8)
			if err != nil {
				return nil, fmt.Errorf("%w: language %s", ErrBadHeader, h.Language)
			}
			c.Language = LanguageName(byte(n))
		}
	}
	return c, nil
}

// ---- ROCKETMQ binary header ----

// appendBinaryHeader writes RocketMQSerializable's layout:
// int16 code | byte language | int16 version | int32 opaque | int32 flag |
// int32 remarkLen | remark | int32 extLen | ext (int16 keyLen | key | int32 valLen | val)*
// Code and version are truncated to 16 bits exactly as Java does.
func appendBinaryHeader(dst []byte, c *Command) ([]byte, error) {
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Code)))
	lang := c.Language
	if lang == "" {
		lang = LanguageGo
	}
	dst = append(dst, LanguageOrdinal(lang))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Version)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	keys := make([]string, 0, len(c.ExtFields))
	for k := range c.ExtFields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(k) > math.MaxInt16 {
			return nil, fmt.Errorf("%w: ext key of %d bytes", ErrBadHeader, len(k))
		}
		v := c.ExtFields[k]
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	return dst, nil
}

// DecodeBinaryHeader decodes a ROCKETMQ binary header; every length is bounds-checked
// against the header, so it never allocates more than len(b).
func DecodeBinaryHeader(b []byte) (*Command, error) {
	const fixed = 2 + 1 + 2 + 4 + 4 + 4
	if len(b) < fixed+4 {
		return nil, fmt.Errorf("%w: binary header of %d bytes", ErrBadHeader, len(b))
	}
	c := &Command{
		Code:     int32(int16(binary.BigEndian.Uint16(b))),
		Language: LanguageName(b[2]),
		Version:  int32(int16(binary.BigEndian.Uint16(b[3:]))),
		Opaque:   int32(binary.BigEndian.Uint32(b[5:])),
		Flag:     int32(binary.BigEndian.Uint32(b[9:])),
	}
	rest := b[13:]
	remarkLen := int32(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if remarkLen < 0 || int(remarkLen) > len(rest)-4 {
		return nil, fmt.Errorf("%w: remark length %d", ErrBadHeader, remarkLen)
	}
	c.Remark = string(rest[:remarkLen])
	rest = rest[remarkLen:]
	extLen := int32(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if extLen < 0 || int(extLen) != len(rest) {
		return nil, fmt.Errorf("%w: ext length %d, %d bytes left", ErrBadHeader, extLen, len(rest))
	}
	for len(rest) > 0 {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: truncated ext key length", ErrBadHeader)
		}
		kl := int(int16(binary.BigEndian.Uint16(rest)))
		rest = rest[2:]
		if kl < 0 || kl+4 > len(rest) {
			return nil, fmt.Errorf("%w: ext key length %d", ErrBadHeader, kl)
		}
		k := string(rest[:kl])
		rest = rest[kl:]
		vl := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if vl < 0 || int(vl) > len(rest) {
			return nil, fmt.Errorf("%w: ext value length %d", ErrBadHeader, vl)
		}
		if c.ExtFields == nil {
			c.ExtFields = make(map[string]string, 8)
		}
		c.ExtFields[k] = string(rest[:vl])
		rest = rest[vl:]
	}
	return c, nil
}
