package broker

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// waitPullReleased waits until every pull response's store references are released.
func waitPullReleased(t testing.TB) {
	t.Helper()
	waitFor(t, 10*time.Second, "pull results to be released", func() bool { return pullHeld.Load() == 0 })
}

// TestPullBodyAliasesStore: a found pull answers with BodyParts that are the store's mapped
// record bytes (no copy), keeps the segment references until OnWritten, and releases
// them exactly then.
func TestPullBodyAliasesStore(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tb.mustSend("T", 0, "m"+strconv.Itoa(i), map[string]string{message.PropertyTags: "a"})
	}
	waitPullReleased(t)

	p := pullRequest{group: "G", topic: "T", qid: 0, offset: 1, maxMsgs: 3}
	resp, _ := tb.pullOnce(p, 3, ParseTagExpression("*"))
	if resp.Code != remoting.Success || resp.OnWritten == nil || len(resp.Body) != 0 {
		t.Fatalf("pull: code %d, hook %v, %d copied body bytes", resp.Code, resp.OnWritten != nil, len(resp.Body))
	}
	if pullHeld.Load() != 1 {
		t.Fatalf("held pull results %d, want 1 until the frame is written", pullHeld.Load())
	}
	ref, err := tb.Store.Get("T", 0, 1, 3, pullMaxBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Release()
	// Adjacent records are merged into one piece; the pieces cover the records in order
	// at the very same addresses.
	var records, parts [][]byte
	for _, r := range ref.Records {
		records = append(records, r.Data)
	}
	parts = resp.BodyParts
	i := 0
	for _, part := range parts {
		for off := 0; off < len(part); i++ {
			if i >= len(records) {
				t.Fatalf("body longer than the records")
			}
			r := records[i]
			if &part[off] != &r[0] {
				t.Fatalf("record %d is not aliased: body piece at %p, store at %p", i, &part[off], &r[0])
			}
			off += len(r)
		}
	}
	if i != 3 {
		t.Fatalf("body covers %d records, want 3", i)
	}
	msgs, err := message.DecodeRecords(concat(parts))
	if err != nil || len(msgs) != 3 || string(msgs[0].Body) != "m1" {
		t.Fatalf("decoded %d messages, err %v", len(msgs), err)
	}
	resp.OnWritten()
	if pullHeld.Load() != 0 {
		t.Fatalf("held pull results %d after OnWritten", pullHeld.Load())
	}

	// Responses without records hold nothing.
	if resp, _ := tb.pullOnce(pullRequest{group: "G", topic: "T", qid: 0, offset: 5, maxMsgs: 3}, 3, ParseTagExpression("*")); resp.OnWritten != nil || pullHeld.Load() != 0 {
		t.Fatalf("empty pull holds references (code %d)", resp.Code)
	}
	// Nothing matches the filter: no body, nothing held.
	if resp, _ := tb.pullOnce(p, 3, ParseTagExpression("zz")); resp.OnWritten != nil || pullHeld.Load() != 0 {
		t.Fatalf("filtered-out pull holds references (code %d)", resp.Code)
	}
}

// TestPullReleasedAfterWriteAndOnClosedConn: over the wire the references are released once
// the response is written, and a response dropped on a closed connection releases too.
func TestPullReleasedAfterWriteAndOnClosedConn(t *testing.T) {
	tb := startBroker(t, testConfig(t))
	if err := tb.CreateTopic(NewTopicConfig("T", 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		tb.mustSend("T", 0, "m"+strconv.Itoa(i), nil)
	}
	for off := int64(0); off < 50; off += 7 {
		resp := tb.pull("G", "T", 0, off, 7, 0, 0, "*")
		msgs := decodeBody(t, resp)
		if resp.Code != remoting.Success || len(msgs) != int(min(7, 50-off)) || string(msgs[0].Body) != "m"+strconv.FormatInt(off, 10) {
			t.Fatalf("pull at %d: code %d, %d messages", off, resp.Code, len(msgs))
		}
	}
	waitPullReleased(t)

	// A response whose connection is gone is dropped and still released.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tb.cli.Conn(ctx, tb.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := tb.pullOnce(pullRequest{group: "G", topic: "T", qid: 0, offset: 0, maxMsgs: 32}, 32, ParseTagExpression("*"))
	if resp.OnWritten == nil || pullHeld.Load() != 1 {
		t.Fatalf("pull holds %d results, hook %v", pullHeld.Load(), resp.OnWritten != nil)
	}
	_ = conn.Close()
	resp.Opaque = 1
	if err := conn.Send(resp); !errors.Is(err, remoting.ErrConnClosed) {
		t.Fatalf("send on a closed connection: %v", err)
	}
	if pullHeld.Load() != 0 {
		t.Fatalf("dropped response still holds %d results", pullHeld.Load())
	}

	// A long-polling pull parked while its client goes away: whatever happens to the
	// response, nothing stays held.
	raw := remoting.NewClient(remoting.DefaultClientConfig(), testLogger(t))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, _ = raw.Invoke(ctx, tb.ListenAddr().String(), remoting.NewRequest(remoting.PullMessage, map[string]string{
			"consumerGroup": "G", "topic": "T", "queueId": "0", "queueOffset": "50", "maxMsgNums": "32",
			"sysFlag": strconv.Itoa(pullFlagSuspend | pullFlagSubscription), "commitOffset": "0", "suspendTimeoutMillis": "5000",
			"subscription": "*", "subVersion": "0", "expressionType": "TAG",
		}, nil))
	}()
	waitFor(t, 10*time.Second, "the pull to park", func() bool { return tb.polls.n.Load() == 1 })
	_ = raw.Close()
	tb.mustSend("T", 0, "late", nil)
	waitFor(t, 10*time.Second, "the parked pull to end", func() bool { return tb.polls.n.Load() == 0 })
	waitPullReleased(t)
}

func concat(parts [][]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
