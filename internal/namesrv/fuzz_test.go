package namesrv

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

var fuzzCodes = []int32{
	remoting.PutKVConfig, remoting.GetKVConfig, remoting.DeleteKVConfig, remoting.GetKVListByNamespace,
	remoting.RegisterBroker, remoting.UnregisterBroker, remoting.BrokerHeartbeat, remoting.QueryDataVersion,
	remoting.GetRouteinfoByTopic, remoting.GetBrokerClusterInfo, remoting.WipeWritePermOfBroker,
	remoting.AddWritePermOfBroker, remoting.GetAllTopicListFromNameserver, remoting.DeleteTopicInNamesrv,
	remoting.RegisterTopicInNamesrv, remoting.GetTopicsByCluster, remoting.GetSystemTopicListFromNS,
	remoting.GetBrokerMemberGroup, remoting.GetNamesrvConfig, remoting.UpdateNamesrvConfig,
	remoting.GetUnitTopicList, remoting.GetHasUnitSubTopicList, remoting.GetHasUnitSubUnunitTopicList,
}

// FuzzHandlers sends arbitrary requests (code chosen from the NameServer's, ext fields
// from a JSON object, any body) to a running NameServer. Invariants: every request gets a
// response and no handler panics; the connection stays open; every route the table
// builds pairs each queue data with its broker data and encodes to JSON go2 can split.
func FuzzHandlers(f *testing.F) {
	reg, _ := (&route.RegisterBrokerBody{TopicConfigSerializeWrapper: topics(1, "T")}).Encode(false)
	f.Add(uint8(4), `{"brokerName":"b","brokerAddr":"1.2.3.4:5","clusterName":"c","haServerAddr":"","brokerId":"0"}`, reg)
	f.Add(uint8(4), `{"brokerName":"b","brokerAddr":"1.2.3.4:6","clusterName":"c","haServerAddr":"","brokerId":"1","compressed":"true"}`, []byte("x"))
	f.Add(uint8(8), `{"topic":"T"}`, []byte(nil))
	f.Add(uint8(5), `{"brokerName":"b","brokerAddr":"1.2.3.4:5","clusterName":"c","brokerId":"0"}`, []byte(nil))
	f.Add(uint8(14), `{"topic":"N"}`, []byte(`{"queueDatas":[{"brokerName":"b","perm":6}]}`))
	f.Add(uint8(19), `{}`, []byte("enableTopicList=false\nkvConfigPath=/x"))
	f.Add(uint8(0), `{"namespace":"ORDER_TOPIC_CONFIG","key":"T","value":"b:1"}`, []byte(nil))

	var (
		once sync.Once
		srv  *Server
		cli  *remoting.Client
	)
	f.Cleanup(func() {
		if srv != nil {
			cli.Close()
			srv.Close()
		}
	})
	f.Fuzz(func(t *testing.T, codeIdx uint8, extJSON string, body []byte) {
		once.Do(func() {
			cfg := DefaultConfig()
			cfg.Listen = "127.0.0.1:0"
			cfg.OrderMessageEnable = true
			var err error
			if srv, err = New(cfg, discard()); err != nil {
				t.Fatal(err)
			}
			go srv.Run(context.Background())
			cli = remoting.NewClient(remoting.ClientConfig{}, discard())
		})
		var ext map[string]string
		if json.Unmarshal([]byte(extJSON), &ext) != nil {
			ext = nil
		}
		code := fuzzCodes[int(codeIdx)%len(fuzzCodes)]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addr := srv.Addr().String()
		conn, err := cli.Conn(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cli.Invoke(ctx, addr, remoting.NewRequest(code, ext, body))
		if err != nil {
			t.Fatalf("code %d: %v", code, err)
		}
		if strings.Contains(resp.Remark, "internal error handling request") {
			t.Fatalf("code %d: handler panicked", code)
		}
		if conn.Closed() {
			t.Fatalf("code %d closed the connection", code)
		}
		tb := srv.Table()
		for _, topic := range tb.Topics() {
			r := tb.Route(topic)
			if r == nil {
				continue
			}
			if len(r.QueueDatas) != len(r.BrokerDatas) {
				t.Fatalf("route of %q: %d queue datas, %d broker datas", topic, len(r.QueueDatas), len(r.BrokerDatas))
			}
			for i := range r.QueueDatas {
				if r.QueueDatas[i].BrokerName != r.BrokerDatas[i].BrokerName {
					t.Fatalf("route of %q pairs %q with %q", topic, r.QueueDatas[i].BrokerName, r.BrokerDatas[i].BrokerName)
				}
			}
			if _, err := route.DecodeTopicRouteData(r.Encode()); err != nil {
				t.Fatalf("route of %q does not re-decode: %v", topic, err)
			}
			// The route cache serves exactly what a fresh build gives (no other request
			// runs concurrently here).
			if srv.orderMessageEnable.Load() {
				if conf, ok := srv.kv.get(route.NamespaceOrderTopicConfig, topic); ok {
					r.OrderTopicConf = conf
				}
			}
			if got := srv.routes.get(srv, topic); !bytes.Equal(got, r.Encode()) {
				t.Fatalf("cached route of %q is stale:\n%s\nfresh:\n%s", topic, got, r.Encode())
			}
		}
	})
}
