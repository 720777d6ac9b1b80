package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Config configures an Admin.
type Config struct {
	// NameServers are the NameServer addresses ("host:port"). Default ["127.0.0.1:9876"].
	NameServers []string
	// Timeout bounds each remote request. Default 5 s.
	Timeout time.Duration
	// Parallelism bounds concurrent per-broker requests of one operation. Default 16.
	Parallelism int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{NameServers: []string{"127.0.0.1:9876"}, Timeout: 5 * time.Second, Parallelism: 16}
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if len(c.NameServers) == 0 {
		return errors.New("admin: at least one NameServer address is required")
	}
	for _, a := range c.NameServers {
		if a == "" {
			return errors.New("admin: empty NameServer address")
		}
	}
	if c.Timeout < 0 || c.Parallelism < 0 {
		return errors.New("admin: negative timeout or parallelism")
	}
	return nil
}

// Admin runs administration operations against one cluster (its NameServers).
type Admin struct {
	cfg Config
	log *slog.Logger
	cli *remoting.Client
}

// New returns an Admin; zero config fields take their defaults.
func New(cfg Config, log *slog.Logger) (*Admin, error) {
	d := DefaultConfig()
	if len(cfg.NameServers) == 0 {
		cfg.NameServers = d.NameServers
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.Parallelism == 0 {
		cfg.Parallelism = d.Parallelism
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "admin")
	return &Admin{cfg: cfg, log: log, cli: remoting.NewClient(remoting.ClientConfig{DialTimeout: cfg.Timeout}, log)}, nil
}

// Close closes every connection.
func (a *Admin) Close() error { return a.cli.Close() }

// ErrNotFound is matched (errors.Is) by a *CodeError whose code means "no such topic, group,
// offset or message".
var ErrNotFound = errors.New("not found")

// CodeError is a non-success response of a NameServer or broker.
type CodeError struct {
	Op     string // what was asked, e.g. "UPDATE_AND_CREATE_TOPIC"
	Addr   string // who answered
	Code   int32  // remoting response code
	Remark string // the server's explanation
}

func (e *CodeError) Error() string {
	name := codeNames[e.Code]
	if name == "" {
		name = strconv.Itoa(int(e.Code))
	}
	if e.Remark == "" {
		return fmt.Sprintf("%s at %s: %s", e.Op, e.Addr, name)
	}
	return fmt.Sprintf("%s at %s: %s: %s", e.Op, e.Addr, name, e.Remark)
}

// Is makes errors.Is(err, ErrNotFound) work for not-found codes.
func (e *CodeError) Is(target error) bool {
	return target == ErrNotFound && (e.Code == remoting.TopicNotExist || e.Code == remoting.SubscriptionGroupNotExist ||
		e.Code == remoting.QueryNotFound || e.Code == remoting.SubscriptionNotExist)
}

var codeNames = map[int32]string{
	remoting.SystemError: "SYSTEM_ERROR", remoting.SystemBusy: "SYSTEM_BUSY",
	remoting.RequestCodeNotSupported: "REQUEST_CODE_NOT_SUPPORTED", remoting.ServiceNotAvailable: "SERVICE_NOT_AVAILABLE",
	remoting.NoPermission: "NO_PERMISSION", remoting.TopicNotExist: "TOPIC_NOT_EXIST",
	remoting.TopicExistAlready: "TOPIC_EXIST_ALREADY", remoting.PullNotFound: "PULL_NOT_FOUND",
	remoting.QueryNotFound: "QUERY_NOT_FOUND", remoting.SubscriptionGroupNotExist: "SUBSCRIPTION_GROUP_NOT_EXIST",
	remoting.InvalidParameter: "INVALID_PARAMETER", remoting.ConsumerNotOnline: "CONSUMER_NOT_ONLINE",
	remoting.NoMessage: "NO_MESSAGE", remoting.MessageIllegal: "MESSAGE_ILLEGAL",
	remoting.SubscriptionNotExist: "SUBSCRIPTION_NOT_EXIST", remoting.FlushDiskTimeout: "FLUSH_DISK_TIMEOUT",
}

// requestNames name the request codes this package sends (for errors).
var requestNames = map[int32]string{
	remoting.UpdateAndCreateTopic: "UPDATE_AND_CREATE_TOPIC", remoting.GetBrokerClusterInfo: "GET_BROKER_CLUSTER_INFO",
	remoting.GetRouteinfoByTopic: "GET_ROUTEINFO_BY_TOPIC", remoting.GetAllTopicListFromNameserver: "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	remoting.DeleteTopicInBroker: "DELETE_TOPIC_IN_BROKER", remoting.DeleteTopicInNamesrv: "DELETE_TOPIC_IN_NAMESRV",
	remoting.UpdateAndCreateSubscriptionGroup: "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP", remoting.GetAllSubscriptionGroupConfig: "GET_ALL_SUBSCRIPTIONGROUP_CONFIG",
	remoting.DeleteSubscriptionGroup: "DELETE_SUBSCRIPTIONGROUP", remoting.GetConsumeStats: "GET_CONSUME_STATS",
	remoting.GetConsumerConnectionList: "GET_CONSUMER_CONNECTION_LIST", remoting.InvokeBrokerToResetOffset: "INVOKE_BROKER_TO_RESET_OFFSET",
	remoting.GetBrokerRuntimeInfo: "GET_BROKER_RUNTIME_INFO", remoting.GetMaxOffset: "GET_MAX_OFFSET", remoting.GetMinOffset: "GET_MIN_OFFSET",
	remoting.ViewMessageByID: "VIEW_MESSAGE_BY_ID", remoting.QueryMessage: "QUERY_MESSAGE", remoting.GetTopicConfig: "GET_TOPIC_CONFIG",
	remoting.GetSubscriptionGroupConfig: "GET_SUBSCRIPTIONGROUP_CONFIG", remoting.PullMessage: "PULL_MESSAGE",
	remoting.SendMessageV2: "SEND_MESSAGE_V2", remoting.QueryConsumerOffset: "QUERY_CONSUMER_OFFSET",
	remoting.UpdateConsumerOffset: "UPDATE_CONSUMER_OFFSET", remoting.SearchOffsetByTimestamp: "SEARCH_OFFSET_BY_TIMESTAMP",
	remoting.GetEarliestMsgStoretime: "GET_EARLIEST_MSG_STORETIME", remoting.GetBrokerConfig: "GET_BROKER_CONFIG",
	remoting.UpdateBrokerConfig: "UPDATE_BROKER_CONFIG", remoting.GetTopicStatsInfo: "GET_TOPIC_STATS_INFO",
	remoting.GetConsumerListByGroup: "GET_CONSUMER_LIST_BY_GROUP",
}

// invoke sends one request and returns the response, or an error: transport failures
// wrapped with the address, non-accepted codes as *CodeError. ok lists the accepted codes
// (default: SUCCESS only).
func (a *Admin) invoke(ctx context.Context, addr string, code int32, ext map[string]string, body []byte, ok ...int32) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	name := requestNames[code]
	if name == "" {
		name = "request " + strconv.Itoa(int(code))
	}
	resp, err := a.cli.Invoke(ctx, addr, remoting.NewRequest(code, ext, body))
	if errors.Is(err, context.DeadlineExceeded) {
		// One mention of the request and the address (the transport's error repeats both).
		return nil, fmt.Errorf("%s to %s: no answer within %s: %w", name, addr, a.cfg.Timeout, context.DeadlineExceeded)
	}
	if err != nil {
		return nil, fmt.Errorf("%s to %s: %w", name, addr, err)
	}
	if resp.Code == remoting.Success {
		return resp, nil
	}
	for _, c := range ok {
		if resp.Code == c {
			return resp, nil
		}
	}
	return nil, &CodeError{Op: name, Addr: addr, Code: resp.Code, Remark: resp.Remark}
}

// invokeNamesrv tries each NameServer in order until one answers (a *CodeError is an
// answer and is returned at once).
//
// NameServers do not share state: one that was just restarted knows nothing until every broker
// registered again (up to 30 s). So a refusal (TOPIC_NOT_EXIST, ...) from one is not final
// either: the others are asked, and the first refusal is returned only when none answers
// (QA R8J-1).
func (a *Admin) invokeNamesrv(ctx context.Context, code int32, ext map[string]string) (*remoting.Command, error) {
	var firstErr, codeErr error
	for _, ns := range a.cfg.NameServers {
		resp, err := a.invoke(ctx, ns, code, ext, nil)
		if err == nil {
			return resp, nil
		}
		var ce *CodeError
		if errors.As(err, &ce) {
			if codeErr == nil {
				codeErr = err
			}
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if codeErr != nil {
		return nil, codeErr
	}
	return nil, firstErr
}

// parallel runs f for every item with bounded concurrency and returns the errors joined.
func parallel[T any](ctx context.Context, limit int, items []T, f func(ctx context.Context, it T) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, max(limit, 1))
	)
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ---- NameServer views ----

// wireBrokerData is BrokerData in routes and cluster info.
type wireBrokerData struct {
	Cluster     string            `json:"cluster"`
	BrokerName  string            `json:"brokerName"`
	BrokerAddrs map[string]string `json:"brokerAddrs"` // broker id -> addr
}

type wireQueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	WriteQueueNums int32  `json:"writeQueueNums"`
	Perm           int32  `json:"perm"`
	TopicSysFlag   int32  `json:"topicSysFlag"`
}

type wireRoute struct {
	OrderTopicConf string           `json:"orderTopicConf"`
	QueueDatas     []wireQueueData  `json:"queueDatas"`
	BrokerDatas    []wireBrokerData `json:"brokerDatas"`
}

type wireClusterInfo struct {
	BrokerAddrTable  map[string]wireBrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string       `json:"clusterAddrTable"`
}

// master returns the master (id 0) address of a broker group, "" when it has none.
func (b wireBrokerData) master() string { return b.BrokerAddrs["0"] }

// clusterInfo fetches GET_BROKER_CLUSTER_INFO from every NameServer and merges the answers:
// NameServers do not share state, and one may lack a broker for a while (just restarted, or
// the broker's connection to it dropped and the broker has not registered again yet). A
// command that acts on "every broker" must not silently skip one that a single NameServer
// forgot (QA R8J-1, R8R-2). It fails only when no NameServer answers.
func (a *Admin) clusterInfo(ctx context.Context) (*wireClusterInfo, error) {
	merged := &wireClusterInfo{BrokerAddrTable: map[string]wireBrokerData{}, ClusterAddrTable: map[string][]string{}}
	answered := false
	var firstErr error
	for _, ns := range a.cfg.NameServers {
		resp, err := a.invoke(ctx, ns, remoting.GetBrokerClusterInfo, nil, nil)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		var ci wireClusterInfo
		if err := decodeJSON(resp.Body, &ci); err != nil {
			return nil, fmt.Errorf("GET_BROKER_CLUSTER_INFO: %w", err)
		}
		answered = true
		for name, bd := range ci.BrokerAddrTable {
			cur, ok := merged.BrokerAddrTable[name]
			if !ok || (cur.master() == "" && bd.master() != "") {
				merged.BrokerAddrTable[name] = bd
			}
		}
		for cluster, names := range ci.ClusterAddrTable {
			for _, n := range names {
				if !slices.Contains(merged.ClusterAddrTable[cluster], n) {
					merged.ClusterAddrTable[cluster] = append(merged.ClusterAddrTable[cluster], n)
				}
			}
		}
	}
	if !answered {
		return nil, firstErr
	}
	return merged, nil
}

// brokerGroup is one broker group's name and master address.
type brokerGroup struct {
	Cluster, Name, Master string
}

// masters returns the master brokers of cluster ("" = every cluster), sorted by name.
// No broker at all is an error (nothing could act on the request).
func (a *Admin) masters(ctx context.Context, cluster string) ([]brokerGroup, error) {
	ci, err := a.clusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	var out []brokerGroup
	for name, bd := range ci.BrokerAddrTable {
		c := bd.Cluster
		if c == "" {
			for cn, names := range ci.ClusterAddrTable {
				for _, n := range names {
					if n == name {
						c = cn
					}
				}
			}
		}
		if cluster != "" && c != cluster {
			continue
		}
		if m := bd.master(); m != "" {
			out = append(out, brokerGroup{Cluster: c, Name: name, Master: m})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		if cluster != "" {
			return nil, fmt.Errorf("no master broker in cluster %q", cluster)
		}
		return nil, errors.New("no master broker registered with the NameServer")
	}
	return out, nil
}

// route fetches a topic's route; unknown topics are ErrNotFound.
func (a *Admin) route(ctx context.Context, topic string) (*wireRoute, error) {
	resp, err := a.invokeNamesrv(ctx, remoting.GetRouteinfoByTopic, map[string]string{"topic": topic})
	if err != nil {
		return nil, err
	}
	var r wireRoute
	if err := decodeJSON(resp.Body, &r); err != nil {
		return nil, fmt.Errorf("GET_ROUTEINFO_BY_TOPIC: %w", err)
	}
	return &r, nil
}

// routeMasters returns the master address of every broker group in a route, by name.
func (r *wireRoute) masters() map[string]string {
	out := make(map[string]string, len(r.BrokerDatas))
	for _, b := range r.BrokerDatas {
		if m := b.master(); m != "" {
			out[b.BrokerName] = m
		}
	}
	return out
}
