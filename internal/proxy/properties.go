package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ApplyProperties sets Config fields from a properties map (the `--config` file of `rocketry
// proxy`). Keys are the flag names in camel case plus the Java proxy's names where one exists:
//
//	grpcListen | grpcServerPort, advertiseAddr, tlsMode | tls.server.mode, tlsCert, tlsKey,
//	auth | authenticationEnabled, aclFile, authClockSkewMs, autoCreateTopic |
//	autoCreateTopicEnable, autoCreateQueues, maxMessageSize, minInvisibleTimeMs,
//	maxInvisibleTimeMs, maxDelayTimeMills, clientExpiredMs, handshakeTimeoutMs
//
// Unknown keys are returned as warnings (a Java proxy file loads without error); a bad value
// is an error naming its key. Keys owned by the backend (namesrvAddr, ...) are ignored here.
func (c *Config) ApplyProperties(props map[string]string) (warnings []string, err error) {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(props[k])
		known, err := c.applyProperty(k, v)
		if err != nil {
			return warnings, fmt.Errorf("proxy: config key %s=%q: %w", k, v, err)
		}
		if !known {
			warnings = append(warnings, fmt.Sprintf("unknown key %q ignored", k))
		}
	}
	return warnings, nil
}

// backendKeys belong to the backend's configuration, not to Config.
var backendKeys = map[string]bool{"namesrvAddr": true, "routeCacheTtlMs": true, "rocketMQClusterName": true, "proxyMode": true}

func (c *Config) applyProperty(k, v string) (bool, error) {
	ms := func(dst *time.Duration) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("want milliseconds")
		}
		*dst = time.Duration(n) * time.Millisecond
		return nil
	}
	boolean := func(dst *bool) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*dst = b
		return nil
	}
	integer := func(dst *int) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want an integer")
		}
		*dst = n
		return nil
	}
	switch k {
	case "grpcListen":
		c.GRPCListen = v
	case "grpcServerPort":
		if _, err := strconv.ParseUint(v, 10, 16); err != nil {
			return true, fmt.Errorf("want a port")
		}
		c.GRPCListen = net.JoinHostPort("", v)
	case "advertiseAddr":
		c.AdvertiseAddr = v
	case "tlsMode", "tls.server.mode":
		c.TLSMode = strings.ToLower(v)
	case "tlsCert", "tls.server.certPath":
		c.TLSCertFile = v
	case "tlsKey", "tls.server.keyPath":
		c.TLSKeyFile = v
	case "auth", "authenticationEnabled":
		return true, boolean(&c.Auth)
	case "aclFile":
		c.ACLFile = v
	case "authClockSkewMs":
		return true, ms(&c.AuthClockSkew)
	case "autoCreateTopic", "autoCreateTopicEnable":
		return true, boolean(&c.AutoCreateTopic)
	case "autoCreateQueues", "defaultTopicQueueNums":
		return true, integer(&c.AutoCreateQueues)
	case "maxMessageSize":
		return true, integer(&c.MaxBodySize)
	case "minInvisibleTimeMs", "minInvisibleTimeMillsForRecv":
		return true, ms(&c.MinInvisible)
	case "maxInvisibleTimeMs", "maxInvisibleTimeMills":
		return true, ms(&c.MaxInvisible)
	case "maxDelayTimeMills":
		return true, ms(&c.MaxDelay)
	case "clientExpiredMs", "channelExpiredTimeout":
		return true, ms(&c.ClientExpiry)
	case "handshakeTimeoutMs":
		return true, ms(&c.HandshakeTimeout)
	default:
		return backendKeys[k], nil
	}
	return true, nil
}

// IsJSONConfig reports whether a config file's content is JSON (Apache's rmq-proxy.json) rather
// than Java properties: its first non-blank byte is '{'.
func IsJSONConfig(data []byte) bool {
	t := bytes.TrimSpace(data)
	return len(t) > 0 && t[0] == '{'
}

// JSONProperties flattens a JSON config object (Apache's rmq-proxy.json: one object of
// scalar values, e.g. {"rocketMQClusterName": "DefaultCluster", "grpcServerPort": 8081,
// "authenticationEnabled": true}) into the key/value map ApplyProperties takes. Nested
// objects and arrays are an error naming the key.
func JSONProperties(data []byte) (map[string]string, error) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("proxy: JSON config: %w", err)
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		switch x := v.(type) {
		case nil:
		case string:
			out[k] = x
		case json.Number:
			out[k] = x.String()
		case bool:
			out[k] = strconv.FormatBool(x)
		default:
			return nil, fmt.Errorf("proxy: JSON config key %s: nested values are not supported", k)
		}
	}
	return out, nil
}
