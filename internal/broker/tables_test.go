package broker

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTopicTablePersistsAndReloads(t *testing.T) {
	dir := t.TempDir()
	changes := 0
	tt, err := loadTopicTable(dir, func([]string) { changes++ })
	if err != nil {
		t.Fatal(err)
	}
	tc := NewTopicConfig("T1", 4)
	tc.Attributes["message.type"] = "FIFO"
	if err := tt.Update(tc); err != nil {
		t.Fatal(err)
	}
	if _, created, err := tt.Ensure(NewTopicConfig("T1", 8)); err != nil || created {
		t.Fatalf("Ensure of existing topic: created=%v err=%v", created, err)
	}
	if _, created, err := tt.Ensure(NewTopicConfig("T2", 2)); err != nil || !created {
		t.Fatalf("Ensure of new topic: created=%v err=%v", created, err)
	}
	if existed, err := tt.Delete("T2"); err != nil || !existed {
		t.Fatalf("Delete: %v %v", existed, err)
	}
	if changes != 3 {
		t.Errorf("onChange called %d times, want 3", changes)
	}
	dv := tt.DataVersion()

	// RocketMQ's topics.json shape.
	raw, err := os.ReadFile(filepath.Join(dir, topicsFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TopicConfigTable map[string]map[string]any `json:"topicConfigTable"`
		DataVersion      map[string]any            `json:"dataVersion"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if f.TopicConfigTable["T1"]["writeQueueNums"] != float64(4) || f.DataVersion["counter"] == nil {
		t.Fatalf("unexpected topics.json: %s", raw)
	}

	back, err := loadTopicTable(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := back.Get("T1")
	if !ok || got.ReadQueueNums != 4 || got.MessageType() != "FIFO" || got.Perm != PermRead|PermWrite {
		t.Fatalf("reloaded %+v %v", got, ok)
	}
	if _, ok := back.Get("T2"); ok {
		t.Fatal("deleted topic came back")
	}
	if back.DataVersion() != dv {
		t.Fatalf("data version %+v, want %+v", back.DataVersion(), dv)
	}
}

func TestTopicTableGetReturnsCopy(t *testing.T) {
	tt, err := loadTopicTable(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.Update(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	c, _ := tt.Get("T")
	c.Attributes["x"] = "y"
	if c2, _ := tt.Get("T"); c2.Attributes["x"] != "" {
		t.Fatal("Get exposed the table's attribute map")
	}
}

func TestParseTopicAttributes(t *testing.T) {
	got, err := ParseTopicAttributes(map[string]string{"a": "1"}, "+message.type=FIFO,-a,+b=2")
	if err != nil {
		t.Fatal(err)
	}
	if got["message.type"] != "FIFO" || got["b"] != "2" || got["a"] != "" || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"message.type=FIFO", "+noequals", "+message.type=WEIRD", "-"} {
		if _, err := ParseTopicAttributes(nil, bad); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestGroupTableAutoCreate(t *testing.T) {
	dir := t.TempDir()
	g, err := loadGroupTable(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.GetOrCreate("G"); !errors.Is(err, ErrGroupNotExist) {
		t.Fatalf("auto-create off: err %v", err)
	}
	g.SetAutoCreate(true)
	gc, created, err := g.GetOrCreate("G")
	if err != nil || !created || gc.RetryMaxTimes != 16 || gc.RetryQueueNums != 1 || !gc.ConsumeEnable || !gc.NotifyConsumerIdsChangedEnable {
		t.Fatalf("created %+v %v %v", gc, created, err)
	}
	gc.ConsumeMessageOrderly = true
	gc.RetryMaxTimes = 3
	if err := g.Update(gc); err != nil {
		t.Fatal(err)
	}
	back, err := loadGroupTable(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := back.Get("G")
	if !ok || !got.ConsumeMessageOrderly || got.RetryMaxTimes != 3 {
		t.Fatalf("reloaded %+v", got)
	}
}

func TestOffsetTablePersistFormat(t *testing.T) {
	dir := t.TempDir()
	o, err := loadOffsetTable(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.Commit("G", "T", 0, 12)
	o.Commit("G", "T", 1, 7)
	o.Commit("G", "T", 2, -1) // ignored
	if err := o.Persist(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, consumerOffFile))
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]map[string]map[string]int64
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if f["offsetTable"]["T@G"]["0"] != 12 || f["offsetTable"]["T@G"]["1"] != 7 || len(f["offsetTable"]["T@G"]) != 2 {
		t.Fatalf("consumerOffset.json = %s", raw)
	}
	back, err := loadOffsetTable(dir)
	if err != nil {
		t.Fatal(err)
	}
	if off, ok := back.Query("G", "T", 0); !ok || off != 12 {
		t.Fatalf("reloaded %d %v", off, ok)
	}
	if _, ok := back.Query("G", "T", 2); ok {
		t.Fatal("negative commit stored")
	}
	if got := back.TopicsOf("G"); len(got) != 1 || got[0] != "T" {
		t.Fatalf("TopicsOf %v", got)
	}
	back.DeleteGroup("G")
	if _, ok := back.Query("G", "T", 0); ok {
		t.Fatal("DeleteGroup kept offsets")
	}
}

func TestOffsetTableConcurrentCommitAndPersist(t *testing.T) {
	o, err := loadOffsetTable(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				o.Commit("G", "T", int32(w), int64(i))
				if i%50 == 0 {
					if err := o.Persist(); err != nil {
						t.Error(err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	if err := o.Persist(); err != nil {
		t.Fatal(err)
	}
	back, _ := loadOffsetTable(filepath.Dir(o.path))
	for w := int32(0); w < 4; w++ {
		if off, _ := back.Query("G", "T", w); off != 199 {
			t.Fatalf("queue %d persisted %d, want 199", w, off)
		}
	}
}

func TestQueueLocks(t *testing.T) {
	l := newQueueLocks(60 * time.Second)
	now := time.Now()
	mqs := []MessageQueue{{"T", "b", 0}, {"T", "b", 1}}
	if got := l.TryLock("G", "c1", mqs, now); len(got) != 2 {
		t.Fatalf("c1 locked %v", got)
	}
	if got := l.TryLock("G", "c2", mqs, now.Add(time.Second)); len(got) != 0 {
		t.Fatalf("c2 stole %v", got)
	}
	if got := l.TryLock("G2", "c2", mqs, now); len(got) != 2 {
		t.Fatalf("other group blocked: %v", got)
	}
	l.Unlock("G", "c1", mqs[:1])
	if got := l.TryLock("G", "c2", mqs, now.Add(2*time.Second)); len(got) != 1 || got[0].QueueID != 0 {
		t.Fatalf("c2 after unlock got %v", got)
	}
	// c1's lock on queue 1 expires after 60 s.
	if got := l.TryLock("G", "c2", mqs[1:], now.Add(61*time.Second)); len(got) != 1 {
		t.Fatalf("expired lock not taken over: %v", got)
	}
	if o := l.Owner("G", "T", 1, now.Add(61*time.Second)); o != "c2" {
		t.Fatalf("owner %q", o)
	}
}

func TestBrokerStatsRates(t *testing.T) {
	var s brokerStats
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	s.sample(now)
	for i := 1; i <= 20; i++ {
		s.put.Add(100)
		s.got.Add(50)
		s.sample(now.Add(time.Duration(i) * time.Second))
	}
	info := s.runtimeInfo()
	if info["putTps"] != "100.00 100.00" || info["getTransferedTps"] != "50.00 50.00" {
		t.Fatalf("rates %v", info)
	}
	if info["msgPutTotalTodayNow"] != "2000" || info["msgPutTotalTodayMorning"] != "0" {
		t.Fatalf("totals %v", info)
	}
}

// TestFeatureInitFailureStopsGoroutines: a failing feature init makes New fail after
// stopping goroutines earlier inits started and closing the store (no leak: goleak).
func TestFeatureInitFailureStopsGoroutines(t *testing.T) {
	saved := featureInits
	defer func() { featureInits = saved }()
	stopped := make(chan struct{})
	featureInits = append(append([]func(*Broker) error{}, saved...),
		func(b *Broker) error {
			b.Go(func() { <-b.Context().Done(); close(stopped) })
			return nil
		},
		func(*Broker) error { return errors.New("boom") })
	cfg := testConfig(t)
	if _, err := New(cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("New: %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("feature goroutine still running after New failed")
	}
	// The data directory is reusable (store lock released).
	featureInits = saved
	b, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEmptyMetadataFileFallsBackToBackup (QA R10Q-5): every write keeps the replaced version
// as .bak; a metadata file found empty (or corrupt) loads from it instead of starting empty.
func TestEmptyMetadataFileFallsBackToBackup(t *testing.T) {
	dir := t.TempDir()
	o, err := loadOffsetTable(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.Commit("G", "T", 0, 12)
	if err := o.Persist(); err != nil {
		t.Fatal(err)
	}
	o.Commit("G", "T", 0, 20)
	if err := o.Persist(); err != nil { // the 12 version becomes the backup
		t.Fatal(err)
	}
	path := filepath.Join(dir, consumerOffFile)
	for _, broken := range []string{"", "{\"offsetTable\": {"} {
		if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := loadOffsetTable(dir)
		if err != nil {
			t.Fatalf("%q: %v", broken, err)
		}
		if off, ok := back.Query("G", "T", 0); !ok || off != 12 {
			t.Fatalf("%q: offset %d %v, want 12 from the backup", broken, off, ok)
		}
	}
}
