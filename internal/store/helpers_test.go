package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir) // never returns
	}
	code := m.Run()
	if fuzzBase.dir != "" {
		os.RemoveAll(fuzzBase.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var testHost = netip.MustParseAddrPort("10.0.0.1:10911")

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.StorePathRootDir = dir
	cfg.MappedFileSizeCommitLog = 64 << 10
	cfg.MappedFileSizeConsumeQueue = 100 * cqEntrySize
	cfg.MaxMessageSize = 16 << 10
	cfg.MaxHashSlotNum = 64
	cfg.MaxIndexNum = 256
	cfg.StoreHost = testHost
	cfg.CleanInterval = time.Hour
	cfg.CheckpointInterval = time.Hour
	cfg.DiskUsage = func(string) (float64, error) { return 0.1, nil }
	if testTransientPool {
		cfg.TransientStorePoolEnable = true
		cfg.transientRingSize = 24 << 10 // smaller than a segment, larger than one record
	}
	return cfg
}

// testTransientPool runs every test that uses testConfig with the transient store pool
// (ring) enabled; the Makefile runs the package a second time with it set.
var testTransientPool = os.Getenv("ROCKETRY_STORE_TRANSIENT_POOL") == "1"

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func openT(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func newMsg(topic string, qid int32, i int, bodyLen int) *message.Ext {
	body := bytes.Repeat([]byte{byte('a' + i%26)}, bodyLen)
	copy(body, fmt.Sprintf("msg-%d-", i))
	m := &message.Ext{
		Message:       message.Message{Topic: topic, Body: body},
		QueueID:       qid,
		BornTimestamp: 1700000000000 + int64(i),
		BornHost:      netip.MustParseAddrPort("192.168.0.9:5555"),
	}
	m.SetProperty(message.PropertyTags, fmt.Sprintf("tag%d", i%3))
	m.SetProperty(message.PropertyKeys, fmt.Sprintf("k%d shared", i))
	m.SetProperty(message.PropertyUniqKey, message.NewUniqID())
	return m
}

func put(t testing.TB, s *Store, m *message.Ext) PutResult {
	t.Helper()
	res, err := s.Put(context.Background(), m)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return res
}

func waitDispatched(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitDispatched(ctx, s.Stats().MaxPhysicalOffset); err != nil {
		t.Fatalf("WaitDispatched: %v", err)
	}
}

// getAll reads a whole queue and returns decoded copies.
func getAll(t testing.TB, s *Store, topic string, qid int32) []*message.Ext {
	t.Helper()
	var out []*message.Ext
	off := s.MinOffset(topic, qid)
	for {
		r, err := s.Get(topic, qid, off, 32, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range r.Records {
			m, _, err := message.DecodeRecord(bytes.Clone(rec.Data), true)
			if err != nil {
				t.Fatalf("decode record at %d: %v", rec.CommitLogOffset, err)
			}
			out = append(out, m)
		}
		st, next := r.Status, r.NextBeginOffset
		r.Release()
		if st != Found && st != NoMatchedMessage {
			return out
		}
		off = next
	}
}

// closedStore writes n messages with bodies of bodyLen bytes to queue R/0 of a new store,
// closes it cleanly and returns its directory, config and the put results (for tests that
// then damage files on disk).
func closedStore(t *testing.T, n, bodyLen int) (string, Config, []PutResult) {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(dir)
	s := openT(t, cfg)
	res := make([]PutResult, 0, n)
	for i := 0; i < n; i++ {
		res = append(res, put(t, s, newMsg("R", 0, i, bodyLen)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, cfg, res
}
