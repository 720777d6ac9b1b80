// Package namesrv is the NameServer: a registry of clusters, broker groups and topic
// routes that brokers register with and clients query, served over the remoting protocol.
// NameServers are stateless peers: several run side by side, brokers register with each.
//
// Pieces:
//   - Table: the route table (RocketMQ RouteInfoManager) as a plain, clock-free state
//     machine: Register, Unregister, Heartbeat, ScanExpired, ConnClosed, Route, ...
//   - Server: Config/New/Run/Close; remoting handlers for codes 100-106, 205, 206,
//     216, 217, 219, 224, 304, 318, 319, 322, 327, 901, 904; the expiry scanner; the
//     optional HTTP listener (/healthz, /metrics).
//   - client.go: what brokers call: RegisterBroker, RegisterBrokerAll, UnregisterBroker,
//     GetRouteInfo.
//   - route (sub-package): the JSON bodies, importable without this package.
//
// Liveness: a broker address expires when its last registration (or BROKER_HEARTBEAT /
// QUERY_DATA_VERSION) is older than its timeout (header heartbeatTimeoutMillis, else
// Config.BrokerTimeout, 120 s); the scanner runs every ScanNotActiveBrokerInterval (5 s)
// and closes the expired broker's connection. A closed connection unregisters the
// brokers registered over it at once.
//
// Security: UPDATE_NAMESRV_CONFIG changes only an allow-list of boolean toggles; anything
// naming a path, file, directory or command is refused with NO_PERMISSION
// (CVE-2023-33246, CVE-2023-37582). Nothing here executes commands.
//
// Usage sketch:
//
//	cfg := namesrv.DefaultConfig()
//	srv, err := namesrv.New(cfg, logger)
//	...
//	err = srv.Run(ctx) // returns after ctx is cancelled and shutdown finished
//
// Concurrency: Table.mu, the KV store's lock (it persists under it) and the route
// cache's lock are leaf locks, never nested. Encoded routes are cached until the table
// generation (bumped under Table.mu on every write), the KV generation or
// orderMessageEnable changes. Handlers run on remoting's per-request goroutines.
package namesrv
