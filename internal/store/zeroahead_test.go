package store

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// zeroAheadConfig: ASYNC_FLUSH with writes copied into the mapping (the zeroer's path; the
// pool is off whatever testTransientPool says) and a window smaller than a segment, so the
// zeroer both runs ahead and gets caught up with.
func zeroAheadConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.TransientStorePoolEnable = false
	cfg.MappedFileSizeCommitLog = 1 << 20
	cfg.ZeroAheadBytes = 64 << 10
	return cfg
}

// TestZeroAheadKeepsEveryRecord: four writers put messages of random sizes across several
// segments while the zeroer writes zeros ahead of them; every message reads back intact,
// live, after an unclean stop (the zeroer restarts above the recovered end, which lies
// inside a page) and after more puts on the recovered log.
func TestZeroAheadKeepsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	cfg := zeroAheadConfig(dir)
	s := openT(t, cfg)
	if s.zero == nil {
		t.Fatal("zeroer not running on the mapped ASYNC_FLUSH path")
	}
	want := map[string][]byte{} // unique key -> body
	var mu sync.Mutex
	putSome := func(s *Store, round, n int) {
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for i := 0; i < n; i++ {
					m := newMsg("Z", int32(w), i, 1+r.IntN(6000))
					if _, err := s.Put(context.Background(), m); err != nil {
						t.Errorf("put: %v", err)
						return
					}
					mu.Lock()
					want[m.Property(message.PropertyUniqKey)] = m.Body
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
	}
	check := func(s *Store, stage string) {
		t.Helper()
		waitDispatched(t, s)
		got := 0
		for q := int32(0); q < 4; q++ {
			for _, m := range getAll(t, s, "Z", q) {
				body, ok := want[m.Property(message.PropertyUniqKey)]
				if !ok || !bytes.Equal(body, m.Body) {
					t.Fatalf("%s: message %s at %d: body differs from what was put", stage, m.Property(message.PropertyUniqKey), m.CommitLogOffset)
				}
				got++
			}
		}
		if got != len(want) {
			t.Fatalf("%s: read %d messages, put %d", stage, got, len(want))
		}
	}
	putSome(s, 1, 400) // about 5 MiB: five segments
	check(s, "live")
	s.abandon()

	s = openT(t, cfg)
	check(s, "after an unclean stop")
	putSome(s, 2, 200)
	check(s, "after more puts")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, cfg)
	defer s.Close()
	check(s, "after a clean reopen")
}

// TestZeroAheadInstantiatesPages: the pages a window ahead of the appender are in the page
// cache (mincore), where without the zeroer the first fault would still have to zero-fill
// them; with ZeroAheadBytes 0 there is no zeroer and they are not.
func TestZeroAheadInstantiatesPages(t *testing.T) {
	for _, window := range []int64{24 << 20, 0} {
		t.Run(fmt.Sprintf("window=%d", window), func(t *testing.T) {
			cfg := zeroAheadConfig(t.TempDir())
			cfg.MappedFileSizeCommitLog = 32 << 20
			cfg.ZeroAheadBytes = window
			s := openT(t, cfg)
			defer s.Close()
			put(t, s, newMsg("Z", 0, 0, 100))
			seg := s.cl.active
			// Far beyond any readahead the first faults do (read_ahead_kb may be 8 MiB):
			// 20-21 MiB into the segment.
			probe := seg.data[20<<20 : 21<<20]
			resident := func() int {
				vec := make([]byte, len(probe)/4096)
				if err := mincore(probe, vec); err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, v := range vec {
					n += int(v & 1)
				}
				return n
			}
			if window == 0 {
				if s.zero != nil {
					t.Fatal("zeroer running with ZeroAheadBytes 0")
				}
				if n := resident(); n != 0 {
					t.Fatalf("%d pages 20 MiB ahead already resident without a zeroer", n)
				}
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for resident() != len(probe)/4096 {
				if time.Now().After(deadline) {
					t.Fatalf("only %d of %d pages 20 MiB ahead resident after 10 s", resident(), len(probe)/4096)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// mincore reports in vec (one byte per page, bit 0 = resident) which pages of b are in the
// page cache (x/sys/unix has no wrapper).
func mincore(b, vec []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

// TestZeroAheadOnlyOnTheMappedPath: the ring (transient pool, and SYNC_FLUSH) writes with
// pwrite, and PreallocZero segments are zeroed whole before use, so there is nothing to zero
// ahead of.
func TestZeroAheadOnlyOnTheMappedPath(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
	}{
		{"pool", func(c *Config) { c.TransientStorePoolEnable = true }},
		{"sync", func(c *Config) { c.FlushDiskType = SyncFlush }},
		{"prealloc-zero", func(c *Config) { c.PreallocMode = PreallocZero }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := zeroAheadConfig(t.TempDir())
			c.edit(&cfg)
			s := openT(t, cfg)
			defer s.Close()
			if s.zero != nil {
				t.Fatal("zeroer running although there is nothing to zero ahead of")
			}
		})
	}
}
