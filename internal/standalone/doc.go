// Package standalone runs a whole Rocketry deployment in one process: a NameServer, a
// Broker, a Proxy (gRPC) and an HTTP listener (/healthz, /metrics, /debug/pprof/), sharing
// one metrics registry and one readiness set. It is the composition root behind
// `rocketry standalone`, internal/testcluster and the public embedded package.
//
// Usage sketch:
//
//	cfg := standalone.DefaultConfig()
//	cfg.DataDir = "./rocketry-data"
//	s, err := standalone.New(cfg, logger) // binds every listener; Addr methods work now
//	err = s.Run(ctx)                      // serves until ctx ends, then shuts down in order
//
// The Proxy calls the in-process Broker directly (local mode, internal/proxy/local); with
// Config.ProxyMode "cluster" it goes through remoting over loopback instead, as a separate
// `rocketry proxy` process would.
//
// Readiness: /healthz is 200 only when the NameServer serves, the Broker serves and has
// registered with it, and the Proxy accepts connections. Metrics: the NameServer, the
// Broker (broker.WithMetrics) and the Proxy (proxy.WithMetrics) share one registry. Shutdown order (SIGTERM): readiness cleared, Proxy
// stops accepting and drains, the proxy backend closes, the Broker unregisters, flushes and
// closes its store, the NameServer stops, the HTTP listener stops last.
//
// Goroutines: Run owns one goroutine per component and waits for all of them.
package standalone
