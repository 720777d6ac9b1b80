// Package embedded runs a complete Rocketry cluster (NameServer, Broker and Proxy) inside a
// Go program, typically a test, on free loopback ports and a temporary directory: an
// Apache RocketMQ 5.x compatible server that the official SDKs connect to, with no JVM,
// container or network setup.
//
//	c, err := embedded.Start(ctx, embedded.Options{})
//	if err != nil { ... }
//	defer c.Close()
//	producer, err := rmq.NewProducer(&rmq.Config{Endpoint: c.GRPCEndpoint(), Credentials: &credentials.SessionCredentials{}})
//
// Topics and consumer groups are created on first use. GRPCEndpoint serves the gRPC
// protocol of the 5.x SDKs (TLS and plaintext on the same port); NameServerAddr and
// BrokerAddr serve the remoting protocol of 4.x clients and admin tools.
package embedded
