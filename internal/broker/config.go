package broker

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// Flush disk types (broker.conf flushDiskType).
const (
	FlushAsync = "ASYNC_FLUSH"
	FlushSync  = "SYNC_FLUSH"
)

// DefaultMessageDelayLevel is RocketMQ's messageDelayLevel default (18 levels).
const DefaultMessageDelayLevel = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// Config is the broker's configuration. Field comments give the broker.conf key and the
// default (DefaultConfig). Durations are Go durations; in broker.conf they are written in
// RocketMQ's units (milliseconds unless the key says seconds or hours).
type Config struct {
	// ConfigFile is the broker.conf the config was loaded from (set by LoadConfigFile;
	// Apache's brokerConfigPath). UPDATE_BROKER_CONFIG writes the keys it changes back into
	// this file so they survive a restart. Default "": run-time changes are not persisted.
	ConfigFile string
	// ListenAddr is the remoting listen address. broker.conf listenPort sets its port.
	// Default ":10911".
	ListenAddr string
	// AdvertiseAddr is the "ip:port" registered with NameServers and put into offset message
	// ids. broker.conf brokerIP1 sets the host (the port is the listen port). Default "": the
	// first non-loopback IPv4 address of the host (127.0.0.1 when none) and the listen port.
	AdvertiseAddr string
	// TLS is the remoting port's TLS (tls.server.mode / certPath / keyPath). Default
	// permissive with a generated self-signed certificate, as Apache.
	TLS remoting.TLSSettings
	// NamesrvAddrs are the NameServers to register with (broker.conf namesrvAddr, ';'
	// separated). Default none (the broker runs unregistered).
	NamesrvAddrs []string
	// ClusterName is brokerClusterName. Default "DefaultCluster".
	ClusterName string
	// BrokerName is brokerName. Default: the host name.
	BrokerName string
	// BrokerID is brokerId; 0 = master. Default 0. A master is always 0 (Apache
	// BrokerStartup resets a master's brokerId to 0; ApplyProperties warns).
	BrokerID int64
	// BrokerRole is brokerRole: ASYNC_MASTER (default) or SYNC_MASTER, which behaves as
	// ASYNC_MASTER (there is no replication yet; a warning says so). SLAVE is refused at
	// start: a slave that takes writes and replicates nothing would be a trap.
	BrokerRole string
	// StorePathCommitLog, StorePathConsumeQueue and StorePathIndex are Apache's
	// storePathCommitLog / storePathConsumeQueue / storePathIndex. Rocketry keeps them under
	// storePathRootDir (commitlog, consumequeue, index); a different path is refused at start
	// rather than silently ignored (data on the wrong disk). Empty = the default.
	StorePathCommitLog, StorePathConsumeQueue, StorePathIndex string
	// DataDir is storePathRootDir: store files and config/*.json live below it.
	// Default "./rocketry-data/broker".
	DataDir string

	// FlushDiskType is flushDiskType: ASYNC_FLUSH or SYNC_FLUSH. Default ASYNC_FLUSH.
	FlushDiskType string
	// SyncFlushTimeout is syncFlushTimeout (ms): how long a SYNC_FLUSH put waits for the
	// fsync before answering FLUSH_DISK_TIMEOUT. Default 5s.
	SyncFlushTimeout time.Duration
	// FlushIntervalCommitLog is flushIntervalCommitLog (ms), the ASYNC_FLUSH interval.
	// Default 500ms.
	FlushIntervalCommitLog time.Duration
	// MappedFileSizeCommitLog is mappedFileSizeCommitLog (bytes). Default 1 GiB.
	MappedFileSizeCommitLog int64
	// FileReservedTime is fileReservedTime (hours). Default 72h.
	FileReservedTime time.Duration
	// DeleteWhen is deleteWhen: hours of the day ("04", "04;16") when expired files are
	// deleted. Default "04".
	DeleteWhen string
	// DiskMaxUsedSpaceRatio is diskMaxUsedSpaceRatio (percent; values outside 10-95 are
	// clamped into it, as Apache's MessageStoreConfig does). Default 75.
	DiskMaxUsedSpaceRatio int
	// DiskSpaceWarningLevelRatio is diskSpaceWarningLevelRatio: above this disk usage
	// (percent) puts are refused. Clamped to 35-90, as Apache. Default 90.
	DiskSpaceWarningLevelRatio int
	// DiskSpaceCleanForciblyRatio is diskSpaceCleanForciblyRatio: above this disk usage
	// (percent) even unexpired segments are deleted. Clamped to 30-85, as Apache. Default 85.
	DiskSpaceCleanForciblyRatio int
	// MaxMessageSize is maxMessageSize (bytes, body only). Default 4 MiB.
	MaxMessageSize int
	// MessageIndexEnable is messageIndexEnable (key / unique-key index). Default true.
	MessageIndexEnable bool
	// AccessMessageInMemoryMaxRatio is accessMessageInMemoryMaxRatio (percent of RAM): a new
	// consumer group starts at a queue's offset 0 only while that message is within this
	// share of memory from the end of the commit log; else at the end (or where the client
	// asks). Default 40, as RocketMQ.
	AccessMessageInMemoryMaxRatio int
	// TransientStorePoolEnable is transientStorePoolEnable: with ASYNC_FLUSH, stage appends
	// in a memory ring written out by a committer goroutine (1.2-1.4x the put throughput;
	// a put acknowledged but still staged is lost if the process is killed). Default false,
	// as RocketMQ; SYNC_FLUSH always stages. See store.Config.TransientStorePoolEnable.
	TransientStorePoolEnable bool
	// RecoverTruncateCorrupt is recoverTruncateCorrupt (Rocketry): start even when recovery
	// finds damage below the checkpoint's flushed offset, truncating there after moving the
	// cut bytes to <data>/quarantine. See store.Config.RecoverTruncateCorrupt. Default false.
	RecoverTruncateCorrupt bool
	// TraceTopicEnable is traceTopicEnable: create the message-trace topic MsgTraceTopicName
	// (1 read, 1 write queue) at start, so clients with tracing on (go2 WithTrace, Java
	// enableMsgTrace) can store their traces. Default false, as RocketMQ.
	TraceTopicEnable bool
	// MsgTraceTopicName is msgTraceTopicName. Default RMQ_SYS_TRACE_TOPIC.
	MsgTraceTopicName string

	// AutoCreateTopicEnable is autoCreateTopicEnable: topics are created on first send through
	// the TBW102 template. Default true.
	AutoCreateTopicEnable bool
	// AutoCreateSubscriptionGroup is autoCreateSubscriptionGroup. Default true.
	AutoCreateSubscriptionGroup bool
	// DefaultTopicQueueNums is defaultTopicQueueNums: queues of auto-created topics (capped by
	// the producer's request). Default 8.
	DefaultTopicQueueNums int32
	// RegisterNameServerPeriod is registerNameServerPeriod (ms), clamped to 10-60 s.
	// Default 30s.
	RegisterNameServerPeriod time.Duration
	// FlushConsumerOffsetInterval is flushConsumerOffsetInterval (ms). Default 5s.
	FlushConsumerOffsetInterval time.Duration
	// BrokerPermission is brokerPermission: the broker-wide read (4) / write (2) permission,
	// updatable at run time (mqadmin updateBrokerConfig -k brokerPermission -v 4 drains a
	// broker: no sends, consumers finish the backlog). When it is not read-write, topics are
	// registered with perm & brokerPermission and sends (write) or pulls and pops (read) are
	// refused with NO_PERMISSION, as Apache. Default 6 (read-write).
	BrokerPermission int
	// ChannelExpiredTimeout is channelExpiredTimeout (ms): clients silent this long are
	// dropped. Default 120s.
	ChannelExpiredTimeout time.Duration
	// RebalanceLockMaxLiveTime is rebalance.lockMaxLiveTime (ms): orderly queue locks expire
	// after this. Default 60s.
	RebalanceLockMaxLiveTime time.Duration
	// LongPollingEnable is longPollingEnable. Default true.
	LongPollingEnable bool
	// EnablePropertyFilter is enablePropertyFilter: SQL92 subscriptions (pull, pop, gRPC
	// receive) are evaluated on message properties; false refuses them as RocketMQ does.
	// Default true, unlike RocketMQ's false: a selector costs only the consumers that use
	// one, and applications written for SQL92 then run without a broker setting.
	EnablePropertyFilter bool
	// ShortPollingTime is shortPollingTimeMills (ms): the wait of a suspended pull when long
	// polling is off. Default 1s.
	ShortPollingTime time.Duration
	// MaxSuspendTime caps a pull's suspendTimeoutMillis. Default 30s.
	MaxSuspendTime time.Duration
	// SendThreadPoolNums is sendMessageThreadPoolNums: sends processed concurrently (a put
	// waiting for a group-commit fsync holds its slot). Default 256.
	SendThreadPoolNums int
	// SendThreadPoolQueueCapacity is sendThreadPoolQueueCapacity: sends allowed to wait for a
	// slot; beyond it a send is answered SYSTEM_BUSY [OVERLOAD]. Default 10000.
	SendThreadPoolQueueCapacity int
	// WaitTimeMillsInSendQueue is waitTimeMillsInSendQueue (ms): a send that waited this long
	// for a slot is answered SYSTEM_BUSY [TIMEOUT_CLEAN_QUEUE]. Default 200ms.
	WaitTimeMillsInSendQueue time.Duration

	// Feature keys: parsed here, consumed by the timer/pop/txn feature files.

	// MessageDelayLevel is messageDelayLevel. Default DefaultMessageDelayLevel.
	MessageDelayLevel string
	// TimerMaxDelaySec is timerMaxDelaySec (seconds). Default 259200 (3 days).
	TimerMaxDelaySec int64
	// TimerPrecisionMs is timerPrecisionMs. Default 1000.
	TimerPrecisionMs int64
	// TransactionTimeOut is transactionTimeOut (ms). Default 6s.
	TransactionTimeOut time.Duration
	// TransactionCheckInterval is transactionCheckInterval (ms). Default 30s.
	TransactionCheckInterval time.Duration
	// TransactionCheckMax is transactionCheckMax. Default 15.
	TransactionCheckMax int
	// PopMinInvisibleTime is popMinInvisibleTime (ms). Default 10s.
	PopMinInvisibleTime time.Duration
	// PopMaxInvisibleTime is popMaxInvisibleTime (ms). Default 12h.
	PopMaxInvisibleTime time.Duration
	// PopPollingTimeout is popPollingTimeout (ms): the longest pop long poll. Default 20s.
	PopPollingTimeout time.Duration

	// storeTweak, when set (tests), adjusts the store configuration before Open: fault
	// injection, simulated disk usage.
	storeTweak func(*store.Config)

	// Extra holds every broker.conf key that mapped onto no field above (after a warning was
	// logged once), so feature files can read keys the core does not know yet.
	Extra map[string]string
}

// DefaultConfig returns the defaults written on each Config field.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "broker-a"
	}
	return Config{
		ListenAddr:                    ":10911",
		TLS:                           remoting.DefaultTLSSettings(),
		ClusterName:                   "DefaultCluster",
		BrokerName:                    host,
		DataDir:                       filepath.Join("rocketry-data", "broker"),
		FlushDiskType:                 FlushAsync,
		SyncFlushTimeout:              5 * time.Second,
		FlushIntervalCommitLog:        500 * time.Millisecond,
		MappedFileSizeCommitLog:       1 << 30,
		FileReservedTime:              72 * time.Hour,
		DeleteWhen:                    "04",
		DiskMaxUsedSpaceRatio:         75,
		DiskSpaceWarningLevelRatio:    90,
		DiskSpaceCleanForciblyRatio:   85,
		MaxMessageSize:                4 << 20,
		MessageIndexEnable:            true,
		AccessMessageInMemoryMaxRatio: 40,
		MsgTraceTopicName:             message.TopicTrace,
		AutoCreateTopicEnable:         true,
		AutoCreateSubscriptionGroup:   true,
		DefaultTopicQueueNums:         8,
		RegisterNameServerPeriod:      30 * time.Second,
		FlushConsumerOffsetInterval:   5 * time.Second,
		ChannelExpiredTimeout:         120 * time.Second,
		BrokerPermission:              PermRead | PermWrite,
		RebalanceLockMaxLiveTime:      60 * time.Second,
		LongPollingEnable:             true,
		EnablePropertyFilter:          true,
		ShortPollingTime:              time.Second,
		MaxSuspendTime:                30 * time.Second,
		SendThreadPoolNums:            256,
		SendThreadPoolQueueCapacity:   10000,
		WaitTimeMillsInSendQueue:      200 * time.Millisecond,
		MessageDelayLevel:             DefaultMessageDelayLevel,
		TimerMaxDelaySec:              259200,
		TimerPrecisionMs:              1000,
		TransactionTimeOut:            6 * time.Second,
		TransactionCheckInterval:      30 * time.Second,
		TransactionCheckMax:           15,
		PopMinInvisibleTime:           10 * time.Second,
		PopMaxInvisibleTime:           12 * time.Hour,
		PopPollingTimeout:             20 * time.Second,
	}
}

// ErrInvalidConfig is wrapped by every configuration error; the message names the key.
var ErrInvalidConfig = errors.New("broker: invalid config")

func invalid(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
}

// Validate checks every field; the error names the broker.conf key at fault.
func (c *Config) Validate() error {
	if err := c.TLS.Check(); err != nil {
		return invalid("tls.server.mode", "%v", err)
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return invalid("listenPort", "listen address %q: %v", c.ListenAddr, err)
	}
	if c.AdvertiseAddr != "" {
		host := c.AdvertiseAddr
		if h, p, err := net.SplitHostPort(c.AdvertiseAddr); err == nil {
			if n, perr := strconv.Atoi(p); perr != nil || n <= 0 || n > 65535 {
				return invalid("brokerIP1", "advertised address %q has a bad port", c.AdvertiseAddr)
			}
			host = h
		}
		if host == "" || strings.ContainsAny(host, " /\t") {
			return invalid("brokerIP1", "advertised address %q is not a host or host:port", c.AdvertiseAddr)
		}
	}
	for _, a := range c.NamesrvAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return invalid("namesrvAddr", "%q is not host:port", a)
		}
	}
	if c.ClusterName == "" || strings.ContainsAny(c.ClusterName, " \t") {
		return invalid("brokerClusterName", "must be a non-empty name without spaces")
	}
	if c.BrokerName == "" || strings.ContainsAny(c.BrokerName, " \t") {
		return invalid("brokerName", "must be a non-empty name without spaces")
	}
	switch strings.ToUpper(c.BrokerRole) {
	case "", "ASYNC_MASTER", "SYNC_MASTER":
	case "SLAVE":
		return invalid("brokerRole", "SLAVE is not supported: primary/secondary replication is not built yet; run every broker as a master (ASYNC_MASTER)")
	default:
		return invalid("brokerRole", "must be ASYNC_MASTER, SYNC_MASTER or SLAVE, got %q", c.BrokerRole)
	}
	for _, sp := range []struct{ key, val, sub string }{
		{"storePathCommitLog", c.StorePathCommitLog, "commitlog"},
		{"storePathConsumeQueue", c.StorePathConsumeQueue, "consumequeue"},
		{"storePathIndex", c.StorePathIndex, "index"},
	} {
		if want := filepath.Join(c.DataDir, sp.sub); sp.val != "" && filepath.Clean(sp.val) != filepath.Clean(want) {
			return invalid(sp.key, "%q: separate store paths are not supported; this directory is always %s (set storePathRootDir instead)", sp.val, want)
		}
	}
	if c.BrokerID < 0 {
		return invalid("brokerId", "must be >= 0, got %d", c.BrokerID)
	}
	if c.DataDir == "" {
		return invalid("storePathRootDir", "must not be empty")
	}
	if c.FlushDiskType != FlushAsync && c.FlushDiskType != FlushSync {
		return invalid("flushDiskType", "must be ASYNC_FLUSH or SYNC_FLUSH, got %q", c.FlushDiskType)
	}
	if c.SyncFlushTimeout <= 0 {
		return invalid("syncFlushTimeout", "must be > 0")
	}
	if c.FlushIntervalCommitLog <= 0 {
		return invalid("flushIntervalCommitLog", "must be > 0")
	}
	if c.MappedFileSizeCommitLog < 64<<10 || c.MappedFileSizeCommitLog%4096 != 0 {
		return invalid("mappedFileSizeCommitLog", "must be a multiple of 4096 and >= 65536, got %d", c.MappedFileSizeCommitLog)
	}
	if c.FileReservedTime <= 0 {
		return invalid("fileReservedTime", "must be > 0")
	}
	if _, err := parseDeleteWhen(c.DeleteWhen); err != nil {
		return invalid("deleteWhen", "%v", err)
	}
	if c.AccessMessageInMemoryMaxRatio < 1 || c.AccessMessageInMemoryMaxRatio > 100 {
		return invalid("accessMessageInMemoryMaxRatio", "must be within 1..100, got %d", c.AccessMessageInMemoryMaxRatio)
	}
	if c.DiskMaxUsedSpaceRatio < 10 || c.DiskMaxUsedSpaceRatio > 95 {
		return invalid("diskMaxUsedSpaceRatio", "must be within 10..95, got %d", c.DiskMaxUsedSpaceRatio)
	}
	if c.MaxMessageSize <= 0 || int64(c.MaxMessageSize)+32767+1024 > c.MappedFileSizeCommitLog {
		return invalid("maxMessageSize", "must be > 0 and fit a commit-log segment with its properties (mappedFileSizeCommitLog - 33791), got %d", c.MaxMessageSize)
	}
	if c.DefaultTopicQueueNums < 1 || c.DefaultTopicQueueNums > 1024 {
		return invalid("defaultTopicQueueNums", "must be within 1..1024, got %d", c.DefaultTopicQueueNums)
	}
	if c.RegisterNameServerPeriod < 10*time.Second || c.RegisterNameServerPeriod > 60*time.Second {
		return invalid("registerNameServerPeriod", "must be within 10000..60000 ms, got %d", c.RegisterNameServerPeriod.Milliseconds())
	}
	if c.FlushConsumerOffsetInterval <= 0 {
		return invalid("flushConsumerOffsetInterval", "must be > 0")
	}
	if c.BrokerPermission < 0 || c.BrokerPermission&^(PermRead|PermWrite|PermInherit) != 0 {
		return invalid("brokerPermission", "must combine 4 (read), 2 (write) and 1 (inherit), got %d", c.BrokerPermission)
	}
	if c.ChannelExpiredTimeout <= 0 {
		return invalid("channelExpiredTimeout", "must be > 0")
	}
	if c.RebalanceLockMaxLiveTime <= 0 {
		return invalid("rebalance.lockMaxLiveTime", "must be > 0")
	}
	if c.ShortPollingTime <= 0 || c.MaxSuspendTime <= 0 {
		return invalid("shortPollingTimeMills", "poll times must be > 0")
	}
	if c.SendThreadPoolNums < 1 {
		return invalid("sendMessageThreadPoolNums", "must be >= 1, got %d", c.SendThreadPoolNums)
	}
	if c.SendThreadPoolQueueCapacity < 0 {
		return invalid("sendThreadPoolQueueCapacity", "must be >= 0, got %d", c.SendThreadPoolQueueCapacity)
	}
	if c.WaitTimeMillsInSendQueue <= 0 {
		return invalid("waitTimeMillsInSendQueue", "must be > 0")
	}
	if _, err := ParseDelayLevels(c.MessageDelayLevel); err != nil {
		return invalid("messageDelayLevel", "%v", err)
	}
	if c.TimerMaxDelaySec <= 0 {
		return invalid("timerMaxDelaySec", "must be > 0")
	}
	if c.TimerPrecisionMs <= 0 {
		return invalid("timerPrecisionMs", "must be > 0")
	}
	if c.TransactionTimeOut <= 0 || c.TransactionCheckInterval <= 0 {
		return invalid("transactionCheckInterval", "transaction times must be > 0")
	}
	if c.TransactionCheckMax < 1 {
		return invalid("transactionCheckMax", "must be >= 1")
	}
	if c.PopMinInvisibleTime <= 0 || c.PopMaxInvisibleTime < c.PopMinInvisibleTime {
		return invalid("popMaxInvisibleTime", "need 0 < popMinInvisibleTime <= popMaxInvisibleTime")
	}
	if c.PopPollingTimeout <= 0 {
		return invalid("popPollingTimeout", "must be > 0")
	}
	return nil
}

// ParseDelayLevels parses messageDelayLevel ("1s 5s 10s 30s 1m ... 2h"; units s, m, h, d)
// into durations; level n is element n-1.
func ParseDelayLevels(s string) ([]time.Duration, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("no delay levels")
	}
	out := make([]time.Duration, 0, len(fields))
	for _, f := range fields {
		if len(f) < 2 {
			return nil, fmt.Errorf("bad delay level %q", f)
		}
		unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if unit == 0 || err != nil || n <= 0 {
			return nil, fmt.Errorf("bad delay level %q (want <n>s|m|h|d)", f)
		}
		out = append(out, time.Duration(n)*unit)
	}
	return out, nil
}

func parseDeleteWhen(s string) ([]int, error) {
	var hours []int
	for _, p := range strings.Split(s, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		h, err := strconv.Atoi(p)
		if err != nil || h < 0 || h > 23 {
			return nil, fmt.Errorf("hour %q not within 00..23", p)
		}
		hours = append(hours, h)
	}
	if len(hours) == 0 {
		return nil, errors.New("no hour given")
	}
	return hours, nil
}

// ReadProperties parses a Java properties file (key=value, key:value or "key value" lines,
// '#'/'!' comments, backslash line continuations and escapes). Later duplicates win.
func ReadProperties(r io.Reader) (map[string]string, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("broker: reading properties: %w", err)
	}
	_, entries, err := scanProperties(src)
	if err != nil {
		return nil, err
	}
	props := make(map[string]string, len(entries))
	for _, e := range entries {
		props[e.key] = e.value
	}
	return props, nil
}

// propertyEntry is one logical key/value line of a properties file: physical lines
// first..last (several when continued with a backslash), unescaped key and value.
type propertyEntry struct {
	first, last int
	key, value  string
}

// scanProperties splits src into its physical lines ("\r\n" endings normalised) and its
// logical entries, in file order: the one parser behind ReadProperties and the in-place
// rewrite of a config file (rewriteProperties).
func scanProperties(src []byte) ([]string, []propertyEntry, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("broker: reading properties near line %d: %w", len(lines)+1, err)
	}
	var entries []propertyEntry
	for i := 0; i < len(lines); i++ {
		l := strings.TrimLeft(lines[i], " \t\f")
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		first := i
		var full strings.Builder
		for continued(l) {
			full.WriteString(l[:len(l)-1])
			if i+1 == len(lines) {
				l = ""
				break
			}
			i++
			l = strings.TrimLeft(lines[i], " \t\f")
		}
		full.WriteString(l)
		k, v := splitProperty(full.String())
		entries = append(entries, propertyEntry{first, i, unescapeProperty(k), unescapeProperty(v)})
	}
	return lines, entries, nil
}

// continued reports whether line ends with an odd number of backslashes.
func continued(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func splitProperty(line string) (string, string) {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '=', ':', ' ', '\t', '\f':
			k := line[:i]
			rest := strings.TrimLeft(line[i:], " \t\f")
			if line[i] == ' ' || line[i] == '\t' || line[i] == '\f' {
				if len(rest) > 0 && (rest[0] == '=' || rest[0] == ':') {
					rest = strings.TrimLeft(rest[1:], " \t\f")
				}
			} else {
				rest = strings.TrimLeft(line[i+1:], " \t\f")
			}
			return k, rest
		}
	}
	return line, ""
}

func unescapeProperty(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i == len(s)-1 {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+4 < len(s) {
				if r, err := strconv.ParseUint(s[i+1:i+5], 16, 32); err == nil {
					b.WriteRune(rune(r))
					i += 4
					continue
				}
			}
			b.WriteByte('u')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// LoadConfigFile reads a broker.conf file and applies it to cfg (see ApplyProperties).
func LoadConfigFile(cfg *Config, path string, log *slog.Logger) error {
	_, err := LoadConfigFileExcept(cfg, path, log)
	return err
}

// LoadConfigFileExcept is LoadConfigFile leaving out the named keys, which it returns
// (those present) for their owner: `rocketry standalone` gives authenticationEnabled and
// aclFile to its gRPC proxy, so the broker does not report them as ignored.
func LoadConfigFileExcept(cfg *Config, path string, log *slog.Logger, keys ...string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("broker: config file: %w", err)
	}
	defer f.Close()
	props, err := ReadProperties(f)
	if err != nil {
		return nil, err
	}
	taken := map[string]string{}
	for _, k := range keys {
		if v, ok := props[k]; ok {
			taken[k] = v
			delete(props, k)
		}
	}
	if err := ApplyProperties(cfg, props, log); err != nil {
		return nil, err
	}
	cfg.ConfigFile = path
	return taken, nil
}

// knownIgnored are RocketMQ keys that have no meaning in Rocketry (roles, HA, JVM-specific
// tuning). They are accepted silently at debug level.
var knownIgnored = map[string]bool{
	"brokerIP2": true, "haListenPort": true, "haMasterAddress": true,
	"storeCheckpoint": true, "abortFile": true, "mapedFileSizeConsumeQueue": true,
	"mappedFileSizeConsumeQueue": true, "maxTransferCountOnMessageInMemory": true,
	"warmMapedFileEnable": true, "pullMessageThreadPoolNums": true,
	"useReentrantLockWhenPutMessage": true, "osPageCacheBusyTimeOutMills": true,
	"sendMessageThreadPoolNums-": true, "slaveReadEnable": true,
	"aclFile": true, // read by standalone for its proxy

}

// knownUnsupported are RocketMQ keys whose feature Rocketry does not provide in the broker; a
// true value is logged as a warning so nobody believes it took effect.
var knownUnsupported = map[string]string{
	"aclEnable":             "broker-side ACL is not supported: authentication and permissions are enforced by the proxy (--auth, --acl-file); remoting clients are not checked",
	"authenticationEnabled": "broker-side ACL is not supported: authentication and permissions are enforced by the proxy (--auth, --acl-file); remoting clients are not checked",
	"authorizationEnabled":  "broker-side ACL is not supported: authentication and permissions are enforced by the proxy (--auth, --acl-file); remoting clients are not checked",
}

// ApplyProperties applies broker.conf keys to cfg. Unknown keys are logged once each and kept
// in cfg.Extra; a value that does not parse is an error naming the key.
func ApplyProperties(cfg *Config, props map[string]string, log *slog.Logger) error {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(props[k])
		ok, err := applyKey(cfg, k, v)
		if err != nil {
			return err
		}
		if !ok {
			if cfg.Extra == nil {
				cfg.Extra = make(map[string]string)
			}
			cfg.Extra[k] = v
			if log != nil {
				if why, ok := knownUnsupported[k]; ok && strings.EqualFold(v, "true") {
					log.Warn("broker.conf key not supported, ignored", "key", k, "value", v, "why", why)
				} else if knownIgnored[k] || knownUnsupported[k] != "" {
					log.Debug("broker.conf key has no effect in rocketry", "key", k)
				} else {
					log.Warn("unknown broker.conf key ignored", "key", k)
				}
			}
		}
	}
	for _, k := range keys {
		if note, ok := clampNotes.LoadAndDelete(k); ok && log != nil {
			log.Warn("broker.conf value out of range", "key", k, "value", note)
		}
	}
	if _, set := props["brokerRole"]; set && log != nil && strings.EqualFold(cfg.BrokerRole, "SYNC_MASTER") {
		log.Warn("brokerRole=SYNC_MASTER acts as ASYNC_MASTER: there is no replication yet")
	}
	if cfg.BrokerID != 0 && !strings.EqualFold(cfg.BrokerRole, "SLAVE") {
		if log != nil {
			log.Warn("a master's brokerId is always 0 (as Apache's BrokerStartup); the configured value is ignored", "brokerId", cfg.BrokerID)
		}
		cfg.BrokerID = 0
	}
	return nil
}

// clampNoted clamps v into [lo, hi] as Apache does for these keys (it never refuses them),
// recording a note that ApplyProperties logs, so an Apache broker.conf still starts.
func clampNoted(key string, v, lo, hi int) int {
	c := min(max(v, lo), hi)
	if c != v {
		clampNotes.Store(key, fmt.Sprintf("%d clamped to %d (allowed %d-%d)", v, c, lo, hi))
	}
	return c
}

// clampNotes holds the clamp notes of the keys applied since ApplyProperties last logged them.
var clampNotes sync.Map

func applyKey(c *Config, k, v string) (bool, error) {
	i64 := func(dst *int64) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return invalid(k, "%q is not an integer", v)
		}
		*dst = n
		return nil
	}
	i32 := func(dst *int32) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return invalid(k, "%q is not a 32-bit integer", v)
		}
		*dst = int32(n)
		return nil
	}
	integer := func(dst *int) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return invalid(k, "%q is not an integer", v)
		}
		*dst = n
		return nil
	}
	boolean := func(dst *bool) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalid(k, "%q is not true or false", v)
		}
		*dst = b
		return nil
	}
	dur := func(dst *time.Duration, unit time.Duration) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return invalid(k, "%q is not an integer", v)
		}
		*dst = time.Duration(n) * unit
		return nil
	}
	ms := func(dst *time.Duration) error { return dur(dst, time.Millisecond) }
	var err error
	if c.TLS.ApplyKey(k, v) {
		return true, nil
	}
	switch k {
	case "listenPort":
		var p int
		if err = integer(&p); err == nil {
			if p <= 0 || p > 65535 {
				return true, invalid(k, "port %d out of range", p)
			}
			host, _, _ := net.SplitHostPort(c.ListenAddr)
			c.ListenAddr = net.JoinHostPort(host, strconv.Itoa(p))
		}
	case "brokerIP1":
		if net.ParseIP(v) == nil && v != "" && strings.ContainsAny(v, " /:") {
			return true, invalid(k, "%q is not an IP address or host name", v)
		}
		c.AdvertiseAddr = v // the port is completed by the caller (AdvertisedAddr)
	case "namesrvAddr":
		c.NamesrvAddrs = SplitNamesrvAddrs(v)
	case "brokerClusterName":
		c.ClusterName = v
	case "brokerName":
		c.BrokerName = v
	case "brokerRole":
		c.BrokerRole = v
	case "storePathCommitLog":
		c.StorePathCommitLog = v
	case "storePathConsumeQueue":
		c.StorePathConsumeQueue = v
	case "storePathIndex":
		c.StorePathIndex = v
	case "brokerId":
		err = i64(&c.BrokerID)
	case "storePathRootDir":
		c.DataDir = v
	case "flushDiskType":
		c.FlushDiskType = v
		if v != FlushAsync && v != FlushSync {
			return true, invalid(k, "must be ASYNC_FLUSH or SYNC_FLUSH, got %q", v)
		}
	case "syncFlushTimeout":
		err = ms(&c.SyncFlushTimeout)
	case "flushIntervalCommitLog":
		err = ms(&c.FlushIntervalCommitLog)
	case "mappedFileSizeCommitLog", "mapedFileSizeCommitLog":
		err = i64(&c.MappedFileSizeCommitLog)
	case "fileReservedTime":
		err = dur(&c.FileReservedTime, time.Hour)
	case "deleteWhen":
		c.DeleteWhen = v
		if _, perr := parseDeleteWhen(v); perr != nil {
			return true, invalid(k, "%v", perr)
		}
	case "diskMaxUsedSpaceRatio":
		if err = integer(&c.DiskMaxUsedSpaceRatio); err == nil {
			c.DiskMaxUsedSpaceRatio = clampNoted(k, c.DiskMaxUsedSpaceRatio, 10, 95)
		}
	case "diskSpaceWarningLevelRatio":
		if err = integer(&c.DiskSpaceWarningLevelRatio); err == nil {
			c.DiskSpaceWarningLevelRatio = clampNoted(k, c.DiskSpaceWarningLevelRatio, 35, 90)
		}
	case "diskSpaceCleanForciblyRatio":
		if err = integer(&c.DiskSpaceCleanForciblyRatio); err == nil {
			c.DiskSpaceCleanForciblyRatio = clampNoted(k, c.DiskSpaceCleanForciblyRatio, 30, 85)
		}
	case "maxMessageSize":
		err = integer(&c.MaxMessageSize)
	case "messageIndexEnable":
		err = boolean(&c.MessageIndexEnable)
	case "accessMessageInMemoryMaxRatio":
		err = integer(&c.AccessMessageInMemoryMaxRatio)
	case "transientStorePoolEnable":
		err = boolean(&c.TransientStorePoolEnable)
	case "recoverTruncateCorrupt":
		err = boolean(&c.RecoverTruncateCorrupt)
	case "traceTopicEnable":
		err = boolean(&c.TraceTopicEnable)
	case "msgTraceTopicName":
		c.MsgTraceTopicName = v
	case "autoCreateTopicEnable":
		err = boolean(&c.AutoCreateTopicEnable)
	case "autoCreateSubscriptionGroup":
		err = boolean(&c.AutoCreateSubscriptionGroup)
	case "defaultTopicQueueNums":
		err = i32(&c.DefaultTopicQueueNums)
	case "registerNameServerPeriod":
		if err = ms(&c.RegisterNameServerPeriod); err == nil {
			c.RegisterNameServerPeriod = time.Duration(clampNoted(k, int(c.RegisterNameServerPeriod.Milliseconds()), 10000, 60000)) * time.Millisecond
		}
	case "flushConsumerOffsetInterval":
		err = ms(&c.FlushConsumerOffsetInterval)
	case "channelExpiredTimeout":
		err = ms(&c.ChannelExpiredTimeout)
	case "brokerPermission":
		err = integer(&c.BrokerPermission)
	case "rebalance.lockMaxLiveTime":
		err = ms(&c.RebalanceLockMaxLiveTime)
	case "longPollingEnable":
		err = boolean(&c.LongPollingEnable)
	case "enablePropertyFilter":
		err = boolean(&c.EnablePropertyFilter)
	case "shortPollingTimeMills":
		err = ms(&c.ShortPollingTime)
	case "sendMessageThreadPoolNums":
		err = integer(&c.SendThreadPoolNums)
	case "sendThreadPoolQueueCapacity":
		err = integer(&c.SendThreadPoolQueueCapacity)
	case "waitTimeMillsInSendQueue":
		err = ms(&c.WaitTimeMillsInSendQueue)
	case "messageDelayLevel":
		c.MessageDelayLevel = v
		if _, perr := ParseDelayLevels(v); perr != nil {
			return true, invalid(k, "%v", perr)
		}
	case "timerMaxDelaySec":
		err = i64(&c.TimerMaxDelaySec)
	case "timerPrecisionMs":
		err = i64(&c.TimerPrecisionMs)
	case "transactionTimeOut":
		err = ms(&c.TransactionTimeOut)
	case "transactionCheckInterval":
		err = ms(&c.TransactionCheckInterval)
	case "transactionCheckMax":
		err = integer(&c.TransactionCheckMax)
	case "popMinInvisibleTime":
		err = ms(&c.PopMinInvisibleTime)
	case "popMaxInvisibleTime":
		err = ms(&c.PopMaxInvisibleTime)
	case "popPollingTimeout":
		err = ms(&c.PopPollingTimeout)
	default:
		return false, nil
	}
	return true, err
}

// SplitNamesrvAddrs splits a "a:9876;b:9876" list (commas accepted too), dropping empties.
func SplitNamesrvAddrs(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// advertisedAddr resolves AdvertiseAddr against the actual listen port: "" becomes the
// first non-loopback IPv4 address; a bare host gets the listen port.
func advertisedAddr(advertise string, listenPort int) string {
	host, port := advertise, ""
	if h, p, err := net.SplitHostPort(advertise); err == nil {
		host, port = h, p
	}
	if host == "" {
		host = localIPv4()
	}
	if port == "" {
		port = strconv.Itoa(listenPort)
	}
	return net.JoinHostPort(host, port)
}

func localIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				if v4 := ipn.IP.To4(); v4 != nil {
					return v4.String()
				}
			}
		}
	}
	return "127.0.0.1"
}

// runtimeConfigKeys is the allow-list for UPDATE_BROKER_CONFIG: keys that are safe to change
// at run time and that the running broker actually reads again (store settings are fixed at
// Open, so retention keys are not here). Paths, addresses, names and anything that could run
// commands are never on it (CVE-2023-33246).
var runtimeConfigKeys = map[string]bool{
	"autoCreateTopicEnable": true, "autoCreateSubscriptionGroup": true,
	"defaultTopicQueueNums": true, "maxMessageSize": true, "registerNameServerPeriod": true,
	"channelExpiredTimeout": true, "brokerPermission": true, "longPollingEnable": true,
	"fileReservedTime": true, "deleteWhen": true, "diskMaxUsedSpaceRatio": true, "shortPollingTimeMills": true,
	"waitTimeMillsInSendQueue": true, "sendThreadPoolQueueCapacity": true,
}

// Properties renders the config as broker.conf keys (GET_BROKER_CONFIG body).
func (c *Config) Properties() map[string]string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	_, port, _ := net.SplitHostPort(c.ListenAddr)
	// brokerIP1 is an address only, as on Apache (scripts join it with listenPort); an
	// advertised host:port keeps its host here.
	ip1 := c.AdvertiseAddr
	if h, _, err := net.SplitHostPort(ip1); err == nil {
		ip1 = h
	}
	m := map[string]string{
		"listenPort":                    port,
		"brokerIP1":                     ip1,
		"namesrvAddr":                   strings.Join(c.NamesrvAddrs, ";"),
		"brokerClusterName":             c.ClusterName,
		"brokerName":                    c.BrokerName,
		"brokerId":                      strconv.FormatInt(c.BrokerID, 10),
		"brokerRole":                    cmp.Or(strings.ToUpper(c.BrokerRole), "ASYNC_MASTER"),
		"storePathRootDir":              c.DataDir,
		"flushDiskType":                 c.FlushDiskType,
		"syncFlushTimeout":              ms(c.SyncFlushTimeout),
		"flushIntervalCommitLog":        ms(c.FlushIntervalCommitLog),
		"mappedFileSizeCommitLog":       strconv.FormatInt(c.MappedFileSizeCommitLog, 10),
		"fileReservedTime":              strconv.FormatInt(int64(c.FileReservedTime/time.Hour), 10),
		"deleteWhen":                    c.DeleteWhen,
		"diskMaxUsedSpaceRatio":         strconv.Itoa(c.DiskMaxUsedSpaceRatio),
		"diskSpaceWarningLevelRatio":    strconv.Itoa(c.DiskSpaceWarningLevelRatio),
		"diskSpaceCleanForciblyRatio":   strconv.Itoa(c.DiskSpaceCleanForciblyRatio),
		"recoverTruncateCorrupt":        strconv.FormatBool(c.RecoverTruncateCorrupt),
		"tls.server.mode":               c.TLS.Mode,
		"tls.server.certPath":           c.TLS.CertFile,
		"tls.server.keyPath":            c.TLS.KeyFile,
		"maxMessageSize":                strconv.Itoa(c.MaxMessageSize),
		"messageIndexEnable":            strconv.FormatBool(c.MessageIndexEnable),
		"accessMessageInMemoryMaxRatio": strconv.Itoa(c.AccessMessageInMemoryMaxRatio),
		"transientStorePoolEnable":      strconv.FormatBool(c.TransientStorePoolEnable),
		"traceTopicEnable":              strconv.FormatBool(c.TraceTopicEnable),
		"msgTraceTopicName":             c.MsgTraceTopicName,
		"autoCreateTopicEnable":         strconv.FormatBool(c.AutoCreateTopicEnable),
		"autoCreateSubscriptionGroup":   strconv.FormatBool(c.AutoCreateSubscriptionGroup),
		"defaultTopicQueueNums":         strconv.Itoa(int(c.DefaultTopicQueueNums)),
		"registerNameServerPeriod":      ms(c.RegisterNameServerPeriod),
		"flushConsumerOffsetInterval":   ms(c.FlushConsumerOffsetInterval),
		"channelExpiredTimeout":         ms(c.ChannelExpiredTimeout),
		"brokerPermission":              strconv.Itoa(c.BrokerPermission),
		"rebalance.lockMaxLiveTime":     ms(c.RebalanceLockMaxLiveTime),
		"longPollingEnable":             strconv.FormatBool(c.LongPollingEnable),
		"enablePropertyFilter":          strconv.FormatBool(c.EnablePropertyFilter),
		"shortPollingTimeMills":         ms(c.ShortPollingTime),
		"sendMessageThreadPoolNums":     strconv.Itoa(c.SendThreadPoolNums),
		"sendThreadPoolQueueCapacity":   strconv.Itoa(c.SendThreadPoolQueueCapacity),
		"waitTimeMillsInSendQueue":      ms(c.WaitTimeMillsInSendQueue),
		"messageDelayLevel":             c.MessageDelayLevel,
		"timerMaxDelaySec":              strconv.FormatInt(c.TimerMaxDelaySec, 10),
		"timerPrecisionMs":              strconv.FormatInt(c.TimerPrecisionMs, 10),
		"transactionTimeOut":            ms(c.TransactionTimeOut),
		"transactionCheckInterval":      ms(c.TransactionCheckInterval),
		"transactionCheckMax":           strconv.Itoa(c.TransactionCheckMax),
		"popMinInvisibleTime":           ms(c.PopMinInvisibleTime),
		"popMaxInvisibleTime":           ms(c.PopMaxInvisibleTime),
		"popPollingTimeout":             ms(c.PopPollingTimeout),
	}
	return m
}
