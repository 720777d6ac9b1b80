package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func TestReadProperties(t *testing.T) {
	in := `# comment
! also a comment
brokerClusterName = DefaultCluster
brokerName:broker-a
brokerId 0
namesrvAddr=a:9876;\
   b:9876
messageDelayLevel=1s 5s \
  10s
empty=
escaped=a\=b\tc\u0041
`
	got, err := ReadProperties(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"brokerClusterName": "DefaultCluster", "brokerName": "broker-a", "brokerId": "0",
		"namesrvAddr": "a:9876;b:9876", "messageDelayLevel": "1s 5s 10s", "empty": "", "escaped": "a=b\tcA",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys %v, want %d", len(got), got, len(want))
	}
}

func TestApplyPropertiesRocketMQSample(t *testing.T) {
	// The shipped RocketMQ sample broker.conf loads unchanged.
	sample := `brokerClusterName = DefaultCluster
brokerName = broker-a
brokerId = 0
deleteWhen = 04
fileReservedTime = 48
brokerRole = ASYNC_MASTER
flushDiskType = ASYNC_FLUSH
autoCreateTopicEnable=false
listenPort=10922
brokerIP1=10.1.2.3
namesrvAddr=127.0.0.1:9876;127.0.0.2:9876
mappedFileSizeCommitLog=1073741824
maxMessageSize=65536
diskMaxUsedSpaceRatio=88
defaultTopicQueueNums=4
registerNameServerPeriod=20000
transactionTimeOut=3000
transactionCheckInterval=10000
transactionCheckMax=5
messageDelayLevel=1s 2s
timerMaxDelaySec=3600
someFutureKey=1
`
	path := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(path, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	cfg := DefaultConfig()
	if err := LoadConfigFile(&cfg, path, log); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"cluster", cfg.ClusterName, "DefaultCluster"},
		{"name", cfg.BrokerName, "broker-a"},
		{"reserved", cfg.FileReservedTime, 48 * time.Hour},
		{"autoCreate", cfg.AutoCreateTopicEnable, false},
		{"listen", cfg.ListenAddr, ":10922"},
		{"advertise", cfg.AdvertiseAddr, "10.1.2.3"},
		{"namesrv", strings.Join(cfg.NamesrvAddrs, ","), "127.0.0.1:9876,127.0.0.2:9876"},
		{"maxMessageSize", cfg.MaxMessageSize, 65536},
		{"ratio", cfg.DiskMaxUsedSpaceRatio, 88},
		{"queues", cfg.DefaultTopicQueueNums, int32(4)},
		{"period", cfg.RegisterNameServerPeriod, 20 * time.Second},
		{"txTimeout", cfg.TransactionTimeOut, 3 * time.Second},
		{"txInterval", cfg.TransactionCheckInterval, 10 * time.Second},
		{"txMax", cfg.TransactionCheckMax, 5},
		{"delay", cfg.MessageDelayLevel, "1s 2s"},
		{"timerMax", cfg.TimerMaxDelaySec, int64(3600)},
		{"extra", cfg.Extra["someFutureKey"], "1"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := strings.Count(logBuf.String(), "someFutureKey"); n != 1 {
		t.Errorf("unknown key logged %d times, want once:\n%s", n, logBuf.String())
	}
	if strings.Contains(logBuf.String(), "brokerRole") {
		t.Errorf("known RocketMQ key brokerRole warned about:\n%s", logBuf.String())
	}
	if advertisedAddr(cfg.AdvertiseAddr, 10922) != "10.1.2.3:10922" {
		t.Errorf("advertised %q", advertisedAddr(cfg.AdvertiseAddr, 10922))
	}
}

// TestTraceTopicAndUnsupportedKeys: traceTopicEnable creates the trace topic (1/1 queues,
// under msgTraceTopicName) as Apache does; aclEnable=true is warned about, not silently
// accepted (QA F14, F15).
func TestTraceTopicAndUnsupportedKeys(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	cfg := testConfig(t)
	if err := ApplyProperties(&cfg, map[string]string{"traceTopicEnable": "true", "aclEnable": "true", "brokerRole": "ASYNC_MASTER"}, log); err != nil {
		t.Fatal(err)
	}
	if !cfg.TraceTopicEnable || cfg.MsgTraceTopicName != message.TopicTrace {
		t.Fatalf("trace config %v %q", cfg.TraceTopicEnable, cfg.MsgTraceTopicName)
	}
	if !strings.Contains(logBuf.String(), "level=WARN") || !strings.Contains(logBuf.String(), "aclEnable") {
		t.Errorf("aclEnable=true not warned about:\n%s", logBuf.String())
	}
	// The ACL 2.0 keys get the same explanation (QA R8K-10).
	logBuf.Reset()
	acl2 := testConfig(t)
	if err := ApplyProperties(&acl2, map[string]string{"authenticationEnabled": "true", "authorizationEnabled": "true"}, log); err != nil {
		t.Fatal(err)
	}
	if got := logBuf.String(); strings.Count(got, "broker-side ACL is not supported") != 2 {
		t.Errorf("ACL 2.0 keys not explained:\n%s", got)
	}
	tb := startBroker(t, cfg)
	tc, ok := tb.Topics.Get(message.TopicTrace)
	if !ok || tc.ReadQueueNums != 1 || tc.WriteQueueNums != 1 {
		t.Fatalf("trace topic %+v %v, want 1/1 queues", tc, ok)
	}

	cfg = testConfig(t)
	if err := ApplyProperties(&cfg, map[string]string{"traceTopicEnable": "true", "msgTraceTopicName": "MyTrace"}, log); err != nil {
		t.Fatal(err)
	}
	tb2 := startBroker(t, cfg)
	if _, ok := tb2.Topics.Get("MyTrace"); !ok {
		t.Fatal("custom trace topic not created")
	}
	if _, ok := tb2.Topics.Get(message.TopicTrace); ok {
		t.Fatal("default trace topic created although msgTraceTopicName names another")
	}
}

func TestApplyPropertiesInvalidValueNamesKey(t *testing.T) {
	for key, val := range map[string]string{
		"brokerId": "x", "autoCreateTopicEnable": "maybe", "flushDiskType": "SOMETIMES",
		"messageDelayLevel": "1x", "listenPort": "70000", "deleteWhen": "25", "fileReservedTime": "1.5",
	} {
		cfg := DefaultConfig()
		err := ApplyProperties(&cfg, map[string]string{key: val}, nil)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%s: err %v, want ErrInvalidConfig naming the key", key, val, err)
		}
	}
}

// TestApplyPropertiesClampsAsApache (QA R6F-3, R6F-4): values Apache clamps load clamped,
// with a warning, instead of stopping start-up; the disk thresholds reach the store.
func TestApplyPropertiesClampsAsApache(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := DefaultConfig()
	err := ApplyProperties(&cfg, map[string]string{
		"registerNameServerPeriod": "5000", "diskMaxUsedSpaceRatio": "99",
		"diskSpaceWarningLevelRatio": "80", "diskSpaceCleanForciblyRatio": "95",
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RegisterNameServerPeriod != 10*time.Second || cfg.DiskMaxUsedSpaceRatio != 95 ||
		cfg.DiskSpaceWarningLevelRatio != 80 || cfg.DiskSpaceCleanForciblyRatio != 85 {
		t.Fatalf("clamped: period %v, max %d, warning %d, forcibly %d", cfg.RegisterNameServerPeriod,
			cfg.DiskMaxUsedSpaceRatio, cfg.DiskSpaceWarningLevelRatio, cfg.DiskSpaceCleanForciblyRatio)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("clamped config invalid: %v", err)
	}
	for _, k := range []string{"registerNameServerPeriod", "diskMaxUsedSpaceRatio", "diskSpaceCleanForciblyRatio"} {
		if !strings.Contains(logs.String(), "key="+k) {
			t.Errorf("no warning for %s:\n%s", k, logs.String())
		}
	}
	if strings.Contains(logs.String(), "key=diskSpaceWarningLevelRatio") || strings.Contains(logs.String(), "unknown") {
		t.Errorf("unexpected warning:\n%s", logs.String())
	}
	sc := (&Broker{Cfg: cfg}).storeConfig()
	if sc.DiskSpaceWarningLevelRatio != 80 || sc.DiskSpaceCleanForciblyRatio != 85 || sc.DiskMaxUsedSpaceRatio != 95 {
		t.Fatalf("store config: warning %d forcibly %d max %d", sc.DiskSpaceWarningLevelRatio, sc.DiskSpaceCleanForciblyRatio, sc.DiskMaxUsedSpaceRatio)
	}
}

func TestValidateNamesKey(t *testing.T) {
	cases := map[string]func(*Config){
		"registerNameServerPeriod": func(c *Config) { c.RegisterNameServerPeriod = 5 * time.Second },
		"diskMaxUsedSpaceRatio":    func(c *Config) { c.DiskMaxUsedSpaceRatio = 99 },
		"brokerName":               func(c *Config) { c.BrokerName = "" },
		"namesrvAddr":              func(c *Config) { c.NamesrvAddrs = []string{"nohostport"} },
		"maxMessageSize":           func(c *Config) { c.MaxMessageSize = 0 },
		"mappedFileSizeCommitLog":  func(c *Config) { c.MappedFileSizeCommitLog = 1000 },
		"defaultTopicQueueNums":    func(c *Config) { c.DefaultTopicQueueNums = 0 },
		// R5C-1 / R5C-2: refused instead of silently ignored.
		"brokerRole":            func(c *Config) { c.BrokerRole = "SLAVE" },
		"storePathCommitLog":    func(c *Config) { c.StorePathCommitLog = "/other/disk/commitlog" },
		"storePathConsumeQueue": func(c *Config) { c.StorePathConsumeQueue = "/other/cq" },
		"storePathIndex":        func(c *Config) { c.StorePathIndex = "/other/index" },
		// QA R10Q-7: each pool key named for itself.
		"sendMessageThreadPoolNums":   func(c *Config) { c.SendThreadPoolNums = 0 },
		"sendThreadPoolQueueCapacity": func(c *Config) { c.SendThreadPoolQueueCapacity = -1 },
	}
	for key, mutate := range cases {
		cfg := DefaultConfig()
		mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: Validate() = %v, want an error naming the key", key, err)
		}
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	// The paths Apache's sample configs spell out (= the defaults under the root) are fine.
	cfg.DataDir = "/data/store"
	cfg.StorePathCommitLog, cfg.StorePathConsumeQueue, cfg.StorePathIndex = "/data/store/commitlog", "/data/store/consumequeue/", "/data/store/index"
	cfg.BrokerRole = "SYNC_MASTER"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default store paths and SYNC_MASTER refused: %v", err)
	}
}

// TestMasterBrokerIDIsZero: a master's configured brokerId > 0 becomes 0 with a warning
// (Apache BrokerStartup), so a misconfigured "slave" cannot register as a second writer id.
func TestMasterBrokerIDIsZero(t *testing.T) {
	var logBuf bytes.Buffer
	cfg := DefaultConfig()
	if err := ApplyProperties(&cfg, map[string]string{"brokerId": "1"}, slog.New(slog.NewTextHandler(&logBuf, nil))); err != nil {
		t.Fatal(err)
	}
	if cfg.BrokerID != 0 || !strings.Contains(logBuf.String(), "brokerId") {
		t.Fatalf("brokerId %d, log %q", cfg.BrokerID, logBuf.String())
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	cfg := DefaultConfig()
	if err := ApplyProperties(&cfg, map[string]string{"brokerName": "from-file", "defaultTopicQueueNums": "7"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := ApplyProperties(&cfg, map[string]string{"brokerName": "from-flag"}, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.BrokerName != "from-flag" || cfg.DefaultTopicQueueNums != 7 {
		t.Fatalf("got name %q queues %d", cfg.BrokerName, cfg.DefaultTopicQueueNums)
	}
}

func TestParseDelayLevels(t *testing.T) {
	lv, err := ParseDelayLevels(DefaultMessageDelayLevel)
	if err != nil {
		t.Fatal(err)
	}
	if len(lv) != 18 || lv[0] != time.Second || lv[1] != 5*time.Second || lv[17] != 2*time.Hour {
		t.Fatalf("levels %v", lv)
	}
	for _, bad := range []string{"", "5", "1s 0m", "3w"} {
		if _, err := ParseDelayLevels(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NamesrvAddrs = []string{"a:1", "b:2"}
	props := cfg.Properties()
	back := DefaultConfig()
	back.BrokerName = "other"
	if err := ApplyProperties(&back, props, nil); err != nil {
		t.Fatal(err)
	}
	if back.BrokerName != cfg.BrokerName || len(back.NamesrvAddrs) != 2 || back.RegisterNameServerPeriod != cfg.RegisterNameServerPeriod ||
		back.TLS.Mode != cfg.TLS.Mode || back.DiskSpaceWarningLevelRatio != cfg.DiskSpaceWarningLevelRatio {
		t.Fatalf("round trip lost values: %+v", back)
	}
	// QA R10X-7: every key the config file accepts and clamps is shown.
	for _, k := range []string{"diskSpaceWarningLevelRatio", "diskSpaceCleanForciblyRatio", "recoverTruncateCorrupt", "tls.server.mode", "enablePropertyFilter"} {
		if _, ok := props[k]; !ok {
			t.Errorf("GET_BROKER_CONFIG omits %s", k)
		}
	}
	// R7H-9: brokerIP1 is the address alone, also when advertised as host:port.
	cfg.ListenAddr = ":50911"
	for _, adv := range []string{"10.0.0.5", "10.0.0.5:50911", "[::1]:50911"} {
		cfg.AdvertiseAddr = adv
		if got := cfg.Properties()["brokerIP1"]; got != strings.Trim(strings.TrimSuffix(adv, ":50911"), "[]") {
			t.Errorf("advertise %q: brokerIP1 %q", adv, got)
		}
	}
}

// TestSyncMasterWarnedOnce: the SYNC_MASTER warning comes from the properties that set the
// role, not again from a later ApplyProperties (the command-line flags) (QA R11C-4).
func TestSyncMasterWarnedOnce(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	cfg := testConfig(t)
	if err := ApplyProperties(&cfg, map[string]string{"brokerRole": "SYNC_MASTER"}, log); err != nil {
		t.Fatal(err)
	}
	if err := ApplyProperties(&cfg, map[string]string{"brokerName": "broker-x"}, log); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logBuf.String(), "brokerRole=SYNC_MASTER acts as ASYNC_MASTER"); n != 1 {
		t.Fatalf("warned %d times:\n%s", n, logBuf.String())
	}
}
