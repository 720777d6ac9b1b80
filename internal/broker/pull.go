package broker

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/broker/sql92"
	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// PULL_MESSAGE sysFlag bits (RocketMQ PullSysFlag).
const (
	pullFlagCommitOffset = 1 << 0
	pullFlagSuspend      = 1 << 1
	pullFlagSubscription = 1 << 2
	pullFlagClassFilter  = 1 << 3
)

// Pull transfer limits per response (RocketMQ maxTransferCount/BytesOnMessageInMemory,
// raised for throughput; the client's maxMsgNums still applies).
const (
	pullMaxMsgs  = 1024
	pullMaxBytes = 1 << 20
)

// pollKey names a queue; qid -1 means "any queue of the topic".
type pollKey struct {
	topic string
	qid   int32
}

// pollTable parks long-polling requests per queue and wakes them when the store dispatches
// a message to that queue (store.OnDispatch). No polling loops: a waiter sleeps on its
// channel until a dispatch, its deadline, or broker shutdown.
type pollTable struct {
	n atomic.Int64 // registered waiters; lets onDispatch return without locking when zero

	mu     sync.Mutex
	m      map[pollKey]map[chan struct{}]struct{}
	closed bool
	done   chan struct{}
}

func newPollTable() *pollTable {
	return &pollTable{m: map[pollKey]map[chan struct{}]struct{}{}, done: make(chan struct{})}
}

// watch registers a waiter for (topic, qid); the returned channel is closed at the next
// dispatch to that queue (qid -1: to any queue of topic) or at shutdown. cancel must be
// called when the caller stops waiting.
func (p *pollTable) watch(topic string, qid int32) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	k := pollKey{topic, qid}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	set := p.m[k]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		p.m[k] = set
	}
	set[ch] = struct{}{}
	p.n.Add(1)
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		if set := p.m[k]; set != nil {
			if _, ok := set[ch]; ok {
				delete(set, ch)
				p.n.Add(-1)
				if len(set) == 0 {
					delete(p.m, k)
				}
			}
		}
		p.mu.Unlock()
	}
}

func (p *pollTable) wake(k pollKey) {
	set := p.m[k]
	if set == nil {
		return
	}
	for ch := range set {
		close(ch)
	}
	p.n.Add(-int64(len(set)))
	delete(p.m, k)
}

// onDispatch is installed with store.OnDispatch.
func (p *pollTable) onDispatch(ev store.DispatchEvent) {
	if p.n.Load() == 0 {
		return
	}
	p.mu.Lock()
	p.wake(pollKey{ev.Topic, ev.QueueID})
	p.wake(pollKey{ev.Topic, -1})
	p.mu.Unlock()
}

// closeAll wakes every waiter and refuses new ones (shutdown).
func (p *pollTable) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for k := range p.m {
		p.wake(k)
	}
	close(p.done)
}

// WatchQueue returns a channel closed when a message is next dispatched to (topic, qid)
// (qid -1: any queue of topic) or the broker shuts down, and a cancel func to call when the
// caller stops waiting. Long-polling features (pop) use it; register before re-checking the
// queue so no arrival is missed.
func (b *Broker) WatchQueue(topic string, qid int32) (<-chan struct{}, func()) {
	return b.polls.watch(topic, qid)
}

// TagFilter is a parsed subscription: a TAG expression ("*", "A || B"), or a SQL92 selector
// over the message's properties (sql non-nil: every tag hash passes, each record is checked).
type TagFilter struct {
	all   bool
	tags  map[string]struct{}
	codes map[int64]struct{}
	sql   *sql92.Expr
}

// subscriptionFilter parses a subscription of expression type typ: TAG (or ""), or SQL92
// when enablePropertyFilter is on. Refusals carry RocketMQ's codes: SYSTEM_ERROR "The broker
// does not support consumer to filter message by <type>", SUBSCRIPTION_PARSE_FAILED for a
// selector that does not parse.
func (b *Broker) subscriptionFilter(typ, expr string) (*TagFilter, error) {
	if typ == "" || strings.EqualFold(typ, "TAG") {
		return ParseTagExpression(expr), nil
	}
	if !strings.EqualFold(typ, "SQL92") || !b.live().EnablePropertyFilter {
		return nil, Coded(remoting.SystemError, "The broker does not support consumer to filter message by %s", typ)
	}
	e, err := sql92.Parse(expr)
	if err != nil {
		return nil, Coded(remoting.SubscriptionParseFailed, "parse the consumer's subscription[%s] failed: %v", expr, err)
	}
	return &TagFilter{sql: e}, nil
}

// ParseTagExpression parses a TAG expression; "" and "*" match everything.
func ParseTagExpression(expr string) *TagFilter {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return &TagFilter{all: true}
	}
	f := &TagFilter{tags: map[string]struct{}{}, codes: map[int64]struct{}{}}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			f.tags[t] = struct{}{}
			f.codes[message.TagsHashCode(t)] = struct{}{}
		}
	}
	if len(f.tags) == 0 {
		f.all = true
	}
	return f
}

// All reports whether the filter matches every message.
func (f *TagFilter) All() bool { return f == nil || f.all }

// MatchCode is the consume-queue level check (tag hash; SQL92 selectors pass every one).
func (f *TagFilter) MatchCode(code int64) bool {
	if f.All() || f.sql != nil {
		return true
	}
	_, ok := f.codes[code]
	return ok
}

// MatchTag is the exact check on the TAGS property (hash collisions).
func (f *TagFilter) MatchTag(tag string) bool {
	if f.All() {
		return true
	}
	_, ok := f.tags[tag]
	return ok
}

// MatchRecord checks the TAGS property of an encoded record without decoding it.
func (f *TagFilter) MatchRecord(rec []byte) bool {
	if f.All() {
		return true
	}
	var h message.RecordHeader
	if err := message.ParseRecordHeader(rec, &h); err != nil {
		return true // let the client decide; never drop what we cannot read
	}
	props := h.Props(rec)
	if f.sql != nil {
		return f.sql.Match(func(k string) (string, bool) {
			v, ok := message.LookupProperty(props, k)
			return string(v), ok
		})
	}
	tag, _ := message.LookupProperty(props, message.PropertyTags)
	return f.MatchTag(string(tag))
}

// InitialOffset is where a consumer group starts on a queue it has never committed: its
// committed offset when there is one; otherwise the queue's first message while that
// message is still retained and in memory (newGroupStartsAtZero), else the end of the
// queue. Pull (QUERY_CONSUMER_OFFSET) and pop share this rule.
func (b *Broker) InitialOffset(group, topic string, qid int32) int64 {
	if off, ok := b.Offsets.Query(group, topic, qid); ok {
		return off
	}
	if b.newGroupStartsAtZero(topic, qid) {
		return 0
	}
	return b.Store.MaxOffset(topic, qid)
}

// newGroupStartsAtZero is RocketMQ's rule for a group with no committed offset: start at
// the queue's offset 0 when it is still retained (min offset 0) and within the in-memory
// window (accessMessageInMemoryMaxRatio of RAM from the end of the commit log), so a new
// group on a small or young topic gets everything while one on a long-retained busy topic
// does not replay all of history. An empty queue also answers 0 (Apache answers "not
// found" and the client then asks for the max offset, which loses a message sent in
// between; 0 is the same start without that gap).
func (b *Broker) newGroupStartsAtZero(topic string, qid int32) bool {
	if b.Store.MinOffset(topic, qid) > 0 {
		return false
	}
	return b.Store.MaxOffset(topic, qid) == 0 || b.Store.InMemory(topic, qid, 0)
}

// pullRequest is a decoded PULL_MESSAGE header.
type pullRequest struct {
	group, topic string
	qid          int32
	offset       int64
	maxMsgs      int32
	sysFlag      int32
	commitOffset int64
	suspend      time.Duration
	subscription string
	exprType     string
}

func parsePullRequest(req *remoting.Command) (pullRequest, error) {
	var p pullRequest
	var err error
	if p.group, err = req.ExtRequired("consumerGroup"); err != nil {
		return p, err
	}
	if p.topic, err = req.ExtRequired("topic"); err != nil {
		return p, err
	}
	if p.qid, err = req.ExtInt32("queueId"); err != nil {
		return p, err
	}
	if p.offset, err = req.ExtInt64("queueOffset"); err != nil {
		return p, err
	}
	if p.maxMsgs, err = req.ExtInt32("maxMsgNums"); err != nil {
		return p, err
	}
	if p.sysFlag, err = req.ExtInt32("sysFlag"); err != nil {
		return p, err
	}
	p.commitOffset = req.ExtInt64Or("commitOffset", -1)
	p.suspend = time.Duration(req.ExtInt64Or("suspendTimeoutMillis", 0)) * time.Millisecond
	p.subscription = req.ExtString("subscription")
	p.exprType = req.ExtString("expressionType")
	return p, nil
}

func (b *Broker) handlePull(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	p, err := parsePullRequest(req)
	if err != nil {
		return errorResponse(err)
	}
	return b.servePull(ctx, p, remoteAddr(c))
}

// servePull serves one PULL_MESSAGE, long-polling when the suspend flag is set (RocketMQ
// PullMessageProcessor semantics).
func (b *Broker) servePull(ctx context.Context, p pullRequest, from string) *remoting.Command {
	gc, _, err := b.Groups.GetOrCreate(p.group)
	if err != nil {
		return respond(remoting.SubscriptionGroupNotExist, "subscription group [%s] does not exist, %s", p.group, faqTopicURL)
	}
	if !gc.ConsumeEnable {
		return respond(remoting.NoPermission, "subscription group no permission, %s", p.group)
	}
	tc, ok := b.Topics.peek(p.topic)
	if !ok {
		return respond(remoting.TopicNotExist, "topic[%s] not exist, apply first please! %s", p.topic, faqTopicURL)
	}
	if !b.brokerReadable() {
		return respond(remoting.NoPermission, "the broker[%s] pulling message is forbidden", b.addr)
	}
	if !tc.Readable() {
		return respond(remoting.NoPermission, "the topic[%s] pulling message is forbidden", p.topic)
	}
	if p.qid < 0 || p.qid >= tc.ReadQueueNums {
		return respond(remoting.SystemError, "queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d] consumer:[%s]",
			p.qid, p.topic, tc.ReadQueueNums, from)
	}
	var filter *TagFilter
	switch {
	case p.sysFlag&pullFlagSubscription != 0:
		f, err := b.subscriptionFilter(p.exprType, p.subscription)
		if err != nil {
			return errorResponse(err)
		}
		filter = f
	default:
		// A group whose consumeBroadcastEnable is off may not be consumed by a broadcasting
		// consumer (Apache's PullMessageProcessor, for pulls that rely on the registered
		// subscription, as go2's do; QA R11A-9).
		if !gc.ConsumeBroadcastEnable {
			if info, ok := b.Clients.ConsumerGroup(p.group); ok && info.MessageModel == ModelBroadcast {
				resp := respond(remoting.NoPermission, "the consumer group[%s] can not consume by broadcast way", p.group)
				resp.SetExt("forbiddenType", "4") // ForbiddenType.BROADCASTING_DISABLE_FORBIDDEN
				return resp
			}
		}
		if sd, ok := b.Clients.Subscription(p.group, p.topic); ok {
			// The subscription registered by the consumer's heartbeat (go2 pulls without
			// one): a SQL92 one is evaluated (enablePropertyFilter) or refused, never
			// applied as if its text were a tag list (QA F12).
			f, err := b.subscriptionFilter(sd.ExpressionType, sd.SubString)
			if err != nil {
				return errorResponse(err)
			}
			filter = f
		} else {
			// Neither in the request nor registered (a push consumer pulling before its
			// heartbeat reached a restarted broker): refused as Apache's PullMessageProcessor
			// does, so the client retries after its heartbeat. Serving it as "*" delivered
			// what a SQL92 selector excludes (QA R10W-1).
			if len(b.Clients.ConsumerIDs(p.group)) == 0 {
				return respond(remoting.SubscriptionNotExist, "the consumer's group info not exist")
			}
			return respond(remoting.SubscriptionNotExist, "the consumer's subscription not exist")
		}
	}
	if p.sysFlag&pullFlagCommitOffset != 0 && p.commitOffset >= 0 {
		b.Offsets.Commit(p.group, p.topic, p.qid, p.commitOffset)
	}

	maxMsgs := min(max(p.maxMsgs, 1), pullMaxMsgs)
	var deadline time.Time
	if p.sysFlag&pullFlagSuspend != 0 {
		wait := p.suspend
		if !b.live().LongPollingEnable {
			wait = b.live().ShortPollingTime
		}
		deadline = time.Now().Add(min(max(wait, 0), b.Cfg.MaxSuspendTime))
	}
	for {
		// Watch before reading so an arrival between the read and the wait is not missed.
		var wake <-chan struct{}
		var cancel func()
		if !deadline.IsZero() {
			wake, cancel = b.polls.watch(p.topic, p.qid)
		}
		resp, retry := b.pullOnce(p, maxMsgs, filter)
		if !retry || deadline.IsZero() {
			if cancel != nil {
				cancel()
			}
			return resp
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			cancel()
			return resp
		}
		t := time.NewTimer(remaining)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		case <-b.polls.done:
		}
		t.Stop()
		cancel()
		if ctx.Err() != nil || b.life.Err() != nil || isClosed(b.polls.done) || time.Now().After(deadline) {
			resp, _ = b.pullOnce(p, maxMsgs, filter)
			return resp
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// pullHeld counts pull responses whose store references are still held, i.e. handed to
// remoting and not yet written or dropped (process-wide; tests assert it drains to zero).
var pullHeld atomic.Int64

// adjacent reports whether b starts exactly where a ends inside one backing array (a
// capacity check keeps the merged slice within a's array, i.e. the same segment mapping).
func adjacent(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 || cap(a) < len(a)+len(b) {
		return false
	}
	return &a[:len(a)+1][len(a)] == &b[0]
}

// pullOnce reads from the store once. retry reports "nothing new yet" (PULL_NOT_FOUND at
// the end of the queue), the only result a suspended pull waits on.
func (b *Broker) pullOnce(p pullRequest, maxMsgs int32, filter *TagFilter) (*remoting.Command, bool) {
	var fn func(int64) bool
	if !filter.All() {
		fn = filter.MatchCode
	}
	res, err := b.Store.Get(p.topic, p.qid, p.offset, int(maxMsgs), pullMaxBytes, fn)
	if err != nil {
		return errorResponse(err), false
	}
	// held: the response's BodyParts point into res's segments, which stay mapped until the
	// remoting connection has written (or dropped) the frame and calls OnWritten.
	held := false
	defer func() {
		if !held {
			res.Release()
		}
	}()
	var code int32
	switch res.Status {
	case store.Found:
		code = remoting.Success
	case store.NoMessageInQueue:
		code = remoting.PullNotFound
		if p.offset != 0 {
			code = remoting.PullOffsetMoved
		}
	case store.NoMatchedMessage:
		code = remoting.PullRetryImmediately
	case store.OffsetFoundNull, store.OffsetOverflowOne:
		code = remoting.PullNotFound
	case store.OffsetOverflowBadly, store.OffsetTooSmall:
		code = remoting.PullOffsetMoved
	default:
		code = remoting.PullRetryImmediately
	}
	resp := remoting.NewResponse(code, "")
	if code == remoting.Success {
		// Zero copy: the body is the stored records themselves (slices of the mapped
		// commit-log segments), written with writev; adjacent records share one piece.
		parts := make([][]byte, 0, 4)
		got, n := 0, 0
		for _, r := range res.Records {
			if !filter.MatchRecord(r.Data) {
				continue
			}
			got++
			n += len(r.Data)
			if k := len(parts) - 1; k >= 0 && adjacent(parts[k], r.Data) {
				parts[k] = parts[k][:len(parts[k])+len(r.Data)]
			} else {
				parts = append(parts, r.Data)
			}
		}
		if got == 0 {
			resp.Code = remoting.PullRetryImmediately
		} else {
			resp.BodyParts = parts
			held = true
			pullHeld.Add(1)
			resp.OnWritten = func() {
				res.Release()
				pullHeld.Add(-1)
			}
			b.stats.delivered(p.group, p.topic, got)
			b.mnode.Out(p.topic, p.group).Add(got, n) // record bytes, headers included
		}
	}
	next := res.NextBeginOffset
	if code == remoting.PullNotFound && res.Status == store.OffsetOverflowOne {
		next = p.offset
	}
	resp.SetExtInt64("nextBeginOffset", next)
	resp.SetExtInt64("minOffset", res.MinOffset)
	resp.SetExtInt64("maxOffset", res.MaxOffset)
	resp.SetExtInt64("suggestWhichBrokerId", 0)
	// Only "nothing new yet" parks a suspended pull; OFFSET_FOUND_NULL answers at once with
	// the corrected offset.
	wait := res.Status == store.OffsetOverflowOne || res.Status == store.NoMessageInQueue && code == remoting.PullNotFound
	return resp, wait
}
