package broker

import (
	"strconv"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// BenchmarkTxnRemoting compares, on one broker over loopback remoting, a plain
// SEND_MESSAGE_V2 with a transaction commit as go2 performs it: SEND_MESSAGE_V2 of the half
// message, then END_TRANSACTION commit (answered; go2 sends it without waiting). msgs/s counts
// delivered messages. Run with -cpu N for N concurrent producers.
func BenchmarkTxnRemoting(b *testing.B) {
	body := string(make([]byte, 256))
	for _, flush := range []string{"ASYNC_FLUSH", "SYNC_FLUSH"} {
		for _, mode := range []string{"plain", "half+commit"} {
			b.Run(flush+"/"+mode, func(b *testing.B) {
				cfg := testConfig(b)
				cfg.FlushDiskType = flush
				tb := startBroker(b, cfg)
				tb.mustSend("BenchTxn", 0, "create", nil)
				props := map[string]string{message.PropertyTags: "T"}
				if mode != "plain" {
					props[message.PropertyTransactionPrepared] = "true"
					props[message.PropertyProducerGroup] = "PG"
				}
				b.SetBytes(int64(len(body)))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp := tb.sendV2("BenchTxn", 0, body, props)
						if resp.Code != remoting.Success {
							b.Errorf("send: %d %s", resp.Code, resp.Remark)
							return
						}
						if mode == "plain" {
							continue
						}
						_, off, err := message.ParseOffsetMsgID(resp.ExtString("msgId"))
						if err != nil {
							b.Error(err)
							return
						}
						end := tb.invoke(remoting.EndTransaction, map[string]string{
							"producerGroup": "PG", "tranStateTableOffset": resp.ExtString("queueOffset"),
							"commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": "8",
							"fromTransactionCheck": "false", "msgId": resp.ExtString("transactionId"),
							"transactionId": resp.ExtString("transactionId"),
						}, nil)
						if end.Code != remoting.Success {
							b.Errorf("end: %d %s", end.Code, end.Remark)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}
