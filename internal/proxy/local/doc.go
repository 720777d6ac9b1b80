// Package local is the proxy's Backend for local mode (standalone): the broker runs in the
// same process and the proxy calls its Go API directly, with no network hop and no
// NameServer. Semantics are those of docs/broker-proxy-protocol.md, because the broker's
// in-process entry points (SendMessage, PopService, SendBack, EndTransaction) are the ones its
// remoting handlers use.
//
// Usage:
//
//	be := local.New(brk, logger)       // brk is a *broker.Broker built by the caller
//	srv, err := proxy.New(cfg, be, logger)
//	go be.Run(ctx)                      // keeps producer sinks in sync for check-backs
//	go srv.Run(ctx)
//
// Transaction check-backs: every SyncInterval the backend registers itself with the broker's
// client manager as an in-process producer (a CheckSink) of every group the proxy reports in
// TransactionChecker.ProducerGroups (gRPC producer group = topic), and unregisters groups that
// disappeared. The broker then calls CheckTransaction, which hands the check to the proxy
// without blocking.
//
// Topic lookups: QueryRoute and TopicConfig answer from a per-topic cache tagged with the broker
// topic table's DataVersion (bumped on every create, update and delete) and rebuilt when the
// version moved, so every send sees the table as of its call without copying the topic's
// attributes; the returned values are shared and read-only.
//
// Goroutines: Run owns the sync loop. Locks: Backend.mu guards the registered set, leaf lock;
// the topic cache is a sync.Map (no lock of its own).
package local
