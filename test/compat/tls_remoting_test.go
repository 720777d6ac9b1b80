//go:build !race

package compat

import (
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestGo2TLSRemoting: the go2 `tls` examples (producer and push consumer with WithTls(true))
// talk TLS to the NameServer and the Broker. Like Apache (tls.server.mode=permissive by
// default) both remoting ports accept TLS and plaintext clients (QA R6E-1); plaintext
// clients of the same deployment keep working alongside.
func TestGo2TLSRemoting(t *testing.T) {
	t.Parallel()
	for _, dep := range []struct {
		name string
		get  func(*testing.T) *deployment
	}{{"standalone", standalone}, {"cluster", cluster}} {
		t.Run(dep.name, func(t *testing.T) {
			d := dep.get(t)
			topic := uniq("tls_remoting")
			createTopic(t, d, topic, "NORMAL", 2)
			tlsP := go2Producer(t, d.ns, producer.WithTls(true))
			plainP := go2Producer(t, d.ns)
			bodies := []string{"tls-1", "tls-2", "plain-1"}
			sendSync(t, tlsP, &primitive.Message{Topic: topic, Body: []byte(bodies[0])})
			sendSync(t, tlsP, &primitive.Message{Topic: topic, Body: []byte(bodies[1])})
			sendSync(t, plainP, &primitive.Message{Topic: topic, Body: []byte(bodies[2])})
			col := newCollector()
			go2Push(t, d.ns, uniq("tls_g"), topic, "*", col.handler, consumer.WithTls(true))
			waitUntil(40*time.Second, func() bool { return len(col.has(bodies)) == 0 })
			if missing := col.has(bodies); len(missing) > 0 {
				t.Fatalf("TLS push consumer did not receive %v", missing)
			}
		})
	}
}
