package txn

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store"
)

// benchStore opens a real store (1 GiB-free small segments) and a recovered service on it.
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

// BenchmarkTxnCommit compares, on the same store, a plain put of a message with a transaction
// commit (half put + END_TRANSACTION commit: read the half, put the committed copy, put the op
// record, batched by the scanner, whose round is included). Run with -cpu to vary
// concurrency; msgs/s is per message delivered.
func BenchmarkTxnCommit(b *testing.B) {
	body := make([]byte, 256)
	for _, flush := range []string{store.AsyncFlush, store.SyncFlush} {
		b.Run(fmt.Sprintf("%s/plain", flush), func(b *testing.B) {
			st, _ := benchStore(b, flush)
			ctx := context.Background()
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m := benchMessage(body)
					m.SysFlag = 0
					delete(m.Properties, message.PropertyTransactionPrepared)
					if _, err := st.Put(ctx, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(fmt.Sprintf("%s/half+commit", flush), func(b *testing.B) {
			st, svc := benchStore(b, flush)
			ctx := context.Background()
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m := benchMessage(body)
					res, err := st.Put(ctx, ToHalf(m))
					if err != nil {
						b.Error(err)
						return
					}
					if err := svc.End(ctx, &EndRequest{ProducerGroup: "PG", TranStateTableOffset: res.QueueOffset,
						CommitLogOffset: res.CommitLogOffset, Resolution: ResolutionCommit, TransactionID: m.UniqKey()}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// The op records are appended by the scanner in batches: include that work.
			if err := svc.scanOnce(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
