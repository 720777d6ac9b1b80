package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkInMessageCached is the send hot path: one sync.Map load plus atomic adds.
func BenchmarkInMessageCached(b *testing.B) {
	n := NewRegistry().Node(brokerA)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.In("orders", "NORMAL").Message(1024)
		}
	})
}

// BenchmarkInMessageHeld keeps the *In (no map lookup).
func BenchmarkInMessageHeld(b *testing.B) {
	in := NewRegistry().Node(brokerA).In("orders", "NORMAL")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in.Message(1024)
		}
	})
}

// BenchmarkWithLabelValues is the peer: resolving label children on every message.
func BenchmarkWithLabelValues(b *testing.B) {
	n := NewRegistry().Node(brokerA)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.messagesIn.WithLabelValues("orders", "NORMAL", "false").Inc()
			n.throughputIn.WithLabelValues("orders", "NORMAL", "false").Add(1024)
			n.messageSize.WithLabelValues("orders", "NORMAL").Observe(1024)
		}
	})
}

var _ prometheus.Collector = (*sourceCollector)(nil)
