package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// TestConcurrentPutGetRetention runs writers, readers that hold results, and forced
// retention at once (under -race): readers must never see a torn or foreign record, and
// retention must never unmap a segment under a held result.
func TestConcurrentPutGetRetention(t *testing.T) {
	usage := &fakeUsage{}
	usage.set(0.5)
	cfg := testConfig(t.TempDir())
	cfg.DiskUsage = usage.get
	s := openT(t, cfg)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var puts, reads atomic.Int64
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := s.Put(ctx, newMsg("C", int32(w), i, 500)); err != nil {
					t.Error(err)
					return
				}
				puts.Add(1)
			}
		}(w)
	}
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(q int32) {
			defer wg.Done()
			off := int64(0)
			var held []*GetResult
			for ctx.Err() == nil {
				res, err := s.Get("C", q, off, 16, 1<<20, nil)
				if err != nil {
					t.Error(err)
					return
				}
				for _, rec := range res.Records {
					var h message.RecordHeader
					if err := message.ParseRecordHeader(rec.Data, &h); err != nil || !h.VerifyBodyCRC(rec.Data) || h.QueueID != q || h.QueueOffset != rec.QueueOffset {
						t.Errorf("queue %d offset %d: bad record (%v)", q, rec.QueueOffset, err)
						return
					}
					reads.Add(1)
				}
				off = res.NextBeginOffset
				held = append(held, res)
				if len(held) > 8 { // hold results across retention rounds
					for _, old := range held[:4] {
						for _, rec := range old.Records {
							if len(rec.Data) < 4 || rec.Data[4] != 0xDA {
								t.Error("held record changed under the reader")
							}
						}
						old.Release()
					}
					held = held[4:]
				}
			}
			for _, h := range held {
				h.Release()
			}
		}(int32(r))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			usage.set(0.87)
			s.cleanOnce(time.Now())
			usage.set(0.5)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	t.Logf("%d puts, %d records read and verified, %d segments left", puts.Load(), reads.Load(), s.Stats().Segments)
	if reads.Load() == 0 {
		t.Fatal("readers read nothing")
	}
}
