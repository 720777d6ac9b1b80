// Package timer implements timer (delay) messages: RocketMQ 5 timer messages
// (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS) and 4.x delay levels (DELAY), on one
// machine that survives restarts and crashes without losing or duplicating a timer.
//
// Flow: the broker's put hook calls Service.Intercept; a message that must wait is rewritten
// into a timer record (topic rmq_sys_wheel_timer, queue 0, REAL_TOPIC, REAL_QID, TIMER_OUT_MS)
// and stored like any message. The service ingests the timer queue in order, files each timer
// into an on-disk timer log chained per time bucket, pages the buckets close to "now" into an
// in-memory heap, and when a timer is due re-puts the original message to its real topic
// (Restore) through DeliverFunc (store.PutBatch: PutMessageDirect's path, batched). docs/timer.md has the design, the
// crash-consistency argument and the precision figures.
//
// Pieces:
//   - Intercept / Restore (message.go): pure message rewriting, RocketMQ's rules.
//   - wheel (wheel.go): the scheduling state machine; every method takes the time, so tests
//     drive it with a clock they control. Memory: entries due before now+Lookahead+SlotWidth,
//     plus one slot per future bucket.
//   - timerLog (timerlog.go): fixed 40-byte entries in segment files, per-bucket back chains.
//   - checkpoint (checkpoint.go): ingest offset, delivery cursor, out-of-order deliveries,
//     commit-log end, synced log end; written atomically.
//   - Service (service.go): the loop (ingest, page in, deliver, checkpoint, sleep on a
//     time.Timer set to the next due time or a Notify), and recovery (recover.go).
//
// Goroutines and locks: Service.Run's goroutine owns the wheel and the timer log and does the
// deliveries itself; a checkpoint's I/O (store Sync, log fsyncs, file write) runs on one extra
// goroutine at a time whose result the loop collects. Service.mu guards only the published
// Stats and the observer; it is a leaf lock.
//
// Usage sketch (what internal/broker/feature_timer.go does):
//
//	svc, err := timer.New(cfg, timer.StoreSource(st, segSize), putBatch, queueCount, logger)
//	// put hook: if taken, err := svc.Intercept(m, time.Now()); taken { store m; svc.Notify() }
//	// store dispatch of topic timer.Topic: svc.Notify()
//	go svc.Run(ctx) // returns after a final checkpoint when ctx is cancelled
//	defer svc.Close()
package timer
