package cluster

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeJSON: the lenient decoder (fastjson's unquoted numeric keys) never panics and
// agrees with encoding/json on input encoding/json accepts.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"b"}],"queueDatas":[]}`))
	f.Add([]byte(`{"a":"{0:1}","b":{-1:"x"}}`))
	f.Add([]byte(`{"unterminated`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var lenient, strict any
		err := decodeJSON(b, &lenient)
		if json.Unmarshal(b, &strict) == nil {
			if err != nil {
				t.Fatalf("valid JSON %q refused: %v", b, err)
			}
			l, _ := json.Marshal(lenient)
			s, _ := json.Marshal(strict)
			if string(l) != string(s) {
				t.Fatalf("decoded %s, encoding/json %s", l, s)
			}
		}
	})
}
