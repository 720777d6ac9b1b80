package txn

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// benchStore opens a real store and a recovered service on it.
func benchStore(b *testing.B, flush string) (*store.Store, *Service) {
	b.Helper()
	cfg := store.DefaultConfig()
	cfg.StorePathRootDir = b.TempDir()
	cfg.MappedFileSizeCommitLog = 64 << 20
	cfg.FlushDiskType = flush
	cfg.StoreHost = netip.MustParseAddrPort("127.0.0.1:10911")
	st, err := store.Open(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	tc := DefaultConfig()
	tc.Dir = b.TempDir()
	svc, err := New(tc, &StoreLog{Store: st, Direct: st.Put, Full: st.Put, Recovered: st.Stats().MaxPhysicalOffset},
		CheckSenderFunc(func(context.Context, *Check) error { return ErrNoProducer }), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Recover(context.Background()); err != nil {
		b.Fatal(err)
	}
	return st, svc
}

func benchMessage(body []byte) *message.Ext {
	return &message.Ext{Message: message.Message{Topic: "BenchTxn", Body: body, Properties: map[string]string{
		message.PropertyUniqKey: message.NewUniqID(), message.PropertyProducerGroup: "PG",
		message.PropertyTransactionPrepared: "true", message.PropertyTags: "T",
	}}, SysFlag: message.SysFlagTransactionPrepared, BornTimestamp: time.Now().UnixMilli()}
}

// interleave runs b.N operations of each of plain and txn with workers goroutines, alternating
// chunks of chunk operations (plain, txn, plain, ...) so both see the same machine load, and
// reports both rates and their ratio. after runs after each txn chunk, timed with it.
func interleave(b *testing.B, workers, chunk int, plain, txn func() error, after func() error) {
	var plainT, txnT time.Duration
	run := func(n int, f func() error) time.Duration {
		var wg sync.WaitGroup
		next := make(chan struct{}, n)
		for range n {
			next <- struct{}{}
		}
		close(next)
		start := time.Now()
		for range workers {
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
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		plainT += run(n, plain)
		start := time.Now()
		run(n, txn)
		if after != nil {
			if err := after(); err != nil {
				b.Fatal(err)
			}
		}
		txnT += time.Since(start)
	}
	b.StopTimer()
	pr := float64(b.N) / plainT.Seconds()
	tr := float64(b.N) / txnT.Seconds()
	b.ReportMetric(pr, "plain-msgs/s")
	b.ReportMetric(tr, "txn-msgs/s")
	b.ReportMetric(tr/pr, "txn/plain")
}

// BenchmarkTxnCommit compares, on one store, a plain put with a transaction commit: half put
// plus END_TRANSACTION commit (read the half, put the committed copy; the op records are
// appended by the scanner, running concurrently as in a broker). 8 workers, chunks of 1000
// alternating between the two.
func BenchmarkTxnCommit(b *testing.B) {
	body := make([]byte, 256)
	for _, flush := range []string{store.AsyncFlush, store.SyncFlush} {
		b.Run(flush, func(b *testing.B) {
			st, svc := benchStore(b, flush)
			ctx := context.Background()
			plain := func() error {
				m := benchMessage(body)
				m.SysFlag = 0
				delete(m.Properties, message.PropertyTransactionPrepared)
				_, err := st.Put(ctx, m)
				return err
			}
			txn := func() error {
				m := benchMessage(body)
				res, err := st.Put(ctx, ToHalf(m))
				if err != nil {
					return err
				}
				return svc.End(ctx, &EndRequest{ProducerGroup: "PG", TranStateTableOffset: res.QueueOffset,
					CommitLogOffset: res.CommitLogOffset, Resolution: ResolutionCommit, TransactionID: m.UniqKey()})
			}
			// The scanner runs as in a broker (a round per second: tail, op records, checkpoint),
			// loading the machine for both kinds of chunks alike.
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- svc.Run(rctx) }()
			interleave(b, 8, 1000, plain, txn, nil)
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
