package broker

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// BenchmarkTxnRemoting compares, on one broker over loopback remoting, a plain
// SEND_MESSAGE_V2 with a transaction commit as go2 performs it: SEND_MESSAGE_V2 of the half
// message, then END_TRANSACTION commit (here waiting for the answer; go2 does not wait). 16
// concurrent producers; chunks of 500 operations alternate between the two so both see the
// same machine load. Reports both rates (delivered messages per second) and their ratio.
func BenchmarkTxnRemoting(b *testing.B) {
	body := string(make([]byte, 256))
	for _, flush := range []string{"ASYNC_FLUSH", "SYNC_FLUSH"} {
		b.Run(flush, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.FlushDiskType = flush
			tb := startBroker(b, cfg)
			tb.mustSend("BenchTxn", 0, "create", nil)
			plainProps := map[string]string{message.PropertyTags: "T"}
			txnProps := map[string]string{message.PropertyTags: "T", message.PropertyTransactionPrepared: "true",
				message.PropertyProducerGroup: "PG"}
			plain := func() error {
				if resp := tb.sendV2("BenchTxn", 0, body, plainProps); resp.Code != remoting.Success {
					return Coded(resp.Code, "send: %s", resp.Remark)
				}
				return nil
			}
			txn := func() error {
				resp := tb.sendV2("BenchTxn", 0, body, txnProps)
				if resp.Code != remoting.Success {
					return Coded(resp.Code, "send half: %s", resp.Remark)
				}
				_, off, err := message.ParseOffsetMsgID(resp.ExtString("msgId"))
				if err != nil {
					return err
				}
				end := tb.invoke(remoting.EndTransaction, map[string]string{
					"producerGroup": "PG", "tranStateTableOffset": resp.ExtString("queueOffset"),
					"commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": "8",
					"fromTransactionCheck": "false", "msgId": resp.ExtString("transactionId"),
					"transactionId": resp.ExtString("transactionId"),
				}, nil)
				if end.Code != remoting.Success {
					return Coded(end.Code, "end: %s", end.Remark)
				}
				return nil
			}
			var plainT, txnT time.Duration
			run := func(n int, f func() error) time.Duration {
				next := make(chan struct{}, n)
				for range n {
					next <- struct{}{}
				}
				close(next)
				var wg sync.WaitGroup
				start := time.Now()
				for range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range next {
							if err := f(); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				return time.Since(start)
			}
			b.ResetTimer()
			for done := 0; done < b.N; done += 500 {
				n := min(500, b.N-done)
				plainT += run(n, plain)
				txnT += run(n, txn)
			}
			b.StopTimer()
			pr, tr := float64(b.N)/plainT.Seconds(), float64(b.N)/txnT.Seconds()
			b.ReportMetric(pr, "plain-msgs/s")
			b.ReportMetric(tr, "txn-msgs/s")
			b.ReportMetric(tr/pr, "txn/plain")
		})
	}
}
