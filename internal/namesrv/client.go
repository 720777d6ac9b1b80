package namesrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// This file is the broker (and proxy/admin) side of the NameServer protocol.

// RegisterRequest is one broker's registration.
type RegisterRequest struct {
	ClusterName  string // required
	BrokerName   string // required
	BrokerAddr   string // required, "ip:port" clients connect to
	BrokerID     int64  // 0 = master
	HAServerAddr string // "ip:port" of the HA listener, may be ""
	// HeartbeatTimeout overrides the NameServer's liveness window for this broker; 0
	// keeps the NameServer default (120 s).
	HeartbeatTimeout   time.Duration
	EnableActingMaster bool
	ZoneName           string
	// Compressed sends the body in RegisterBrokerBody's compressed form.
	Compressed bool
	// Topics is the broker's topic table with its data version.
	Topics route.TopicConfigSerializeWrapper
}

// RegisterBroker sends REGISTER_BROKER to one NameServer (with the body CRC, as RocketMQ
// brokers do) and returns the master/HA addresses it answers.
func RegisterBroker(ctx context.Context, client *remoting.Client, nsAddr string, r RegisterRequest) (RegisterResult, error) {
	body := route.RegisterBrokerBody{TopicConfigSerializeWrapper: r.Topics, FilterServerList: []string{}}
	b, err := body.Encode(r.Compressed)
	if err != nil {
		return RegisterResult{}, fmt.Errorf("namesrv: encode register body: %w", err)
	}
	ext := map[string]string{
		"brokerName":         r.BrokerName,
		"brokerAddr":         r.BrokerAddr,
		"clusterName":        r.ClusterName,
		"haServerAddr":       r.HAServerAddr,
		"brokerId":           strconv.FormatInt(r.BrokerID, 10),
		"compressed":         strconv.FormatBool(r.Compressed),
		"enableActingMaster": strconv.FormatBool(r.EnableActingMaster),
		"bodyCrc32":          strconv.Itoa(int(route.BodyCRC32(b))),
	}
	if r.HeartbeatTimeout > 0 {
		ext["heartbeatTimeoutMillis"] = strconv.FormatInt(r.HeartbeatTimeout.Milliseconds(), 10)
	}
	if r.ZoneName != "" {
		ext["__ZONE_NAME"] = r.ZoneName // RocketMQ MixAll.ZONE_NAME
	}
	resp, err := client.Invoke(ctx, nsAddr, remoting.NewRequest(remoting.RegisterBroker, ext, b))
	if err != nil {
		return RegisterResult{}, fmt.Errorf("namesrv: register broker %s at %s: %w", r.BrokerName, nsAddr, err)
	}
	if err := resp.ExpectSuccess(); err != nil {
		return RegisterResult{}, fmt.Errorf("namesrv: register broker %s at %s: %w", r.BrokerName, nsAddr, err)
	}
	res := RegisterResult{HAServerAddr: resp.ExtString("haServerAddr"), MasterAddr: resp.ExtString("masterAddr")}
	if len(resp.Body) > 0 {
		var kv route.KVTable
		if err := json.Unmarshal(resp.Body, &kv); err == nil {
			res.OrderTopicConfig = kv.Table
		}
	}
	return res, nil
}

// RegisterBrokerAll registers with every NameServer in parallel (NameServers do not talk
// to each other). It returns the result of each address that answered and the joined
// errors of those that did not.
func RegisterBrokerAll(ctx context.Context, client *remoting.Client, nsAddrs []string, r RegisterRequest) (map[string]RegisterResult, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		out  = make(map[string]RegisterResult, len(nsAddrs))
	)
	for _, addr := range nsAddrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := RegisterBroker(ctx, client, addr, r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[addr] = res
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// UnregisterBroker sends UNREGISTER_BROKER to one NameServer (brokers do so on shutdown).
func UnregisterBroker(ctx context.Context, client *remoting.Client, nsAddr, clusterName, brokerName, brokerAddr string, brokerID int64) error {
	req := remoting.NewRequest(remoting.UnregisterBroker, map[string]string{
		"brokerName":  brokerName,
		"brokerAddr":  brokerAddr,
		"clusterName": clusterName,
		"brokerId":    strconv.FormatInt(brokerID, 10),
	}, nil)
	resp, err := client.Invoke(ctx, nsAddr, req)
	if err != nil {
		return fmt.Errorf("namesrv: unregister broker %s at %s: %w", brokerName, nsAddr, err)
	}
	if err := resp.ExpectSuccess(); err != nil {
		return fmt.Errorf("namesrv: unregister broker %s at %s: %w", brokerName, nsAddr, err)
	}
	return nil
}

// ErrTopicNotExist is returned by GetRouteInfo when the NameServer has no route.
var ErrTopicNotExist = errors.New("namesrv: topic does not exist")

// GetRouteInfo fetches a topic's route (GET_ROUTEINFO_BY_TOPIC).
func GetRouteInfo(ctx context.Context, client *remoting.Client, nsAddr, topic string) (*route.TopicRouteData, error) {
	resp, err := client.Invoke(ctx, nsAddr, remoting.NewRequest(remoting.GetRouteinfoByTopic, map[string]string{"topic": topic}, nil))
	if err != nil {
		return nil, fmt.Errorf("namesrv: route of %s from %s: %w", topic, nsAddr, err)
	}
	switch resp.Code {
	case remoting.Success:
		return route.DecodeTopicRouteData(resp.Body)
	case remoting.TopicNotExist:
		return nil, fmt.Errorf("%w: %s", ErrTopicNotExist, topic)
	}
	return nil, fmt.Errorf("namesrv: route of %s from %s: %w", topic, nsAddr, resp.ExpectSuccess())
}

// SplitAddrs parses a NameServer address list "a:9876;b:9876" (RocketMQ's namesrvAddr),
// dropping blanks.
func SplitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
