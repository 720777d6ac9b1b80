package pop

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestReviveTimelineSynctest runs the whole Service (revive loop, long polls, timers) in a
// synctest bubble with RocketMQ's default limits: invisible time 10s, retryMaxTimes 16. Fake
// time makes the 17 deliveries and the DLQ move take no wall time, and the timings exact.
func TestReviveTimelineSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		tables := newMemTables(st)
		cfg := DefaultConfig()
		cfg.Dir = t.TempDir()
		cfg.BrokerName = "broker-a"
		svc, err := New(cfg, Deps{Store: st, Topics: tables, Groups: tables, Offsets: tables, DeadLetter: tables.deadLetter}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); svc.Run(ctx) }()
		tables.topics["T"] = 1
		tables.groups["G"] = GroupInfo{RetryMaxTimes: 16}
		e := &env{t: t, st: st, tables: tables, svc: svc}
		e.send("T", 0, "x", "")

		start := time.Now()
		for attempt := range 17 {
			res, err := svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: 0, MaxMessages: 1,
				InvisibleTime: 10 * time.Second, PollTime: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Messages) != 1 || res.Messages[0].Ext.ReconsumeTimes != int32(attempt) {
				t.Fatalf("attempt %d: %d messages", attempt, len(res.Messages))
			}
			// Each redelivery comes exactly when the previous invisible time ends.
			if got, want := time.Since(start), time.Duration(attempt)*10*time.Second; got != want {
				t.Fatalf("attempt %d at %v, want %v", attempt, got, want)
			}
		}
		// The 17th delivery expires: the message goes to the DLQ instead of an 18th.
		res, err := svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: 0, MaxMessages: 1,
			InvisibleTime: 10 * time.Second, PollTime: 20 * time.Second})
		if err != nil || len(res.Messages) != 0 {
			t.Fatalf("18th delivery: %d messages, err %v", len(res.Messages), err)
		}
		synctest.Wait()
		if d := tables.dlqMessages(); len(d) != 1 || d[0].ReconsumeTimes != 17 {
			t.Fatalf("DLQ = %v", d)
		}
		if o, _ := tables.Query("G", "T", 0); o != 1 {
			t.Fatalf("committed = %d", o)
		}
		cancel()
		<-done
	})
}
