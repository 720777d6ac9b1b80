package admin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// BrokerConfig is one broker's configuration (GET_BROKER_CONFIG: broker.conf keys and values).
type BrokerConfig struct {
	Broker string            `json:"broker"`
	Addr   string            `json:"addr"`
	Config map[string]string `json:"config"`
	// Error is set when the broker did not answer (Config is then empty); the others are
	// still listed.
	Error string `json:"error,omitempty"`
}

// parseProperties reads "key=value" lines (the body of GET/UPDATE_BROKER_CONFIG); blank
// lines and '#'/'!' comments are skipped.
func parseProperties(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

func formatProperties(kv map[string]string) []byte {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, kv[k])
	}
	return b.Bytes()
}

// selectBrokers returns the masters of cluster ("" = all), or only the one named broker.
func (a *Admin) selectBrokers(ctx context.Context, cluster, broker string) ([]brokerGroup, error) {
	all, err := a.masters(ctx, cluster)
	if err != nil {
		return nil, err
	}
	if broker == "" {
		return all, nil
	}
	for _, b := range all {
		if b.Name == broker {
			return []brokerGroup{b}, nil
		}
	}
	return nil, fmt.Errorf("no master broker named %q", broker)
}

// GetBrokerConfig returns the configuration of each master broker of the cluster ("" = all),
// or of the one named broker, sorted by broker name.
func (a *Admin) GetBrokerConfig(ctx context.Context, cluster, broker string) ([]BrokerConfig, error) {
	targets, err := a.selectBrokers(ctx, cluster, broker)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	out := make([]BrokerConfig, 0, len(targets))
	failed := 0
	err = parallel(ctx, a.cfg.Parallelism, targets, func(ctx context.Context, b brokerGroup) error {
		resp, err := a.invoke(ctx, b.Master, remoting.GetBrokerConfig, nil, nil)
		mu.Lock()
		defer mu.Unlock()
		if err != nil { // one hung broker does not hide the others' answers (QA R7H-6)
			failed++
			out = append(out, BrokerConfig{Broker: b.Name, Addr: b.Master, Config: map[string]string{}, Error: err.Error()})
			return nil
		}
		out = append(out, BrokerConfig{Broker: b.Name, Addr: b.Master, Config: parseProperties(resp.Body)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Broker < out[j].Broker })
	if failed == len(out) && failed > 0 {
		return nil, errors.New(out[0].Error)
	}
	return out, nil
}

// UpdateBrokerConfig changes runtime-updatable keys on each master broker of the cluster
// ("" = all) or on the named broker (UPDATE_BROKER_CONFIG); brokers refuse keys that cannot
// change at run time (NO_PERMISSION). It returns the brokers updated.
func (a *Admin) UpdateBrokerConfig(ctx context.Context, cluster, broker string, kv map[string]string) ([]string, error) {
	if len(kv) == 0 {
		return nil, errors.New("nothing to update")
	}
	for k, v := range kv {
		if k == "" || strings.ContainsAny(k, "=\n") || strings.ContainsRune(v, '\n') {
			return nil, fmt.Errorf("bad config entry %q=%q", k, v)
		}
	}
	targets, err := a.selectBrokers(ctx, cluster, broker)
	if err != nil {
		return nil, err
	}
	body := formatProperties(kv)
	err = parallel(ctx, a.cfg.Parallelism, targets, func(ctx context.Context, b brokerGroup) error {
		_, err := a.invoke(ctx, b.Master, remoting.UpdateBrokerConfig, nil, body)
		return err
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(targets))
	for i, b := range targets {
		names[i] = b.Name
	}
	return names, nil
}
