package route

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ErrBadRegisterBody is wrapped by every RegisterBrokerBody decoding error.
var ErrBadRegisterBody = errors.New("route: bad register broker body")

// MaxInflatedRegisterBody bounds the decompressed size of a compressed register body
// (protects against zlib bombs). 64 MiB holds far more than 100k topic configs.
const MaxInflatedRegisterBody = 64 << 20

// inflateLimit is MaxInflatedRegisterBody; tests lower it.
var inflateLimit = MaxInflatedRegisterBody

// BodyCRC32 is RocketMQ's UtilAll.crc32: CRC-32 (IEEE) masked to 31 bits, the value of
// the REGISTER_BROKER header bodyCrc32.
func BodyCRC32(b []byte) int32 { return int32(crc32.ChecksumIEEE(b) & 0x7FFFFFFF) }

// Encode returns the body as JSON, or, when compress is true, in the compressed form of
// RocketMQ's RegisterBrokerBody.encode(true): a zlib stream of
// int32 len | DataVersion JSON | int32 n | n × (int32 len | TopicConfig line) |
// int32 len | filterServerList JSON | int32 0 (no static-topic mappings).
func (b *RegisterBrokerBody) Encode(compress bool) ([]byte, error) {
	if !compress {
		out := *b
		if out.FilterServerList == nil {
			out.FilterServerList = []string{}
		}
		if out.TopicConfigSerializeWrapper.TopicConfigTable == nil {
			out.TopicConfigSerializeWrapper.TopicConfigTable = map[string]TopicConfig{}
		}
		return json.Marshal(&out)
	}
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return nil, err
	}
	put := func(p []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		zw.Write(n[:])
		zw.Write(p)
	}
	putInt := func(v int) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(v))
		zw.Write(n[:])
	}
	dv, _ := json.Marshal(b.TopicConfigSerializeWrapper.DataVersion)
	put(dv)
	table := b.TopicConfigSerializeWrapper.TopicConfigTable
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	slices.Sort(names)
	putInt(len(names))
	for _, n := range names {
		tc := table[n]
		// The line format is space-separated; such names cannot round-trip (RocketMQ's
		// topic name rules never allow them).
		if tc.TopicName == "" || strings.ContainsAny(tc.TopicName, " ") || strings.ContainsAny(tc.TopicFilterType, " ") {
			return nil, fmt.Errorf("%w: topic %q cannot be encoded in the compressed form", ErrBadRegisterBody, tc.TopicName)
		}
		put([]byte(tc.encodeLine()))
	}
	fsl := b.FilterServerList
	if fsl == nil {
		fsl = []string{}
	}
	fj, _ := json.Marshal(fsl)
	put(fj)
	putInt(0)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encodeLine is TopicConfig.encode(): "name read write perm filterType " + attributes JSON.
func (t TopicConfig) encodeLine() string {
	ft := t.TopicFilterType
	if ft == "" {
		ft = TopicFilterSingleTag
	}
	s := t.TopicName + " " + strconv.Itoa(int(t.ReadQueueNums)) + " " + strconv.Itoa(int(t.WriteQueueNums)) +
		" " + strconv.Itoa(int(t.Perm)) + " " + ft + " "
	if t.Attributes != nil {
		a, _ := json.Marshal(t.Attributes)
		s += string(a)
	}
	return s
}

// decodeLine parses TopicConfig.encode() output (RocketMQ ignores bad attributes too).
func decodeTopicLine(s string) (TopicConfig, error) {
	f := strings.SplitN(s, " ", 6)
	if len(f) < 5 {
		return TopicConfig{}, fmt.Errorf("%w: topic config line %q", ErrBadRegisterBody, s)
	}
	t := TopicConfig{TopicName: f[0], TopicFilterType: f[4]}
	for i, dst := range []*int32{&t.ReadQueueNums, &t.WriteQueueNums, &t.Perm} {
		n, err := strconv.ParseInt(f[1+i], 10, 32)
		if err != nil {
			return TopicConfig{}, fmt.Errorf("%w: topic config line %q", ErrBadRegisterBody, s)
		}
		*dst = int32(n)
	}
	if len(f) == 6 && f[5] != "" {
		var attrs map[string]string
		if json.Unmarshal([]byte(f[5]), &attrs) == nil {
			t.Attributes = attrs
		}
	}
	return t, nil
}

// DecodeRegisterBrokerBody parses a REGISTER_BROKER body, JSON or (compressed=true) the
// compressed form described at Encode. A compressed stream whose content is JSON is also
// accepted.
func DecodeRegisterBrokerBody(data []byte, compressed bool) (*RegisterBrokerBody, error) {
	if !compressed {
		var b RegisterBrokerBody
		if len(data) == 0 {
			return &b, nil
		}
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadRegisterBody, err)
		}
		return &b, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %v", ErrBadRegisterBody, err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(io.LimitReader(zr, int64(inflateLimit)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %v", ErrBadRegisterBody, err)
	}
	if len(raw) > inflateLimit {
		return nil, fmt.Errorf("%w: inflates beyond %d bytes", ErrBadRegisterBody, inflateLimit)
	}
	if len(raw) > 0 && raw[0] == '{' {
		return DecodeRegisterBrokerBody(raw, false)
	}
	return decodeCompressedLayout(raw)
}

func decodeCompressedLayout(raw []byte) (*RegisterBrokerBody, error) {
	next := func() ([]byte, error) {
		if len(raw) < 4 {
			return nil, fmt.Errorf("%w: truncated", ErrBadRegisterBody)
		}
		n := int(int32(binary.BigEndian.Uint32(raw)))
		raw = raw[4:]
		if n < 0 || n > len(raw) {
			return nil, fmt.Errorf("%w: length %d, %d bytes left", ErrBadRegisterBody, n, len(raw))
		}
		p := raw[:n]
		raw = raw[n:]
		return p, nil
	}
	count := func() (int, error) {
		if len(raw) < 4 {
			return 0, fmt.Errorf("%w: truncated", ErrBadRegisterBody)
		}
		n := int(int32(binary.BigEndian.Uint32(raw)))
		raw = raw[4:]
		if n < 0 || n > len(raw) {
			return 0, fmt.Errorf("%w: count %d", ErrBadRegisterBody, n)
		}
		return n, nil
	}
	var b RegisterBrokerBody
	dv, err := next()
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(dv, &b.TopicConfigSerializeWrapper.DataVersion); err != nil {
		return nil, fmt.Errorf("%w: dataVersion: %v", ErrBadRegisterBody, err)
	}
	n, err := count()
	if err != nil {
		return nil, err
	}
	b.TopicConfigSerializeWrapper.TopicConfigTable = make(map[string]TopicConfig, n)
	for range n {
		line, err := next()
		if err != nil {
			return nil, err
		}
		tc, err := decodeTopicLine(string(line))
		if err != nil {
			return nil, err
		}
		b.TopicConfigSerializeWrapper.TopicConfigTable[tc.TopicName] = tc
	}
	fj, err := next()
	if err != nil {
		return nil, err
	}
	if len(fj) > 0 {
		if err := json.Unmarshal(fj, &b.FilterServerList); err != nil {
			return nil, fmt.Errorf("%w: filterServerList: %v", ErrBadRegisterBody, err)
		}
	}
	// Static-topic mappings follow (count + JSON each); Rocketry does not serve them.
	return &b, nil
}
