package store

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Page pre-faulting ("warming", RocketMQ's warmMappedFile in spirit): a copy into a fresh
// page of the mapping costs a page fault that allocates the page-cache page; done on the put
// path that fault is most of a small put's cost. The warmer goroutine keeps the pages from
// the write position up to warmWindow ahead populated with MADV_POPULATE_READ, which creates
// the page-cache pages and mappings without dirtying anything (no extra disk writes), so the
// appender only takes the cheap write-protect fault. Best effort: the first madvise error
// (an old kernel) turns it off.
const (
	warmWindow       = 8 << 20
	warmStep         = 1 << 20
	madvPopulateRead = 22 // MADV_POPULATE_READ, Linux 5.14+
)

// warmOff disables the warmer for stores opened afterwards (benchmarks compare both).
var warmOff atomic.Bool

type warmer struct {
	req      chan struct{}
	touched  atomic.Int64 // absolute offset up to which pages are populated
	disabled atomic.Bool
}

// maybeWarm asks the warmer to move ahead when the write position nears the warm edge.
// Appender only.
func (c *commitLog) maybeWarm(wrote int64) {
	if !c.mapWrites || c.warm.disabled.Load() || wrote+warmWindow/2 < c.warm.touched.Load() {
		return
	}
	select {
	case c.warm.req <- struct{}{}:
	default:
	}
}

// warmLoop is the warmer goroutine (owned by commitLog, stopped with the preparer).
func (c *commitLog) warmLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.warm.req:
		}
		c.warmOnce()
	}
}

func (c *commitLog) warmOnce() {
	pos := c.written.Load()
	seg := c.find(pos)
	if seg == nil {
		return
	}
	defer seg.release()
	from := max(c.warm.touched.Load(), pos)
	from -= from % 4096
	end := min(pos+warmWindow, seg.end())
	for t := from; t < end; t += warmStep {
		select {
		case <-c.stop:
			return
		default:
		}
		n := min(warmStep, end-t)
		if err := unix.Madvise(seg.data[t-seg.start:t-seg.start+n], madvPopulateRead); err != nil {
			c.warm.disabled.Store(true)
			c.logger.Info("page pre-faulting disabled", "err", err)
			return
		}
		c.warm.touched.Store(t + n)
	}
}
