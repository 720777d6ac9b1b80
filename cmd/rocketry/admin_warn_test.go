package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestWarnLogger: the admin client's warnings (partial results) reach stderr as one
// "rocketry: warning:" line each, quieter records do not (QA R12D-1).
func TestWarnLogger(t *testing.T) {
	var b bytes.Buffer
	l := warnLogger(&b)
	l.Info("ignored")
	l.Warn("group list: a broker did not answer; its part is missing", "broker", "broker-b")
	got := b.String()
	if strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "rocketry: warning: ") ||
		!strings.Contains(got, "broker=broker-b") || strings.Contains(got, "ignored") || strings.Contains(got, "time=") {
		t.Fatalf("warning output %q", got)
	}
}

// TestDeliveries: "1 delivery", not "1 deliveries" (QA R13I-4).
func TestDeliveries(t *testing.T) {
	if got := deliveries(1); got != "1 delivery" {
		t.Fatalf("deliveries(1) = %q", got)
	}
	if got := deliveries(17); got != "17 deliveries" {
		t.Fatalf("deliveries(17) = %q", got)
	}
}
