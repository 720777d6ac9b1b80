package txn

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// memLog is an in-memory Log: a commit log of encoded records, per-queue offset lists and a
// key index, with failure injection. Records are encoded and decoded with the real codec so
// what the service reads back is exactly what a store would return.
type memLog struct {
	mu        sync.Mutex
	records   map[int64][]byte // commit-log offset -> record
	next      int64
	queues    map[string][]int64 // topic/qid -> commit-log offsets
	index     map[string][]int64 // topic#key -> commit-log offsets
	recovered int64
	host      netip.AddrPort

	// failPut, when set, is consulted before each put; a non-nil error fails it (nothing
	// appended unless appendAnyway).
	failPut      func(m *message.Ext) error
	appendAnyway bool
	writeFiles   int
}

func newMemLog() *memLog {
	return &memLog{records: map[int64][]byte{}, queues: map[string][]int64{}, index: map[string][]int64{},
		next: 0, host: netip.MustParseAddrPort("127.0.0.1:10911")}
}

func qkey(topic string, qid int32) string { return fmt.Sprintf("%s/%d", topic, qid) }

// restart simulates a broker restart: everything appended so far is "recovered".
func (l *memLog) restart() {
	l.mu.Lock()
	l.recovered = l.next
	l.failPut = nil
	l.mu.Unlock()
}

func (l *memLog) put(m *message.Ext) (Placement, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var injected error
	if l.failPut != nil {
		injected = l.failPut(m)
		if injected != nil && !l.appendAnyway {
			return Placement{}, injected
		}
	}
	c := *m
	c.StoreHost = l.host
	c.StoreTimestamp = nowForLog()
	c.CommitLogOffset = l.next
	q := qkey(m.Topic, m.QueueID)
	c.QueueOffset = int64(len(l.queues[q]))
	rec, err := message.AppendRecord(nil, &c)
	if err != nil {
		return Placement{}, err
	}
	l.records[l.next] = rec
	l.queues[q] = append(l.queues[q], l.next)
	for _, k := range append(c.Keys(), c.UniqKey()) {
		if k != "" {
			l.index[m.Topic+"#"+k] = append(l.index[m.Topic+"#"+k], l.next)
		}
	}
	p := Placement{CommitLogOffset: l.next, QueueOffset: c.QueueOffset}
	l.next += int64(len(rec))
	return p, injected
}

// nowForLog is the store timestamp memLog assigns (tests override through a clock).
var nowForLog = func() int64 { return time.Now().UnixMilli() }

func (l *memLog) PutDirect(_ context.Context, m *message.Ext) (Placement, error) { return l.put(m) }
func (l *memLog) PutCommitted(_ context.Context, m *message.Ext) (Placement, error) {
	return l.put(m)
}

var errNoRecord = fmt.Errorf("memlog: %w", ErrRecordGone)

func (l *memLog) ReadMessage(off int64) (*message.Ext, error) {
	l.mu.Lock()
	rec, ok := l.records[off]
	l.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %d", errNoRecord, off)
	}
	m, _, err := message.DecodeRecord(rec, true)
	return m, err
}

func (l *memLog) ScanQueue(topic string, qid int32, from int64, max int, fn func(int64, []byte)) (int64, error) {
	l.mu.Lock()
	offs := l.queues[qkey(topic, qid)]
	if from >= int64(len(offs)) {
		l.mu.Unlock()
		return from, nil
	}
	end := min(int64(len(offs)), from+int64(max))
	var recs [][]byte
	for _, o := range offs[from:end] {
		recs = append(recs, l.records[o])
	}
	l.mu.Unlock()
	for i, rec := range recs {
		if rec != nil { // removed by "retention"
			fn(from+int64(i), rec)
		}
	}
	return end, nil
}

func (l *memLog) QueryByKey(topic, key string, max int) ([]*message.Ext, error) {
	l.mu.Lock()
	offs := append([]int64(nil), l.index[topic+"#"+key]...)
	l.mu.Unlock()
	var out []*message.Ext
	for _, o := range offs {
		if len(out) == max {
			break
		}
		m, err := l.ReadMessage(o)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (l *memLog) RecoveredOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recovered
}

func (l *memLog) WriteFileAtomic(path string, data []byte) error {
	l.mu.Lock()
	l.writeFiles++
	l.mu.Unlock()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Clean(path))
}

// remove deletes the record at off (retention).
func (l *memLog) remove(off int64) {
	l.mu.Lock()
	delete(l.records, off)
	l.mu.Unlock()
}

// memBackend keeps one memLog per directory so a "restart" finds the same records.
func memBackend() backend {
	var mu sync.Mutex
	logs := map[string]*memLog{}
	return backend{name: "mem", open: func(t *testing.T, dir string) (Log, func()) {
		mu.Lock()
		defer mu.Unlock()
		l, ok := logs[dir]
		if !ok {
			l = newMemLog()
			logs[dir] = l
		} else {
			l.restart()
		}
		return l, func() {}
	}}
}
