// Package bench is Rocketry's load generator and its official-SDK client glue, used by
// `rocketry bench produce|consume|e2e` and by `rocketry produce` / `rocketry consume`.
//
// The runner (Run) drives abstract Sender and Receiver values so it can be tested without a
// server; SDK (sdk.go) adapts the official Apache RocketMQ Go SDK v5
// (github.com/apache/rocketmq-clients/golang/v5) to them, talking gRPC to a Proxy.
//
// Measurements: every send and every end-to-end delivery is recorded in a lock-free
// log-linear histogram (Histogram: ~1.6 % relative error, microsecond resolution). Send
// latency is measured from the moment the SDK call starts; end-to-end latency from the
// send-start timestamp the producer writes into the first 8 bytes of each bench body to the
// moment the consumer receives it (same host clocks).
//
// Goroutines: Run owns its workers and the progress reporter and waits for all of them
// before returning.
//
// compare-nats.sh reproduces the NATS JetStream comparison recorded in BENCHMARKS.md.
package bench
