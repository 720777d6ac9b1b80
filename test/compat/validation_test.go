//go:build !race

package compat

// Bad inputs an application can produce, and the clear errors RocketMQ answers
// (reference: shared/reference/reliability.md section 6).

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	golang "github.com/apache/rocketmq-clients/golang/v5"
)

// TestGo5BadInputs: each bad send or receive fails with the documented code, fast.
func TestGo5BadInputs(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	normal, fifo, delay := uniq("go5_bad"), uniq("go5_bad_fifo"), uniq("go5_bad_delay")
	createTopic(t, d, normal, "NORMAL", 2)
	createTopic(t, d, fifo, "FIFO", 2)
	createTopic(t, d, delay, "DELAY", 2)
	p := go5Producer(t, d.grpc, golang.WithTopics(normal, fifo, delay))
	send := func(m *golang.Message) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, err := p.Send(ctx, m)
		return err
	}
	withTag := func(topic, tag string) *golang.Message {
		m := &golang.Message{Topic: topic, Body: []byte("x")}
		m.SetTag(tag)
		return m
	}
	delayed := func(topic string, d time.Duration) *golang.Message {
		m := &golang.Message{Topic: topic, Body: []byte("x")}
		m.SetDelayTimestamp(time.Now().Add(d))
		return m
	}
	grouped := func(topic, g string) *golang.Message {
		m := &golang.Message{Topic: topic, Body: []byte("x")}
		m.SetMessageGroup(g)
		return m
	}
	bigProps := &golang.Message{Topic: normal, Body: []byte("x")}
	bigProps.AddProperty("big", strings.Repeat("v", 20<<10))
	sysKey := &golang.Message{Topic: normal, Body: []byte("x")}
	sysKey.AddProperty("UNIQ_KEY", "forged")
	cases := []struct {
		name string
		msg  *golang.Message
		want []string // any of these substrings
	}{
		{"illegal topic name", &golang.Message{Topic: "bad/topic", Body: []byte("x")}, []string{"ILLEGAL_TOPIC"}},
		{"system topic", &golang.Message{Topic: "TBW102", Body: []byte("x")}, []string{"ILLEGAL_TOPIC"}},
		{"topic longer than 127", &golang.Message{Topic: strings.Repeat("t", 128), Body: []byte("x")}, []string{"ILLEGAL_TOPIC"}},
		{"tag with |", withTag(normal, "a|b"), []string{"ILLEGAL_MESSAGE_TAG"}},
		{"FIFO message on a NORMAL topic", grouped(normal, "g1"), []string{"MESSAGE_TYPE", "message type", "not match", "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE"}},
		{"NORMAL message on a FIFO topic", &golang.Message{Topic: fifo, Body: []byte("x")}, []string{"MESSAGE_TYPE", "message type", "not match", "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE"}},
		{"message group longer than 64", grouped(fifo, strings.Repeat("g", 65)), []string{"ILLEGAL_MESSAGE_GROUP"}},
		{"DELAY message on a NORMAL topic", delayed(normal, time.Minute), []string{"MESSAGE_TYPE", "message type", "not match"}},
		{"delay beyond the maximum", delayed(delay, 30*24*time.Hour), []string{"ILLEGAL_DELIVERY_TIME"}},
		{"user properties over 16 KiB", bigProps, []string{"MESSAGE_PROPERTIES_TOO_LARGE"}},
		{"system property key", sysKey, []string{"ILLEGAL_MESSAGE_PROPERTY_KEY"}},
	}
	for _, c := range cases {
		start := time.Now()
		err := send(c.msg)
		el := time.Since(start)
		switch {
		case err == nil:
			t.Errorf("%s: send succeeded, want one of %v", c.name, c.want)
		case !containsAny(err.Error(), c.want):
			t.Errorf("%s: %v, want one of %v", c.name, err, c.want)
		case el > 5*time.Second:
			t.Errorf("%s: failed only after %s (retries of a non-retriable error?)", c.name, el)
		default:
			t.Logf("%s: %v", c.name, err)
		}
	}

	c := go5Consumer(t, d.grpc, uniq("go5_bad_g"), map[string]string{normal: "*"})
	for _, inv := range []time.Duration{13 * time.Hour} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.Receive(ctx, 1, inv)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "ILLEGAL_INVISIBLE_TIME") {
			t.Errorf("Receive with invisible duration %s: %v, want ILLEGAL_INVISIBLE_TIME", inv, err)
		}
	}
	// More than 32 messages asked: at most 32 come back, no error.
	for i := 0; i < 40; i++ {
		go5Send(t, p, &golang.Message{Topic: normal, Body: []byte("many")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	mvs, err := c.Receive(ctx, 64, 20*time.Second)
	cancel()
	if err != nil || len(mvs) == 0 || len(mvs) > 32 {
		t.Errorf("Receive(maxMessageNum 64) with 40 available: %d messages, %v; want 1..32", len(mvs), err)
	}
	bad := go5Consumer(t, d.grpc, "bad/group", map[string]string{normal: "*"})
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	_, err = bad.Receive(ctx, 1, 20*time.Second)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "ILLEGAL_CONSUMER_GROUP") {
		t.Errorf("Receive with consumer group bad/group: %v, want ILLEGAL_CONSUMER_GROUP", err)
	}
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// TestGo2BadInputs: remoting sends to reserved topics are refused with RocketMQ's codes.
func TestGo2BadInputs(t *testing.T) {
	t.Parallel()
	d := standalone(t)
	p := go2Producer(t, d.ns)
	for _, c := range []struct{ topic, want string }{
		{"SCHEDULE_TOPIC_XXXX", "CODE: 16"},
		{"RMQ_SYS_TRANS_HALF_TOPIC", "CODE: 16"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		r, err := p.SendSync(ctx, primitive.NewMessage(c.topic, []byte("x")))
		cancel()
		if err == nil {
			t.Errorf("go2 send to %s: accepted (%+v), want NO_PERMISSION (16)", c.topic, r)
		} else {
			t.Logf("go2 send to %s: %v", c.topic, err)
		}
	}
}

// TestStandaloneAutoCreateOff: `rocketry standalone --auto-create=false`: unknown topics are
// refused to both protocols; a second standalone on the same data dir refuses to start with a
// one-line error.
func TestStandaloneAutoCreateOff(t *testing.T) {
	t.Parallel()
	d, err := startStandalone("", nil, "--auto-create=false")
	if d != nil {
		t.Cleanup(d.close)
	}
	if err != nil {
		t.Fatalf("rocketry standalone --auto-create=false could not be started: %v", err)
	}
	p := go5Producer(t, d.grpc)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	_, err = p.Send(ctx, &golang.Message{Topic: uniq("sa_missing"), Body: []byte("x")})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "TOPIC_NOT_FOUND") {
		t.Errorf("go5 send to a missing topic with --auto-create=false: %v, want TOPIC_NOT_FOUND", err)
	}
	p2 := go2Producer(t, d.ns)
	ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
	_, err = p2.SendSync(ctx, primitive.NewMessage(uniq("sa_missing2"), []byte("x")))
	cancel()
	if err == nil || !strings.Contains(err.Error(), "CODE: 17") {
		t.Errorf("go2 send to a missing topic with --auto-create=false: %v, want CODE: 17 (TOPIC_NOT_EXIST)", err)
	}
	// An unknown consumer group is not created either: CONSUMER_GROUP_NOT_FOUND.
	topic := uniq("sa_known")
	createTopic(t, d, topic, "NORMAL", 1)
	go5Send(t, go5Producer(t, d.grpc, golang.WithTopics(topic)), &golang.Message{Topic: topic, Body: []byte("x")})
	c := go5Consumer(t, d.grpc, uniq("sa_nogroup"), map[string]string{topic: "*"})
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	_, err = c.Receive(ctx, 1, 20*time.Second)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "CONSUMER_GROUP_NOT_FOUND") {
		t.Errorf("go5 receive with an unknown group and --auto-create=false: %v, want CONSUMER_GROUP_NOT_FOUND", err)
	}

	// Second instance on the same data dir.
	dataDir := filepath.Join(d.dir, "data")
	if _, err := os.Stat(dataDir); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := 0; i < 4; i++ {
		a, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	out, errOut, code := cli(30*time.Second, "standalone", "--data-dir", dataDir, "--namesrv-listen", addrs[0], "--broker-listen", addrs[1],
		"--grpc-listen", addrs[2], "--http-listen", addrs[3])
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.HasPrefix(last, "rocketry: ") {
		t.Errorf("second standalone on a data dir in use: exit %d (want 1), stderr %q, stdout %q", code, errOut, out)
	} else {
		t.Logf("second standalone: %s", last)
	}
}
