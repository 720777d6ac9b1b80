package store

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// Flush disk types (RocketMQ flushDiskType).
const (
	AsyncFlush = "ASYNC_FLUSH"
	SyncFlush  = "SYNC_FLUSH"
)

// Preallocation modes for commit-log segments (see docs/store.md for the measurement).
const (
	// PreallocZero writes zeros over the whole segment before it is used, so appends
	// overwrite initialised blocks in place and fdatasync has no extent metadata to update.
	PreallocZero = "zero"
	// PreallocFallocate reserves blocks with fallocate(2): fast to create, but the first
	// write to each block converts an unwritten extent, which fdatasync must journal.
	PreallocFallocate = "fallocate"
)

// Config configures a Store. RocketMQ's broker.conf key is given in each comment, followed by
// the default DefaultConfig sets.
type Config struct {
	// StorePathRootDir (storePathRootDir): commit log in <root>/commitlog, consume queues in
	// <root>/consumequeue/<topic>/<queueId>, index in <root>/index, plus the files lock,
	// abort and checkpoint. Required.
	StorePathRootDir string
	// MappedFileSizeCommitLog (mappedFileSizeCommitLog): commit-log segment size; 1 GiB.
	MappedFileSizeCommitLog int64
	// MappedFileSizeConsumeQueue (mappedFileSizeConsumeQueue): consume-queue file size, a
	// multiple of 20; 300000*20.
	MappedFileSizeConsumeQueue int64
	// FlushDiskType (flushDiskType): AsyncFlush (default) or SyncFlush (group commit: Put
	// returns after an fdatasync covers the message).
	FlushDiskType string
	// TransientStorePoolEnable (transientStorePoolEnable): with ASYNC_FLUSH, stage appends in
	// a resident in-memory ring and write them to the segments with large pwrites from a
	// committer goroutine (RocketMQ's transient store pool), instead of copying every put
	// into the shared mapping: no page fault per new page on the put path and no
	// write-protect faults or TLB shootdowns when the flusher writes pages back. Puts become
	// readable (dispatched, served) once committed, normally microseconds later. As in
	// RocketMQ, an acknowledged put that is still in the ring when the process dies (kill -9)
	// is lost, so it is off by default. With SYNC_FLUSH the ring is always used (this flag
	// changes nothing): a put is acknowledged only after the flusher has committed and
	// fdatasynced it, so staging costs no durability, and with 128 writers it measured 1.6x
	// the mapped path's rate (BENCHMARKS.md). false.
	TransientStorePoolEnable bool
	// RecoverTruncateCorrupt lets recovery truncate the log at a damaged record that lies
	// below the checkpoint's flushed offset (acknowledged, fsynced data). By default (false)
	// Open refuses with ErrCorrupt there; set it to start anyway: the cut bytes are moved to
	// <root>/quarantine first, as for damage past the checkpoint. Rocketry key
	// recoverTruncateCorrupt. Default false.
	RecoverTruncateCorrupt bool
	// transientRingSize overrides the ring size (tests: small rings exercise wrap-around,
	// full-ring commits and writes larger than the ring). 0 = default.
	transientRingSize int
	// FlushIntervalCommitLog (flushIntervalCommitLog): async flush period; 500ms.
	FlushIntervalCommitLog time.Duration
	// SyncFlushTimeout (syncFlushTimeout): longest a sync Put waits for its fdatasync before
	// returning ErrFlushTimeout; 5s.
	SyncFlushTimeout time.Duration
	// FileReservedTime (fileReservedTime, hours there): commit-log segments older than this
	// are deleted at DeleteWhen or under disk pressure; 72h.
	FileReservedTime time.Duration
	// DeleteWhen (deleteWhen): hours of the day (0-23, ';' separated) when expired segments
	// are deleted; "04".
	DeleteWhen string
	// DiskMaxUsedSpaceRatio (diskMaxUsedSpaceRatio): above this disk usage percentage
	// expired segments are deleted at any hour; 75.
	DiskMaxUsedSpaceRatio int
	// DiskSpaceCleanForciblyRatio (diskSpaceCleanForciblyRatio): above this percentage the
	// oldest segments are deleted even before they expire (never the active one); 85.
	DiskSpaceCleanForciblyRatio int
	// DiskSpaceWarningLevelRatio (diskSpaceWarningLevelRatio): above this percentage puts
	// fail with ErrDiskFull until usage drops again; reads continue; 90.
	DiskSpaceWarningLevelRatio int
	// MaxMessageSize (maxMessageSize): largest body accepted; 4 MiB.
	MaxMessageSize int
	// MessageIndexEnable (messageIndexEnable): build the key/unique-id index; true.
	MessageIndexEnable bool
	// MaxHashSlotNum (maxHashSlotNum): hash slots per index file; 500000 (RocketMQ 5000000).
	// MaxIndexNum (maxIndexNum): entries per index file; 2000000 (RocketMQ 20000000).
	// Our defaults make one index file 42 MB instead of 420 MB, so a small or test broker
	// does not reserve 420 MB of disk for its first file; a full file simply rolls over.
	MaxHashSlotNum, MaxIndexNum int
	// StoreHost (brokerIP1:listenPort): written as STOREHOST in every record and used in
	// offset message ids. The zero value writes 0.0.0.0:0.
	StoreHost netip.AddrPort
	// FS is the filesystem seam; nil means the real OS filesystem (vfs.Default).
	FS vfs.FS
	// TagsCode computes the consume-queue tag code of a message; nil means
	// message.TagsHashCode(props[TAGS]). The broker overrides it for delay/timer topics.
	TagsCode func(topic string, props map[string]string) int64
	// DiskUsage returns the used fraction (0.0-1.0) of the filesystem holding path; nil
	// means statfs. Tests simulate usage with it.
	DiskUsage func(path string) (float64, error)

	// AccessMessageInMemoryMaxRatio (accessMessageInMemoryMaxRatio): the share of physical
	// memory, in percent, taken as the in-memory window: a message whose commit-log distance
	// from the end of the log is within it counts as in memory (InMemory; RocketMQ's rule
	// for where a new consumer group starts). 1-100; 40.
	AccessMessageInMemoryMaxRatio int
	// PhysicalMemory is the RAM in bytes the window is a share of; 0 = the machine's
	// (sysinfo). Tests set it to exercise the window with small logs.
	PhysicalMemory int64

	// PreallocMode is how new commit-log segments are prepared (ahead of need, by a
	// background goroutine): PreallocFallocate (default when empty) or PreallocZero. With
	// the store's write path (copies into the mapping) fallocated segments measured faster
	// for both flush modes, pre-zeroing also writes every byte twice; see docs/store.md.
	PreallocMode string
	// ZeroAheadBytes is how far ahead of the appender a background goroutine instantiates
	// the active segment's page-cache pages by writing zeros (ASYNC_FLUSH without the
	// transient store pool: the path that copies puts into the mapping). It takes the page
	// faults' zero-filling off the put path; 0 turns it off. Rocketry-specific (RocketMQ's
	// warmMapedFileEnable pre-touches whole files instead); 32 MiB. See zeroahead.go.
	ZeroAheadBytes int64
	// CleanInterval is the period of the retention / disk-usage check; 10s (RocketMQ
	// cleanResourceInterval).
	CleanInterval time.Duration
	// CheckpointInterval is the period of checkpoint writes (flushed and dispatched
	// offsets); 1s.
	CheckpointInterval time.Duration
}

// DefaultConfig returns RocketMQ's defaults with an empty StorePathRootDir.
func DefaultConfig() Config {
	return Config{
		MappedFileSizeCommitLog:       1 << 30,
		MappedFileSizeConsumeQueue:    300000 * cqEntrySize,
		FlushDiskType:                 AsyncFlush,
		FlushIntervalCommitLog:        500 * time.Millisecond,
		SyncFlushTimeout:              5 * time.Second,
		FileReservedTime:              72 * time.Hour,
		DeleteWhen:                    "04",
		DiskMaxUsedSpaceRatio:         75,
		DiskSpaceCleanForciblyRatio:   85,
		DiskSpaceWarningLevelRatio:    90,
		MaxMessageSize:                4 << 20,
		MessageIndexEnable:            true,
		AccessMessageInMemoryMaxRatio: 40,
		MaxHashSlotNum:                500000,
		MaxIndexNum:                   2000000,
		ZeroAheadBytes:                32 << 20,
		CleanInterval:                 10 * time.Second,
		CheckpointInterval:            time.Second,
	}
}

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("store: invalid config")

// Validate checks c and reports the first problem.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.StorePathRootDir == "":
		return bad("StorePathRootDir is empty")
	case c.MappedFileSizeCommitLog < 64<<10:
		return bad("MappedFileSizeCommitLog %d < 64 KiB", c.MappedFileSizeCommitLog)
	case c.MappedFileSizeCommitLog%4096 != 0:
		return bad("MappedFileSizeCommitLog %d is not a multiple of 4096", c.MappedFileSizeCommitLog)
	case c.MappedFileSizeConsumeQueue < cqEntrySize || c.MappedFileSizeConsumeQueue%cqEntrySize != 0:
		return bad("MappedFileSizeConsumeQueue %d is not a positive multiple of %d", c.MappedFileSizeConsumeQueue, cqEntrySize)
	case c.FlushDiskType != AsyncFlush && c.FlushDiskType != SyncFlush:
		return bad("FlushDiskType %q (want %s or %s)", c.FlushDiskType, AsyncFlush, SyncFlush)
	case c.FlushIntervalCommitLog <= 0:
		return bad("FlushIntervalCommitLog must be positive")
	case c.SyncFlushTimeout <= 0:
		return bad("SyncFlushTimeout must be positive")
	case c.FileReservedTime <= 0:
		return bad("FileReservedTime must be positive")
	case c.MaxMessageSize <= 0:
		return bad("MaxMessageSize must be positive")
	case int64(c.MaxMessageSize)+int64(message.MaxPropertiesSize)+1024 > c.MappedFileSizeCommitLog:
		return bad("MaxMessageSize %d does not fit a %d-byte segment", c.MaxMessageSize, c.MappedFileSizeCommitLog)
	case c.MaxHashSlotNum <= 0 || c.MaxIndexNum <= 0:
		return bad("MaxHashSlotNum and MaxIndexNum must be positive")
	case c.PreallocMode != "" && c.PreallocMode != PreallocZero && c.PreallocMode != PreallocFallocate:
		return bad("PreallocMode %q", c.PreallocMode)
	case c.CleanInterval <= 0 || c.CheckpointInterval <= 0:
		return bad("CleanInterval and CheckpointInterval must be positive")
	case c.AccessMessageInMemoryMaxRatio < 1 || c.AccessMessageInMemoryMaxRatio > 100:
		return bad("AccessMessageInMemoryMaxRatio %d outside 1-100", c.AccessMessageInMemoryMaxRatio)
	case c.PhysicalMemory < 0:
		return bad("PhysicalMemory %d is negative", c.PhysicalMemory)
	case c.ZeroAheadBytes < 0:
		return bad("ZeroAheadBytes %d is negative", c.ZeroAheadBytes)
	}
	for _, r := range []struct {
		name string
		v    int
	}{{"DiskMaxUsedSpaceRatio", c.DiskMaxUsedSpaceRatio}, {"DiskSpaceCleanForciblyRatio", c.DiskSpaceCleanForciblyRatio}, {"DiskSpaceWarningLevelRatio", c.DiskSpaceWarningLevelRatio}} {
		if r.v < 1 || r.v > 99 {
			return bad("%s %d outside 1-99", r.name, r.v)
		}
	}
	if _, err := parseDeleteWhen(c.DeleteWhen); err != nil {
		return bad("DeleteWhen: %v", err)
	}
	return nil
}

// parseDeleteWhen parses "04" or "04;16" into a set of hours.
func parseDeleteWhen(s string) ([24]bool, error) {
	var hours [24]bool
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		h, err := strconv.Atoi(part)
		if err != nil || h < 0 || h > 23 {
			return hours, fmt.Errorf("hour %q not in 0-23", part)
		}
		hours[h] = true
	}
	return hours, nil
}

// preallocMode resolves the default PreallocMode.
func (c *Config) preallocMode() string {
	if c.PreallocMode != "" {
		return c.PreallocMode
	}
	return PreallocFallocate
}

// transientRingDefault is the ring size of the transient store pool.
const transientRingDefault = 4 << 20

// transientRing reports whether appends are staged in the ring, and its size. 4 MiB keeps
// the bytes the committer copies out in the CPU caches (a 32 MiB ring measured 2x slower: the
// committer then read them back from memory); a record larger than the ring is written
// directly (see appendBytes). SYNC_FLUSH always stages (see TransientStorePoolEnable).
func (c *Config) transientRing() (bool, int) {
	if !c.TransientStorePoolEnable && c.FlushDiskType != SyncFlush {
		return false, 0
	}
	if c.transientRingSize > 0 {
		return true, c.transientRingSize
	}
	return true, transientRingDefault
}

// memWindow is the in-memory window in bytes: AccessMessageInMemoryMaxRatio percent of
// PhysicalMemory, or of the machine's RAM when that is 0 (8 GiB assumed if sysinfo fails).
func memWindow(c Config) int64 {
	total := c.PhysicalMemory
	if total == 0 {
		total = 8 << 30
		var si unix.Sysinfo_t
		if unix.Sysinfo(&si) == nil && si.Totalram > 0 {
			total = int64(si.Totalram) * int64(max(si.Unit, 1))
		}
		if lim := cgroupMemoryLimit(); lim > 0 && lim < total {
			total = lim // a container's limit, as a container-aware JVM reports it
		}
	}
	return total / 100 * int64(c.AccessMessageInMemoryMaxRatio)
}

// cgroupMemoryLimit is the memory limit of the process's cgroup (v2 memory.max, else v1
// memory.limit_in_bytes), 0 when there is none or it cannot be read.
func cgroupMemoryLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && v > 0 {
			return v
		}
		return 0 // "max": no limit
	}
	return 0
}
