//go:build !race

package compat

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	npmOnce sync.Once
	npmErr  error
)

// nodeSDK makes sure test/compat/node/node_modules holds rocketmq-client-nodejs@1.0.8 (npm ci
// from the committed lock file when missing) and returns the directory.
func nodeSDK(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	npmOnce.Do(func() {
		if _, err := exec.LookPath("node"); err != nil {
			npmErr = err
			return
		}
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "rocketmq-client-nodejs", "package.json")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = &npmError{err: err, out: string(out)}
		}
	})
	if npmErr != nil {
		t.Fatalf("the Node.js SDK scenario needs node and npm (npm ci in %s): %v", dir, npmErr)
	}
	return dir
}

type npmError struct {
	err error
	out string
}

func (e *npmError) Error() string { return e.err.Error() + ": " + e.out }

// TestNodeSDK runs node/compat.js (official Node.js SDK, plaintext gRPC): normal messages with
// tag, keys and properties, and FIFO messages, sent, received and acked through the proxy.
func TestNodeSDK(t *testing.T) {
	t.Parallel()
	dir := nodeSDK(t)
	both(t, func(t *testing.T, d *deployment) {
		topic, fifo := uniq("node"), uniq("node_fifo")
		createTopic(t, d, topic, "NORMAL", 4)
		createTopic(t, d, fifo, "FIFO", 2)
		fifoGroup := uniq("node_fifo_g")
		createGroup(t, d, fifoGroup, true, 16)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "compat.js", d.grpc, topic, fifo, uniq("node_g"), fifoGroup)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node compat.js against %s (%s): %v\n%s", d.grpc, d.kind, err, out)
		}
		if !strings.Contains(string(out), `"ok":true`) {
			t.Fatalf("node compat.js: unexpected output %s", out)
		}
		t.Logf("node: %s", strings.TrimSpace(string(out)))
	})
}

// TestNodeSDKPushAndTransactions runs node/push.js: a PushConsumer (QueryAssignment, receive,
// ack, and a retry after ConsumeResult.FAILURE with delivery attempt 2), then a transactional
// producer (commit, rollback, orphan resolved by the checker) and a delay message.
func TestNodeSDKPushAndTransactions(t *testing.T) {
	t.Parallel()
	dir := nodeSDK(t)
	run := func(t *testing.T, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", append([]string{"push.js"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"ok":true`) {
			t.Fatalf("node push.js %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("node: %s", strings.TrimSpace(string(out)))
	}
	both(t, func(t *testing.T, d *deployment) {
		t.Run("push consumer", func(t *testing.T) {
			t.Parallel()
			topic := uniq("node_push")
			createTopic(t, d, topic, "NORMAL", 2)
			run(t, "push", d.grpc, topic, uniq("node_push_g"))
		})
		t.Run("transactions and delay", func(t *testing.T) {
			t.Parallel()
			tx, delay := uniq("node_tx"), uniq("node_delay")
			createTopic(t, d, tx, "TRANSACTION", 2)
			createTopic(t, d, delay, "DELAY", 2)
			run(t, "txdelay", d.grpc, tx, delay, uniq("node_txd_g"))
		})
	})
}

// TestNodeSDKRecall runs node/recall.js: Producer.recallMessage (RocketMQ 5.3.2's
// RecallMessage) cancels a delay message with the recall handle of its send receipt; the other
// delay message arrives; a bad handle is refused.
func TestNodeSDKRecall(t *testing.T) {
	t.Parallel()
	dir := nodeSDK(t)
	both(t, func(t *testing.T, d *deployment) {
		topic := uniq("node_recall")
		createTopic(t, d, topic, "DELAY", 2)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "recall.js", d.grpc, topic, uniq("node_recall_g"))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"ok":true`) {
			t.Fatalf("node recall.js against %s (%s): %v\n%s", d.grpc, d.kind, err, out)
		}
		t.Logf("node: %s", strings.TrimSpace(string(out)))
	})
}
