package store

import (
	"errors"
	"fmt"

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
