package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestOneComponentPerRecord (QA R10X-13): nested components are joined into one attribute,
// in JSON (which would otherwise repeat the key) and in text, and other attributes stay.
func TestOneComponentPerRecord(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, Config{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	l.With("component", "broker", "broker", "broker-a").With("component", "store").Info("hello", "k", "v")
	l.With("component", "standalone").Warn("stopped", "component", "proxy")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	for i, want := range []string{"broker/store", "standalone/proxy"} {
		if strings.Count(lines[i], `"component"`) != 1 {
			t.Fatalf("record %d repeats the component key: %s", i, lines[i])
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["component"] != want {
			t.Fatalf("record %d component %v, want %s: %s", i, rec["component"], want, lines[i])
		}
	}
	if !strings.Contains(lines[0], `"broker":"broker-a"`) || !strings.Contains(lines[0], `"k":"v"`) {
		t.Fatalf("other attributes lost: %s", lines[0])
	}
	buf.Reset()
	l, _ = New(&buf, Config{})
	l.With("component", "a").With("component", "b").Info("x")
	if got := buf.String(); strings.Count(got, "component=") != 1 || !strings.Contains(got, "component=a/b") {
		t.Fatalf("text record: %s", got)
	}
}
