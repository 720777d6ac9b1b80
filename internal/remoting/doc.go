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
// SYSTEM_BUSY). The writer coalesces all queued frames into one writev, so body pieces
// (Command.BodyParts) are never copied. A malformed frame closes only its connection,
// with one log line. Conn.writeMu is a leaf lock. Server.Shutdown drains handlers and
// flushes responses before closing connections; Client.Close fails pending calls.
//
// Invariants: decoding never allocates more than the frame (plus the bounded header
// maps); frames larger than MaxFrameSize (16 MiB by default) are rejected before the
// body is read; encoded headers are deterministic (ext keys sorted).
package remoting
