package namesrv

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Config configures a NameServer. Build it with DefaultConfig and override fields.
type Config struct {
	// Listen is the remoting listen address. Default ":9876".
	Listen string
	// HTTPListen, when set, serves /healthz, /metrics and /debug/pprof/. Default "" (off).
	HTTPListen string
	// ScanNotActiveBrokerInterval is how often silent brokers are looked for. Default 5 s.
	ScanNotActiveBrokerInterval time.Duration
	// BrokerTimeout is the liveness window of a broker whose registration carries no
	// heartbeatTimeoutMillis. Default 120 s.
	BrokerTimeout time.Duration
	// OrderMessageEnable makes routes carry orderTopicConf from the KV namespace
	// ORDER_TOPIC_CONFIG. Default false (as RocketMQ). Remotely updatable.
	OrderMessageEnable bool
	// ReturnOrderTopicConfigToBroker answers REGISTER_BROKER with the ORDER_TOPIC_CONFIG
	// KV table. Default true. Remotely updatable.
	ReturnOrderTopicConfigToBroker bool
	// EnableAllTopicList serves GET_ALL_TOPIC_LIST_FROM_NAMESERVER. Default true. Remotely
	// updatable.
	EnableAllTopicList bool
	// EnableTopicList serves GET_TOPICS_BY_CLUSTER. Default true. Remotely updatable.
	EnableTopicList bool
	// SupportActingMaster shows, in routes of acting-master broker groups (brokers
	// registering with enableActingMaster) that lost their master, the lowest-id
	// secondary as a read-only master. Default false (as RocketMQ).
	SupportActingMaster bool
	// DeleteTopicWithBrokerRegistration drops, on a master's registration, the topics of
	// that broker missing from the registered table. Default false, as RocketMQ: a broker may
	// register only the topics that changed (registerIncrementBrokerData on topic creation),
	// and topics leave the routes by DELETE_TOPIC_IN_NAMESRV or when their broker goes.
	DeleteTopicWithBrokerRegistration bool
	// KVConfigPath persists the KV configuration (kvConfig.json); "" keeps it in memory.
	// Default "".
	KVConfigPath string
	// TLS is the remoting port's TLS (tls.server.mode / certPath / keyPath). Default
	// permissive with a generated self-signed certificate, as Apache.
	TLS remoting.TLSSettings
	// Remoting holds the connection limits and timeouts; zero fields take the remoting
	// defaults (idle 120 s, first frame 10 s, 16 MiB frames).
	Remoting remoting.ServerConfig
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Listen:                         ":9876",
		TLS:                            remoting.DefaultTLSSettings(),
		ScanNotActiveBrokerInterval:    5 * time.Second,
		BrokerTimeout:                  DefaultBrokerTimeout,
		ReturnOrderTopicConfigToBroker: true,
		EnableAllTopicList:             true,
		EnableTopicList:                true,
		Remoting:                       remoting.DefaultServerConfig(),
	}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	if c.Listen == "" {
		return fmt.Errorf("namesrv: Listen is empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("namesrv: Listen %q: %w", c.Listen, err)
	}
	if c.HTTPListen != "" {
		if _, _, err := net.SplitHostPort(c.HTTPListen); err != nil {
			return fmt.Errorf("namesrv: HTTPListen %q: %w", c.HTTPListen, err)
		}
	}
	if c.ScanNotActiveBrokerInterval <= 0 {
		return fmt.Errorf("namesrv: ScanNotActiveBrokerInterval must be positive, got %v", c.ScanNotActiveBrokerInterval)
	}
	if c.BrokerTimeout <= 0 {
		return fmt.Errorf("namesrv: BrokerTimeout must be positive, got %v", c.BrokerTimeout)
	}
	if err := c.TLS.Check(); err != nil {
		return fmt.Errorf("namesrv: %w", err)
	}
	if err := c.Remoting.Validate(); err != nil {
		return fmt.Errorf("namesrv: %w", err)
	}
	return nil
}

// LoadProperties applies a RocketMQ-style properties file (namesrv.conf: key=value lines,
// '#' or '!' comments) to c. Known keys: listenPort, scanNotActiveBrokerInterval (ms),
// brokerTimeoutMillis, orderMessageEnable, returnOrderTopicConfigToBroker,
// enableAllTopicList, enableTopicList, supportActingMaster, deleteTopicWithBrokerRegistration, kvConfigPath,
// serverChannelMaxIdleTimeSeconds, httpListen, tls.server.mode, tls.server.certPath,
// tls.server.keyPath. Other RocketMQ keys are ignored and returned as warnings.
func (c *Config) LoadProperties(path string) (warnings []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("namesrv: read config: %w", err)
	}
	props, err := parseProperties(b)
	if err != nil {
		return nil, fmt.Errorf("namesrv: %s: %w", path, err)
	}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		v := props[k]
		var perr error
		switch k {
		case "listenPort":
			var port int
			if port, perr = strconv.Atoi(v); perr == nil {
				host, _, _ := net.SplitHostPort(c.Listen)
				c.Listen = net.JoinHostPort(host, strconv.Itoa(port))
			}
		case "scanNotActiveBrokerInterval":
			c.ScanNotActiveBrokerInterval, perr = parseMillis(v)
		case "brokerTimeoutMillis":
			c.BrokerTimeout, perr = parseMillis(v)
		case "serverChannelMaxIdleTimeSeconds":
			var s int
			if s, perr = strconv.Atoi(v); perr == nil {
				c.Remoting.IdleTimeout = time.Duration(s) * time.Second
			}
		case "orderMessageEnable":
			c.OrderMessageEnable, perr = strconv.ParseBool(v)
		case "returnOrderTopicConfigToBroker":
			c.ReturnOrderTopicConfigToBroker, perr = strconv.ParseBool(v)
		case "enableAllTopicList":
			c.EnableAllTopicList, perr = strconv.ParseBool(v)
		case "enableTopicList":
			c.EnableTopicList, perr = strconv.ParseBool(v)
		case "supportActingMaster":
			c.SupportActingMaster, perr = strconv.ParseBool(v)
		case "deleteTopicWithBrokerRegistration":
			c.DeleteTopicWithBrokerRegistration, perr = strconv.ParseBool(v)
		case "kvConfigPath":
			c.KVConfigPath = v
		case "httpListen":
			c.HTTPListen = v
		default:
			if !c.TLS.ApplyKey(k, v) {
				warnings = append(warnings, fmt.Sprintf("unknown or unsupported config key %q ignored", k))
			}
		}
		if perr != nil {
			return nil, fmt.Errorf("namesrv: %s: %s=%q: %w", path, k, v, perr)
		}
	}
	return warnings, nil
}

func parseMillis(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("must be positive")
	}
	return time.Duration(n) * time.Millisecond, nil
}

// parseProperties reads key=value (or key: value) lines; blank lines and lines starting
// with # or ! are skipped. Values are trimmed. Line continuations are not supported.
func parseProperties(b []byte) (map[string]string, error) {
	out := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("line %d: expected key=value", n)
		}
		out[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return out, sc.Err()
}
