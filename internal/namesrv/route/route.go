package route

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Permission bits of topics and queues (RocketMQ PermName).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
	// PermReadWrite is the default topic permission (6).
	PermReadWrite = PermRead | PermWrite
)

// MasterID is the broker id of a master (primary); secondaries have ids >= 1.
const MasterID = 0

// Well-known KV namespaces and topic filter types.
const (
	NamespaceOrderTopicConfig = "ORDER_TOPIC_CONFIG"
	TopicFilterSingleTag      = "SINGLE_TAG"
	TopicFilterMultiTag       = "MULTI_TAG"
)

// DataVersion versions a broker's topic table (RocketMQ DataVersion).
type DataVersion struct {
	StateVersion int64 `json:"stateVersion"`
	Timestamp    int64 `json:"timestamp"`
	Counter      int64 `json:"counter"`
}

// TopicConfig is a broker's configuration of one topic (RocketMQ TopicConfig).
type TopicConfig struct {
	TopicName       string            `json:"topicName"`
	ReadQueueNums   int32             `json:"readQueueNums"`
	WriteQueueNums  int32             `json:"writeQueueNums"`
	Perm            int32             `json:"perm"`
	TopicFilterType string            `json:"topicFilterType"` // "SINGLE_TAG" (default) or "MULTI_TAG"
	TopicSysFlag    int32             `json:"topicSysFlag"`
	Order           bool              `json:"order"`
	Attributes      map[string]string `json:"attributes"`
}

// TopicConfigSerializeWrapper is the topic table a broker registers.
type TopicConfigSerializeWrapper struct {
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	DataVersion      DataVersion            `json:"dataVersion"`
}

// RegisterBrokerBody is the body of REGISTER_BROKER (103).
type RegisterBrokerBody struct {
	TopicConfigSerializeWrapper TopicConfigSerializeWrapper `json:"topicConfigSerializeWrapper"`
	FilterServerList            []string                    `json:"filterServerList"`
}

// QueueData is one broker's queues of a topic in a route.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	WriteQueueNums int32  `json:"writeQueueNums"`
	Perm           int32  `json:"perm"`
	TopicSysFlag   int32  `json:"topicSysFlag"`
}

// BrokerData is one broker group (one brokerName): its cluster and the address of each
// member by broker id (0 = master).
type BrokerData struct {
	Cluster            string           `json:"cluster"`
	BrokerName         string           `json:"brokerName"`
	BrokerAddrs        map[int64]string `json:"brokerAddrs"`
	ZoneName           string           `json:"zoneName,omitempty"`
	EnableActingMaster bool             `json:"enableActingMaster"`
}

// Clone returns a deep copy.
func (b BrokerData) Clone() BrokerData {
	c := b
	c.BrokerAddrs = make(map[int64]string, len(b.BrokerAddrs))
	for k, v := range b.BrokerAddrs {
		c.BrokerAddrs[k] = v
	}
	return c
}

// TopicRouteData is the body of a GET_ROUTEINFO_BY_TOPIC (105) response.
type TopicRouteData struct {
	OrderTopicConf    string              `json:"orderTopicConf,omitempty"`
	QueueDatas        []QueueData         `json:"queueDatas"`
	BrokerDatas       []BrokerData        `json:"brokerDatas"`
	FilterServerTable map[string][]string `json:"filterServerTable"`
}

// ClusterInfo is the body of a GET_BROKER_CLUSTER_INFO (106) response.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// TopicList is the body of topic-list responses (206, 224, 304).
type TopicList struct {
	TopicList  []string `json:"topicList"`
	BrokerAddr string   `json:"brokerAddr,omitempty"`
}

// KVTable is the body of GET_KVLIST_BY_NAMESPACE (219) responses.
type KVTable struct {
	Table map[string]string `json:"table"`
}

// BrokerMemberGroup is the body of a GET_BROKER_MEMBER_GROUP (901) response.
type BrokerMemberGroup struct {
	Cluster     string           `json:"cluster"`
	BrokerName  string           `json:"brokerName"`
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
}

// Encode returns compact JSON with every map and slice non-null (go2 slices brokerAddrs
// as a string and panics on a missing object). The output is byte-identical to
// encoding/json's (sorted map keys, HTML-safe escaping) but built without reflection:
// routes are the NameServer's hottest response.
func (r *TopicRouteData) Encode() []byte {
	b := make([]byte, 0, 128+len(r.QueueDatas)*96+len(r.BrokerDatas)*128)
	b = append(b, '{')
	if r.OrderTopicConf != "" {
		b = append(b, `"orderTopicConf":`...)
		b = appendString(b, r.OrderTopicConf)
		b = append(b, ',')
	}
	b = append(b, `"queueDatas":[`...)
	for i, q := range r.QueueDatas {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"brokerName":`...)
		b = appendString(b, q.BrokerName)
		b = append(b, `,"readQueueNums":`...)
		b = strconv.AppendInt(b, int64(q.ReadQueueNums), 10)
		b = append(b, `,"writeQueueNums":`...)
		b = strconv.AppendInt(b, int64(q.WriteQueueNums), 10)
		b = append(b, `,"perm":`...)
		b = strconv.AppendInt(b, int64(q.Perm), 10)
		b = append(b, `,"topicSysFlag":`...)
		b = strconv.AppendInt(b, int64(q.TopicSysFlag), 10)
		b = append(b, '}')
	}
	b = append(b, `],"brokerDatas":[`...)
	for i, d := range r.BrokerDatas {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"cluster":`...)
		b = appendString(b, d.Cluster)
		b = append(b, `,"brokerName":`...)
		b = appendString(b, d.BrokerName)
		b = append(b, `,"brokerAddrs":{`...)
		b = appendAddrs(b, d.BrokerAddrs)
		b = append(b, '}')
		if d.ZoneName != "" {
			b = append(b, `,"zoneName":`...)
			b = appendString(b, d.ZoneName)
		}
		b = append(b, `,"enableActingMaster":`...)
		b = strconv.AppendBool(b, d.EnableActingMaster)
		b = append(b, '}')
	}
	b = append(b, `],"filterServerTable":{`...)
	keys := make([]string, 0, len(r.FilterServerTable))
	for k := range r.FilterServerTable {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if v := r.FilterServerTable[k]; v == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for j, s := range v {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, s)
			}
			b = append(b, ']')
		}
	}
	return append(b, '}', '}')
}

// appendAddrs writes brokerAddrs entries sorted as encoding/json sorts integer map keys
// (by their decimal string).
func appendAddrs(b []byte, m map[int64]string) []byte {
	switch len(m) {
	case 0:
		return b
	case 1:
		for id, addr := range m {
			b = append(b, '"')
			b = strconv.AppendInt(b, id, 10)
			b = append(b, '"', ':')
			b = appendString(b, addr)
		}
		return b
	}
	type kv struct {
		k string
		v string
	}
	ents := make([]kv, 0, len(m))
	for id, addr := range m {
		ents = append(ents, kv{strconv.FormatInt(id, 10), addr})
	}
	slices.SortFunc(ents, func(a, c kv) int { return strings.Compare(a.k, c.k) })
	for i, e := range ents {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, e.k...)
		b = append(b, '"', ':')
		b = appendString(b, e.v)
	}
	return b
}

// appendString writes s as encoding/json would: raw when it is plain printable ASCII,
// otherwise through json.Marshal (escapes, HTML-safe, invalid UTF-8).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// DecodeTopicRouteData parses a route body. Besides standard JSON it accepts fastjson's
// unquoted numeric map keys ({0:"addr"}) that Java NameServers send to old clients.
func DecodeTopicRouteData(b []byte) (*TopicRouteData, error) {
	var r TopicRouteData
	if err := json.Unmarshal(b, &r); err != nil {
		fixed := quoteNumericKeys(b)
		if err2 := json.Unmarshal(fixed, &r); err2 != nil {
			return nil, fmt.Errorf("route: decode TopicRouteData: %w", err)
		}
	}
	return &r, nil
}

// quoteNumericKeys turns {0:"a",1:"b"} into {"0":"a","1":"b"} outside strings.
func quoteNumericKeys(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	inStr, esc := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			out = append(out, c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			out = append(out, c)
			continue
		}
		if (c == '{' || c == ',') && i+1 < len(b) {
			j := i + 1
			for j < len(b) && (b[j] == '-' || (b[j] >= '0' && b[j] <= '9')) {
				j++
			}
			if j > i+1 && j < len(b) && b[j] == ':' {
				out = append(out, c, '"')
				out = append(out, b[i+1:j]...)
				out = append(out, '"')
				i = j - 1
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// Marshal is json.Marshal for the bodies of this package (compact, cannot fail for them).
func Marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("route: marshal %T: %v", v, err))
	}
	return b
}

// OrderTopicConf formats the value stored under NamespaceOrderTopicConfig:
// "brokerA:4;brokerB:4" (broker name and queue count per broker).
func OrderTopicConf(queues map[string]int) string {
	names := make([]string, 0, len(queues))
	for n := range queues {
		names = append(names, n)
	}
	slices.Sort(names)
	var sb strings.Builder
	for i, n := range names {
		if i > 0 {
			sb.WriteByte(';')
		}
		sb.WriteString(n)
		sb.WriteByte(':')
		sb.WriteString(strconv.Itoa(queues[n]))
	}
	return sb.String()
}

// GetBrokerMemberGroupResponseBody is the body of a GET_BROKER_MEMBER_GROUP (901) response.
type GetBrokerMemberGroupResponseBody struct {
	BrokerMemberGroup BrokerMemberGroup `json:"brokerMemberGroup"`
}
