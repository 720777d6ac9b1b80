// Package cluster is the proxy's Backend for cluster mode: routes come from the NameServers
// (cached, refreshed), everything else is RocketMQ remoting to the brokers, exactly as
// docs/broker-proxy-protocol.md fixes it.
//
// Usage:
//
//	be, err := cluster.New(cluster.Config{NamesrvAddrs: []string{"127.0.0.1:9876"}}, logger)
//	srv, err := proxy.New(proxyCfg, be, logger) // installs the transaction checker
//	go be.Run(ctx)                              // broker heartbeats (producer groups)
//	go srv.Run(ctx)
//
// Transaction check-backs: every HeartbeatInterval the backend sends HEART_BEAT to every known
// master broker, registering (under the proxy's client id) one producer group per topic that
// has a live gRPC producer (TransactionChecker.ProducerGroups). Brokers then send
// CHECK_TRANSACTION_STATE on that connection; the backend decodes the half message and hands it
// to the checker without blocking the connection.
//
// Caches: topic routes, topic configs and group configs are cached for CacheTTL; a failed
// refresh serves the stale entry (NameServer or broker briefly unreachable). Unknown topics are
// never cached, so topics created elsewhere appear at once.
//
// Goroutines: Run owns the heartbeat loop; the remoting client owns its connection
// goroutines; check-backs run on the remoting handler goroutine and hand off at once.
// Close releases the remoting client. Locks: Backend.mu is a leaf lock, never held across I/O.
package cluster
