package remoting

import (
	"encoding/json"
	"testing"
)

// go2SendV2Header is the JSON header a go2 (rocketmq-client-go v2) producer sends with
// SEND_MESSAGE_V2: encoding/json output of its RemotingCommand, so the properties'
// \x01/\x02 separators arrive as \u0001/\u0002 escapes.
func go2SendV2Header(tb testing.TB) []byte {
	tb.Helper()
	props := "KEYS\x01order-42\x02TAGS\x01TagA\x02UNIQ_KEY\x017F0000010001B4AA0000000000000001\x02WAIT\x01true\x02"
	h, err := json.Marshal(struct {
		Code      int16             `json:"code"`
		Version   int16             `json:"version"`
		Opaque    int32             `json:"opaque"`
		Flag      int32             `json:"flag"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
		Language  string            `json:"language"`
	}{
		Code: SendMessageV2, Version: 317, Opaque: 12345, Flag: 0, Language: "GO",
		ExtFields: map[string]string{
			"a": "ProducerGroupName", "b": "TopicTest", "c": "TBW102", "d": "4", "e": "3", "f": "0",
			"g": "1700000000000", "h": "0", "i": props, "j": "0", "k": "false", "m": "false",
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestGo2SendV2HeaderTakesFastPath(t *testing.T) {
	h := go2SendV2Header(t)
	fast, ok := decodeJSONHeaderFast(h)
	if !ok {
		t.Fatalf("fast path rejects %s", h)
	}
	std, err := decodeJSONHeaderStd(h)
	if err != nil {
		t.Fatal(err)
	}
	if fast.ExtFields["i"] != std.ExtFields["i"] || fast.ExtFields["i"][4] != 1 {
		t.Fatalf("properties %q, encoding/json %q", fast.ExtFields["i"], std.ExtFields["i"])
	}
}

// BenchmarkDecodeJSONHeaderGo2SendV2: the header decoder (fast path with its fallback) on
// a go2 SEND_MESSAGE_V2 header with properties; "std" is encoding/json alone (the peer).
func BenchmarkDecodeJSONHeaderGo2SendV2(b *testing.B) {
	h := go2SendV2Header(b)
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(h)))
		for b.Loop() {
			if _, err := DecodeJSONHeader(h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("std", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(h)))
		for b.Loop() {
			if _, err := decodeJSONHeaderStd(h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
