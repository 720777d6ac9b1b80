//go:build !race

package compat

// Process restarts with the go2 remoting client: committed offsets survive a clean restart,
// and with SYNC_FLUSH every acknowledged message survives kill -9.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// groupLag reads `rocketry admin group describe` and returns the group's total lag.
func groupLag(d *deployment, group string) (int64, error) {
	out, errOut, code := cli(20*time.Second, "admin", "-n", d.ns, "-o", "json", "group", "describe", "--name", group)
	if code != 0 {
		return -1, fmt.Errorf("group describe: exit %d: %s", code, strings.TrimSpace(errOut))
	}
	var desc struct {
		Lag int64 `json:"lag"`
	}
	if err := json.Unmarshal([]byte(out), &desc); err != nil {
		return -1, err
	}
	return desc.Lag, nil
}

// TestGo2OffsetsSurviveRestart: a push consumer consumes 20 messages (its offsets committed to
// the broker), the standalone is stopped with SIGTERM and restarted on the same data dir;
// the same group then gets exactly the 10 messages sent after the restart, none of the 20.
func TestGo2OffsetsSurviveRestart(t *testing.T) {
	t.Parallel()
	d, err := startStandalone("", nil)
	if d != nil {
		t.Cleanup(d.close)
	}
	if err != nil {
		t.Fatalf("rocketry standalone could not be started: %v", err)
	}
	topic, group := uniq("go2_restart"), uniq("go2_restart_g")
	createTopic(t, d, topic, "NORMAL", 4)
	p := go2Producer(t, d.ns)
	var before []string
	for i := 0; i < 20; i++ {
		b := fmt.Sprintf("before-%d", i)
		before = append(before, b)
		sendSync(t, p, primitive.NewMessage(topic, []byte(b)))
	}
	col := newCollector()
	stop := go2Push(t, d.ns, group, topic, "*", col.handler)
	waitUntil(30*time.Second, func() bool { return len(col.has(before)) == 0 })
	if m := col.has(before); len(m) > 0 {
		t.Fatalf("first run: %d of 20 not consumed: %v", len(m), m)
	}
	// The client commits offsets every 5 s; wait until the broker has them all.
	var lag int64
	if !waitUntil(20*time.Second, func() bool { lag, err = groupLag(d, group); return err == nil && lag == 0 }) {
		t.Fatalf("committed offsets never reached the broker: lag %d (%v)", lag, err)
	}
	stop()
	_ = p.Shutdown()

	if err := d.saProc.stop(20 * time.Second); err != nil {
		t.Errorf("standalone SIGTERM: %v (want exit status 0); log tail:\n%s", err, d.saProc.logTail(2000))
	}
	if err := d.restartStandalone(); err != nil {
		t.Fatalf("standalone restart on the same data dir: %v", err)
	}
	if lag, err = groupLag(d, group); err != nil || lag != 0 {
		t.Errorf("after restart: group lag %d (%v), want 0 (offsets lost?)", lag, err)
	}
	p2 := go2Producer(t, d.ns)
	var after []string
	for i := 0; i < 10; i++ {
		b := fmt.Sprintf("after-%d", i)
		after = append(after, b)
		sendSync(t, p2, primitive.NewMessage(topic, []byte(b)))
	}
	col2 := newCollector()
	go2Push(t, d.ns, group, topic, "*", col2.handler)
	waitUntil(40*time.Second, func() bool { return len(col2.has(after)) == 0 })
	if m := col2.has(after); len(m) > 0 {
		t.Errorf("after restart: %d of 10 new messages not consumed: %v", len(m), m)
	}
	col2.mu.Lock()
	defer col2.mu.Unlock()
	var redelivered []string
	for b := range col2.count {
		if strings.HasPrefix(b, "before-") {
			redelivered = append(redelivered, b)
		}
	}
	if len(redelivered) > 0 {
		t.Errorf("after restart: %d committed messages delivered again: %v", len(redelivered), redelivered)
	}
	var desc struct {
		Messages int64 `json:"messages"`
	}
	adminJSON(t, d, &desc, "topic", "describe", "--name", topic)
	if desc.Messages != 30 {
		t.Errorf("after restart: topic holds %d messages, want 30", desc.Messages)
	}
}

// TestGo2Kill9SyncFlush: a cluster broker with flushDiskType=SYNC_FLUSH (--config) is killed
// with SIGKILL while 4 producers send; after a restart on the same data dir every message
// whose send returned SEND_OK is consumable, and nothing unknown appears.
func TestGo2Kill9SyncFlush(t *testing.T) {
	t.Parallel()
	d, err := startCluster([]string{"flushDiskType=SYNC_FLUSH", "autoCreateTopicEnable=false"})
	if d != nil {
		t.Cleanup(d.close)
	}
	if err != nil {
		t.Fatalf("cluster (namesrv + SYNC_FLUSH broker + proxy) could not be started: %v", err)
	}
	topic, group := uniq("go2_kill"), uniq("go2_kill_g")
	createTopic(t, d, topic, "NORMAL", 8)
	p := go2Producer(t, d.ns)

	load := startGo2Load(t, p, topic, 4, 300)
	d.brProc.kill9()
	killedAt := load.acked()
	want, attempted := load.stop()
	_ = p.Shutdown()
	if err := d.startBroker(); err != nil {
		t.Fatalf("broker restart after kill -9: %v", err)
	}
	if log := d.brProc.logTail(1 << 16); !strings.Contains(log, `"abnormal":true`) {
		t.Logf("note: restart log does not report an abnormal recovery")
	}
	t.Logf("%d acknowledged when killed, %d acknowledged in all", killedAt, len(want))

	col := newCollector()
	go2Push(t, d.ns, group, topic, "*", col.handler, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitUntil(40*time.Second, func() bool { return len(col.has(want)) == 0 })
	if lost := col.has(want); len(lost) > 0 {
		if len(lost) > 20 {
			lost = lost[:20]
		}
		t.Errorf("SYNC_FLUSH + kill -9: %d acknowledged messages lost, e.g. %v", len(col.has(want)), lost)
	}
	col.mu.Lock()
	for b := range col.count {
		if !attempted[b] {
			t.Errorf("consumed %q which no producer sent", b)
		}
	}
	col.mu.Unlock()
	if err := d.brProc.stop(20 * time.Second); err != nil {
		t.Errorf("broker SIGTERM after recovery: %v (want exit status 0)", err)
	}
}

// go2Load is a background send load: workers go2 SendSync loops, each message body unique.
type go2Load struct {
	mu        sync.Mutex
	ackedSet  map[string]bool
	attempted map[string]bool
	done      chan struct{}
	wg        sync.WaitGroup
}

// startGo2Load starts workers senders to topic and returns once at least minAcked sends were
// acknowledged (the test fails if that takes more than 30 s).
func startGo2Load(t *testing.T, p rocketmq.Producer, topic string, workers, minAcked int) *go2Load {
	t.Helper()
	l := &go2Load{ackedSet: map[string]bool{}, attempted: map[string]bool{}, done: make(chan struct{})}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.done:
					return
				default:
				}
				b := fmt.Sprintf("w%d-%d", w, i)
				l.mu.Lock()
				l.attempted[b] = true
				l.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(b)))
				cancel()
				if err == nil && r.Status == primitive.SendOK {
					l.mu.Lock()
					l.ackedSet[b] = true
					l.mu.Unlock()
				}
			}
		}()
	}
	if !waitUntil(30*time.Second, func() bool { return l.acked() >= minAcked }) {
		l.stop()
		t.Fatalf("only %d sends acknowledged in 30 s", l.acked())
	}
	return l
}

func (l *go2Load) acked() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.ackedSet) }

// stop ends the senders and returns the acknowledged bodies and every body attempted.
func (l *go2Load) stop() (acked []string, attempted map[string]bool) {
	close(l.done)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for b := range l.ackedSet {
		acked = append(acked, b)
	}
	return acked, l.attempted
}
