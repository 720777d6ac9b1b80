package testcluster

import "go.uber.org/goleak"

// IgnoreSDK are goleak options for the goroutines the official Go SDK v5 leaves running after
// GracefulStop (its client manager's tickers and sleeping loops, their gRPC client
// connections, its log rotation and OpenCensus worker). Tests that use the SDK pass them to
// goleak.VerifyTestMain so that every other goroutine is still checked.
var IgnoreSDK = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/apache/rocketmq-clients/golang/v5/pkg/ticker.Tick.func1"),
	goleak.IgnoreAnyFunction("github.com/apache/rocketmq-clients/golang/v5.(*defaultClientManager).startUp.func1"),
	goleak.IgnoreAnyFunction("github.com/apache/rocketmq-clients/golang/v5.(*defaultClientManager).startUp.func2"),
	goleak.IgnoreAnyFunction("github.com/apache/rocketmq-clients/golang/v5.(*defaultClientManager).startUp.func3"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc.(*ccBalancerWrapper).watcher"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc.newClientStreamWithParams.func4"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/transport.(*http2Client).keepalive"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/transport.(*controlBuffer).get"),
	goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	goleak.IgnoreAnyFunction("github.com/natefinch/lumberjack.(*Logger).millRun"),
}
