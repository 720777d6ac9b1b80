package cli

import (
	"strings"
	"testing"
	"time"
)

// TestProduceMessageTypesAndFilter: FIFO messages keep their message group and order, delay
// messages arrive after their delay, and a tag filter receives only matching messages.
func TestProduceMessageTypesAndFilter(t *testing.T) {
	s := startServer(t, "")
	ok(t, "", s.admin("topic", "create", "--name", "fifo-t", "--type", "FIFO", "--queues", "2")...)
	ok(t, "", s.admin("group", "create", "--name", "fifo-g", "--fifo")...)
	ok(t, "", s.admin("topic", "create", "--name", "delay-t", "--type", "DELAY", "--queues", "1")...)
	ok(t, "", s.admin("topic", "create", "--name", "tags-t", "--queues", "1")...)

	ok(t, "1\n2\n3\n4\n5\n", "produce", "--endpoint", s.grpc, "-t", "fifo-t", "--lines", "--message-group", "customer-7")
	got := jsonLines(t, ok(t, "", "consume", "--endpoint", s.grpc, "-t", "fifo-t", "-g", "fifo-g", "-n", "5", "--idle-timeout", "20s", "-o", "json"))
	var bodies []string
	for _, m := range got {
		if m["messageGroup"] != "customer-7" {
			t.Fatalf("message group lost: %v", m)
		}
		bodies = append(bodies, m["body"].(string))
	}
	if strings.Join(bodies, ",") != "1,2,3,4,5" {
		t.Fatalf("FIFO order %v", bodies)
	}

	sentAt := time.Now()
	ok(t, "", "produce", "--endpoint", s.grpc, "-t", "delay-t", "--body", "later", "--delay", "2s")
	got = jsonLines(t, ok(t, "", "consume", "--endpoint", s.grpc, "-t", "delay-t", "-g", "delay-g", "-n", "1", "--idle-timeout", "30s", "-o", "json"))
	if len(got) != 1 || got[0]["body"] != "later" {
		t.Fatalf("delay message %v", got)
	}
	if waited := time.Since(sentAt); waited < 1900*time.Millisecond {
		t.Fatalf("delay message delivered after %v, before its 2 s delay", waited)
	}

	ok(t, "", "produce", "--endpoint", s.grpc, "-t", "tags-t", "--body", "a-msg", "--tag", "A")
	ok(t, "", "produce", "--endpoint", s.grpc, "-t", "tags-t", "--body", "b-msg", "--tag", "B")
	ok(t, "", "produce", "--endpoint", s.grpc, "-t", "tags-t", "--body", "c-msg", "--tag", "C")
	out := ok(t, "", "consume", "--endpoint", s.grpc, "-t", "tags-t", "-g", "tags-g", "--filter", "A||C", "--idle-timeout", "4s", "--await", "1s")
	if !strings.Contains(out, "body=a-msg") || !strings.Contains(out, "body=c-msg") || strings.Contains(out, "b-msg") ||
		!strings.Contains(out, "tag=A") {
		t.Fatalf("filtered text output:\n%s", out)
	}
}
