package pop

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// TestFIFOOrderWithFailure: 4 message groups x 50 messages on an orderly group, consumed by
// two concurrent consumers; the first delivery of message 10 of group 2 fails (not acked) and
// the first delivery of message 30 of group 3 is nacked (change invisible time to 0).
// Every message of a group must be processed strictly in order, the failed one again before
// anything behind it, and all 200 messages acked.
func TestFIFOOrderWithFailure(t *testing.T) {
	e := newEnv(t)
	const groups, perGroup = 4, 50
	e.topic("T", groups)
	e.group("G", GroupInfo{RetryMaxTimes: 16, Orderly: true})
	for i := range perGroup {
		for g := range groups {
			// The message group (__SHARDINGKEY) selects the queue.
			e.send("T", int32(g), fmt.Sprintf("%d", i), "", message.PropertyShardingKey, fmt.Sprintf("mg%d", g))
		}
	}
	var mu sync.Mutex
	expected := make([]int, groups)
	failed, nacked := false, false
	done := 0
	var violations []string
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				finished := done == groups*perGroup
				mu.Unlock()
				if finished {
					return
				}
				res, err := e.svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: -1, MaxMessages: 8,
					InvisibleTime: 2 * time.Second, PollTime: 500 * time.Millisecond})
				if err != nil {
					return
				}
				skip := map[int32]bool{}
				for _, m := range res.Messages {
					q := m.Ext.QueueID
					if skip[q] {
						continue // an orderly consumer stops a queue at its first failure
					}
					seq, _ := strconv.Atoi(string(m.Ext.Body))
					mu.Lock()
					if seq != expected[q] {
						violations = append(violations, fmt.Sprintf("queue %d: got %d, expected %d", q, seq, expected[q]))
					}
					if q == 2 && seq == 10 && !failed {
						failed = true
						mu.Unlock()
						skip[q] = true
						continue
					}
					if q == 2 && seq == 10 && m.Ext.ReconsumeTimes != 1 {
						violations = append(violations, fmt.Sprintf("redelivery reconsume=%d", m.Ext.ReconsumeTimes))
					}
					if q == 3 && seq == 30 && !nacked {
						// A second failure, reported at once: change invisible time to 0.
						nacked = true
						mu.Unlock()
						skip[q] = true
						if _, err := e.svc.ChangeInvisible(ctx, "G", "T", m.Handle, 0); err != nil {
							t.Errorf("nack: %v", err)
						}
						continue
					}
					if q == 3 && seq == 30 && m.Ext.ReconsumeTimes != 1 {
						violations = append(violations, fmt.Sprintf("nacked redelivery reconsume=%d", m.Ext.ReconsumeTimes))
					}
					expected[q]++
					done++
					mu.Unlock()
					if err := e.svc.Ack(ctx, "G", "T", m.Handle); err != nil {
						t.Errorf("ack: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(violations) > 0 {
		t.Fatalf("order violations: %v", violations)
	}
	if done != groups*perGroup || !failed || !nacked {
		t.Fatalf("done=%d failed=%v nacked=%v", done, failed, nacked)
	}
	for q := range int32(groups) {
		if o, _ := e.tables.Query("G", "T", q); o != perGroup {
			t.Fatalf("committed q%d = %d", q, o)
		}
	}
}

// TestConcurrentConsumersNoLossNoDup: 3 consumers pop and ack 600 messages on a normal group
// with an invisible time long enough that nothing revives: each message exactly once.
func TestConcurrentConsumersNoLossNoDup(t *testing.T) {
	e := newEnv(t)
	e.topic("T", 4)
	e.group("G", GroupInfo{RetryMaxTimes: 16})
	const n = 600
	var mu sync.Mutex
	seen := make(map[string]int)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				finished := len(seen) == n
				mu.Unlock()
				if finished {
					return
				}
				res, err := e.svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: -1, MaxMessages: 16,
					InvisibleTime: time.Minute, PollTime: 200 * time.Millisecond})
				if err != nil {
					return
				}
				var hs []string
				mu.Lock()
				for _, m := range res.Messages {
					seen[string(m.Ext.Body)]++
					hs = append(hs, m.Handle)
				}
				mu.Unlock()
				for i, err := range e.svc.BatchAck(ctx, "G", "T", hs) {
					if err != nil {
						t.Errorf("ack %d: %v", i, err)
					}
				}
			}
		}()
	}
	for i := range n {
		e.send("T", int32(i%4), fmt.Sprint(i), "")
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("saw %d distinct, want %d", len(seen), n)
	}
	for b, c := range seen {
		if c != 1 {
			t.Fatalf("%s delivered %d times", b, c)
		}
	}
}

// TestFIFOAttemptRetryServedAgain (R4X-5): an orderly queue blocked by in-flight messages
// hands them out again at once to a pop with the attempt id that received them (the client
// lost the answer and retried), with the same reconsume times and new handles; another
// attempt id stays blocked; the old handles are stale, the new ones ack.
func TestFIFOAttemptRetryServedAgain(t *testing.T) {
	e := newEnv(t)
	e.topic("T", 1)
	e.group("G", GroupInfo{RetryMaxTimes: 16, Orderly: true})
	for i := range 3 {
		e.send("T", 0, fmt.Sprint(i), "", message.PropertyShardingKey, "mg")
	}
	ctx := context.Background()
	pop := func(attempt string) PopResult {
		t.Helper()
		res, err := e.svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: 0, MaxMessages: 2,
			InvisibleTime: time.Minute, AttemptID: attempt})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := pop("A1")
	if len(first.Messages) != 2 {
		t.Fatalf("first pop: %d messages", len(first.Messages))
	}
	if res := pop("A2"); len(res.Messages) != 0 {
		t.Fatalf("another attempt got %d messages from a blocked FIFO queue", len(res.Messages))
	}
	again := pop("A1")
	if len(again.Messages) != 2 {
		t.Fatalf("retried attempt got %d messages, want the same 2", len(again.Messages))
	}
	for i, m := range again.Messages {
		f := first.Messages[i]
		if m.Ext.QueueOffset != f.Ext.QueueOffset || m.Ext.ReconsumeTimes != f.Ext.ReconsumeTimes || m.Handle == f.Handle {
			t.Fatalf("re-served %d: offset %d reconsume %d (first: %d, %d), same handle %v",
				i, m.Ext.QueueOffset, m.Ext.ReconsumeTimes, f.Ext.QueueOffset, f.Ext.ReconsumeTimes, m.Handle == f.Handle)
		}
	}
	if err := e.svc.Ack(ctx, "G", "T", first.Messages[0].Handle); err == nil {
		t.Fatal("an ack with a superseded handle succeeded")
	}
	for _, m := range again.Messages {
		if err := e.svc.Ack(ctx, "G", "T", m.Handle); err != nil {
			t.Fatal(err)
		}
	}
	if res := pop("A3"); len(res.Messages) != 1 || string(res.Messages[0].Ext.Body) != "2" {
		t.Fatalf("after the acks: %+v", res.Messages)
	}
}

// TestFIFOAttemptNotReservedAfterOthers: once the messages of an attempt were received by
// someone else (expired and redelivered without an attempt id), retrying the old attempt id
// does not take them away from the new holder.
func TestFIFOAttemptNotReservedAfterOthers(t *testing.T) {
	e := newEnv(t)
	e.topic("T", 1)
	e.group("G", GroupInfo{RetryMaxTimes: 16, Orderly: true})
	for i := range 2 {
		e.send("T", 0, fmt.Sprint(i), "", message.PropertyShardingKey, "mg")
	}
	ctx := context.Background()
	first, err := e.svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: 0, MaxMessages: 2, InvisibleTime: time.Second, AttemptID: "A1"})
	if err != nil || len(first.Messages) != 2 {
		t.Fatalf("first pop: %d, %v", len(first.Messages), err)
	}
	// B gets them after the invisible time (no attempt id).
	var b PopResult
	deadline := time.Now().Add(20 * time.Second)
	for len(b.Messages) == 0 && time.Now().Before(deadline) {
		b, err = e.svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: 0, MaxMessages: 2, InvisibleTime: time.Minute, PollTime: time.Second})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(b.Messages) != 2 {
		t.Fatalf("redelivery to B: %d messages", len(b.Messages))
	}
	if res, err := e.svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: 0, MaxMessages: 2, InvisibleTime: time.Minute, AttemptID: "A1"}); err != nil || len(res.Messages) != 0 {
		t.Fatalf("stale attempt A1 got %d messages held by B (%v)", len(res.Messages), err)
	}
	for _, m := range b.Messages {
		if err := e.svc.Ack(ctx, "G", "T", m.Handle); err != nil {
			t.Fatalf("B's ack: %v", err)
		}
	}
}
