package bench

import (
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestBucketsAreMonotoneAndTight(t *testing.T) {
	prev := -1
	for _, us := range []uint64{0, 1, 63, 64, 127, 128, 129, 255, 256, 1000, 65535, 1 << 20, 1<<36 - 1} {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucketOf(%d)=%d < previous %d", us, b, prev)
		}
		prev = b
		if lo := bucketLow(b); lo > us || (bucketLow(b+1) <= us) {
			t.Fatalf("value %d not within bucket %d [%d,%d)", us, b, lo, bucketLow(b+1))
		}
		if us >= 128 {
			width := bucketLow(b+1) - bucketLow(b)
			if float64(width)/float64(us) > 1.0/64+1e-9 {
				t.Fatalf("bucket of %d is %d wide (> 1/64)", us, width)
			}
		}
	}
}

func TestQuantilesMatchExactWithinError(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]int, 20000)
	var wg sync.WaitGroup
	for i := range vals {
		vals[i] = 50 + r.IntN(20000) // µs
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(vals); i += 4 {
				h.Record(time.Duration(vals[i]) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	sort.Ints(vals)
	s := h.Snapshot(false)
	if s.N != uint64(len(vals)) {
		t.Fatalf("N=%d", s.N)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := float64(vals[int(q*float64(len(vals)))-1])
		got := float64(s.Quantile(q).Microseconds())
		if got < exact*0.98 || got > exact*1.02 {
			t.Errorf("q%.3f = %vµs, exact %vµs", q, got, exact)
		}
	}
	if s.Max() != time.Duration(vals[len(vals)-1])*time.Microsecond {
		t.Errorf("max = %v", s.Max())
	}
	if s.Mean() <= 0 {
		t.Error("mean must be positive")
	}
}

func TestSnapshotReset(t *testing.T) {
	var h Histogram
	h.Record(time.Millisecond)
	if s := h.Snapshot(true); s.N != 1 || s.Quantile(0.5) < 980*time.Microsecond || s.Quantile(0.5) > time.Millisecond {
		t.Fatalf("first snapshot N=%d p50=%v", s.N, s.Quantile(0.5))
	}
	if s := h.Snapshot(true); s.N != 0 || s.Quantile(0.99) != 0 {
		t.Fatalf("after reset N=%d", s.N)
	}
}
