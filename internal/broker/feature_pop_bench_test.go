package broker

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// BenchmarkPopVsPullRemoting consumes the same b.N messages (1 KiB, queue 0 of topic Bench)
// twice over loopback remoting, back to back in one run: PULL_MESSAGE batches of 32, then
// POP_MESSAGE batches of 32 each followed by one BATCH_ACK_MESSAGE (pop state durable: every
// pop and batch ack is fdatasynced before it is answered). Reports both rates and the ratio.
//
//	go test -run '^$' -bench 'PopVsPull' -benchtime 20000x -count 3 ./internal/broker/
func BenchmarkPopVsPullRemoting(b *testing.B) {
	tb := startBroker(b, benchConfig(b, FlushAsync))
	if err := tb.CreateTopic(NewTopicConfig("Bench", 8)); err != nil {
		b.Fatal(err)
	}
	tb.popGroup("PG", 16, false)
	fillQueue(b, tb.Store, b.N)
	addr := tb.ListenAddr().String()
	ctx := context.Background()
	b.SetBytes(benchBodySize)
	b.ResetTimer()

	start := time.Now()
	var off int64
	for off < int64(b.N) {
		req := remoting.NewRequest(remoting.PullMessage, map[string]string{
			"consumerGroup": "BG", "topic": "Bench", "queueId": "0", "queueOffset": strconv.FormatInt(off, 10),
			"maxMsgNums": "32", "sysFlag": "0", "commitOffset": "0",
			"suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0", "expressionType": "TAG"}, nil)
		resp, err := tb.cli.Invoke(ctx, addr, req)
		if err != nil || resp.Code != remoting.Success {
			b.Fatalf("pull at %d: %v %v", off, err, resp)
		}
		off, _ = strconv.ParseInt(resp.ExtString("nextBeginOffset"), 10, 64)
	}
	pull := float64(b.N) / time.Since(start).Seconds()

	start = time.Now()
	got := 0
	for got < b.N {
		req := remoting.NewRequest(remoting.PopMessage, map[string]string{
			"consumerGroup": "PG", "topic": "Bench", "queueId": "0", "maxMsgNums": "32",
			"invisibleTime": "60000", "pollTime": "0", "bornTime": "0", "initMode": "0", "expType": "TAG", "exp": "*"}, nil)
		resp, err := tb.cli.Invoke(ctx, addr, req)
		if err != nil || resp.Code != remoting.Success {
			b.Fatalf("pop after %d: %v %v", got, err, resp)
		}
		msgs, err := message.DecodeRecords(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		handles := make([]string, len(msgs))
		for i, m := range msgs {
			handles[i] = m.Property(message.PropertyPopCK)
		}
		body, _ := json.Marshal(map[string]any{"consumerGroup": "PG", "topic": "Bench", "receiptHandles": handles})
		ack, err := tb.cli.Invoke(ctx, addr, remoting.NewRequest(remoting.BatchAckMessage, nil, body))
		if err != nil || ack.Code != remoting.Success {
			b.Fatalf("batch ack: %v %v", err, ack)
		}
		got += len(msgs)
	}
	pop := float64(got) / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(pull, "pull_msgs/s")
	b.ReportMetric(pop, "popack_msgs/s")
	b.ReportMetric(pop/pull, "pop/pull")
}
