package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// mapFile maps the first size bytes of f, shared, read-only or read-write.
func mapFile(f vfs.File, size int64, writable bool) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), prot, unix.MAP_SHARED)
	if errors.Is(err, unix.ENOMEM) {
		// Usually the per-process mapping limit, not memory (QA R8I-6).
		return nil, fmt.Errorf("store: mmap %s: %w (the process may be at vm.max_map_count: raise it with sysctl)", f.Name(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: mmap %s: %w", f.Name(), err)
	}
	return b, nil
}

func unmap(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// msync flushes dirty pages of a writable mapping (consume queue and index files).
func msync(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.Msync(b, unix.MS_SYNC)
}

// adviseRandom switches a mapping to random access (no readahead on faults) or back to the
// normal policy. Errors are advisory only.
func adviseRandom(b []byte, random bool) error {
	if len(b) == 0 {
		return nil
	}
	advice := unix.MADV_NORMAL
	if random {
		advice = unix.MADV_RANDOM
	}
	return unix.Madvise(b, advice)
}

// mapBudget bounds the consume-queue files mapped at once below the kernel's per-process
// limit on mappings (vm.max_map_count), keeping a reserve for everything else that maps
// memory: the commit log and index, and above all the Go runtime, which dies ("fatal error:
// runtime: cannot allocate memory") when it cannot map heap (QA R8I-6). Past the budget a new
// queue file fails like any I/O error (the store stops taking writes, the process lives and
// says why). A nil *mapBudget never refuses.
type mapBudget struct {
	used   atomic.Int64
	limit  int64 // 0: unlimited
	warned atomic.Bool
	logger *slog.Logger
}

// newMapBudget reads vm.max_map_count; the budget is the limit minus a reserve of a quarter
// of it (at least 4096). Without the file (not Linux) there is no budget.
func newMapBudget(logger *slog.Logger) *mapBudget {
	b := &mapBudget{logger: logger}
	raw, err := os.ReadFile("/proc/sys/vm/max_map_count")
	if err != nil {
		return b
	}
	limit, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || limit <= 0 {
		return b
	}
	b.limit = max(limit-max(limit/4, 4096), limit/2)
	return b
}

// take reserves one mapping; it fails past the budget and warns once when half is used.
func (b *mapBudget) take() error {
	if b == nil {
		return nil
	}
	n := b.used.Add(1)
	if b.limit > 0 && n > b.limit {
		b.used.Add(-1)
		return fmt.Errorf("store: %d consume-queue files mapped, the budget under vm.max_map_count: raise it (sysctl -w vm.max_map_count=655360)", n-1)
	}
	if b.limit > 0 && n*2 >= b.limit && !b.warned.Swap(true) {
		b.logger.Warn("consume-queue files use half of their mapping budget under vm.max_map_count; raise it (sysctl -w vm.max_map_count=655360)",
			"mappedQueueFiles", n, "budget", b.limit)
	}
	return nil
}

// give returns a mapping taken with take.
func (b *mapBudget) give() {
	if b != nil {
		b.used.Add(-1)
	}
}
