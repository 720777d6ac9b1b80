//go:build !race

package compat

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// TestGo2ConsumerRunningInfoAndConsumeDirectly (QA R7G-8): the requests the dashboard and
// mqadmin send to a broker for one consumer client, GET_CONSUMER_RUNNING_INFO (307) and
// CONSUME_MESSAGE_DIRECTLY (309), reach the go2 client and its answer comes back.
func TestGo2ConsumerRunningInfoAndConsumeDirectly(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("callc"), uniq("callc_g")
	createTopic(t, d, topic, "NORMAL", 1)
	p := go2Producer(t, d.ns)
	res := sendSync(t, p, &primitive.Message{Topic: topic, Body: []byte("direct")})
	col := newCollector()
	go2Push(t, d.ns, group, topic, "*", col.handler)
	if !waitUntil(30*time.Second, func() bool { return len(col.has([]string{"direct"})) == 0 }) {
		t.Fatal("push consumer got nothing")
	}
	var desc struct {
		Clients []struct {
			ClientID string `json:"clientId"`
		} `json:"clients"`
	}
	var clientID string
	waitUntil(20*time.Second, func() bool {
		adminJSON(t, d, &desc, "group", "describe", group)
		if len(desc.Clients) > 0 {
			clientID = desc.Clients[0].ClientID
		}
		return clientID != ""
	})
	if clientID == "" {
		t.Fatal("consumer not online")
	}
	cli := remoting.NewClient(remoting.ClientConfig{}, slog.New(slog.DiscardHandler))
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, d.broker, remoting.NewRequest(remoting.GetConsumerRunningInfo,
		map[string]string{"consumerGroup": group, "clientId": clientID, "jstackEnable": "false"}, nil))
	if err != nil || resp.Code != remoting.Success || len(resp.Body) == 0 {
		t.Fatalf("GET_CONSUMER_RUNNING_INFO: %v %+v", err, resp)
	}
	// The client's ConsumerRunningInfo (fastjson, object keys: not plain JSON).
	if body := string(resp.Body); !strings.Contains(body, `"subscriptionSet"`) || !strings.Contains(body, topic) {
		t.Fatalf("running info body %s", body)
	}
	resp, err = cli.Invoke(ctx, d.broker, remoting.NewRequest(remoting.ConsumeMessageDirectly,
		map[string]string{"consumerGroup": group, "clientId": clientID, "msgId": res.OffsetMsgID}, nil))
	// go2 answers ConsumeMessageDirectlyResult with consumeResult 0 (CR_SUCCESS; Java spells
	// the enum name).
	if body := string(resp.Body); err != nil || resp.Code != remoting.Success ||
		!(strings.Contains(body, `"consumeResult":0`) || strings.Contains(body, "CR_SUCCESS")) {
		t.Fatalf("CONSUME_MESSAGE_DIRECTLY: %v %+v body %s", err, resp, resp.Body)
	}
	// An unknown client is SYSTEM_ERROR "not online", as Apache.
	resp, err = cli.Invoke(ctx, d.broker, remoting.NewRequest(remoting.GetConsumerRunningInfo,
		map[string]string{"consumerGroup": group, "clientId": "nobody"}, nil))
	if err != nil || resp.Code != remoting.SystemError || !strings.Contains(resp.Remark, "not online") {
		t.Fatalf("unknown client: %v %+v", err, resp)
	}
}
