//go:build !race

package compat

// QA round 5 C (docs/qa/round5-C.md): regression tests for operations behaviour found to
// match Apache RocketMQ — a broker.conf written the way Java's Properties reads it (CRLF line
// ends, '!' and '#' comments, "key: value" and "key value" separators, '\' continuation
// lines, \uXXXX escapes, namesrvAddr listing two NameServers), and a second broker refused on
// a data directory that is already in use.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQA5CBrokerConfJavaPropertiesSyntax: a broker started from an Apache-style broker.conf
// registers with both NameServers of namesrvAddr and reports the values as Java's
// Properties.load would have parsed them.
func TestQA5CBrokerConfJavaPropertiesSyntax(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var ns [2]string
	for i := range ns {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		ns[i] = addr
		p, err := startProc("namesrv", "namesrv", "--listen", addr, "--log-format", "json")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.stop(10 * time.Second) })
		if err := p.waitFor(20*time.Second, "listening", dialOK(addr)); err != nil {
			t.Fatal(err)
		}
	}
	brAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(brAddr, ":")
	name := "qa5c-" + runID
	lines := []string{
		"# Apache broker.conf, edited on Windows",
		"! a bang comment",
		"brokerClusterName : QaFiveC",
		"brokerName=" + name,
		"brokerId=0",
		"namesrvAddr=" + ns[0] + ";" + ns[1],
		"listenPort " + port,
		"brokerIP1=127.0.0.1",
		"storePathRootDir=" + filepath.Join(dir, "store"),
		"mappedFileSizeCommitLog=67108864",
		"deleteWhen=04",
		"fileReservedTime=48   ",
		"flushDiskType=ASYNC_FLUSH",
		`messageDelayLevel=1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m \`,
		"    1h 2h",
		`autoCreateTopicEnabl\u0065=false`,
	}
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	br, err := startProc("broker", "broker", "--config", conf, "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.stop(10 * time.Second) })
	for _, n := range ns {
		if err := br.waitFor(45*time.Second, "registered with "+n, brokerRegistered(n, brAddr)); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := cli(20*time.Second, "admin", "-n", ns[1], "-o", "json", "broker", "config", "get", "--broker", name)
	if code != 0 {
		t.Fatalf("broker config get: exit %d: %s", code, errOut)
	}
	var rows []struct {
		Broker string            `json:"broker"`
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("broker config get output %q: %v", out, err)
	}
	want := map[string]string{
		"brokerClusterName":     "QaFiveC",
		"listenPort":            port,
		"deleteWhen":            "04",
		"fileReservedTime":      "48",
		"messageDelayLevel":     "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
		"autoCreateTopicEnable": "false",
	}
	for k, v := range want {
		if got := rows[0].Config[k]; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	// A second broker on the same store directory is refused at start-up.
	other, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = cli(30*time.Second, "broker", "--config", conf, "--listen", other, "--name", name+"-dup")
	if code != 1 || !strings.Contains(errOut, "lock held") {
		t.Errorf("second broker on the same storePathRootDir: exit %d, stderr %q; want exit 1 naming the held lock", code, errOut)
	}
	if br.exited() {
		t.Fatalf("first broker exited: %s", br.logTail(20))
	}
}
