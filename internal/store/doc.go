// Package store is Rocketry's storage engine, RocketMQ's DefaultMessageStore re-thought in
// Go: one append-only commit log of all topics, per-queue consume queues built from it by a
// dispatcher, a key index, group-commit flushing, crash recovery and retention. Record bytes
// are RocketMQ's layout (package message), so a pull response is a run of stored records.
//
// Usage:
//
//	cfg := store.DefaultConfig()
//	cfg.StorePathRootDir = dir
//	s, err := store.Open(cfg, logger)
//	res, err := s.Put(ctx, &message.Ext{Message: message.Message{Topic: "T", Body: b}, QueueID: 0})
//	_ = s.WaitDispatched(ctx, res.CommitLogOffset+int64(res.Size))
//	got, _ := s.Get("T", 0, 0, 32, 256<<10, nil)
//	defer got.Release()
//	err = s.Close()
//
// Files under StorePathRootDir: commitlog/<20-digit start offset> (segments),
// consumequeue/<topic>/<queueId>/<20-digit byte offset>, index/<20-digit sequence>, lock
// (flock, held while open), abort (present while open; its presence at Open means a crash),
// checkpoint (flushed and dispatched offsets, CRC-protected, replaced atomically).
//
// # Goroutines (all owned by Store, stopped by Close)
//
//   - flusher: the only caller of fdatasync on segments. SYNC_FLUSH: runs a round whenever
//     a put asks; every put whose bytes were written before the round started is covered
//     by its single fdatasync (group commit). ASYNC_FLUSH: every FlushIntervalCommitLog.
//   - dispatcher: reads records between DispatchedOffset and the written end, writes
//     consume-queue and index entries, calls OnDispatch listeners, wakes WaitDispatched.
//   - checkpointer: every CheckpointInterval syncs consume queues and index, then writes the
//     checkpoint.
//   - cleaner: every CleanInterval measures disk usage (disk-full flag) and applies
//     retention.
//   - preparer (commitLog): creates and preallocates the next segment ahead of need.
//   - committer (ring mode: TransientStorePoolEnable with ASYNC_FLUSH, and always with
//     SYNC_FLUSH): writes the bytes staged in the ring to their segments with large WriteAt
//     calls and publishes them as written. In SYNC_FLUSH the flusher's round commits first.
//
// # Locks, outer to inner (no lock is held across an fdatasync except where noted)
//
//  1. Store.putMu — the single appender: queue-offset table, append position, segment
//     roll. Held across the copy of a record into its segment (not its fdatasync). Taken by Put,
//     PutBatch, DeleteTopic (which holds it while waiting for the dispatcher, then takes
//     queuesMu and keeps that while it removes the topic's queue files).
//  2. Store.roundMu — one flush round at a time (flushOnce, held across its fdatasync);
//     taken by the flusher and Close, never under putMu.
//  3. Store.commitMu — ring mode: serialises commits of the ring (committer, flusher,
//     a full ring under putMu, a read of a just-put offset). Never takes putMu.
//  4. commitLog.mu — the segment list (RWMutex). Taken under putMu when rolling; never
//     held while calling out.
//  5. Store.queuesMu — the topic -> queue map (RWMutex); never held while taking putMu.
//  6. consumeQueue.syncMu -> consumeQueue.mu — a queue's file list; syncMu serialises
//     fdatasync of queue files with their removal (held across that fdatasync).
//  7. index.mu — the index files; the dispatcher holds it while indexing one record,
//     QueryByKey while walking the hash chains.
//  8. Leaf locks: Store.flushMu, notifier.mu (Store.flushWake), Store.dispMu (broadcast
//     channel), Store.lisMu, vfs.Faulty.
//
// The flusher and the dispatcher never take putMu. Segment lifetime is reference counted:
// readers (Get results, the flusher, the dispatcher) acquire a segment, and retention's
// removal only drops the list's reference, so a mapping is never unmapped under a reader.
package store
