package pop

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// storeEnv is a Service over the real message store (StoreReader) in a temp dir.
type storeEnv struct {
	st     *store.Store
	tables *memTables
	svc    *Service
	cancel context.CancelFunc
	done   chan struct{}
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.StorePathRootDir = t.TempDir()
	cfg.MappedFileSizeCommitLog = 64 << 20
	// fallocate: segment preparation must not compete with benchmarks for the CPU.
	cfg.PreallocMode = store.PreallocFallocate
	cfg.StoreHost = netip.MustParseAddrPort("127.0.0.1:10911")
	st, err := store.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newStoreEnv(t testing.TB, topic string, queues int32) *storeEnv {
	t.Helper()
	st := openStore(t)
	// Initial/min offsets come from the real store through the fake tables' Initial rule.
	tables := newMemTables(newMemStore())
	tables.topics[topic] = queues
	tables.groups["G"] = GroupInfo{RetryMaxTimes: 16}
	cfg := testConfig(t.TempDir())
	svc, err := New(cfg, Deps{Store: StoreReader{st}, Topics: tables, Groups: tables, Offsets: tables,
		DeadLetter: tables.deadLetter}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.OnDispatch(func(ev store.DispatchEvent) { svc.Notify(ev.Topic, ev.QueueID) })
	ctx, cancel := context.WithCancel(context.Background())
	e := &storeEnv{st: st, tables: tables, svc: svc, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(e.done); svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-e.done
		st.Close()
	})
	return e
}

func putN(t testing.TB, st *store.Store, topic string, queues int32, n int, body []byte, tag string) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		m := &message.Ext{Message: message.Message{Topic: topic, Body: body}, QueueID: int32(i) % queues,
			BornTimestamp: time.Now().UnixMilli(), BornHost: netip.MustParseAddrPort("127.0.0.1:5555")}
		m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
		if tag != "" {
			m.SetProperty(message.PropertyTags, tag)
		}
		if _, err := st.Put(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPopOverRealStore(t *testing.T) {
	e := newStoreEnv(t, "T", 2)
	ctx := context.Background()
	// Long poll woken by the store's dispatch notification.
	got := make(chan PopResult, 1)
	go func() {
		res, _ := e.svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: -1, MaxMessages: 32,
			InvisibleTime: time.Minute, PollTime: 5 * time.Second})
		got <- res
	}()
	waitFor(t, "pop parked", func() bool {
		e.svc.notify.mu.Lock()
		defer e.svc.notify.mu.Unlock()
		return len(e.svc.notify.waiters["T"]) > 0
	})
	putN(t, e.st, "T", 2, 1, []byte("first"), "A")
	res := <-got
	if len(res.Messages) != 1 || string(res.Messages[0].Ext.Body) != "first" {
		t.Fatalf("long poll got %v", bodies(res.Messages))
	}
	putN(t, e.st, "T", 2, 9, []byte("x"), "B")
	putN(t, e.st, "T", 2, 4, []byte("y"), "A")
	var all []Message
	waitFor(t, "all A messages", func() bool {
		r := e.pop(t, PopRequest{Group: "G", Topic: "T", QueueID: -1, MaxMessages: 32, InvisibleTime: time.Minute, FilterType: "TAG", FilterExpr: "A"})
		all = append(all, r.Messages...)
		return len(all) == 4
	})
	for _, m := range append(all, res.Messages...) {
		if m.Ext.Tags() != "A" {
			t.Fatalf("filter let through %q", m.Ext.Tags())
		}
		if err := e.svc.Ack(ctx, "G", "T", m.Handle); err != nil {
			t.Fatal(err)
		}
	}
	for q := range int32(2) {
		if o, _ := e.tables.Query("G", "T", q); o != e.st.MaxOffset("T", q) {
			t.Fatalf("q%d committed %d, max %d", q, o, e.st.MaxOffset("T", q))
		}
	}
}

func (e *storeEnv) pop(t testing.TB, req PopRequest) PopResult {
	t.Helper()
	res, err := e.svc.Pop(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func putOne(t testing.TB, st *store.Store, qid int32, body string) {
	t.Helper()
	m := &message.Ext{Message: message.Message{Topic: "T", Body: []byte(body)}, QueueID: qid,
		BornTimestamp: time.Now().UnixMilli(), BornHost: netip.MustParseAddrPort("127.0.0.1:5555")}
	m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
	if _, err := st.Put(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}
