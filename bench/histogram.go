package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram is a lock-free log-linear histogram of durations with microsecond resolution:
// values below 128 µs are exact, larger ones fall into buckets 1/64 of a power of two wide
// (relative error below 1.6 %). Record is safe for concurrent use; the zero value is ready.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sumUS  atomic.Uint64
	maxUS  atomic.Uint64
}

const (
	histSub     = 64
	histBuckets = 64*histSub + 2*histSub
)

func bucketOf(us uint64) int {
	if us < 2*histSub {
		return int(us)
	}
	shift := bits.Len64(us) - 7 // us>>shift in [64,128)
	return shift*histSub + int(us>>uint(shift))
}

// bucketLow is the smallest value that falls into bucket i.
func bucketLow(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	m := uint64(i - shift*histSub)
	return m << uint(shift)
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	h.sumUS.Add(us)
	for {
		m := h.maxUS.Load()
		if us <= m || h.maxUS.CompareAndSwap(m, us) {
			break
		}
	}
}

// Snapshot is a point-in-time copy of a Histogram.
type Snapshot struct {
	counts [histBuckets]uint64
	N      uint64
	SumUS  uint64
	MaxUS  uint64
}

// Snapshot copies the histogram; with reset, it also zeroes it (each observation lands in
// exactly one snapshot even under concurrent Record calls, modulo N/Sum/Max which are
// approximate across the boundary).
func (h *Histogram) Snapshot(reset bool) *Snapshot {
	s := &Snapshot{}
	for i := range h.counts {
		if reset {
			s.counts[i] = h.counts[i].Swap(0)
		} else {
			s.counts[i] = h.counts[i].Load()
		}
		s.N += s.counts[i]
	}
	if reset {
		s.SumUS = h.sumUS.Swap(0)
		s.MaxUS = h.maxUS.Swap(0)
		h.n.Store(0)
	} else {
		s.SumUS = h.sumUS.Load()
		s.MaxUS = h.maxUS.Load()
	}
	return s
}

// Quantile returns the q-quantile (0 < q <= 1) as the upper bound of its bucket (0 when
// empty).
func (s *Snapshot) Quantile(q float64) time.Duration {
	if s.N == 0 {
		return 0
	}
	rank := uint64(q * float64(s.N))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			hi := bucketLow(i+1) - 1
			if i+1 >= histBuckets {
				hi = bucketLow(i)
			}
			if hi > s.MaxUS && s.MaxUS >= bucketLow(i) {
				hi = s.MaxUS
			}
			return time.Duration(hi) * time.Microsecond
		}
	}
	return time.Duration(s.MaxUS) * time.Microsecond
}

// Mean returns the average observation.
func (s *Snapshot) Mean() time.Duration {
	if s.N == 0 {
		return 0
	}
	return time.Duration(s.SumUS/s.N) * time.Microsecond
}

// Max returns the largest observation.
func (s *Snapshot) Max() time.Duration { return time.Duration(s.MaxUS) * time.Microsecond }
