// Package pop implements RocketMQ 5.x pop consumption on the broker: POP_MESSAGE hands out up
// to 32 messages that stay invisible to the group for an invisible time, ACK_MESSAGE /
// BATCH_ACK_MESSAGE finish them, CHANGE_MESSAGE_INVISIBLETIME postpones (or, with 0, nacks)
// them; a message not acked in time is delivered again with RECONSUMETIMES+1, and once the
// group's retryMaxTimes is spent it goes to %DLQ%<group>. Orderly (FIFO) groups get the
// messages of a queue strictly in order: nothing of a queue is handed out while an earlier
// message of it is in flight.
//
// Structure (see docs/pop.md):
//   - Machine: the deterministic state (per group/topic/queue: next offset, outstanding
//     deliveries with deadline, reconsume count and epoch; a revive heap). No I/O, no clock:
//     time is an argument, every change is a Record.
//   - the pop log (wal.go): Records appended with group-committed fdatasync, a snapshot file
//     every SnapshotInterval; recovery = snapshot + logs. Durable before answering.
//   - Service: the I/O shell the broker's remoting handlers and the local-mode proxy call
//     (Pop, Ack, BatchAck, ChangeInvisible, ResetOffset, Inflight), long polling woken by
//     Notify (store dispatch) and by revives, and Run, the revive/DLQ/snapshot loop.
//   - receipt handles (handle.go): opaque base64url, HMAC-SHA256 with a per-broker secret
//     persisted in the pop directory; bound to the consumer group.
//
// Usage sketch:
//
//	svc, err := pop.New(cfg, pop.Deps{Store: r, Topics: t, Groups: g, Offsets: o, DeadLetter: dl}, log)
//	go svc.Run(ctx)                       // revive loop; closes svc when ctx ends
//	store.OnDispatch(func(ev) { svc.Notify(ev.Topic, ev.QueueID) })
//	res, err := svc.Pop(ctx, pop.PopRequest{Group: "G", Topic: "T", QueueID: -1, MaxMessages: 32,
//		InvisibleTime: 30 * time.Second, PollTime: 15 * time.Second})
//	for _, m := range res.Messages { _ = svc.Ack(ctx, "G", "T", m.Handle) }
//
// Concurrency: every Service method is safe for concurrent use. Lock order (outer to inner):
// per-queue pop lock -> per-queue publish lock -> Service.mu -> pop log mu. Service.mu is
// held only around Machine calls and log appends, never across store reads, the broker's
// tables, DeadLetter or an fsync. Expire uses the retry budget each group had at its last pop
// (DefaultRetryMaxTimes for a group not popped since the start). The only goroutine is Run's, owned by its caller.
package pop
