package broker

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/remoting"
	"github.com/rocketry-mq/rocketry/internal/store"
	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// TestSendDiskFull: above the disk warning level puts are refused with SERVICE_NOT_AVAILABLE
// and RocketMQ's remark, while reads keep working (reliability.md 3.3, section 6 row 25).
func TestSendDiskFull(t *testing.T) {
	cfg := testConfig(t)
	var full atomic.Bool
	cfg.storeTweak = func(c *store.Config) {
		c.DiskUsage = func(string) (float64, error) {
			if full.Load() {
				return 0.95, nil
			}
			return 0.10, nil
		}
		c.CleanInterval = 50 * time.Millisecond
	}
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("T", 0, "before", nil)
	full.Store(true)
	waitFor(t, 10*time.Second, "disk-full flag", func() bool { return tb.Store.Stats().DiskFull })
	resp := tb.sendV2("T", 0, "refused", nil)
	if resp.Code != remoting.ServiceNotAvailable || !strings.Contains(resp.Remark, "disk is full") {
		t.Fatalf("code %d %q", resp.Code, resp.Remark)
	}
	if msgs := decodeBody(t, tb.pull("G", "T", 0, 0, 32, 0, 0, "*")); len(msgs) != 1 {
		t.Fatalf("reads stopped: %d", len(msgs))
	}
}

// TestSendFlushTimeoutIsASendResult: with SYNC_FLUSH a late fsync answers FLUSH_DISK_TIMEOUT
// (10) with the full send result (clients treat it as sent with a status).
func TestSendFlushTimeoutIsASendResult(t *testing.T) {
	cfg := testConfig(t)
	cfg.FlushDiskType = FlushSync
	cfg.SyncFlushTimeout = 100 * time.Millisecond
	faulty := vfs.NewFaulty(nil)
	cfg.storeTweak = func(c *store.Config) { c.FS = faulty }
	tb := startBroker(t, cfg)
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("T", 0, "fast", nil)
	faulty.SetRule(func(op vfs.Op, path string) error {
		if op == vfs.OpSync && strings.Contains(path, "commitlog") {
			time.Sleep(400 * time.Millisecond)
		}
		return nil
	})
	defer faulty.SetRule(nil)
	resp := tb.sendV2("T", 0, "slow", nil)
	if resp.Code != remoting.FlushDiskTimeout || resp.ExtString("msgId") == "" || resp.ExtString("queueOffset") != "1" {
		t.Fatalf("code %d %q ext %v", resp.Code, resp.Remark, resp.ExtFields)
	}
}

// TestSendIOErrorStopsWrites: a failed commit-log write makes the store unwritable;
// sends answer SERVICE_NOT_AVAILABLE and the broker keeps serving reads.
func TestSendIOErrorStopsWrites(t *testing.T) {
	cfg := testConfig(t)
	faulty := vfs.NewFaulty(nil)
	cfg.storeTweak = func(c *store.Config) { c.FS = faulty }
	health := metrics.NewHealth()
	tb := startBroker(t, cfg, WithMetrics(metrics.NewRegistry(), health))
	// After the injected EIO the store closes reporting an unclean shutdown.
	tb.closeErrOK = func(err error) bool { return errors.Is(err, store.ErrNotWritable) }
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	tb.mustSend("T", 0, "ok", nil)
	faulty.SetRule(func(op vfs.Op, path string) error {
		if (op == vfs.OpWrite || op == vfs.OpSync) && strings.Contains(path, "commitlog") {
			return errors.New("injected EIO")
		}
		return nil
	})
	defer faulty.SetRule(nil)
	var codes []int32
	for i := 0; i < 3; i++ {
		codes = append(codes, tb.sendV2("T", 0, "x", map[string]string{message.PropertyKeys: "k"}).Code)
	}
	if codes[len(codes)-1] != remoting.ServiceNotAvailable {
		t.Fatalf("codes after EIO %v", codes)
	}
	if r := tb.invoke(remoting.GetMaxOffset, map[string]string{"topic": "T", "queueId": "0"}, nil); r.Code != remoting.Success {
		t.Fatalf("reads failed: %d", r.Code)
	}
	// The store needs an operator now: /healthz says so (QA R8I-7).
	if ok, results := health.Check(); ok {
		t.Fatalf("ready with a failed store: %+v", results)
	}
}
