package broker

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves goroutines behind. The official go2 client never stops
// some of its own goroutines (statistics tickers, push-consumer timers, all started through
// its primitive.WithRecover, go-cache's janitor, and the pulls a shut-down push (or pull)
// consumer left in flight); those are ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/primitive.WithRecover"),
		goleak.IgnoreTopFunction("github.com/patrickmn/go-cache.(*janitor).Run"),
		// pulls a shut-down go2 push consumer left in flight (they end at their 30 s timeout)
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).pullMessage"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*defaultPullConsumer).pullMessage"),
	)
}
