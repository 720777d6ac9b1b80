package route

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleBody() *RegisterBrokerBody {
	return &RegisterBrokerBody{
		TopicConfigSerializeWrapper: TopicConfigSerializeWrapper{
			TopicConfigTable: map[string]TopicConfig{
				"TopicTest": {TopicName: "TopicTest", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6, TopicFilterType: "SINGLE_TAG", Attributes: map[string]string{"+message.type": "NORMAL"}},
				"TBW102":    {TopicName: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 7, TopicFilterType: "SINGLE_TAG"},
			},
			DataVersion: DataVersion{StateVersion: 1, Timestamp: 1700000000000, Counter: 3},
		},
		FilterServerList: []string{},
	}
}

func TestTopicConfigJSONFieldNames(t *testing.T) {
	b, _ := json.Marshal(TopicConfig{TopicName: "T", ReadQueueNums: 1, WriteQueueNums: 2, Perm: 6, TopicFilterType: "SINGLE_TAG", TopicSysFlag: 0, Order: true, Attributes: map[string]string{}})
	want := `{"topicName":"T","readQueueNums":1,"writeQueueNums":2,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":true,"attributes":{}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestRegisterBodyJSONRoundTrip(t *testing.T) {
	in := sampleBody()
	b, err := in.Encode(false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"topicConfigSerializeWrapper":{"topicConfigTable":{`)) || !bytes.Contains(b, []byte(`"filterServerList":[]`)) {
		t.Fatalf("unexpected JSON %s", b)
	}
	out, err := DecodeRegisterBrokerBody(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Fatal(diff)
	}
}

func TestRegisterBodyCompressedRoundTrip(t *testing.T) {
	in := sampleBody()
	b, err := in.Encode(true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeRegisterBrokerBody(b, true)
	if err != nil {
		t.Fatal(err)
	}
	// The compressed form carries no topicSysFlag/order (as RocketMQ's TopicConfig.encode).
	if diff := cmp.Diff(in, out); diff != "" {
		t.Fatal(diff)
	}
}

// javaCompressed builds the stream RocketMQ's RegisterBrokerBody.encode(true) writes,
// independently of Encode.
func javaCompressed(t *testing.T, lines []string, withMapping bool) []byte {
	var raw bytes.Buffer
	w := func(s string) {
		binary.Write(&raw, binary.BigEndian, int32(len(s)))
		raw.WriteString(s)
	}
	w(`{"counter":5,"stateVersion":0,"timestamp":1700000000001}`)
	binary.Write(&raw, binary.BigEndian, int32(len(lines)))
	for _, l := range lines {
		w(l)
	}
	w(`[]`)
	if withMapping {
		binary.Write(&raw, binary.BigEndian, int32(1))
		w(`{"topic":"X","totalQueues":1}`)
	} else {
		binary.Write(&raw, binary.BigEndian, int32(0))
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	return z.Bytes()
}

func TestDecodeJavaCompressedBody(t *testing.T) {
	data := javaCompressed(t, []string{
		`TopicTest 4 4 6 SINGLE_TAG {"+message.type":"FIFO"}`,
		`Old 2 2 6 SINGLE_TAG `,
		`Spaces 1 1 6 SINGLE_TAG {"a b":"c"}`,
	}, true)
	b, err := DecodeRegisterBrokerBody(data, true)
	if err != nil {
		t.Fatal(err)
	}
	w := b.TopicConfigSerializeWrapper
	if w.DataVersion.Counter != 5 || w.DataVersion.Timestamp != 1700000000001 {
		t.Fatalf("data version %+v", w.DataVersion)
	}
	want := map[string]TopicConfig{
		"TopicTest": {TopicName: "TopicTest", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: "SINGLE_TAG", Attributes: map[string]string{"+message.type": "FIFO"}},
		"Old":       {TopicName: "Old", ReadQueueNums: 2, WriteQueueNums: 2, Perm: 6, TopicFilterType: "SINGLE_TAG"},
		"Spaces":    {TopicName: "Spaces", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6, TopicFilterType: "SINGLE_TAG", Attributes: map[string]string{"a b": "c"}},
	}
	if diff := cmp.Diff(want, w.TopicConfigTable); diff != "" {
		t.Fatal(diff)
	}
}

func TestDecodeCompressedJSON(t *testing.T) {
	js, _ := sampleBody().Encode(false)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(js)
	zw.Close()
	b, err := DecodeRegisterBrokerBody(z.Bytes(), true)
	if err != nil || len(b.TopicConfigSerializeWrapper.TopicConfigTable) != 2 {
		t.Fatalf("%+v %v", b, err)
	}
}

func TestDecodeRegisterBodyErrors(t *testing.T) {
	cases := map[string]struct {
		data       []byte
		compressed bool
	}{
		"bad json":         {[]byte(`{"topicConfigSerializeWrapper":`), false},
		"not zlib":         {[]byte("plain"), true},
		"truncated":        {javaCompressed(t, []string{"T 1 1 6 SINGLE_TAG"}, false)[:12], true},
		"bad topic line":   {javaCompressed(t, []string{"T x 1 6 SINGLE_TAG"}, false), true},
		"short topic line": {javaCompressed(t, []string{"T 1 1"}, false), true},
	}
	for name, c := range cases {
		if _, err := DecodeRegisterBrokerBody(c.data, c.compressed); !errors.Is(err, ErrBadRegisterBody) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	// A zlib bomb is cut at the inflate limit.
	defer func(l int) { inflateLimit = l }(inflateLimit)
	inflateLimit = 4 << 20
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zero := make([]byte, 1<<20)
	for range inflateLimit>>20 + 1 {
		zw.Write(zero)
	}
	zw.Close()
	if _, err := DecodeRegisterBrokerBody(z.Bytes(), true); !errors.Is(err, ErrBadRegisterBody) || !strings.Contains(err.Error(), "inflates") {
		t.Fatalf("bomb: %v", err)
	}
}

func TestBodyCRC32MatchesRocketMQ(t *testing.T) {
	// java.util.zip.CRC32 of "123456789" is 0xCBF43926; RocketMQ masks it to 31 bits.
	if got := BodyCRC32([]byte("123456789")); got != 0x4BF43926 {
		t.Fatalf("crc %#x", got)
	}
}

func TestRouteEncodeCompactAndGo2Parsable(t *testing.T) {
	r := &TopicRouteData{
		QueueDatas:  []QueueData{{BrokerName: "broker-a", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6}},
		BrokerDatas: []BrokerData{{Cluster: "DefaultCluster", BrokerName: "broker-a", BrokerAddrs: map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}}, {Cluster: "C", BrokerName: "nil-addrs"}},
	}
	b := r.Encode()
	want := `{"queueDatas":[{"brokerName":"broker-a","readQueueNums":8,"writeQueueNums":8,"perm":6,"topicSysFlag":0}],"brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"enableActingMaster":false},{"cluster":"C","brokerName":"nil-addrs","brokerAddrs":{},"enableActingMaster":false}],"filterServerTable":{}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if r.BrokerDatas[1].BrokerAddrs != nil {
		t.Fatal("Encode modified its receiver")
	}
	back, err := DecodeTopicRouteData(b)
	if err != nil || back.BrokerDatas[0].BrokerAddrs[1] != "10.0.0.2:10911" {
		t.Fatalf("%+v %v", back, err)
	}
}

func TestDecodeFastjsonUnquotedKeys(t *testing.T) {
	b := []byte(`{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"a:{1,2}"},"brokerName":"b","cluster":"c"}],"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`)
	r, err := DecodeTopicRouteData(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int64]string{0: "10.0.0.1:10911", 1: "a:{1,2}"}, r.BrokerDatas[0].BrokerAddrs); diff != "" {
		t.Fatal(diff)
	}
}

func TestOrderTopicConf(t *testing.T) {
	if got := OrderTopicConf(map[string]int{"b": 4, "a": 2}); got != "a:2;b:4" {
		t.Fatal(got)
	}
}

// encodeStd is the reference: encoding/json over the same normalisation Encode applies.
func encodeStd(r *TopicRouteData) []byte {
	out := *r
	if out.QueueDatas == nil {
		out.QueueDatas = []QueueData{}
	}
	if out.BrokerDatas == nil {
		out.BrokerDatas = []BrokerData{}
	}
	bds := make([]BrokerData, len(out.BrokerDatas))
	copy(bds, out.BrokerDatas)
	out.BrokerDatas = bds
	for i := range out.BrokerDatas {
		if out.BrokerDatas[i].BrokerAddrs == nil {
			out.BrokerDatas[i].BrokerAddrs = map[int64]string{}
		}
	}
	if out.FilterServerTable == nil {
		out.FilterServerTable = map[string][]string{}
	}
	b, _ := json.Marshal(&out)
	return b
}

func TestRouteEncodeMatchesEncodingJSON(t *testing.T) {
	r := &TopicRouteData{
		OrderTopicConf: "a:<1>&\"x\"",
		QueueDatas:     []QueueData{{BrokerName: "é\u2028", ReadQueueNums: -1, Perm: 7, TopicSysFlag: 3}},
		BrokerDatas: []BrokerData{{Cluster: "c\x01", BrokerName: "b\xff", ZoneName: "z",
			BrokerAddrs: map[int64]string{10: "x", 2: "y", -1: "z", 0: "w"}, EnableActingMaster: true}},
		FilterServerTable: map[string][]string{"k2": nil, "k1": {"a", "b"}},
	}
	if got, want := r.Encode(), encodeStd(r); !bytes.Equal(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	empty := &TopicRouteData{}
	if got, want := empty.Encode(), encodeStd(empty); !bytes.Equal(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
