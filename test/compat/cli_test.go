//go:build !race

package compat

// The rocketry CLI as an operator uses it (docs/cli.md): admin topic/group, produce and
// consume round trip, and the error contract (exit 1, one line `rocketry: <reason>`).

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestCLIAdminTopic(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic := uniq("cli_topic")
	var created struct {
		Topic   string   `json:"topic"`
		Type    string   `json:"type"`
		Queues  int      `json:"queues"`
		Brokers []string `json:"brokers"`
		Routed  bool     `json:"routed"`
	}
	adminJSON(t, d, &created, "topic", "create", "--name", topic, "--type", "FIFO", "--queues", "3")
	if created.Topic != topic || created.Type != "FIFO" || created.Queues != 3 || len(created.Brokers) != 1 || !created.Routed {
		t.Errorf("topic create JSON %+v, want topic %s type FIFO queues 3, one broker, routed", created, topic)
	}
	var list []struct {
		Name   string `json:"name"`
		System bool   `json:"system"`
	}
	adminJSON(t, d, &list, "topic", "list")
	found := false
	for _, e := range list {
		if e.Name == topic {
			found = true
			if e.System {
				t.Errorf("topic list marks %s as system", topic)
			}
		}
	}
	if !found {
		t.Errorf("topic list does not contain %s", topic)
	}
	// Two messages through the proxy, then describe shows them.
	for i := 0; i < 2; i++ {
		_, errOut, code := cli(30*time.Second, "produce", "--endpoint", d.grpc, "--topic", topic, "--body", fmt.Sprint("m", i), "--message-group", "g1")
		if code != 0 {
			t.Fatalf("rocketry produce to FIFO topic: exit %d: %s", code, errOut)
		}
	}
	var desc struct {
		Name       string            `json:"name"`
		Type       string            `json:"type"`
		Attributes map[string]string `json:"attributes"`
		Brokers    []struct {
			Broker     string `json:"broker"`
			ReadQueues int    `json:"readQueues"`
			Perm       int    `json:"perm"`
		} `json:"brokers"`
		Queues []struct {
			QueueID   int   `json:"queueId"`
			MaxOffset int64 `json:"maxOffset"`
		} `json:"queues"`
		Messages int64 `json:"messages"`
	}
	// Consume queues are built asynchronously after the append (as RocketMQ's dispatcher
	// does): the count converges within moments.
	waitUntil(10*time.Second, func() bool {
		adminJSON(t, d, &desc, "topic", "describe", topic)
		return desc.Messages >= 2
	})
	if desc.Name != topic || desc.Type != "FIFO" || len(desc.Queues) != 3 || desc.Messages != 2 {
		t.Errorf("topic describe: name %s type %s, %d queues, %d messages; want FIFO, 3 queues, 2 messages", desc.Name, desc.Type, len(desc.Queues), desc.Messages)
	}
	if len(desc.Brokers) != 1 || desc.Brokers[0].ReadQueues != 3 || desc.Brokers[0].Perm != 6 {
		t.Errorf("topic describe brokers %+v, want one with 3 read queues and perm 6", desc.Brokers)
	}
	// Table output (the default) names the topic too.
	out, errOut, code := cli(30*time.Second, "admin", "-n", d.ns, "topic", "describe", "--name", topic)
	if code != 0 || !strings.Contains(out, topic) {
		t.Errorf("topic describe (table): exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestCLIAdminGroup(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	group := uniq("cli_group")
	var created struct {
		Name          string `json:"name"`
		FIFO          bool   `json:"fifo"`
		MaxAttempts   int    `json:"maxAttempts"`
		ConsumeEnable bool   `json:"consumeEnable"`
	}
	adminJSON(t, d, &created, "group", "create", "--name", group, "--fifo", "--max-attempts", "5")
	if created.Name != group || !created.FIFO || created.MaxAttempts != 5 || !created.ConsumeEnable {
		t.Errorf("group create JSON %+v, want fifo, maxAttempts 5, consumeEnable", created)
	}
	var desc struct {
		Name        string `json:"name"`
		FIFO        bool   `json:"fifo"`
		MaxAttempts int    `json:"maxAttempts"`
		Lag         int64  `json:"lag"`
	}
	adminJSON(t, d, &desc, "group", "describe", "--name", group)
	if desc.Name != group || !desc.FIFO || desc.MaxAttempts != 5 {
		t.Errorf("group describe %+v, want fifo and maxAttempts 5", desc)
	}

	// A consuming group shows its lag: 3 messages sent, none consumed yet by this group,
	// then consumed and the lag is back to 0.
	topic, g2 := uniq("cli_lag"), uniq("cli_lag_g")
	createTopic(t, d, topic, "NORMAL", 1)
	consume := func(n int) {
		out, errOut, code := cli(40*time.Second, "consume", "--endpoint", d.grpc, "--topic", topic, "--group", g2, "--count", fmt.Sprint(n), "--idle-timeout", "10s", "-o", "json")
		if code != 0 || strings.Count(out, "\n") != n {
			t.Fatalf("rocketry consume --count %d: exit %d, %d lines, stderr %s", n, code, strings.Count(out, "\n"), errOut)
		}
	}
	_, errOut, code := cli(30*time.Second, "produce", "--endpoint", d.grpc, "--topic", topic, "--body", "first")
	if code != 0 {
		t.Fatalf("produce: exit %d %s", code, errOut)
	}
	consume(1) // the group now has an offset on the queue
	_, errOut, code = cli(30*time.Second, "produce", "--endpoint", d.grpc, "--topic", topic, "--body", "x", "--count", "3")
	if code != 0 {
		t.Fatalf("produce --count 3: exit %d %s", code, errOut)
	}
	adminJSON(t, d, &desc, "group", "describe", "--name", g2)
	if desc.Lag != 3 {
		t.Errorf("group describe lag %d after 3 unconsumed messages, want 3", desc.Lag)
	}
	consume(3)
	ok := waitUntil(10*time.Second, func() bool {
		adminJSON(t, d, &desc, "group", "describe", "--name", g2)
		return desc.Lag == 0
	})
	if !ok {
		t.Errorf("group describe lag %d after consuming everything, want 0", desc.Lag)
	}
}

// TestCLIProduceConsume: produce -o json, consume -o json, same ids and bodies, tag filter.
func TestCLIProduceConsume(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("cli_rt"), uniq("cli_rt_g")
	out, errOut, code := cli(30*time.Second, "produce", "--endpoint", d.grpc, "--topic", topic, "--body", "hello", "--tag", "T1", "--key", "k1", "--property", "color=green", "--count", "3", "-o", "json")
	if code != 0 {
		t.Fatalf("rocketry produce: exit %d: %s", code, errOut)
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Topic     string `json:"topic"`
			MessageID string `json:"messageId"`
			Offset    *int64 `json:"offset"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Topic != topic || r.MessageID == "" || r.Offset == nil {
			t.Fatalf("produce -o json line %q (%v)", line, err)
		}
		ids[r.MessageID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("produce --count 3 printed %d distinct ids", len(ids))
	}
	// A different tag is filtered out by --filter T1.
	if _, errOut, code := cli(30*time.Second, "produce", "--endpoint", d.grpc, "--topic", topic, "--body", "other", "--tag", "T2"); code != 0 {
		t.Fatalf("produce T2: exit %d %s", code, errOut)
	}
	out, errOut, code = cli(60*time.Second, "consume", "--endpoint", d.grpc, "--topic", topic, "--group", group, "--filter", "T1", "--count", "3", "--idle-timeout", "15s", "-o", "json")
	if code != 0 {
		t.Fatalf("rocketry consume: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("consume --count 3 printed %d lines:\n%s", len(lines), out)
	}
	for _, line := range lines {
		var m struct {
			MessageID  string            `json:"messageId"`
			Tag        string            `json:"tag"`
			Keys       []string          `json:"keys"`
			Properties map[string]string `json:"properties"`
			Body       string            `json:"body"`
			Attempt    int               `json:"deliveryAttempt"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("consume -o json line %q: %v", line, err)
		}
		if !ids[m.MessageID] || m.Body != "hello" || m.Tag != "T1" || len(m.Keys) != 1 || m.Keys[0] != "k1" || m.Properties["color"] != "green" || m.Attempt != 1 {
			t.Errorf("consumed %+v, want one of the produced ids, body hello, tag T1, key k1, color=green, attempt 1", m)
		}
	}
}

// TestCLIConsumeSQL: `rocketry consume --filter-type sql` receives only the messages whose
// properties match the selector.
func TestCLIConsumeSQL(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, group := uniq("cli_sql"), uniq("cli_sql_g")
	for _, color := range []string{"green", "red", "green"} {
		if _, errOut, code := cli(30*time.Second, "produce", "--endpoint", d.grpc, "--topic", topic, "--body", color, "--property", "color="+color); code != 0 {
			t.Fatalf("produce: exit %d %s", code, errOut)
		}
	}
	out, errOut, code := cli(60*time.Second, "consume", "--endpoint", d.grpc, "--topic", topic, "--group", group,
		"--filter-type", "sql", "--filter", "color = 'green'", "--count", "2", "--idle-timeout", "15s", "-o", "json")
	if code != 0 {
		t.Fatalf("rocketry consume --filter-type sql: exit %d: %s", code, errOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct {
			Body string `json:"body"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.Body != "green" {
			t.Errorf("consumed %q (%v), want only green messages", line, err)
		}
	}
}

// TestCLIErrors: every failure exits 1 with exactly one stderr line starting "rocketry: ".
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	dead, err := freeAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
	}{
		{"describe missing topic", []string{"admin", "-n", d.ns, "topic", "describe", "--name", uniq("nope")}},
		{"describe missing group", []string{"admin", "-n", d.ns, "group", "describe", "--name", uniq("nope")}},
		{"unreachable namesrv", []string{"admin", "-n", dead, "--timeout", "2s", "topic", "list"}},
		{"illegal topic name", []string{"admin", "-n", d.ns, "topic", "create", "--name", "a/b"}},
		{"system topic name", []string{"admin", "-n", d.ns, "topic", "create", "--name", "TBW102"}},
		{"bad topic type", []string{"admin", "-n", d.ns, "topic", "create", "--name", uniq("bt"), "--type", "WEIRD"}},
		{"group create without name", []string{"admin", "-n", d.ns, "group", "create"}},
		{"unknown flag", []string{"admin", "-n", d.ns, "topic", "list", "--frobnicate"}},
		{"unknown subcommand", []string{"admin", "-n", d.ns, "topic", "explode"}},
		{"produce to unreachable proxy", []string{"produce", "--endpoint", dead, "--topic", "x", "--body", "b"}},
		{"produce without topic", []string{"produce", "--endpoint", d.grpc, "--body", "b"}},
		{"produce empty body", []string{"produce", "--endpoint", d.grpc, "--topic", uniq("eb"), "--body", ""}},
		{"consume with a SQL filter that does not parse", []string{"consume", "--endpoint", d.grpc, "--topic", uniq("sq"), "--group", uniq("sqg"), "--filter-type", "sql", "--filter", "a >", "--idle-timeout", "3s"}},
		{"consume without group", []string{"consume", "--endpoint", d.grpc, "--topic", "x"}},
		{"standalone bad listen", []string{"standalone", "--data-dir", t.TempDir(), "--namesrv-listen", "nope"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := cli(40*time.Second, c.args...)
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "rocketry: ") {
				t.Errorf("rocketry %s:\n exit %d (want 1)\n stderr %q (want one line \"rocketry: ...\")\n stdout %q",
					strings.Join(c.args, " "), code, errOut, out)
			}
		})
	}
}

// TestCLIMore: produce --lines from stdin and --delay on a DELAY topic, consume --no-ack
// (the messages come back after --invisible), group delete (with its %RETRY% topic).
func TestCLIMore(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	topic, delay, group := uniq("cli_more"), uniq("cli_more_delay"), uniq("cli_more_g")
	createTopic(t, d, topic, "NORMAL", 1)
	createTopic(t, d, delay, "DELAY", 1)
	cmd := exec.Command(binary, "produce", "--endpoint", d.grpc, "--topic", topic, "--lines", "-o", "json")
	cmd.Stdin = strings.NewReader("l1\nl2\nl3\n")
	out, err := cmd.Output()
	if err != nil || strings.Count(string(out), "\n") != 3 {
		t.Fatalf("produce --lines with 3 lines: %v, output %q", err, out)
	}
	start := time.Now()
	if _, errOut, code := cli(30*time.Second, "produce", "--endpoint", d.grpc, "--topic", delay, "--body", "later", "--delay", "3s"); code != 0 {
		t.Fatalf("produce --delay 3s: exit %d %s", code, errOut)
	}
	out2, errOut, code := cli(40*time.Second, "consume", "--endpoint", d.grpc, "--topic", delay, "--group", uniq("cli_delay_g"), "--count", "1", "--idle-timeout", "10s", "-o", "json")
	if code != 0 || !strings.Contains(out2, `"body":"later"`) {
		t.Errorf("consume the delay message: exit %d, %q %s", code, out2, errOut)
	} else if el := time.Since(start); el < 3*time.Second {
		t.Errorf("produce --delay 3s: consumed after %s", el)
	}
	// --no-ack: the three lines come back (attempt 2) after the 10 s invisible time.
	first, errOut, code := cli(40*time.Second, "consume", "--endpoint", d.grpc, "--topic", topic, "--group", group, "--count", "3", "--no-ack", "--invisible", "10s", "--idle-timeout", "10s", "-o", "json")
	if code != 0 || strings.Count(first, "\n") != 3 {
		t.Fatalf("consume --no-ack: exit %d, %q %s", code, first, errOut)
	}
	again, errOut, code := cli(40*time.Second, "consume", "--endpoint", d.grpc, "--topic", topic, "--group", group, "--count", "3", "--idle-timeout", "20s", "-o", "json")
	if code != 0 || strings.Count(again, `"deliveryAttempt":2`) != 3 {
		t.Errorf("after --no-ack the messages should come back with deliveryAttempt 2: exit %d, %q %s", code, again, errOut)
	}
	// group delete removes the group and its retry topic.
	adminJSON(t, d, nil, "group", "delete", "--name", group)
	if _, _, code := cli(20*time.Second, "admin", "-n", d.ns, "group", "describe", "--name", group); code == 0 {
		t.Errorf("group describe after group delete exited 0")
	}
	ok := waitUntil(10*time.Second, func() bool {
		_, _, code := cli(20*time.Second, "admin", "-n", d.ns, "topic", "describe", "--name", "%RETRY%"+group)
		return code != 0
	})
	if !ok {
		t.Errorf("%%RETRY%%%s still routed after group delete", group)
	}
}
