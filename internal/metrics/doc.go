// Package metrics is Rocketry's Prometheus wiring: one explicit registry per process, the
// metric catalogue with Apache RocketMQ 5 names (docs/metrics.md), readiness checks, and the
// HTTP mux that serves /healthz, /metrics and /debug/pprof/.
//
// Usage sketch (a composition root such as `rocketry standalone`):
//
//	reg := metrics.NewRegistry()
//	bm := reg.Node(metrics.NodeInfo{Cluster: "DefaultCluster", Type: metrics.NodeBroker, ID: "broker-a"})
//	// hot path (send handler): resolve once per topic, then only atomic adds
//	in := bm.In("orders", "NORMAL")
//	in.Message(len(body))
//	// gauges computed at scrape time by the component that owns the data
//	bm.OnConsumers(func(emit func(metrics.ConsumerStat)) { ... })
//	health := metrics.NewHealth()
//	ready := health.Flag("broker") // ready.Set() once serving
//	mux := metrics.NewMux(reg, health)
//	go metrics.Serve(ctx, ln, mux, log)
//
// Cost model: counters and histograms are pre-resolved label children (In, Out, RPC) cached
// in sync.Maps, so a hot path pays one map load plus atomic adds; gauges (lag, in-flight,
// storage size, connections) are never maintained incrementally: the owning component
// registers a callback that the registry calls on each scrape.
//
// Concurrency: every exported method is safe for concurrent use. Scrape callbacks run on the
// scraping goroutine; they must be fast, must not block on the network and must not call back
// into this package's registration methods.
package metrics
