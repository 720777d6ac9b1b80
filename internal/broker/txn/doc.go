// Package txn implements RocketMQ transactional messages for the broker: half (prepared)
// messages, END_TRANSACTION commit/rollback, and the check-back service that asks producers
// about transactions left open.
//
// # Storage model
//
// Everything lives on the broker's commit log, so it recovers with it:
//   - a prepared message is stored as a half record in RMQ_SYS_TRANS_HALF_TOPIC queue 0 with its
//     real topic and queue kept in properties REAL_TOPIC / REAL_QID (ToHalf);
//   - commit re-puts the half record's content to the real topic (same UNIQ_KEY, transaction
//     bits of the sysflag set to commit, PREPARED_TX_OFFSET = the half's commit-log offset);
//   - every final outcome (commit, rollback, discard after too many checks) appends an op record
//     to RMQ_SYS_TRANS_OP_HALF_TOPIC queue 0 whose body is the half's queue offset (tag "d", as in
//     RocketMQ);
//   - a small checkpoint file (txn-checkpoint.json, written atomically) remembers how far both
//     queues were read, the half messages still open and their check counts, so a restart
//     does not rescan the whole history.
//
// The durable truth is "half records minus op records". The in-memory table (state) is a
// deterministic projection of that plus in-flight resolutions; it has no I/O and no clock of
// its own: the Service feeds it records and the time (Config.Clock), which is how the unit
// tests drive it.
//
// # Exactly once across a crash
//
// A commit appends the committed message first and the op record second. A crash between
// the two leaves the half open; after the restart every open half is "unverified" and, before
// it is checked back or committed again, the service looks the half's UNIQ_KEY up in the key
// index of the real topic: a committed copy carrying PREPARED_TX_OFFSET = the half's
// commit-log offset proves the commit happened, so the op is written and nothing is re-put.
// See docs/txn.md for the full argument.
//
// # Goroutines and locks
//
// Service.Run owns one goroutine (the scanner): it tails both queues, sends due check-backs
// through the CheckSender and writes the checkpoint. END_TRANSACTION handlers call
// Service.End concurrently. Service.mu guards the state table only; it is never held across a
// store call, a check-back send or a file write (it is a leaf lock under the store's locks).
//
// Usage sketch (the broker's feature_txn.go is the real wiring):
//
//	svc, err := txn.New(cfg, log, sender, logger)
//	err = svc.Recover(ctx)              // before serving END_TRANSACTION
//	go svc.Run(ctx)                     // check-back scanner
//	if txn.IsPrepared(m) { half := txn.ToHalf(m); /* put half without hooks */ }
//	res, err := svc.End(ctx, &txn.EndRequest{...})
package txn
