package pop

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// memStore is an in-memory Reader: per (topic, queue) a slice of encoded records, with a
// movable minimum offset to simulate retention.
type memStore struct {
	mu     sync.Mutex
	queues map[string][][]memRec // topic -> queue -> records
	mins   map[string]int64      // topic/queue -> first retained offset
	phys   int64
	onPut  func(topic string, qid int32)
}

type memRec struct {
	data []byte
	tags int64
}

func newMemStore() *memStore {
	return &memStore{queues: make(map[string][][]memRec), mins: make(map[string]int64)}
}

func (s *memStore) ensure(topic string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queues[topic]) < n {
		s.queues[topic] = append(s.queues[topic], nil)
	}
}

// put stores m on (m.Topic, m.QueueID) and returns its queue offset.
func (s *memStore) put(m *message.Ext) int64 {
	s.mu.Lock()
	qs := s.queues[m.Topic]
	for int(m.QueueID) >= len(qs) {
		qs = append(qs, nil)
	}
	off := int64(len(qs[m.QueueID]))
	m.QueueOffset = off
	m.CommitLogOffset = s.phys
	m.StoreTimestamp = time.Now().UnixMilli()
	m.BornHost = netip.MustParseAddrPort("127.0.0.1:1234")
	m.StoreHost = netip.MustParseAddrPort("127.0.0.1:10911")
	if m.UniqKey() == "" {
		m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
	}
	rec, err := message.AppendRecord(nil, m)
	if err != nil {
		panic(err)
	}
	s.phys += int64(len(rec))
	qs[m.QueueID] = append(qs[m.QueueID], memRec{data: rec, tags: message.TagsHashCode(m.Tags())})
	s.queues[m.Topic] = qs
	hook := s.onPut
	s.mu.Unlock()
	if hook != nil {
		hook(m.Topic, m.QueueID)
	}
	return off
}

func (s *memStore) setMin(topic string, qid int32, min int64) {
	s.mu.Lock()
	s.mins[fmt.Sprintf("%s/%d", topic, qid)] = min
	s.mu.Unlock()
}

func (s *memStore) Read(topic string, qid int32, offset int64, max int, match func(int64) bool) (*ReadResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs := s.queues[topic]
	if int(qid) >= len(qs) {
		return &ReadResult{Next: offset}, nil
	}
	recs := qs[qid]
	end := int64(len(recs))
	min := s.mins[fmt.Sprintf("%s/%d", topic, qid)]
	if offset < min {
		return &ReadResult{Next: min, Max: end}, nil
	}
	if offset >= end {
		return &ReadResult{Next: end, Max: end}, nil
	}
	res := &ReadResult{Max: end}
	o := offset
	for ; o < end && len(res.Records) < max && o-offset < 100; o++ {
		if match != nil && !match(recs[o].tags) {
			continue
		}
		res.Records = append(res.Records, StoredRecord{Data: recs[o].data, QueueOffset: o, TagsCode: recs[o].tags})
	}
	res.Next = o
	return res, nil
}

func (s *memStore) minMax(topic string, qid int32) (int64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs := s.queues[topic]
	if int(qid) >= len(qs) {
		return 0, 0
	}
	return s.mins[fmt.Sprintf("%s/%d", topic, qid)], int64(len(qs[qid]))
}

// memTables fakes the broker's topic, group and offset tables and the DLQ put path.
type memTables struct {
	st      *memStore
	mu      sync.Mutex
	topics  map[string]int32
	groups  map[string]GroupInfo
	offsets map[QueueKey]int64
	resets  map[QueueKey]uint64 // admin reset generations
	dlq     []*message.Ext
	dlqErr  error
}

func newMemTables(st *memStore) *memTables {
	return &memTables{st: st, topics: make(map[string]int32), groups: make(map[string]GroupInfo), offsets: make(map[QueueKey]int64)}
}

func (t *memTables) ReadQueues(topic string) (int32, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.topics[topic]
	return n, ok
}

func (t *memTables) Group(name string) (GroupInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[name]
	return g, ok
}

func (t *memTables) Query(group, topic string, qid int32) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.offsets[QueueKey{group, topic, qid}]
	return o, ok
}

func (t *memTables) Commit(group, topic string, qid int32, off int64) {
	t.mu.Lock()
	t.offsets[QueueKey{group, topic, qid}] = off
	t.mu.Unlock()
}

// adminReset sets the committed offset as an admin reset does (the generation moves).
func (t *memTables) adminReset(group, topic string, qid int32, off int64) {
	t.mu.Lock()
	t.offsets[QueueKey{group, topic, qid}] = off
	if t.resets == nil {
		t.resets = map[QueueKey]uint64{}
	}
	t.resets[QueueKey{group, topic, qid}]++
	t.mu.Unlock()
}

func (t *memTables) ResetGeneration(group, topic string, qid int32) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.resets[QueueKey{group, topic, qid}]
}

// Initial: the first message while retained (here: always the min offset).
func (t *memTables) Initial(group, topic string, qid int32) int64 {
	min, _ := t.st.minMax(topic, qid)
	return min
}

func (t *memTables) deadLetter(ctx context.Context, m *message.Ext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dlqErr != nil {
		return t.dlqErr
	}
	t.dlq = append(t.dlq, m)
	return nil
}

func (t *memTables) dlqMessages() []*message.Ext {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*message.Ext(nil), t.dlq...)
}

// env is a Service over in-memory fakes with a real pop log in a temp dir.
type env struct {
	t      *testing.T
	dir    string
	st     *memStore
	tables *memTables
	cfg    Config
	svc    *Service
	cancel context.CancelFunc
	done   chan struct{}
}

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.BrokerName = "broker-a"
	cfg.MinInvisibleTime = 50 * time.Millisecond
	cfg.MaxPollTime = 5 * time.Second
	return cfg
}

func newEnv(t *testing.T) *env {
	st := newMemStore()
	e := &env{t: t, dir: t.TempDir(), st: st, tables: newMemTables(st)}
	e.cfg = testConfig(e.dir)
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	e.t.Helper()
	svc, err := New(e.cfg, Deps{Store: e.st, Topics: e.tables, Groups: e.tables, Offsets: e.tables,
		DeadLetter: e.tables.deadLetter}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
	e.st.onPut = func(topic string, qid int32) { svc.Notify(topic, qid) }
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		svc.Run(ctx)
	}()
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.cancel = nil
}

func (e *env) restart() {
	e.stop()
	e.start()
}

func (e *env) topic(name string, queues int32) {
	e.tables.mu.Lock()
	e.tables.topics[name] = queues
	e.tables.mu.Unlock()
	e.st.ensure(name, int(queues))
}

func (e *env) group(name string, g GroupInfo) {
	e.tables.mu.Lock()
	e.tables.groups[name] = g
	e.tables.mu.Unlock()
}

func (e *env) send(topic string, qid int32, body, tag string, props ...string) int64 {
	m := &message.Ext{Message: message.Message{Topic: topic, Body: []byte(body)}, QueueID: qid, BornTimestamp: time.Now().UnixMilli()}
	if tag != "" {
		m.SetProperty(message.PropertyTags, tag)
	}
	for i := 0; i+1 < len(props); i += 2 {
		m.SetProperty(props[i], props[i+1])
	}
	return e.st.put(m)
}

func (e *env) pop(req PopRequest) PopResult {
	e.t.Helper()
	if req.MaxMessages == 0 {
		req.MaxMessages = 32
	}
	if req.InvisibleTime == 0 {
		req.InvisibleTime = time.Minute
	}
	if req.QueueID == 0 && req.Topic == "" {
		req.QueueID = -1
	}
	res, err := e.svc.Pop(context.Background(), req)
	if err != nil {
		e.t.Fatalf("pop %+v: %v", req, err)
	}
	return res
}

func bodies(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Ext.Body))
	}
	return out
}
