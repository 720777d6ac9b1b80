package namesrv

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// handlerFunc is a NameServer handler: a response, or an error mapped by responseFor.
type handlerFunc func(c *remoting.Conn, req *remoting.Command) (*remoting.Command, error)

func (s *Server) registerHandlers() {
	hs := map[int32]handlerFunc{
		remoting.PutKVConfig:                   s.putKVConfig,
		remoting.GetKVConfig:                   s.getKVConfig,
		remoting.DeleteKVConfig:                s.deleteKVConfig,
		remoting.GetKVListByNamespace:          s.getKVListByNamespace,
		remoting.RegisterBroker:                s.registerBroker,
		remoting.UnregisterBroker:              s.unregisterBroker,
		remoting.BrokerHeartbeat:               s.brokerHeartbeat,
		remoting.QueryDataVersion:              s.queryDataVersion,
		remoting.GetRouteinfoByTopic:           s.getRouteInfoByTopic,
		remoting.GetBrokerClusterInfo:          s.getBrokerClusterInfo,
		remoting.WipeWritePermOfBroker:         s.wipeWritePerm,
		remoting.AddWritePermOfBroker:          s.addWritePerm,
		remoting.GetAllTopicListFromNameserver: s.getAllTopicList,
		remoting.DeleteTopicInNamesrv:          s.deleteTopic,
		remoting.RegisterTopicInNamesrv:        s.registerTopic,
		remoting.GetTopicsByCluster:            s.getTopicsByCluster,
		remoting.GetSystemTopicListFromNS:      s.getSystemTopicList,
		remoting.GetUnitTopicList:              s.unitTopics(func(f int32) bool { return f&TopicFlagUnit != 0 }),
		remoting.GetHasUnitSubTopicList:        s.unitTopics(func(f int32) bool { return f&TopicFlagUnitSub != 0 }),
		remoting.GetHasUnitSubUnunitTopicList: s.unitTopics(func(f int32) bool {
			return f&TopicFlagUnit == 0 && f&TopicFlagUnitSub != 0
		}),
		remoting.GetBrokerMemberGroup: s.getBrokerMemberGroup,
		remoting.GetNamesrvConfig:     s.getNamesrvConfig,
		remoting.UpdateNamesrvConfig:  s.updateNamesrvConfig,
	}
	for code, h := range hs {
		s.rs.Handle(code, s.instrument(code, h))
	}
}

// instrument turns a handlerFunc into a remoting.Handler that maps errors and records
// request count and latency per (request code, response code).
func (s *Server) instrument(code int32, h handlerFunc) remoting.Handler {
	reqCode := remoting.RequestCodeName(code)
	return func(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
		start := time.Now()
		resp, err := h(c, req)
		if err != nil {
			resp = responseFor(err)
			s.log.Debug("namesrv: request failed", "code", code, "remote", c.RemoteAddr(), "err", err)
		}
		respCode := remoting.ResponseCodeName(resp.Code)
		s.metrics.observe(reqCode, respCode, time.Since(start))
		return resp
	}
}

func ok() *remoting.Command { return remoting.NewResponse(remoting.Success, "") }

// ---- KV config ----

func (s *Server) putKVConfig(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	ns, err := req.ExtRequired("namespace")
	if err != nil {
		return nil, err
	}
	k, err := req.ExtRequired("key")
	if err != nil {
		return nil, err
	}
	v, has := req.ExtFields["value"]
	if !has {
		return nil, fmt.Errorf("%w: value", remoting.ErrMissingField)
	}
	if err := s.kv.put(ns, k, v); err != nil {
		return nil, err
	}
	return ok(), nil
}

func (s *Server) getKVConfig(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	ns, err := req.ExtRequired("namespace")
	if err != nil {
		return nil, err
	}
	k, err := req.ExtRequired("key")
	if err != nil {
		return nil, err
	}
	v, found := s.kv.get(ns, k)
	if !found {
		return nil, withRemark(errKVNotFound, "No config item, Namespace: "+ns+" Key: "+k)
	}
	resp := ok()
	resp.SetExt("value", v)
	return resp, nil
}

func (s *Server) deleteKVConfig(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	ns, err := req.ExtRequired("namespace")
	if err != nil {
		return nil, err
	}
	k, err := req.ExtRequired("key")
	if err != nil {
		return nil, err
	}
	if err := s.kv.delete(ns, k); err != nil {
		return nil, err
	}
	return ok(), nil
}

func (s *Server) getKVListByNamespace(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	ns, err := req.ExtRequired("namespace")
	if err != nil {
		return nil, err
	}
	m := s.kv.list(ns)
	if m == nil {
		return nil, withRemark(errKVNotFound, "No config item, Namespace: "+ns)
	}
	resp := ok()
	resp.Body = route.Marshal(route.KVTable{Table: m})
	return resp, nil
}

// ---- broker registration and liveness ----

// requireExt returns the listed fields, which must be present (they may be empty, as
// RocketMQ's @CFNotNull allows).
func requireExt(req *remoting.Command, keys ...string) ([]string, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		v, has := req.ExtFields[k]
		if !has {
			return nil, fmt.Errorf("%w: %s", remoting.ErrMissingField, k)
		}
		out[i] = v
	}
	return out, nil
}

func (s *Server) registerBroker(c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	f, err := requireExt(req, "brokerName", "brokerAddr", "clusterName", "haServerAddr", "brokerId")
	if err != nil {
		return nil, err
	}
	name, addr, cluster, ha := f[0], f[1], f[2], f[3]
	if name == "" || addr == "" || cluster == "" {
		return nil, fmt.Errorf("%w: brokerName, brokerAddr and clusterName must not be empty", remoting.ErrMissingField)
	}
	id, err := req.ExtInt64("brokerId")
	if err != nil {
		return nil, err
	}
	if crc := req.ExtInt64Or("bodyCrc32", 0); crc != 0 && int64(route.BodyCRC32(req.Body)) != crc {
		s.log.Warn("namesrv: register body CRC mismatch", "broker", name, "addr", addr, "remote", c.RemoteAddr())
		return nil, errCRCMismatch
	}
	body, err := route.DecodeRegisterBrokerBody(req.Body, req.ExtBoolOr("compressed", false))
	if err != nil {
		return nil, err
	}
	timeout := s.cfg.BrokerTimeout
	if ms := req.ExtInt64Or("heartbeatTimeoutMillis", 0); ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	res := s.table.Register(Registration{
		Cluster:            cluster,
		BrokerName:         name,
		BrokerAddr:         addr,
		BrokerID:           id,
		HAServerAddr:       ha,
		ZoneName:           zoneName(req),
		EnableActingMaster: req.ExtBoolOr("enableActingMaster", false),
		Timeout:            timeout,
		Topics:             body.TopicConfigSerializeWrapper,
		Conn:               c,
	}, s.now())
	resp := ok()
	if res.HAServerAddr != "" {
		resp.SetExt("haServerAddr", res.HAServerAddr)
	}
	if res.MasterAddr != "" {
		resp.SetExt("masterAddr", res.MasterAddr)
	}
	if s.returnOrderTopicConfig.Load() {
		if m := s.kv.list(route.NamespaceOrderTopicConfig); m != nil {
			resp.Body = route.Marshal(route.KVTable{Table: m})
		}
	}
	return resp, nil
}

func (s *Server) unregisterBroker(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	f, err := requireExt(req, "brokerName", "brokerAddr", "clusterName", "brokerId")
	if err != nil {
		return nil, err
	}
	s.table.Unregister(f[2], f[0], f[1])
	s.log.Info("namesrv: broker unregistered", "cluster", f[2], "broker", f[0], "addr", f[1])
	return ok(), nil
}

func (s *Server) brokerHeartbeat(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	f, err := requireExt(req, "clusterName", "brokerAddr")
	if err != nil {
		return nil, err
	}
	s.table.Heartbeat(f[0], f[1], s.now())
	return ok(), nil
}

func (s *Server) queryDataVersion(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	f, err := requireExt(req, "brokerName", "brokerAddr", "clusterName", "brokerId")
	if err != nil {
		return nil, err
	}
	var dv route.DataVersion
	if len(req.Body) > 0 {
		if err := json.Unmarshal(req.Body, &dv); err != nil {
			return nil, fmt.Errorf("%w: dataVersion body: %v", errInvalidArgument, err)
		}
	}
	changed, registered := s.table.QueryDataVersion(f[2], f[1], dv, s.now())
	resp := ok()
	resp.SetExt("changed", strconv.FormatBool(changed))
	if registered != nil {
		resp.Body = route.Marshal(registered)
	}
	return resp, nil
}

// ---- routes and topics ----

func (s *Server) getRouteInfoByTopic(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	topic, err := req.ExtRequired("topic")
	if err != nil {
		return nil, err
	}
	body := s.routes.get(s, topic)
	if body == nil {
		return nil, withRemark(errTopicNotExist, "No topic route info in name server for the topic: "+topic)
	}
	resp := ok()
	resp.Body = body
	return resp, nil
}

// routeCache keeps encoded routes while neither the table, the KV store nor the
// orderMessageEnable flag changed (routes are the NameServer's hottest, largest response;
// clients refresh every 30 s). It holds at most one entry per existing topic and is
// emptied whenever any of its keys moves.
type routeCache struct {
	mu     sync.RWMutex
	gen    uint64
	kvGen  uint64
	order  bool
	bodies map[string][]byte
}

func (c *routeCache) get(s *Server, topic string) []byte {
	gen, kvGen, order := s.table.Gen(), s.kv.gen.Load(), s.orderMessageEnable.Load()
	c.mu.RLock()
	if c.gen == gen && c.kvGen == kvGen && c.order == order {
		if b, ok := c.bodies[topic]; ok {
			c.mu.RUnlock()
			return b
		}
	}
	c.mu.RUnlock()

	r, builtGen := s.table.RouteGen(topic)
	if r == nil {
		return nil
	}
	if order {
		if conf, found := s.kv.get(route.NamespaceOrderTopicConfig, topic); found {
			r.OrderTopicConf = conf
		}
	}
	body := r.Encode()
	c.mu.Lock()
	if c.gen != builtGen || c.kvGen != kvGen || c.order != order {
		c.gen, c.kvGen, c.order, c.bodies = builtGen, kvGen, order, make(map[string][]byte)
	}
	// Store only what is current for the cache's keys (a concurrent change may have
	// moved them on; then the entry is simply not cached).
	if builtGen == s.table.Gen() && kvGen == s.kv.gen.Load() {
		c.bodies[topic] = body
	}
	c.mu.Unlock()
	return body
}

func (s *Server) getBrokerClusterInfo(_ *remoting.Conn, _ *remoting.Command) (*remoting.Command, error) {
	resp := ok()
	resp.Body = route.Marshal(s.table.ClusterInfo())
	return resp, nil
}

func (s *Server) wipeWritePerm(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	name, err := req.ExtRequired("brokerName")
	if err != nil {
		return nil, err
	}
	n := s.table.SetWritePerm(name, false)
	s.log.Info("namesrv: wiped write permission", "broker", name, "topics", n)
	resp := ok()
	resp.SetExt("wipeTopicCount", strconv.Itoa(n))
	return resp, nil
}

func (s *Server) addWritePerm(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	name, err := req.ExtRequired("brokerName")
	if err != nil {
		return nil, err
	}
	n := s.table.SetWritePerm(name, true)
	s.log.Info("namesrv: added write permission", "broker", name, "topics", n)
	resp := ok()
	resp.SetExt("addTopicCount", strconv.Itoa(n))
	return resp, nil
}

func topicListResponse(tl route.TopicList) *remoting.Command {
	if tl.TopicList == nil {
		tl.TopicList = []string{}
	}
	resp := ok()
	resp.Body = route.Marshal(tl)
	return resp
}

func (s *Server) getAllTopicList(_ *remoting.Conn, _ *remoting.Command) (*remoting.Command, error) {
	if !s.enableAllTopicList.Load() {
		return nil, errDisabled
	}
	return topicListResponse(route.TopicList{TopicList: s.table.Topics()}), nil
}

func (s *Server) getTopicsByCluster(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	if !s.enableTopicList.Load() {
		return nil, errDisabled
	}
	cluster, err := req.ExtRequired("cluster")
	if err != nil {
		return nil, err
	}
	return topicListResponse(route.TopicList{TopicList: s.table.TopicsByCluster(cluster)}), nil
}

// unitTopics answers one of the unit-topic list codes (311-313): the topics whose system
// flag matches, gated by enableTopicList as in Apache's DefaultRequestProcessor. Rocketry
// never sets the unit flags itself; topics registered with them (by an Apache-compatible
// broker or topic config) are listed.
func (s *Server) unitTopics(match func(int32) bool) handlerFunc {
	return func(_ *remoting.Conn, _ *remoting.Command) (*remoting.Command, error) {
		if !s.enableTopicList.Load() {
			return nil, errDisabled
		}
		return topicListResponse(route.TopicList{TopicList: s.table.TopicsWithSysFlag(match)}), nil
	}
}

func (s *Server) getSystemTopicList(_ *remoting.Conn, _ *remoting.Command) (*remoting.Command, error) {
	return topicListResponse(s.table.SystemTopics()), nil
}

func (s *Server) deleteTopic(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	topic, err := req.ExtRequired("topic")
	if err != nil {
		return nil, err
	}
	s.table.DeleteTopic(topic, req.ExtString("clusterName"))
	return ok(), nil
}

func (s *Server) registerTopic(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	topic, err := req.ExtRequired("topic")
	if err != nil {
		return nil, err
	}
	if len(req.Body) == 0 {
		return ok(), nil
	}
	r, err := route.DecodeTopicRouteData(req.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidArgument, err)
	}
	s.table.RegisterTopic(topic, r.QueueDatas)
	return ok(), nil
}

func (s *Server) getBrokerMemberGroup(_ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	f, err := requireExt(req, "clusterName", "brokerName")
	if err != nil {
		return nil, err
	}
	resp := ok()
	resp.Body = route.Marshal(route.GetBrokerMemberGroupResponseBody{BrokerMemberGroup: s.table.BrokerMembers(f[0], f[1])})
	return resp, nil
}

// ---- NameServer configuration (CVE-2023-33246 / CVE-2023-37582) ----

// updatableConfig is the allow-list of keys UPDATE_NAMESRV_CONFIG may change: boolean
// feature toggles only. Nothing that names a file, a directory, a command or a listener
// is ever updatable remotely; any other key is refused with NO_PERMISSION.
var updatableConfig = map[string]bool{
	"orderMessageEnable":             true,
	"returnOrderTopicConfigToBroker": true,
	"enableAllTopicList":             true,
	"enableTopicList":                true,
}

// blockedConfigWords mark keys RocketMQ itself blocks or that name paths or commands;
// they get RocketMQ's exact remark.
var blockedConfigWords = []string{"path", "home", "dir", "file", "command", "cmd", "shell", "exec", "blacklist", "black_list", "configstore"}

func (s *Server) runtimeFlags() map[string]*atomicBool {
	return map[string]*atomicBool{
		"orderMessageEnable":             &s.orderMessageEnable,
		"returnOrderTopicConfigToBroker": &s.returnOrderTopicConfig,
		"enableAllTopicList":             &s.enableAllTopicList,
		"enableTopicList":                &s.enableTopicList,
	}
}

func (s *Server) updateNamesrvConfig(c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	if len(req.Body) == 0 {
		return ok(), nil
	}
	props, err := parseProperties(req.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: string2Properties error: %v", errInvalidArgument, err)
	}
	// Validate everything first: the update is all or nothing.
	vals := make(map[string]bool, len(props))
	for _, k := range slices.Sorted(maps.Keys(props)) {
		lk := strings.ToLower(k)
		for _, w := range blockedConfigWords {
			if strings.Contains(lk, w) {
				s.log.Warn("namesrv: refused config update of a blocked key", "key", k, "remote", c.RemoteAddr())
				return nil, errConfigBlocked
			}
		}
		if !updatableConfig[k] {
			s.log.Warn("namesrv: refused config update of a key outside the allow-list", "key", k, "remote", c.RemoteAddr())
			return nil, withRemark(errConfigReadOnly, "Can not update config: "+k+" is not remotely updatable.")
		}
		b, err := strconv.ParseBool(props[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %s=%q is not a boolean", errInvalidArgument, k, props[k])
		}
		vals[k] = b
	}
	flags := s.runtimeFlags()
	for k, v := range vals {
		flags[k].Store(v)
	}
	s.log.Info("namesrv: config updated", "keys", slices.Sorted(maps.Keys(vals)), "remote", c.RemoteAddr())
	return ok(), nil
}

func (s *Server) getNamesrvConfig(_ *remoting.Conn, _ *remoting.Command) (*remoting.Command, error) {
	props := map[string]string{
		"listenPort":                        portOf(s.cfg.Listen),
		"scanNotActiveBrokerInterval":       strconv.FormatInt(s.cfg.ScanNotActiveBrokerInterval.Milliseconds(), 10),
		"brokerTimeoutMillis":               strconv.FormatInt(s.cfg.BrokerTimeout.Milliseconds(), 10),
		"kvConfigPath":                      s.cfg.KVConfigPath,
		"supportActingMaster":               strconv.FormatBool(s.cfg.SupportActingMaster),
		"deleteTopicWithBrokerRegistration": strconv.FormatBool(s.cfg.DeleteTopicWithBrokerRegistration),
		"serverChannelMaxIdleTimeSeconds":   strconv.FormatInt(int64(s.cfg.Remoting.IdleTimeout/time.Second), 10),
	}
	for k, f := range s.runtimeFlags() {
		props[k] = strconv.FormatBool(f.Load())
	}
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(props[k])
		sb.WriteByte('\n')
	}
	resp := ok()
	resp.Body = []byte(sb.String())
	return resp, nil
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// zoneName reads the broker's zone from RocketMQ's MixAll.ZONE_NAME ext field
// ("__ZONE_NAME"), or "zoneName".
func zoneName(req *remoting.Command) string {
	if z := req.ExtString("__ZONE_NAME"); z != "" {
		return z
	}
	return req.ExtString("zoneName")
}
