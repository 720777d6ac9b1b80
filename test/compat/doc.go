// Package compat is Rocketry's black-box compatibility suite: it builds bin/rocketry, starts
// real processes (`rocketry standalone`, and `rocketry namesrv` + `broker` + `proxy` in
// cluster mode) on free loopback ports with temporary data directories, and drives them the
// way a RocketMQ user's application would, with the official clients:
//
//   - the Go gRPC SDK github.com/apache/rocketmq-clients/golang/v5 (through the proxy, TLS);
//   - the remoting client github.com/apache/rocketmq-client-go/v2 (NameServer + Broker);
//   - the Node.js SDK rocketmq-client-nodejs@1.0.8 (plaintext gRPC, test/compat/node);
//   - the rocketry CLI (admin, produce, consume).
//
// Both official Go clients have data races inside the libraries themselves, so the scenarios
// are compiled only without -race (`//go:build !race`); `make test` runs such packages in its
// second, race-free pass. Failures found by the suite are recorded in docs/qa/findings.md.
package compat
