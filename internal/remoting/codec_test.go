package remoting

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleCommand() *Command {
	return &Command{
		Code:     SendMessageV2,
		Language: LanguageJava,
		Version:  479,
		Opaque:   42,
		Flag:     FlagOneway,
		Remark:   "hé \"quoted\"\n\x01",
		ExtFields: map[string]string{
			"a": "TopicTest", "b": "12", "properties": "KEYS\x01k1\x02TAGS\x01t\x02", "empty": "",
		},
		Body: []byte("hello body"),
	}
}

func TestRoundTripBothSerializeTypes(t *testing.T) {
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		t.Run(st.String(), func(t *testing.T) {
			in := sampleCommand()
			frame, err := EncodeFrame(in, st)
			if err != nil {
				t.Fatal(err)
			}
			if got := SerializeType(frame[4]); got != st {
				t.Fatalf("serialize type byte = %d, want %d", got, st)
			}
			out, err := Decode(frame)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(in, out); diff != "" {
				t.Fatalf("round trip (-in +out):\n%s", diff)
			}
		})
	}
}

func TestEncodeBodyParts(t *testing.T) {
	c := NewResponse(Success, "")
	c.Opaque = 7
	c.Body = []byte("ab")
	c.BodyParts = [][]byte{[]byte("cd"), nil, []byte("efg")}
	bufs, err := Encode(c, SerializeJSON)
	if err != nil {
		t.Fatal(err)
	}
	var flat []byte
	for _, b := range bufs {
		flat = append(flat, b...)
	}
	out, err := Decode(flat)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Body) != "abcdefg" || out.Opaque != 7 || !out.IsResponse() {
		t.Fatalf("decoded %v body %q", out, out.Body)
	}
	if int(binary.BigEndian.Uint32(flat)) != len(flat)-4 {
		t.Fatalf("length prefix %d, frame %d", binary.BigEndian.Uint32(flat), len(flat))
	}
}

// goldenGo2JSON is the frame rocketmq-client-go v2 (internal/remote/codec.go, jsoniter,
// codecType 0) writes for GET_ROUTEINFO_BY_TOPIC{topic=TopicTest} with opaque 1: the
// field order code, language, version, opaque, flag, remark, extFields and no spaces.
const goldenGo2JSONHeader = `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"TopicTest"}}`

func golden2Frame(header []byte, st SerializeType, body []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	f = binary.BigEndian.AppendUint32(f, uint32(st)<<24|uint32(len(header)))
	f = append(f, header...)
	return append(f, body...)
}

func TestGoldenGo2JSONFrame(t *testing.T) {
	c := &Command{Code: GetRouteinfoByTopic, Language: LanguageGo, Version: 317, Opaque: 1, ExtFields: map[string]string{"topic": "TopicTest"}}
	got, err := EncodeFrame(c, SerializeJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := golden2Frame([]byte(goldenGo2JSONHeader), SerializeJSON, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("frame mismatch\n got %q\nwant %q", got, want)
	}
	back, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Fatalf("decode golden (-want +got):\n%s", diff)
	}
}

// goldenGo2Binary is go2's rmqCodec layout for the same request with a body "xy":
// int16 code | byte lang(GO=9) | int16 version | int32 opaque | int32 flag | int32 remarkLen |
// int32 extLen | int16 keyLen "topic" int32 valLen "TopicTest".
const goldenGo2Binary = "0069" + "09" + "013d" + "00000001" + "00000000" + "00000000" +
	"00000014" + "0005" + "746f706963" + "00000009" + "546f70696354657374"

func TestGoldenGo2BinaryFrame(t *testing.T) {
	header, _ := hex.DecodeString(goldenGo2Binary)
	c := &Command{Code: GetRouteinfoByTopic, Language: LanguageGo, Version: 317, Opaque: 1, ExtFields: map[string]string{"topic": "TopicTest"}, Body: []byte("xy")}
	got, err := EncodeFrame(c, SerializeRocketMQ)
	if err != nil {
		t.Fatal(err)
	}
	want := golden2Frame(header, SerializeRocketMQ, []byte("xy"))
	if !bytes.Equal(got, want) {
		t.Fatalf("frame mismatch\n got %x\nwant %x", got, want)
	}
	back, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Fatalf("decode golden (-want +got):\n%s", diff)
	}
}

// A Java (fastjson) response header: extra serializeTypeCurrentRPC, null remark absent,
// language by name.
func TestDecodeJavaJSONHeader(t *testing.T) {
	h := `{"code":0,"extFields":{"queueId":"3","msgId":"C0A8000100002A9F0000000000000000","queueOffset":"17"},"flag":1,"language":"JAVA","opaque":99,"serializeTypeCurrentRPC":"JSON","version":479}`
	c, err := Decode(golden2Frame([]byte(h), SerializeJSON, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: 0, Language: LanguageJava, Version: 479, Opaque: 99, Flag: 1, ExtFields: map[string]string{
		"queueId": "3", "msgId": "C0A8000100002A9F0000000000000000", "queueOffset": "17"}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if n, err := c.ExtInt64("queueOffset"); err != nil || n != 17 {
		t.Fatalf("ExtInt64 = %d, %v", n, err)
	}
}

func TestDecodeLanguageOrdinal(t *testing.T) {
	c, err := DecodeJSONHeader([]byte(`{"code":1,"language":13}`))
	if err != nil || c.Language != LanguageNodeJS {
		t.Fatalf("got %v, %v", c, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	jsonHdr := []byte(`{"code":1}`)
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"short", []byte{0, 0}, ErrBadFrameLength},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, ErrBadFrameLength},
		{"length below 4", []byte{0, 0, 0, 2, 0, 0}, ErrBadFrameLength},
		{"oversized", binary.BigEndian.AppendUint32(nil, DefaultMaxFrameSize+1), ErrFrameTooLarge},
		{"length mismatch", []byte{0, 0, 0, 9, 0, 0, 0, 0}, ErrBadFrameLength},
		{"header longer than frame", golden2FrameRaw(0x00000020, nil), ErrBadHeaderLength},
		{"unknown serialize type", golden2FrameRaw(uint32(7)<<24|uint32(len(jsonHdr)), jsonHdr), ErrUnknownSerializeType},
		{"bad json", golden2Frame([]byte(`{"code":`), SerializeJSON, nil), ErrBadHeader},
		{"ext not string", golden2Frame([]byte(`{"code":1,"extFields":{"a":1}}`), SerializeJSON, nil), ErrBadHeader},
		{"code overflow", golden2Frame([]byte(`{"code":99999999999}`), SerializeJSON, nil), ErrBadHeader},
		{"binary short", golden2Frame([]byte{0, 1, 2}, SerializeRocketMQ, nil), ErrBadHeader},
		{"binary remark too long", golden2Frame(mustHex("0001"+"09"+"0001"+"00000001"+"00000000"+"00000100"+"00000000"), SerializeRocketMQ, nil), ErrBadHeader},
		{"binary negative ext", golden2Frame(mustHex("0001"+"09"+"0001"+"00000001"+"00000000"+"00000000"+"ffffffff"), SerializeRocketMQ, nil), ErrBadHeader},
		{"binary ext key overruns", golden2Frame(mustHex("0001"+"09"+"0001"+"00000001"+"00000000"+"00000000"+"00000004"+"7fff0000"), SerializeRocketMQ, nil), ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.frame)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
		})
	}
}

func golden2FrameRaw(lenType uint32, header []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)))
	f = binary.BigEndian.AppendUint32(f, lenType)
	return append(f, header...)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestReadFrameLimits(t *testing.T) {
	big := binary.BigEndian.AppendUint32(nil, 1<<20)
	if _, err := ReadFrame(bytes.NewReader(big), 1<<19); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	// A large announced frame that stalls after a few bytes must not be allocated whole.
	stalled := append(binary.BigEndian.AppendUint32(nil, 8<<20), make([]byte, 100)...)
	if _, err := ReadFrame(bytes.NewReader(stalled), 16<<20); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("err = %v, want unexpected EOF", err)
	}
	// A large frame read in chunks arrives intact.
	payload := bytes.Repeat([]byte("0123456789"), 100_000)
	frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
	got, err := ReadFrame(bytes.NewReader(frame), 16<<20)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("large frame: err %v, equal %v", err, bytes.Equal(got, payload))
	}
}

func TestExtHelpers(t *testing.T) {
	c := NewRequest(HeartBeat, nil, nil)
	c.SetExt("n", "12")
	c.SetExtInt64("big", -1<<40)
	c.SetExt("t", "TRUE")
	c.SetExt("bad", "x1")
	if v, err := c.ExtInt32("n"); err != nil || v != 12 {
		t.Fatalf("ExtInt32 = %d, %v", v, err)
	}
	if v, err := c.ExtInt64("big"); err != nil || v != -1<<40 {
		t.Fatalf("ExtInt64 = %d, %v", v, err)
	}
	if _, err := c.ExtInt32("big"); !errors.Is(err, ErrBadField) {
		t.Fatalf("ExtInt32 overflow err = %v", err)
	}
	if b, err := c.ExtBool("t"); err != nil || !b {
		t.Fatalf("ExtBool = %v, %v", b, err)
	}
	if _, err := c.ExtInt64("bad"); !errors.Is(err, ErrBadField) {
		t.Fatalf("bad int err = %v", err)
	}
	_, err := c.ExtRequired("brokerName")
	if !errors.Is(err, ErrMissingField) || !strings.Contains(err.Error(), "brokerName") {
		t.Fatalf("ExtRequired err = %v", err)
	}
	if c.ExtInt64Or("missing", 5) != 5 || !c.ExtBoolOr("missing", true) {
		t.Fatal("defaults not applied")
	}
}

func TestFlags(t *testing.T) {
	c := NewRequest(SendMessage, nil, nil)
	if c.IsResponse() || c.IsOneway() {
		t.Fatal("fresh request has flags")
	}
	c.MarkOneway()
	c.MarkResponse()
	if !c.IsOneway() || !c.IsResponse() || c.Flag != 3 {
		t.Fatalf("flag = %d", c.Flag)
	}
	if r := NewResponse(Success, ""); !r.IsResponse() {
		t.Fatal("NewResponse without response flag")
	}
}

func TestJSONStringEscaping(t *testing.T) {
	c := &Command{Code: 1, Remark: "a\"b\\c\x00\x1f\t\xff€"}
	frame, err := EncodeFrame(c, SerializeJSON)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\"b\\c\x00\x1f\t\uFFFD€"; out.Remark != want {
		t.Fatalf("remark %q, want %q", out.Remark, want)
	}
}
