// Package proxy is Rocketry's gRPC front door: it serves apache.rocketmq.v2.MessagingService
// (the official generated stubs of rocketmq-clients/golang/v5) to the official RocketMQ 5
// SDKs, authenticates and authorizes callers, and turns each RPC into calls on a Backend,
// which talks to the brokers.
//
// Layout:
//   - server.go     Server lifecycle (New, Run, Close), per-call metadata (client id, auth)
//   - listener.go   TLS and plaintext on one port (first-byte sniffing, handshake deadline)
//   - clients.go    client registry: settings per client id, telemetry sessions, expiry
//   - telemetry.go  Telemetry, Heartbeat, NotifyClientTermination, transaction check-backs
//   - route.go      QueryRoute, QueryAssignment, topic auto-creation
//   - send.go       SendMessage (validation in validate.go, queue selection)
//   - receive.go    ReceiveMessage (long polling within the caller's deadline)
//   - ack.go        AckMessage, ChangeInvisibleDuration, ForwardMessageToDeadLetterQueue
//   - txn.go        EndTransaction
//   - convert.go    stored message -> pb.Message
//   - handle.go     client-facing receipt-handle and transaction-id envelopes
//   - codes.go      the one table mapping internal/broker errors to apache.rocketmq.v2.Code
//   - backend.go    the Backend interface and its domain types
//
// Subpackages: auth (signatures, policies, ACL file), cluster (Backend over remoting to the
// brokers found through the NameServers), local (Backend over an in-process broker).
//
// Also here: renew.go (auto_renew receives), metrics.go (rocketmq_rpc_latency), properties.go
// (--config keys).
//
// Usage:
//
//	srv, err := proxy.New(proxy.DefaultConfig(), backend, logger)
//	if err != nil { ... }
//	go srv.Run(ctx) // returns when ctx is cancelled
//
// Errors: every business error is returned inside the response Status with gRPC OK; only a
// Telemetry stream that cannot be served ends with a gRPC error (INVALID_ARGUMENT /
// UNAUTHENTICATED), as the Java proxy does.
//
// Goroutines: Run owns the gRPC server, the client-expiry and auto-renew loops and the ACL
// reloader; each
// Telemetry stream has one reader goroutine ended with the stream; the listener owns its
// accept loop and per-connection classifiers. Close stops them all.
//
// Locks: registry.mu is a leaf lock never held across I/O; telemetry streams are written only
// by their handler goroutine (others enqueue without blocking).
package proxy
