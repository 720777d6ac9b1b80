package proxy

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/proto"
)

// sessionQueue bounds the commands waiting to be written on one telemetry stream; beyond it
// commands are dropped (a stuck client must not stall broker check-backs).
const sessionQueue = 64

// session is one open Telemetry stream. Only the stream's handler goroutine writes to the
// stream; others enqueue on out.
type session struct {
	out  chan *pb.TelemetryCommand
	done chan struct{} // closed when the handler returns
}

// offer enqueues cmd without blocking; false if the session is gone or its queue is full.
func (s *session) offer(cmd *pb.TelemetryCommand) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.out <- cmd:
		return true
	default:
		return false
	}
}

// client is what the proxy knows about one x-mq-client-id.
type client struct {
	id       string
	typ      pb.ClientType
	settings *pb.Settings // as last sent by the client
	topics   map[string]struct{}
	group    string
	addr     string // peer address of the last Settings
	owner    string // the authenticated user that sent the Settings ("" when auth is off)
	lastSeen time.Time
	session  *session // latest open telemetry stream, nil if none
}

// registry holds clients by id. Every method takes mu; nothing blocks under it.
type registry struct {
	mu      sync.Mutex
	clients map[string]*client
	now     func() time.Time
}

func newRegistry(now func() time.Time) *registry {
	return &registry{clients: map[string]*client{}, now: now}
}

// putSettings stores settings for id (sent from addr) and attaches the telemetry session.
// It reports whether the consumer roster changed: a new consumer, or one whose group or
// subscriptions differ from before.
func (r *registry) putSettings(id, owner, addr string, st *pb.Settings, sess *session) (rosterChanged bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[id]
	if c == nil {
		c = &client{id: id, topics: map[string]struct{}{}, owner: owner}
		r.clients[id] = c
	}
	before, wasConsumer := consumerInfo(c)
	defer func() {
		after, isConsumer := consumerInfo(c)
		rosterChanged = wasConsumer != isConsumer || (isConsumer && !sameConsumer(before, after))
	}()
	if addr != "" {
		c.addr = addr
	}
	c.settings = proto.Clone(st).(*pb.Settings)
	c.typ = st.GetClientType()
	for _, t := range st.GetPublishing().GetTopics() {
		c.topics[wrapNamespace(t.GetResourceNamespace(), t.GetName())] = struct{}{}
	}
	if g := st.GetSubscription().GetGroup(); g != nil {
		c.group = wrapNamespace(g.GetResourceNamespace(), g.GetName())
	}
	c.lastSeen = r.now()
	if sess != nil {
		c.session = sess
	}
	return false // set by the deferred comparison
}

// ownerOf returns the user that registered id; ok is false for an unknown client.
func (r *registry) ownerOf(id string) (owner string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.clients[id]; c != nil {
		return c.owner, true
	}
	return "", false
}

// touch refreshes id's liveness; false if the client is unknown (no settings).
func (r *registry) touch(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[id]
	if c == nil || c.settings == nil {
		return false
	}
	c.lastSeen = r.now()
	return true
}

// known reports whether id has stored settings (a live client).
func (r *registry) known(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[id]
	return c != nil && c.settings != nil
}

// addTopic records that producer id published to topic (for transaction check-backs).
func (r *registry) addTopic(id, topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.clients[id]; c != nil {
		c.topics[topic] = struct{}{}
	}
}

// settingsOf returns a copy of id's settings, nil if unknown.
func (r *registry) settingsOf(id string) *pb.Settings {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.clients[id]; c != nil && c.settings != nil {
		return proto.Clone(c.settings).(*pb.Settings)
	}
	return nil
}

// remove forgets id; ok is false if it was unknown, consumer true if it was a consumer.
func (r *registry) remove(id string) (ok, consumer bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[id]
	if ok {
		_, consumer = consumerInfo(c)
	}
	delete(r.clients, id)
	return ok, consumer
}

// detach clears sess from id if it is still the current one; consumer reports whether an
// online consumer thereby went offline.
func (r *registry) detach(id string, sess *session) (consumer bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.clients[id]; c != nil && c.session == sess {
		_, consumer = consumerInfo(c)
		c.session = nil
	}
	return consumer
}

// expire removes clients not seen for ttl and returns their ids; consumers reports whether
// any of them was a consumer.
func (r *registry) expire(ttl time.Duration) (gone []string, consumers bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cut := r.now().Add(-ttl)
	for id, c := range r.clients {
		if c.lastSeen.Before(cut) {
			if _, ok := consumerInfo(c); ok {
				consumers = true
			}
			delete(r.clients, id)
			gone = append(gone, id)
		}
	}
	return gone, consumers
}

// producerGroups lists topics with at least one producer holding an open session.
func (r *registry) producerGroups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := map[string]struct{}{}
	for _, c := range r.clients {
		if c.typ != pb.ClientType_PRODUCER || c.session == nil {
			continue
		}
		for t := range c.topics {
			set[t] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// producerSessions returns the open sessions of producers of topic, in random order.
func (r *registry) producerSessions(topic string) []producerSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []producerSession
	for _, c := range r.clients {
		if c.typ != pb.ClientType_PRODUCER || c.session == nil {
			continue
		}
		if _, ok := c.topics[topic]; ok {
			out = append(out, producerSession{c.session, c.owner, c.addr})
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// producerSession is a producer's open Telemetry stream with who registered it, from where.
type producerSession struct {
	*session
	owner, addr string
}

// count returns the number of known clients.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}
