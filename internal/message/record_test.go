package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	go2 "github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"
)

func sampleExt() *Ext {
	m := &Ext{
		Message: Message{
			Topic: "TopicTest",
			Flag:  7,
			Body:  []byte("hello rocketry"),
			Properties: map[string]string{
				PropertyTags:    "TagA",
				PropertyKeys:    "k1 k2",
				PropertyUniqKey: "0A0000010000000000000000000000AB",
			},
		},
		QueueID:                   3,
		QueueOffset:               42,
		CommitLogOffset:           123456,
		SysFlag:                   0,
		BornTimestamp:             1700000000123,
		BornHost:                  netip.MustParseAddrPort("192.168.1.2:54321"),
		StoreTimestamp:            1700000000456,
		StoreHost:                 netip.MustParseAddrPort("10.0.0.1:10911"),
		ReconsumeTimes:            2,
		PreparedTransactionOffset: 99,
	}
	return m
}

func roundTrip(t *testing.T, m *Ext) []byte {
	t.Helper()
	rec, err := AppendRecord(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	size, err := RecordSize(m)
	if err != nil || size != len(rec) {
		t.Fatalf("RecordSize = %d %v, encoded %d", size, err, len(rec))
	}
	got, n, err := DecodeRecord(rec, true)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(rec) {
		t.Fatalf("consumed %d of %d", n, len(rec))
	}
	want := m.Clone()
	want.StoreSize = int32(len(rec))
	want.SysFlag = EffectiveSysFlag(m)
	want.BodyCRC = BodyCRC(m.Body)
	if want.Properties == nil {
		want.Properties = map[string]string{}
	}
	if want.Body == nil {
		want.Body = []byte{}
	}
	zero := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	if !want.BornHost.IsValid() {
		want.BornHost = zero
	}
	if !want.StoreHost.IsValid() {
		want.StoreHost = zero
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	return rec
}

func TestRecordRoundTripV4(t *testing.T) {
	rec := roundTrip(t, sampleExt())
	if got := int32(binary.BigEndian.Uint32(rec[OffMagic:])); got != MagicV1 {
		t.Fatalf("magic %d, want V1", got)
	}
}

func TestRecordRoundTripIPv6AndV2(t *testing.T) {
	m := sampleExt()
	m.BornHost = netip.MustParseAddrPort("[2001:db8::2]:1234")
	m.StoreHost = netip.MustParseAddrPort("[2001:db8::1]:10911")
	m.Topic = "%RETRY%" + strings.Repeat("g", 200)
	rec := roundTrip(t, m)
	if got := int32(binary.BigEndian.Uint32(rec[OffMagic:])); got != MagicV2 {
		t.Fatalf("magic %d, want V2", got)
	}
	sf := int32(binary.BigEndian.Uint32(rec[OffSysFlag:]))
	if sf&SysFlagBornHostV6 == 0 || sf&SysFlagStoreHostV6 == 0 {
		t.Fatalf("sysflag %#x lacks v6 bits", sf)
	}
	// Only one of the two hosts in IPv6.
	m.Topic = "T"
	m.BornHost = netip.MustParseAddrPort("1.2.3.4:5")
	roundTrip(t, m)
	// IPv4-mapped addresses are written as IPv4.
	m.StoreHost = netip.MustParseAddrPort("[::ffff:10.0.0.1]:10911")
	rec, _ = AppendRecord(nil, m)
	if sf := int32(binary.BigEndian.Uint32(rec[OffSysFlag:])); sf&SysFlagStoreHostV6 != 0 {
		t.Fatal("mapped IPv4 store host must be encoded as IPv4")
	}
}

func TestRecordEmptyBodyNoProps(t *testing.T) {
	m := &Ext{Message: Message{Topic: "T"}}
	rec := roundTrip(t, m)
	if len(rec) != MinRecordSize+1 {
		t.Fatalf("minimal record is %d bytes, MinRecordSize+1 = %d", len(rec), MinRecordSize+1)
	}
}

func TestRecordEncodeErrors(t *testing.T) {
	m := sampleExt()
	m.Properties["big"] = strings.Repeat("x", MaxPropertiesSize)
	dst := []byte("keep")
	out, err := AppendRecord(dst, m)
	if !errors.Is(err, ErrPropertiesTooLarge) || !errors.Is(err, ErrInvalidMessage) || string(out) != "keep" {
		t.Fatalf("oversize properties: %v %q", err, out)
	}
	m = sampleExt()
	m.Properties["bad\x01"] = "v"
	if _, err := AppendRecord(nil, m); !errors.Is(err, ErrInvalidProperty) {
		t.Fatalf("separator in key: %v", err)
	}
	if _, err := RecordSize(&Ext{}); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("empty topic: %v", err)
	}
}

func TestRecordPatchHelpers(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		m := sampleExt()
		if v6 {
			m.BornHost = netip.MustParseAddrPort("[::1]:1")
		}
		rec, _ := AppendRecord(nil, m)
		PutQueueOffset(rec, 1000)
		PutPhysicalOffset(rec, 2000)
		PutStoreTimestamp(rec, 3000)
		PutReconsumeTimes(rec, 4)
		got, _, err := DecodeRecord(rec, true)
		if err != nil {
			t.Fatal(err)
		}
		if got.QueueOffset != 1000 || got.CommitLogOffset != 2000 || got.StoreTimestamp != 3000 || got.ReconsumeTimes != 4 {
			t.Fatalf("patched fields: %+v", got)
		}
		if got.StoreHost != m.StoreHost || got.BornHost != m.BornHost {
			t.Fatal("patching clobbered a host")
		}
	}
}

func TestDecodeRecordCorruption(t *testing.T) {
	rec, _ := AppendRecord(nil, sampleExt())
	for cut := 0; cut < len(rec); cut++ {
		if _, _, err := DecodeRecord(rec[:cut], true); err == nil {
			t.Fatalf("record cut at %d decoded", cut)
		}
	}
	var h RecordHeader
	if err := ParseRecordHeader(rec[:len(rec)-1], &h); !errors.Is(err, ErrShort) {
		t.Fatalf("short record: %v", err)
	}
	for i := range rec {
		b := bytes.Clone(rec)
		b[i] ^= 0x40
		m, _, err := DecodeRecord(b, true)
		if err != nil {
			continue
		}
		// Flips in fields the layout cannot check (ids, offsets, timestamps, hosts, flag,
		// property values) decode; a body or length flip never does.
		if i >= 0 && i < OffQueueID || (i >= h.BodyOff && i < h.BodyOff+h.BodyLen) {
			t.Fatalf("flip at byte %d decoded: %+v", i, m)
		}
	}
	b := bytes.Clone(rec)
	b = append(b, 0xFF, 0xFF)
	if _, n, err := DecodeRecord(b, true); err != nil || n != len(rec) {
		t.Fatal("trailing garbage must not affect the first record")
	}
}

func TestBlankRecord(t *testing.T) {
	b := AppendBlank(nil, 1000)
	b = append(b, make([]byte, 992)...)
	_, n, err := DecodeRecord(b, true)
	if !errors.Is(err, ErrBlank) || n != 1000 {
		t.Fatalf("blank: n=%d err=%v", n, err)
	}
	rec, _ := AppendRecord(nil, sampleExt())
	all := append(bytes.Clone(rec), rec...)
	all = append(all, AppendBlank(nil, 8)...)
	ms, err := DecodeRecords(all)
	if err != nil || len(ms) != 2 {
		t.Fatalf("DecodeRecords: %d %v", len(ms), err)
	}
}

// TestRecordDecodedByGo2 proves byte compatibility: the official remoting Go client decodes
// our record into the same fields.
func TestRecordDecodedByGo2(t *testing.T) {
	m := sampleExt()
	m.BornHost = netip.MustParseAddrPort("[2001:db8::2]:1234")
	rec1, _ := AppendRecord(nil, sampleExt())
	rec2, _ := AppendRecord(nil, m)
	got := go2.DecodeMessage(append(rec1, rec2...))
	if len(got) != 2 {
		t.Fatalf("go2 decoded %d messages", len(got))
	}
	for i, g := range got {
		want := sampleExt()
		if g.Topic != want.Topic || string(g.Body) != string(want.Body) || g.Queue.QueueId != int(want.QueueID) ||
			g.QueueOffset != want.QueueOffset || g.CommitLogOffset != want.CommitLogOffset ||
			g.BornTimestamp != want.BornTimestamp || g.StoreTimestamp != want.StoreTimestamp ||
			g.ReconsumeTimes != want.ReconsumeTimes || g.PreparedTransactionOffset != want.PreparedTransactionOffset ||
			g.Flag != want.Flag || g.BodyCRC != int32(BodyCRC(want.Body)) {
			t.Fatalf("message %d: go2 decoded %v", i, g)
		}
		if g.GetTags() != "TagA" || g.GetKeys() != "k1 k2" || g.MsgId != want.UniqKey() {
			t.Fatalf("message %d properties: tags=%q keys=%q msgid=%q", i, g.GetTags(), g.GetKeys(), g.MsgId)
		}
		if g.OffsetMsgId != OffsetMsgID(want.StoreHost, want.CommitLogOffset) {
			t.Fatalf("offset msg id: go2 %s, ours %s", g.OffsetMsgId, OffsetMsgID(want.StoreHost, want.CommitLogOffset))
		}
		if g.StoreHost != "10.0.0.1:10911" {
			t.Fatalf("store host %q", g.StoreHost)
		}
	}
	if got[0].BornHost != "192.168.1.2:54321" {
		t.Fatalf("born host %q", got[0].BornHost)
	}
	// go2's unique-id generator output is accepted as an opaque key by our helpers.
	if id := go2.CreateUniqID(); !IsUniqID(id) {
		t.Fatalf("go2 unique id %q rejected", id)
	}
}

func TestAppendRecordAllocs(t *testing.T) {
	m := sampleExt()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(200, func() { _, _ = AppendRecord(buf[:0], m) }); n != 0 {
		t.Fatalf("AppendRecord with room allocates %v times", n)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	rec, _ := AppendRecord(nil, sampleExt())
	f.Add(rec)
	m := sampleExt()
	m.BornHost = netip.MustParseAddrPort("[::1]:1")
	m.Topic = strings.Repeat("t", 130)
	rec2, _ := AppendRecord(nil, m)
	f.Add(rec2)
	f.Add(AppendBlank(nil, 64))
	f.Add(rec[:50])
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, err := DecodeRecord(b, true)
		if errors.Is(err, ErrBlank) {
			return
		}
		if err != nil {
			if got != nil {
				t.Fatal("error with a message")
			}
			return
		}
		if n > len(b) || n != int(got.StoreSize) {
			t.Fatalf("consumed %d of %d (size %d)", n, len(b), got.StoreSize)
		}
		if BodyCRC(got.Body) != got.BodyCRC {
			t.Fatal("accepted a CRC mismatch")
		}
		// A decoded record re-encodes to the same bytes, unless the host bits or topic
		// length form are non-canonical.
		enc, err := AppendRecord(nil, got)
		if err != nil {
			return
		}
		if EffectiveSysFlag(got) == got.SysFlag && len(enc) == n && !bytes.Equal(enc, b[:n]) {
			// Properties order and encoding may differ (duplicate keys, unsorted input).
			if string(EncodeProperties(got.Properties)) == string(b[n-len(EncodeProperties(got.Properties)):n]) {
				t.Fatalf("re-encoding differs:\n%x\n%x", enc, b[:n])
			}
		}
	})
}
