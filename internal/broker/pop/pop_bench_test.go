package pop

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/store"
)

// Pop+ack against plain pull (store.Get) over the same real store, 1 KiB messages, batches
// of 32, 4 queues. b.N is the number of messages consumed; run with a fixed count, e.g.
//
//	go test -run '^$' -bench 'Consume' -benchtime 50000x ./internal/broker/pop/
//
// PopAck_Sync makes every pop and every batch ack durable (fdatasync of the pop log, group
// committed) before answering, as the broker does; PopAck_NoSync shows the same path without
// the fsyncs; Pull is a store.Get loop copying the records as a pull response would.

const benchQueues = 4

func benchFill(b *testing.B) *storeEnv {
	b.Helper()
	e := newStoreEnv(b, "T", benchQueues)
	putN(b, e.st, "T", benchQueues, b.N, bytes.Repeat([]byte("x"), 1024), "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for q := range int32(benchQueues) {
		want := int64(b.N / benchQueues)
		if int(q) < b.N%benchQueues {
			want++
		}
		for e.st.MaxOffset("T", q) < want {
			if ctx.Err() != nil {
				b.Fatal("dispatch did not catch up")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return e
}

func benchPopAck(b *testing.B, sync bool) {
	e := benchFill(b)
	e.svc.wal.sync = sync
	b.SetBytes(1024)
	b.ResetTimer()
	rate := popAckPass(b, e, "G", b.N)
	b.StopTimer()
	b.ReportMetric(rate, "msgs/s")
}

// popAckPass pops (batches of 32, all queues) and batch-acks n messages for group; it
// returns messages per second.
func popAckPass(b *testing.B, e *storeEnv, group string, n int) float64 {
	ctx := context.Background()
	start := time.Now()
	got := 0
	for got < n {
		res, err := e.svc.Pop(ctx, PopRequest{Group: group, Topic: "T", QueueID: -1, MaxMessages: 32, InvisibleTime: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Messages) == 0 {
			b.Fatalf("ran dry at %d of %d", got, n)
		}
		hs := make([]string, len(res.Messages))
		for i, m := range res.Messages {
			hs[i] = m.Handle
		}
		for _, err := range e.svc.BatchAck(ctx, group, "T", hs) {
			if err != nil {
				b.Fatal(err)
			}
		}
		got += len(res.Messages)
	}
	return float64(got) / time.Since(start).Seconds()
}

// pullPass reads n messages with store.Get (batches of 32, round robin over the queues),
// copying them into a response-sized buffer; it returns messages per second.
func pullPass(b *testing.B, e *storeEnv, n int) float64 {
	var offs [benchQueues]int64
	start := time.Now()
	got := 0
	body := make([]byte, 0, 64<<10)
	for q := 0; got < n; q = (q + 1) % benchQueues {
		res, err := e.st.Get("T", int32(q), offs[q], 32, 256<<10, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Status == store.Found {
			body = body[:0]
			for _, r := range res.Records {
				body = append(body, r.Data...)
			}
			got += len(res.Records)
		}
		offs[q] = res.NextBeginOffset
		res.Release()
	}
	return float64(got) / time.Since(start).Seconds()
}

// BenchmarkConsume_Compare_1KiB_Batch32 consumes the same b.N messages three times in one
// run, back to back: plain pull, pop+ack without fsync (group "GN"), pop+ack durable (group
// "GS"), and reports each rate and the pop/pull ratios, so the noisy shared machine affects
// all three alike.
func BenchmarkConsume_Compare_1KiB_Batch32(b *testing.B) {
	e := benchFill(b)
	e.tables.groups["GN"] = GroupInfo{RetryMaxTimes: 16}
	e.tables.groups["GS"] = GroupInfo{RetryMaxTimes: 16}
	b.SetBytes(1024)
	b.ResetTimer()
	pull := pullPass(b, e, b.N)
	e.svc.wal.sync = false
	noSync := popAckPass(b, e, "GN", b.N)
	e.svc.wal.sync = true
	synced := popAckPass(b, e, "GS", b.N)
	b.StopTimer()
	b.ReportMetric(pull, "pull_msgs/s")
	b.ReportMetric(noSync, "popack_nosync_msgs/s")
	b.ReportMetric(synced, "popack_sync_msgs/s")
	b.ReportMetric(noSync/pull, "nosync/pull")
	b.ReportMetric(synced/pull, "sync/pull")
}

func BenchmarkConsume_PopAck_Sync_1KiB_Batch32(b *testing.B)   { benchPopAck(b, true) }
func BenchmarkConsume_PopAck_NoSync_1KiB_Batch32(b *testing.B) { benchPopAck(b, false) }

func BenchmarkConsume_Pull_1KiB_Batch32(b *testing.B) {
	e := benchFill(b)
	b.SetBytes(1024)
	b.ResetTimer()
	rate := pullPass(b, e, b.N)
	b.StopTimer()
	b.ReportMetric(rate, "msgs/s")
}

// BenchmarkConsume_PopAck_Sync_4Consumers_1KiB_Batch32: four concurrent consumers share the
// group-committed fdatasyncs of the pop log.
func BenchmarkConsume_PopAck_Sync_4Consumers_1KiB_Batch32(b *testing.B) {
	e := benchFill(b)
	ctx := context.Background()
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	var mu sync.Mutex
	got := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := got >= b.N
				mu.Unlock()
				if done {
					return
				}
				res, err := e.svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: -1, MaxMessages: 32, InvisibleTime: time.Minute})
				if err != nil {
					b.Error(err)
					return
				}
				hs := make([]string, len(res.Messages))
				for i, m := range res.Messages {
					hs[i] = m.Handle
				}
				e.svc.BatchAck(ctx, "G", "T", hs)
				mu.Lock()
				got += len(res.Messages)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(got)/time.Since(start).Seconds(), "msgs/s")
}
