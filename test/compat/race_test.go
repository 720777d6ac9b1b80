//go:build race

package compat

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCompatSuiteWithoutRace runs this package's scenarios in a child `go test` built without
// the race detector: the official Go clients (go5 v5.1.2 and go2) race inside the libraries,
// so a -race build would report the clients' races, not Rocketry's. The child's verdict is
// this test's verdict; its output is shown on failure.
func TestCompatSuiteWithoutRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout", "8m", "-v", ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("child suite (no -race) ran in %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("compat suite failed (%v); child output:\n%s", err, summarize(out.String()))
	}
	t.Log(summarize(out.String()))
}

// summarize keeps the PASS/FAIL lines and every failure message of a `go test -v` output.
func summarize(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "=== RUN") || strings.HasPrefix(trim, "=== PAUSE") || strings.HasPrefix(trim, "=== CONT") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
