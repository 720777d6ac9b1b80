package proxy

import (
	"context"
	"sort"
	"strings"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/peer"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// peerAddr is the gRPC caller's address, "" when unknown.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// ConsumerInfo is one live gRPC consumer (simple or push) as the brokers list it in their
// consumer connections: RocketMQ's proxy registers every gRPC consumer with the brokers so
// that `admin group describe` (GET_CONSUMER_CONNECTION_LIST) shows it online, with its
// language and subscriptions.
type ConsumerInfo struct {
	ClientID      string
	Group         string
	Push          bool   // PUSH_CONSUMER (CONSUME_PASSIVELY); else SIMPLE_CONSUMER (CONSUME_ACTIVELY)
	Language      string // RocketMQ LanguageCode name: GO, JAVA, NODE_JS, ...
	Version       string // the SDK's version string from its user agent
	RemoteAddr    string // the client's address as the proxy sees it
	Subscriptions []ConsumerSubscription
}

// ConsumerSubscription is one filter expression of a consumer.
type ConsumerSubscription struct {
	Topic      string
	Expression string // "*" or "A||B" for tags, the statement for SQL92
	SQL        bool
}

// Parsed returns the subscription as RocketMQ's SubscriptionData holds it: the tags split on
// "||" with their Java hash codes (none for "*" and for SQL92) and the expression type.
func (s ConsumerSubscription) Parsed() (tags []string, codes []int64, expressionType string) {
	tags, codes = []string{}, []int64{}
	if s.SQL {
		return tags, codes, "SQL92"
	}
	if s.Expression != "*" {
		for _, tag := range strings.Split(s.Expression, "||") {
			if tag = strings.TrimSpace(tag); tag != "" {
				tags = append(tags, tag)
				codes = append(codes, message.TagsHashCode(tag))
			}
		}
	}
	return tags, codes, "TAG"
}

// VersionOrdinal is the RocketMQ version ordinal registered for the client: its SDK version
// ("5.1.2") when that names a RocketMQ release, else the proxy's own.
func (c ConsumerInfo) VersionOrdinal() int32 { return versionOrdinal(c.Version) }

func versionOrdinal(version string) int32 {
	if v, ok := remoting.VersionOrdinal(version); ok {
		return v
	}
	return remoting.Version
}

// ConsumeType is the RocketMQ consume type the proxy registers the consumer with (Java
// proxy ClientActivity): push consumers are passive, simple consumers active.
func (c ConsumerInfo) ConsumeType() string {
	if c.Push {
		return "CONSUME_PASSIVELY"
	}
	return "CONSUME_ACTIVELY"
}

// ProducerInfo is one online gRPC producer: its client id, the producer groups it registers
// under (for gRPC clients the topics it publishes to, as RocketMQ's proxy registers them),
// and its SDK, so the broker's producer lists and metrics name the application's client,
// not the proxy.
type ProducerInfo struct {
	ClientID   string
	Groups     []string // sorted
	Language   string   // RocketMQ LanguageCode name
	Version    string   // the SDK's version string from its user agent
	RemoteAddr string
}

// VersionOrdinal is the RocketMQ version ordinal registered for the producer (see
// ConsumerInfo.VersionOrdinal).
func (p ProducerInfo) VersionOrdinal() int32 { return versionOrdinal(p.Version) }

// ProducerRoster is implemented by the Server: the live gRPC producers, for backends that
// register clients with brokers in process.
type ProducerRoster interface {
	Producers() []ProducerInfo
}

// ConsumerRoster is implemented by the Server, which backends receive through
// SetTransactionChecker: a backend that registers clients with brokers reads the live
// consumers from it.
type ConsumerRoster interface {
	Consumers() []ConsumerInfo
}

// RosterWatcher is an optional Backend interface: the Server calls RosterChanged, which must
// not block, when a consumer registered, changed its subscriptions, or went away, so the
// backend can update the brokers at once instead of at its next periodic refresh.
type RosterWatcher interface {
	RosterChanged()
}

// languageCodes maps the gRPC user agent's language to RocketMQ's remoting LanguageCode
// names, which is what consumer connection lists carry; others are OTHER.
var languageCodes = map[pb.Language]string{
	pb.Language_JAVA: remoting.LanguageJava, pb.Language_CPP: remoting.LanguageCPP,
	pb.Language_DOT_NET: remoting.LanguageDotNet, pb.Language_GOLANG: remoting.LanguageGo,
	pb.Language_RUST: remoting.LanguageRust, pb.Language_PYTHON: remoting.LanguagePython,
	pb.Language_PHP: remoting.LanguagePHP, pb.Language_NODE_JS: remoting.LanguageNodeJS,
	pb.Language_RUBY: remoting.LanguageRuby,
}

func languageCode(l pb.Language) string {
	if n, ok := languageCodes[l]; ok {
		return n
	}
	return remoting.LanguageOther
}

// Consumers implements ConsumerRoster: the clients with consumer settings, by client id.
func (s *Server) Consumers() []ConsumerInfo { return s.clients.consumers() }

// Producers implements ProducerRoster: the producers with an open Telemetry stream (see
// consumerInfo for why the stream decides), by client id.
func (s *Server) Producers() []ProducerInfo { return s.clients.producers() }

// rosterChanged tells the backend, when it watches, that the consumer roster changed.
func (s *Server) rosterChanged() {
	if w, ok := s.backend.(RosterWatcher); ok {
		w.RosterChanged()
	}
}

// consumerInfo describes c when it is an online consumer with a group, else ok is false.
// Online means its Telemetry stream is open: every SDK keeps one open for its whole life
// (and reopens it after a network error), while go5 never sends NotifyClientTermination, so
// a closed stream is the first sign that a consumer shut down; waiting for the 120 s
// heartbeat expiry would list it for two more minutes. Caller holds r.mu.
func consumerInfo(c *client) (ConsumerInfo, bool) {
	if c.settings == nil || c.session == nil || c.group == "" || (c.typ != pb.ClientType_SIMPLE_CONSUMER && c.typ != pb.ClientType_PUSH_CONSUMER) {
		return ConsumerInfo{}, false
	}
	ua := c.settings.GetUserAgent()
	info := ConsumerInfo{ClientID: c.id, Group: c.group, Push: c.typ == pb.ClientType_PUSH_CONSUMER,
		Language: languageCode(ua.GetLanguage()), Version: ua.GetVersion(), RemoteAddr: c.addr}
	for _, fe := range c.settings.GetSubscription().GetSubscriptions() {
		sub := ConsumerSubscription{Topic: wrapNamespace(fe.GetTopic().GetResourceNamespace(), fe.GetTopic().GetName()), Expression: strings.TrimSpace(fe.GetExpression().GetExpression()),
			SQL: fe.GetExpression().GetType() == pb.FilterType_SQL}
		if sub.Expression == "" {
			sub.Expression = "*"
		}
		info.Subscriptions = append(info.Subscriptions, sub)
	}
	sort.Slice(info.Subscriptions, func(i, j int) bool { return info.Subscriptions[i].Topic < info.Subscriptions[j].Topic })
	return info, true
}

// consumers lists the registered consumers sorted by client id.
func (r *registry) consumers() []ConsumerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ConsumerInfo
	for _, c := range r.clients {
		if info, ok := consumerInfo(c); ok {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// producers lists the online producers sorted by client id.
func (r *registry) producers() []ProducerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ProducerInfo
	for _, c := range r.clients {
		if c.typ != pb.ClientType_PRODUCER || c.session == nil || c.settings == nil {
			continue
		}
		ua := c.settings.GetUserAgent()
		info := ProducerInfo{ClientID: c.id, Language: languageCode(ua.GetLanguage()), Version: ua.GetVersion(), RemoteAddr: c.addr}
		for t := range c.topics {
			info.Groups = append(info.Groups, t)
		}
		sort.Strings(info.Groups)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// sameConsumer reports whether a and b register identically with the brokers.
func sameConsumer(a, b ConsumerInfo) bool {
	if a.ClientID != b.ClientID || a.Group != b.Group || a.Push != b.Push || len(a.Subscriptions) != len(b.Subscriptions) {
		return false
	}
	for i := range a.Subscriptions {
		if a.Subscriptions[i] != b.Subscriptions[i] {
			return false
		}
	}
	return true
}
