package store

import (
	"context"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// TestPowerLossSyncFlush simulates power cuts (vfs.Lossy drops every byte not covered by an
// fdatasync and every directory entry not covered by a directory fsync) while 4 writers put
// with SYNC_FLUSH: every acknowledged message must survive, byte for byte, including those
// in segments created just before the cut, and the recovered consume queues must match the
// log (reliability scenario A3).
func TestPowerLossSyncFlush(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	acked := map[int64]uint32{} // offset -> crc of the record
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	lostTotal := 0
	for round := 0; round < rounds; round++ {
		lossy := vfs.NewLossy(nil)
		cfg := testConfig(dir)
		cfg.FS = lossy
		cfg.FlushDiskType = SyncFlush
		cfg.CheckpointInterval = 10 * time.Millisecond
		s := openT(t, cfg)
		var mu sync.Mutex
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		attempted := 0
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					m := newMsg("P", int32(w), round*100000+i, 100+(i*37)%900)
					mu.Lock()
					attempted++
					mu.Unlock()
					res, err := s.Put(ctx, m)
					if err != nil {
						return // closed by the "power cut": not acknowledged
					}
					rec, _ := message.AppendRecord(nil, m)
					mu.Lock()
					acked[res.CommitLogOffset] = crc32.ChecksumIEEE(rec)
					mu.Unlock()
				}
			}(w)
		}
		time.Sleep(time.Duration(20+rng.IntN(120)) * time.Millisecond)
		s.abandon() // the machine stops: no final flush, no checkpoint
		cancel()
		wg.Wait()
		if err := lossy.Crash(); err != nil {
			t.Fatalf("round %d: simulating the power cut: %v", round, err)
		}
		// Reopen on the real filesystem and check every acknowledged message.
		s = openT(t, testConfig(dir))
		for off, crc := range acked {
			rec, err := s.ReadRecord(off)
			if err != nil || crc32.ChecksumIEEE(rec) != crc {
				t.Fatalf("round %d: acknowledged record at %d lost or changed after power loss: %v", round, off, err)
			}
		}
		var n int64
		for q := int32(0); q < 4; q++ {
			n += s.MaxOffset("P", q) - s.MinOffset("P", q)
			got := getAll(t, s, "P", q)
			if int64(len(got)) != s.MaxOffset("P", q) {
				t.Fatalf("round %d queue %d: %d readable of %d", round, q, len(got), s.MaxOffset("P", q))
			}
		}
		if c := countRecords(t, s); c != n {
			t.Fatalf("round %d: %d records, %d queue entries", round, c, n)
		}
		mu.Lock()
		lostTotal += attempted - len(acked)
		mu.Unlock()
		s.Close()
	}
	t.Logf("power-loss test: %d rounds, %d acknowledged messages all survived (%d attempts were not acknowledged)", rounds, len(acked), lostTotal)
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
}
