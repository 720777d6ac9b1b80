// Package remoting implements RocketMQ's remoting protocol: the frame codec (JSON and
// binary "ROCKETMQ" headers), request and response codes, a server and a client.
//
// Frame: int32 length | int32 (serializeType<<24 | headerLen) | header | body, big-endian;
// length excludes itself. Flag bit 0 marks responses, bit 1 oneway requests; a response
// carries its request's opaque.
//
// Usage sketch:
//
//	srv := remoting.NewServer(remoting.ServerConfig{}, logger)
//	srv.Handle(remoting.GetRouteinfoByTopic, func(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
//		resp := remoting.NewResponse(remoting.Success, "")
//		resp.Body = routeJSON
//		return resp
//	})
//	go srv.ListenAndServe(":9876")
//	defer srv.Shutdown(ctx)
//
//	cli := remoting.NewClient(remoting.ClientConfig{}, logger)
//	resp, err := cli.Invoke(ctx, "127.0.0.1:9876", remoting.NewRequest(remoting.GetRouteinfoByTopic, map[string]string{"topic": "T"}, nil))
//
// Concurrency: every connection (Conn) owns one reader goroutine and one writer goroutine.
// The reader decodes frames, completes pending invocations by opaque and starts one
// goroutine per request, at most MaxInFlightPerConn at once (more are answered
// SYSTEM_BUSY). Writes: a sender that finds the socket idle writes inline; while a write
// is in progress other frames queue and the writing goroutine flushes them all with one
// writev (so body pieces, Command.BodyParts, are never copied); the reader never writes
// itself and hands its replies to the writer goroutine. Command.OnWritten is called
// exactly once per sent command, after its frame's write returned or when the frame is
// dropped (closed connection, failed write, encoding error, oneway request), with no lock
// held; from then on remoting holds no reference to Body/BodyParts, so zero-copy bodies
// (store segments) are released from it. A malformed frame closes only its
// connection, with one log line. Conn.writeMu is a leaf lock. Server.Shutdown drains
// handlers and flushes responses before closing connections; Client.Close fails pending
// calls. A client call that times out on a connection that received nothing since the
// request was sent closes that connection, so the next call re-dials.
//
// Limits (ServerConfig): 16 MiB frames, 120 s idle, 10 s to the first frame, 30 s per
// write, 4096 in-flight requests per connection, 10000 connections, 1000 per IP.
//
// Invariants: decoding never allocates more than the frame (plus the bounded header
// maps); frames larger than MaxFrameSize (16 MiB by default) are rejected before the
// body is read; encoded headers are deterministic (ext keys sorted).
package remoting
