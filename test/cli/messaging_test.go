package cli

import (
	"fmt"
	"strings"
	"testing"
)

func TestProduceConsumeRoundTripAndLag(t *testing.T) {
	s := startServer(t, "")
	ok(t, "", s.admin("topic", "create", "--name", "orders", "--queues", "2")...)
	ok(t, "", s.admin("group", "create", "--name", "billing")...)

	// one message from --body with tag, keys and a property
	sent := jsonLines(t, ok(t, "", "produce", "--endpoint", s.grpc, "-t", "orders", "--body", "hello", "--tag", "created",
		"-k", "order-1,order-x", "-p", "color=blue", "-o", "json"))
	if len(sent) != 1 || sent[0]["messageId"] == "" || sent[0]["topic"] != "orders" {
		t.Fatalf("produce output %v", sent)
	}
	// nine more from stdin, one per line
	var lines strings.Builder
	for i := 2; i <= 10; i++ {
		fmt.Fprintf(&lines, "line-%d\n", i)
	}
	if more := jsonLines(t, ok(t, lines.String(), "produce", "--endpoint", s.grpc, "-t", "orders", "--lines", "-k", "bulk", "-o", "json")); len(more) != 9 {
		t.Fatalf("--lines sent %d", len(more))
	}
	var td struct{ Messages int }
	eventually(t, "10 messages in the consume queues", func() error { // dispatch is asynchronous
		jsonOut(t, &td, s.admin("topic", "describe", "orders")...)
		if td.Messages != 10 {
			return fmt.Errorf("topic holds %d messages", td.Messages)
		}
		return nil
	})

	// consume 4 of 10 and acknowledge them
	got := jsonLines(t, ok(t, "", "consume", "--endpoint", s.grpc, "-t", "orders", "-g", "billing", "-n", "4", "--idle-timeout", "20s", "-o", "json"))
	if len(got) != 4 {
		t.Fatalf("consumed %d, want 4", len(got))
	}
	for _, m := range got {
		if m["body"] == "hello" && (m["tag"] != "created" || fmt.Sprint(m["keys"]) != "[order-1 order-x]" || m["properties"].(map[string]any)["color"] != "blue") {
			t.Fatalf("message fields lost: %v", m)
		}
		if m["deliveryAttempt"].(float64) != 1 {
			t.Fatalf("delivery attempt %v", m["deliveryAttempt"])
		}
	}

	// --count not reached before --idle-timeout: exit 1, the messages received still printed (R7H-17).
	r := run(t, "", "consume", "--endpoint", s.grpc, "-t", "orders", "-g", "counter", "-n", "50", "--idle-timeout", "3s", "--await", "1s", "-o", "json")
	if r.code != 1 || !strings.Contains(r.stderr, "of 50 messages") || strings.Count(r.stdout, "\n") != 10 {
		t.Fatalf("count not reached: %+v", r)
	}

	type queue struct {
		Topic                       string
		Lag, Inflight, BrokerOffset int
	}
	var gd struct {
		Lag, Inflight int
		Queues        []queue
	}
	eventually(t, "lag after consuming 4 of 10", func() error {
		jsonOut(t, &gd, s.admin("group", "describe", "billing")...)
		lag := 0
		for _, q := range gd.Queues {
			if q.Topic == "orders" {
				lag += q.Lag
			}
		}
		if lag != 6 || gd.Inflight != 0 {
			return fmt.Errorf("lag %d inflight %d (%+v), want 6 and 0", lag, gd.Inflight, gd.Queues)
		}
		return nil
	})

	// offline resets
	var resets []struct {
		Topic                string
		QueueID              int
		OldOffset, NewOffset int
	}
	jsonOut(t, &resets, s.admin("group", "reset-offset", "--name", "billing", "--topic", "orders", "--to-earliest")...)
	if len(resets) != 2 {
		t.Fatalf("reset touched %d queues: %+v", len(resets), resets)
	}
	eventually(t, "lag after reset to earliest", func() error {
		jsonOut(t, &gd, s.admin("group", "describe", "billing")...)
		if gd.Lag != 10 {
			return fmt.Errorf("lag %d, want 10", gd.Lag)
		}
		return nil
	})
	ok(t, "", s.admin("group", "reset-offset", "--name", "billing", "--topic", "orders", "--to-latest")...)
	eventually(t, "lag after reset to latest", func() error {
		jsonOut(t, &gd, s.admin("group", "describe", "billing")...)
		if gd.Lag != 0 {
			return fmt.Errorf("lag %d, want 0", gd.Lag)
		}
		return nil
	})

	// message lookup by key and by the id produce printed
	var byKey []struct {
		Body       string
		Tags       string
		Keys       []string
		Properties map[string]string
	}
	jsonOut(t, &byKey, s.admin("message", "get", "--topic", "orders", "--key", "order-1")...)
	if len(byKey) != 1 || byKey[0].Body != "hello" || byKey[0].Tags != "created" || byKey[0].Properties["color"] != "blue" {
		t.Fatalf("get by key %+v", byKey)
	}
	jsonOut(t, &byKey, s.admin("message", "get", "--topic", "orders", "--id", sent[0]["messageId"].(string))...)
	if len(byKey) != 1 || byKey[0].Body != "hello" {
		t.Fatalf("get by id %+v", byKey)
	}
	if out := ok(t, "", "admin", "-n", s.namesrv, "message", "get", "--topic", "orders", "--key", "order-1"); !strings.Contains(out, "hello") || !strings.Contains(out, "Property color:") {
		t.Fatalf("table output:\n%s", out)
	}
}

func TestBenchJSON(t *testing.T) {
	s := startServer(t, "")
	var res struct {
		Mode       string
		Sent       int
		SendErrors int `json:"send_errors"`
		Received   int
		SendRate   float64 `json:"send_msgs_per_s"`
		SendLat    struct {
			Count int
			P50   float64 `json:"p50_ms"`
			P99   float64 `json:"p99_ms"`
		} `json:"send_latency"`
		E2ELat struct{ Count int } `json:"e2e_latency"`
	}
	jsonOut(t, &res, "bench", "produce", "--endpoint", s.grpc, "-t", "b1", "-c", "4", "-n", "300", "-s", "256", "--json")
	if res.Mode != "produce" || res.Sent != 300 || res.SendErrors != 0 || res.SendLat.Count != 300 || res.SendRate <= 0 || res.SendLat.P99 < res.SendLat.P50 {
		t.Fatalf("bench produce %+v", res)
	}
	jsonOut(t, &res, "bench", "e2e", "--endpoint", s.grpc, "-t", "b2", "-g", "b2-g", "-c", "2", "-n", "200", "--json")
	if res.Mode != "e2e" || res.Sent != 200 || res.Received != 200 || res.E2ELat.Count != 200 {
		t.Fatalf("bench e2e %+v", res)
	}
	if out := ok(t, "", "bench", "produce", "--endpoint", s.grpc, "-t", "b1", "-n", "50", "--progress", "always"); !strings.Contains(out, "sent      50 messages") {
		t.Fatalf("text summary:\n%s", out)
	}
	// b1 now holds 350 messages: a consume run drains them.
	jsonOut(t, &res, "bench", "consume", "--endpoint", s.grpc, "-t", "b1", "-g", "b1-g", "-n", "350", "--json")
	if res.Mode != "consume" || res.Received != 350 || res.E2ELat.Count != 350 {
		t.Fatalf("bench consume %+v", res)
	}
}

func TestRestartKeepsMessagesAndOffsets(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	ok(t, "", s.admin("topic", "create", "--name", "durable", "--queues", "1")...)
	ok(t, "", "produce", "--endpoint", s.grpc, "-t", "durable", "--body", "kept", "-n", "5")
	ok(t, "", "consume", "--endpoint", s.grpc, "-t", "durable", "-g", "keeper", "-n", "2", "--idle-timeout", "20s")
	s.stop()

	s2 := startServer(t, dir)
	var td struct{ Messages int }
	jsonOut(t, &td, s2.admin("topic", "describe", "durable")...)
	if td.Messages != 5 {
		t.Fatalf("after restart: %d messages, want 5", td.Messages)
	}
	var gd struct{ Lag int }
	jsonOut(t, &gd, s2.admin("group", "describe", "keeper")...)
	if gd.Lag != 3 {
		t.Fatalf("after restart: lag %d, want 3", gd.Lag)
	}
}
