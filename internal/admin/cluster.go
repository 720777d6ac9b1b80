package admin

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// BrokerInfo is one broker process in `cluster list` (mqadmin clusterList).
type BrokerInfo struct {
	Cluster string `json:"cluster"`
	Name    string `json:"brokerName"`
	ID      int64  `json:"brokerId"` // 0 = master
	Addr    string `json:"addr"`
	Version string `json:"version"` // brokerVersionDesc
	// The figures below are nil (absent from JSON, "-" in tables) when the broker does not
	// report them.
	PutTPS    *float64 `json:"putTps,omitempty"`    // messages/s stored, last 10 s (putTps)
	GetTPS    *float64 `json:"getTps,omitempty"`    // messages/s delivered, last 10 s (getTransferedTps)
	DiskRatio *float64 `json:"diskRatio,omitempty"` // used fraction of the commit-log disk, 0..1 (commitLogDiskRatio)
	PutToday  *int64   `json:"msgPutTotalToday,omitempty"`
	GetToday  *int64   `json:"msgGetTotalToday,omitempty"`
	// Runtime is the broker's whole GET_BROKER_RUNTIME_INFO table.
	Runtime map[string]string `json:"runtime,omitempty"`
	// Error is set when the broker did not answer (it is still listed).
	Error string `json:"error,omitempty"`
}

type wireKVTable struct {
	Table map[string]string `json:"table"`
}

// ClusterList lists every broker known to the NameServer with its runtime figures
// (GET_BROKER_CLUSTER_INFO + GET_BROKER_RUNTIME_INFO per broker), sorted by cluster, name
// and id. A broker that does not answer is listed with Error set.
func (a *Admin) ClusterList(ctx context.Context) ([]BrokerInfo, error) {
	ci, err := a.clusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	out := []BrokerInfo{} // JSON [] (never null) when no broker is registered (QA F17)
	for name, bd := range ci.BrokerAddrTable {
		cluster := bd.Cluster
		for cn, names := range ci.ClusterAddrTable {
			for _, n := range names {
				if n == name && cluster == "" {
					cluster = cn
				}
			}
		}
		for id, addr := range bd.BrokerAddrs {
			bid, _ := strconv.ParseInt(id, 10, 64)
			out = append(out, BrokerInfo{Cluster: cluster, Name: name, ID: bid, Addr: addr})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	var mu sync.Mutex
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	_ = parallel(ctx, a.cfg.Parallelism, idx, func(ctx context.Context, i int) error {
		kv, err := a.runtimeInfo(ctx, out[i].Addr)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		b := &out[i]
		b.Runtime = kv
		b.Version = kv["brokerVersionDesc"]
		b.PutTPS = firstFloat(kv["putTps"])
		b.GetTPS = firstFloat(firstNonEmpty(kv["getTransferedTps"], kv["getTransferredTps"]))
		b.DiskRatio = firstFloat(kv["commitLogDiskRatio"])
		b.PutToday = delta(kv["msgPutTotalTodayNow"], kv["msgPutTotalTodayMorning"])
		b.GetToday = delta(kv["msgGetTotalTodayNow"], kv["msgGetTotalTodayMorning"])
		return nil
	})
	return out, nil
}

// runtimeInfo fetches a broker's GET_BROKER_RUNTIME_INFO table.
func (a *Admin) runtimeInfo(ctx context.Context, addr string) (map[string]string, error) {
	resp, err := a.invoke(ctx, addr, remoting.GetBrokerRuntimeInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	var kv wireKVTable
	if err := decodeJSON(resp.Body, &kv); err != nil {
		return nil, fmt.Errorf("GET_BROKER_RUNTIME_INFO from %s: %w", addr, err)
	}
	return kv.Table, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// firstFloat parses the first space-separated number of s ("12.5 11.0 10.2" -> 12.5); nil
// when s holds no number.
func firstFloat(s string) *float64 {
	f, err := strconv.ParseFloat(firstField(s), 64)
	if err != nil {
		return nil
	}
	return &f
}

// delta parses now - morning (a counter since midnight); nil when now is absent.
func delta(now, morning string) *int64 {
	n, err := strconv.ParseInt(firstField(now), 10, 64)
	if err != nil {
		return nil
	}
	m, _ := strconv.ParseInt(firstField(morning), 10, 64)
	d := n - m
	return &d
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// ClusterHealth is `cluster health`: the cluster is healthy when the NameServer answers, at
// least MinBrokers brokers are registered, and every registered broker answers.
type ClusterHealth struct {
	Healthy bool         `json:"healthy"`
	Brokers []BrokerInfo `json:"brokers"`
	Reason  string       `json:"reason,omitempty"` // why not healthy
}

// Health checks the cluster once (see ClusterHealth).
func (a *Admin) Health(ctx context.Context, minBrokers int) *ClusterHealth {
	bs, err := a.ClusterList(ctx)
	h := &ClusterHealth{Brokers: bs}
	switch {
	case err != nil:
		h.Reason = err.Error()
	case len(bs) < max(minBrokers, 1):
		h.Reason = fmt.Sprintf("%d broker(s) registered, want at least %d", len(bs), max(minBrokers, 1))
	default:
		for _, b := range bs {
			if b.Error != "" {
				h.Reason = fmt.Sprintf("broker %s (%s) does not answer: %s", b.Name, b.Addr, b.Error)
				return h
			}
		}
		h.Healthy = true
	}
	return h
}
