// Package testcluster starts a whole Rocketry deployment (NameServer + Broker + Proxy, and
// optionally the HTTP listener) in-process on loopback ephemeral ports and a test temp dir,
// for integration tests:
//
//	c := testcluster.Start(t, testcluster.Options{})
//	// remoting clients: c.NameServerAddr(), c.BrokerAddr(); gRPC SDKs: c.GRPCEndpoint()
//
// Start fails the test when the cluster is not ready within 30 s and registers its shutdown
// with t.Cleanup. Restart stops the cluster (the SIGTERM path: flush, unregister) and starts
// it again on the same data dir. The cluster is internal/standalone with test-friendly
// defaults (16 MiB commit-log segments, logs discarded unless ROCKETRY_TEST_LOG=1).
package testcluster
