// Package tlsmux serves TLS and plaintext clients on one TCP port, as Apache RocketMQ's
// permissive TLS mode does (tls.server.mode): each accepted connection is classified by its
// first byte, a TLS ClientHello gets a TLS server connection, anything else is passed on as
// is. The gRPC proxy and the remoting servers (NameServer, Broker) use it.
//
// Goroutines: a Listener runs one accept loop plus one short-lived classifier per pending
// connection (bounded by its handshake timeout); Close ends them all. SelfSigned and
// ServerConfig are pure functions.
package tlsmux
