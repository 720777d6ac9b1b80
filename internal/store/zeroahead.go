package store

import (
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// zeroChunk is the size of each pwrite of zeros: small enough that an appender catching up
// with the zeroer waits for at most one (about 30 µs), large enough to write at the page
// cache's full speed (BenchmarkRawFreshPageCache: 256 KiB pwrites reach ~90 % of 1 MiB ones).
const zeroChunk = 256 << 10

// pageSize is the unit the zeroer works in: it never writes a page the appender has begun.
const pageSize = 4096

// zeroAhead keeps the page-cache pages of the active segment instantiated a window ahead of
// the appender, by writing zeros over them with pwrite on its own goroutine (ASYNC_FLUSH
// with writes copied into the mapping only).
//
// Why: the first touch of a page of a fallocated segment through the mapping is a page fault
// that reads the unwritten block, that is, zero-fills a new page-cache page with memset, on
// the appender's goroutine. On this machine that memset was 37 % of all CPU time of an
// async 4 KiB put benchmark and held the store to 12-14 % of the raw page-cache write rate,
// while a pwrite of zeros instantiates the same pages at about the raw rate and the faults
// on pages already cached are cheap (BENCHMARKS.md "Zeroing ahead of the appender").
//
// Safety: the zeroer only writes whole pages at or above next, and next only grows: the
// appender raises it past the end of every write before copying (claim), and the zeroer
// raises it past each chunk it wrote, holding mu across the pwrite. So a page holding
// appended bytes is never zeroed afterwards, and the appender never copies into a page whose
// zeroing is in progress. Zeroed pages beyond the appended end hold what the fallocated
// file reads as anyway (zeros), so recovery sees no difference; if the broker stays idle
// they are written back as zeros once (at most the window).
type zeroAhead struct {
	window  int64
	written func() int64 // the appender's published end
	logger  *slog.Logger
	zeros   []byte

	end  atomic.Int64 // == next, read without mu by the appender
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex // held across each pwrite
	seg    *segment   // the active segment, nil before the first
	next   int64      // absolute, page-aligned: below it every page is zeroed or being appended
	failed bool       // a pwrite failed: zeroing stops (the appender's faults still work)
}

func newZeroAhead(window int64, written func() int64, logger *slog.Logger) *zeroAhead {
	z := &zeroAhead{window: window, written: written, logger: logger, zeros: make([]byte, zeroChunk),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go z.run()
	return z
}

func roundUpPage(n int64) int64 { return (n + pageSize - 1) &^ (pageSize - 1) }

// setSegment makes seg, whose appends continue at from, the segment to zero ahead in.
// Appender only (putMu), before its first write to seg.
func (z *zeroAhead) setSegment(seg *segment, from int64) {
	z.mu.Lock()
	z.seg = seg
	z.next = roundUpPage(from)
	z.end.Store(z.next)
	z.mu.Unlock()
	z.poke()
}

// claim must be called by the appender before it copies bytes up to end (absolute) into the
// active segment: it waits for a zeroing in progress over those bytes and keeps the zeroer
// above them. Lock-free while the zeroer is ahead.
func (z *zeroAhead) claim(end int64) {
	if ahead := z.end.Load() - end; ahead >= 0 {
		if ahead < z.window/2 {
			z.poke()
		}
		return
	}
	z.mu.Lock()
	if end > z.next {
		z.next = roundUpPage(end)
		z.end.Store(z.next)
	}
	z.mu.Unlock()
	z.poke()
}

func (z *zeroAhead) poke() {
	select {
	case z.wake <- struct{}{}:
	default:
	}
}

func (z *zeroAhead) run() {
	defer close(z.done)
	for {
		select {
		case <-z.stop:
			return
		case <-z.wake:
		}
		for z.step() {
			select {
			case <-z.stop:
				return
			default:
			}
		}
	}
}

// step zeroes one chunk at next when the window is not full; false when there is nothing
// to do.
func (z *zeroAhead) step() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	seg := z.seg
	if z.failed || seg == nil || z.next >= seg.end() || z.next-z.written() >= z.window {
		return false
	}
	start := z.next
	n := min(int64(zeroChunk), seg.end()-start)
	// fileMu only to read the descriptor, not across the pwrite: the flusher holds it across
	// fdatasync, which can take long, and an appender that caught up with the zeroer would
	// then wait for the disk on an ASYNC_FLUSH put. os.File reference-counts its descriptor,
	// so a Close racing this WriteAt (a full, flushed segment after a roll) makes it fail
	// with ErrClosed; it never writes to a reused descriptor.
	seg.fileMu.Lock()
	f := seg.file
	seg.fileMu.Unlock()
	if f == nil {
		return false // closed: no longer the active segment; setSegment moves on
	}
	if _, err := f.WriteAt(z.zeros[:n], start-seg.start); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return false
		}
		// Not a store failure: the appender's page faults still instantiate the pages.
		z.failed = true
		z.logger.Warn("commit log: zeroing ahead of the appender stopped", "segment", seg.path, "err", err)
		return false
	}
	z.next = start + n
	z.end.Store(z.next)
	return true
}

// close stops the goroutine. Idempotent is not needed: Store.Close calls it once.
func (z *zeroAhead) close() {
	close(z.stop)
	<-z.done
}
