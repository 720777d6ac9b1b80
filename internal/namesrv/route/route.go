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
// as a string and panics on a missing object).
func (r *TopicRouteData) Encode() []byte {
	out := *r
	if out.QueueDatas == nil {
		out.QueueDatas = []QueueData{}
	}
	if out.BrokerDatas == nil {
		out.BrokerDatas = []BrokerData{}
	}
	for i := range out.BrokerDatas {
		if out.BrokerDatas[i].BrokerAddrs == nil {
			out.BrokerDatas = slices.Clone(out.BrokerDatas)
			for j := range out.BrokerDatas {
				if out.BrokerDatas[j].BrokerAddrs == nil {
					out.BrokerDatas[j].BrokerAddrs = map[int64]string{}
				}
			}
			break
		}
	}
	if out.FilterServerTable == nil {
		out.FilterServerTable = map[string][]string{}
	}
	b, err := json.Marshal(&out)
	if err != nil {
		panic(fmt.Sprintf("route: marshal TopicRouteData: %v", err)) // only plain types: cannot fail
	}
	return b
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
