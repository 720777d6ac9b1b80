package txn

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// fakeClock starts at the real time (stores stamp records with it) and only moves forward
// when a test advances it.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(time.Now().UnixMilli())
	return c
}
func (c *fakeClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// faultLog wraps a Log and fails selected puts.
type faultLog struct {
	Log
	mu     sync.Mutex
	failOp bool // PutDirect of op records fails
	// commitErr, when set, is returned by PutCommitted; appended says whether the commit
	// was appended anyway (an ambiguous failure).
	commitErr error
	appended  bool
}

var errInjected = errors.New("injected failure")

func (f *faultLog) PutDirect(ctx context.Context, m *message.Ext) (Placement, error) {
	f.mu.Lock()
	fail := f.failOp && m.Topic == OpTopic
	f.mu.Unlock()
	if fail {
		return Placement{}, errInjected
	}
	return f.Log.PutDirect(ctx, m)
}

func (f *faultLog) PutCommitted(ctx context.Context, m *message.Ext) (Placement, error) {
	f.mu.Lock()
	err, appended := f.commitErr, f.appended
	f.mu.Unlock()
	if err == nil {
		return f.Log.PutCommitted(ctx, m)
	}
	if appended {
		_, _ = f.Log.PutCommitted(ctx, m)
	}
	return Placement{}, err
}

// backend is one Log implementation under test: memLog, or the real store.
type backend struct {
	name string
	// open opens (or reopens after a restart) the log rooted at dir.
	open func(t *testing.T, dir string) (Log, func())
}

// env is one test's world: a log, a fake clock, a recording check sender, a service.
type env struct {
	t      *testing.T
	be     backend
	dir    string
	clock  *fakeClock
	fl     *faultLog
	closer func()
	svc    *Service
	cfg    Config

	mu     sync.Mutex
	checks []*Check
	noProd bool // the sender reports ErrNoProducer
}

func newEnv(t *testing.T, be backend, tune func(*Config)) *env {
	t.Helper()
	e := &env{t: t, be: be, dir: t.TempDir(), clock: newFakeClock()}
	cfg := DefaultConfig()
	cfg.Dir = e.dir + "/txn"
	cfg.CheckMax = 3
	cfg.Clock = e.clock.now
	if tune != nil {
		tune(&cfg)
	}
	e.cfg = cfg
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	l, closer := e.be.open(e.t, e.dir)
	e.fl = &faultLog{Log: l}
	e.closer = closer
	svc, err := New(e.cfg, e.fl, CheckSenderFunc(e.send), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := svc.Recover(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
	e.t.Cleanup(func() {
		if e.closer != nil {
			e.closer()
			e.closer = nil
		}
	})
}

// crash drops the service without a final checkpoint and reopens the log.
func (e *env) crash() {
	e.t.Helper()
	e.closer()
	e.closer = nil
	e.start()
}

func (e *env) send(_ context.Context, c *Check) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.noProd {
		return ErrNoProducer
	}
	e.checks = append(e.checks, c)
	return nil
}

func (e *env) takeChecks() []*Check {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.checks
	e.checks = nil
	return c
}

// prepared is a half message as the broker's put hook stores it.
type prepared struct {
	Placement
	uniq string
	body []byte
}

// sendHalf stores a prepared message for topic/qid of group, as the broker's PutHook does.
func (e *env) sendHalf(topic string, qid int32, group string, props map[string]string) prepared {
	e.t.Helper()
	m := &message.Ext{Message: message.Message{Topic: topic, Body: []byte("body-" + topic + "-" + strconv.Itoa(int(qid))), Properties: map[string]string{
		message.PropertyTransactionPrepared: "true",
		message.PropertyProducerGroup:       group,
		message.PropertyTags:                "TagA",
	}}, QueueID: qid, SysFlag: message.SysFlagTransactionPrepared, BornTimestamp: e.clock.now().UnixMilli()}
	for k, v := range props {
		m.SetProperty(k, v)
	}
	if !IsPrepared(m) {
		e.t.Fatal("test message not prepared")
	}
	p, err := e.fl.PutDirect(context.Background(), ToHalf(m))
	if err != nil {
		e.t.Fatal(err)
	}
	return prepared{Placement: p, uniq: m.UniqKey(), body: m.Body}
}

func (e *env) end(p prepared, group string, r Resolution, fromCheck bool) error {
	return e.svc.End(context.Background(), &EndRequest{
		ProducerGroup: group, TranStateTableOffset: p.QueueOffset, CommitLogOffset: p.CommitLogOffset,
		Resolution: r, FromCheck: fromCheck, MsgID: p.uniq, TransactionID: p.uniq,
	})
}

// scan runs one scanner round once the log's dispatch caught up with everything put.
func (e *env) scan() {
	e.t.Helper()
	settle(e.t, e.fl.Log)
	if err := e.svc.scanOnce(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// queue reads all messages of topic/qid once the log's dispatch has caught up.
func (e *env) queue(topic string, qid int32) []*message.Ext {
	e.t.Helper()
	settle(e.t, e.fl.Log)
	return readQueue(e.fl.Log, topic, qid)
}

// readQueue decodes every message of topic/qid (copies).
func readQueue(l Log, topic string, qid int32) []*message.Ext {
	var out []*message.Ext
	for from := int64(0); ; {
		next, err := l.ScanQueue(topic, qid, from, 256, func(qo int64, rec []byte) {
			m, _, err := message.DecodeRecord(append([]byte(nil), rec...), true)
			if err != nil {
				panic(err)
			}
			m.QueueOffset = qo
			out = append(out, m)
		})
		if err != nil {
			panic(err)
		}
		if next <= from {
			return out
		}
		from = next
	}
}

// settle waits until the log's dispatch has caught up (no-op for memLog).
var settle = func(t *testing.T, l Log) {}
