package admin

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecodeJSONAcceptsFastjsonKeys(t *testing.T) {
	var ci struct {
		BrokerAddrTable map[string]struct {
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerAddrTable"`
	}
	in := `{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a"}},"clusterAddrTable":{"C":["broker-a"]}}`
	if err := decodeJSON([]byte(in), &ci); err != nil {
		t.Fatal(err)
	}
	if got := ci.BrokerAddrTable["broker-a"].BrokerAddrs["1"]; got != "10.0.0.2:10911" {
		t.Fatalf("addr 1 = %q", got)
	}

	var cs struct {
		OffsetTable map[string]struct {
			BrokerOffset   int64 `json:"brokerOffset"`
			ConsumerOffset int64 `json:"consumerOffset"`
		} `json:"offsetTable"`
		ConsumeTps float64 `json:"consumeTps"`
	}
	in = `{"consumeTps":1.5,"offsetTable":{{"brokerName":"broker-a","queueId":3,"topic":"T,x:y"}:{"brokerOffset":10,"consumerOffset":4},{"brokerName":"broker-a", "queueId":0,"topic":"T"}:{"brokerOffset":1,"consumerOffset":1}}}`
	if err := decodeJSON([]byte(in), &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs.OffsetTable) != 2 || cs.ConsumeTps != 1.5 {
		t.Fatalf("table %v", cs)
	}
	for k, v := range cs.OffsetTable {
		q, err := parseQueueKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if q.QueueID == 3 && (q.Topic != "T,x:y" || v.BrokerOffset != 10 || v.ConsumerOffset != 4) {
			t.Fatalf("queue 3: %+v %+v", q, v)
		}
		if q.QueueID == 0 && q.BrokerName != "broker-a" {
			t.Fatalf("queue 0: %+v (key %q)", q, k)
		}
	}
	// Standard JSON passes untouched.
	var m map[string]int
	if err := decodeJSON([]byte(`{"a":1}`), &m); err != nil || m["a"] != 1 {
		t.Fatal(m, err)
	}
	if q, err := parseQueueKey("T@broker-a@7"); err != nil || q.QueueID != 7 || q.BrokerName != "broker-a" {
		t.Fatal(q, err)
	}
	for _, bad := range []string{`{"a":`, `{{"a":1}`, `{"a":"x`, `]`} {
		if err := decodeJSON([]byte(bad), &m); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}

// FuzzDecodeJSON: the normalizer never panics, accepts whatever encoding/json accepts, and
// its output, when valid, decodes.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"brokerAddrs":{0:"a:1",1:"b:2"}}`))
	f.Add([]byte(`{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":1}}}`))
	f.Add([]byte(`[{"a":[1,2,{"b":"\"}"}]}]`))
	f.Add([]byte(`{"table":{"putTps":"1.0 2.0 3.0"}}`))
	f.Add([]byte(`{"offsetTable":{"T@b@3":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		_ = decodeJSON(b, &v)
		// object keys come back as strings that parseQueueKey must handle without panicking
		var table map[string]json.RawMessage
		if decodeJSON(b, &table) == nil {
			for k := range table {
				_, _ = parseQueueKey(k)
			}
		}
		var std any
		if json.Unmarshal(b, &std) == nil {
			if err := decodeJSON(b, &v); err != nil {
				t.Fatalf("valid JSON rejected: %v", err)
			}
		}
		if json.Unmarshal(b, &std) == nil {
			out, err := normalizeJSON(b)
			if err != nil {
				t.Fatalf("normalize rejected valid JSON: %v", err)
			}
			var w any
			if err := json.Unmarshal(out, &w); err != nil || !reflect.DeepEqual(w, std) {
				t.Fatalf("normalize changed valid JSON %q into %q (%v)", b, out, err)
			}
		}
	})
}
