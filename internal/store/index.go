package store

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// Index file layout (RocketMQ IndexFile): a 40-byte header (beginTimestamp i64,
// endTimestamp i64, beginPhyOffset i64, endPhyOffset i64, hashSlotCount i32, indexCount i32),
// then slotNum 4-byte slots each holding the number of the newest entry of its chain (0 =
// empty), then indexNum 20-byte entries (keyHash i32, phyOffset i64, timeDiff i32 seconds
// since beginTimestamp, prevIndex i32). Entry numbers start at 1. A key is indexed as
// topic + "#" + key; lookups compare only hashes, so QueryByKey verifies candidates against
// the records themselves.
const (
	idxHeaderSize = 40
	idxSlotSize   = 4
	idxEntrySize  = 20
)

type indexFile struct {
	path     string
	file     vfs.File
	data     []byte
	slots    int
	capacity int // entry slots; entry numbers run 1..capacity-1
	// allocated: every block of the file is reserved (fallocate), so writes through the
	// mapping cannot fault for want of space. A sparse file (made by an older version) is
	// allocated before its first write: a write into a hole of a full file system would
	// raise SIGBUS and kill the process (QA R10Q-6).
	allocated bool
}

// allocate reserves the file's blocks once; on failure (ENOSPC) the caller must not write.
func (f *indexFile) allocate() error {
	if f.allocated {
		return nil
	}
	if err := f.file.Allocate(0, int64(len(f.data))); err != nil {
		return fmt.Errorf("store: allocate index file %s: %w", f.path, err)
	}
	f.allocated = true
	return nil
}

func (f *indexFile) beginTS() int64  { return int64(binary.BigEndian.Uint64(f.data[0:])) }
func (f *indexFile) endTS() int64    { return int64(binary.BigEndian.Uint64(f.data[8:])) }
func (f *indexFile) beginPhy() int64 { return int64(binary.BigEndian.Uint64(f.data[16:])) }
func (f *indexFile) endPhy() int64   { return int64(binary.BigEndian.Uint64(f.data[24:])) }
func (f *indexFile) count() int      { return int(binary.BigEndian.Uint32(f.data[36:])) }

// index maps message keys to commit-log offsets. The dispatcher goroutine is the only
// writer; mu (a leaf lock) guards the file list and orders mapping writes before reads.
type index struct {
	dir      string
	slots    int
	capacity int
	fs       vfs.FS
	logger   *slog.Logger

	mu     sync.RWMutex
	files  []*indexFile
	from   int64 // records below this commit-log offset are already indexed
	synced int   // dispatcher/checkpoint: count synced in the last file
	seq    int64 // next file name
}

func newIndex(dir string, slots, capacity int, fsys vfs.FS, logger *slog.Logger) *index {
	return &index{dir: dir, slots: slots, capacity: capacity, fs: fsys, logger: logger}
}

func (x *index) fileSize() int64 {
	return idxHeaderSize + int64(x.slots)*idxSlotSize + int64(x.capacity)*idxEntrySize
}

func (x *index) load() error {
	if err := x.fs.MkdirAll(x.dir, 0o755); err != nil {
		return fmt.Errorf("store: create %s: %w", x.dir, err)
	}
	entries, err := x.fs.ReadDir(x.dir)
	if err != nil {
		return fmt.Errorf("store: list %s: %w", x.dir, err)
	}
	var seqs []int64
	for _, e := range entries {
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err == nil && len(e.Name()) == 20 {
			seqs = append(seqs, v)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, seq := range seqs {
		f, err := x.openFile(seq, false)
		if err != nil {
			return err
		}
		if f == nil {
			continue
		}
		x.files = append(x.files, f)
		x.seq = seq + 1
	}
	if n := len(x.files); n > 0 && x.files[n-1].count() > 1 {
		x.from = x.files[n-1].endPhy() + 1
		x.synced = x.files[n-1].count()
	}
	return nil
}

// openFile maps index file seq; for an existing file with a different geometry it returns
// nil (the file is skipped and left for retention).
func (x *index) openFile(seq int64, create bool) (*indexFile, error) {
	path := filepath.Join(x.dir, segmentName(seq))
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := x.fs.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: open index file: %w", err)
	}
	size := x.fileSize()
	if create {
		// Reserved, not sparse: see indexFile.allocated. ENOSPC is an error here.
		if err := f.Allocate(0, size); err != nil {
			f.Close()
			_ = x.fs.Remove(path)
			return nil, fmt.Errorf("store: allocate index file %s: %w", path, err)
		}
	} else if fi, err := f.Stat(); err != nil || fi.Size() < idxHeaderSize {
		f.Close()
		x.logger.Warn("skipping unreadable index file", "path", path)
		return nil, nil
	}
	fi, _ := f.Stat()
	data, err := mapFile(f, fi.Size(), true)
	if err != nil {
		f.Close()
		return nil, err
	}
	ixf := &indexFile{path: path, file: f, data: data, slots: x.slots, capacity: x.capacity, allocated: create}
	if create {
		binary.BigEndian.PutUint32(data[32:], uint32(x.slots))
		binary.BigEndian.PutUint32(data[36:], 1)
		if err := x.fs.SyncDir(x.dir); err != nil {
			ixf.close()
			return nil, fmt.Errorf("store: sync %s: %w", x.dir, err)
		}
		return ixf, nil
	}
	slots := int(binary.BigEndian.Uint32(data[32:]))
	capacity := (len(data) - idxHeaderSize - slots*idxSlotSize) / idxEntrySize
	if slots <= 0 || capacity <= 0 || ixf.count() < 1 || ixf.count() > capacity {
		ixf.close()
		x.logger.Warn("skipping index file with a bad header", "path", path)
		return nil, nil
	}
	ixf.slots, ixf.capacity = slots, capacity
	return ixf, nil
}

func (f *indexFile) close() {
	_ = unmap(f.data)
	f.data = nil
	_ = f.file.Close()
}

// javaHash is Java's String.hashCode of topic + "#" + key (UTF-16 units), made
// non-negative like RocketMQ's IndexFile.indexKeyHashMethod. It does not allocate.
func javaHash(topic, key string) int32 {
	h := hashAppend(0, topic)
	h = 31*h + '#'
	h = hashAppend(h, key)
	if h < 0 {
		h = -h
		if h < 0 { // MinInt32
			return 0
		}
	}
	return h
}

func hashAppend(h int32, s string) int32 {
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// add indexes key for the record at phy stored at storeTS. Caller holds mu.
func (x *index) add(topic, key string, phy, storeTS int64) error {
	f, err := x.writable(storeTS, phy)
	if err != nil {
		return err
	}
	h := javaHash(topic, key)
	slot := int(h) % f.slots
	slotPos := idxHeaderSize + slot*idxSlotSize
	prev := binary.BigEndian.Uint32(f.data[slotPos:])
	n := f.count()
	if int(prev) >= n {
		prev = 0
	}
	diff := (storeTS - f.beginTS()) / 1000
	if diff < 0 {
		diff = 0
	}
	if diff > 1<<31-1 {
		diff = 1<<31 - 1
	}
	pos := idxHeaderSize + f.slots*idxSlotSize + n*idxEntrySize
	b := f.data[pos:]
	binary.BigEndian.PutUint32(b, uint32(h))
	binary.BigEndian.PutUint64(b[4:], uint64(phy))
	binary.BigEndian.PutUint32(b[12:], uint32(diff))
	binary.BigEndian.PutUint32(b[16:], prev)
	binary.BigEndian.PutUint32(f.data[slotPos:], uint32(n))
	binary.BigEndian.PutUint64(f.data[8:], uint64(storeTS))
	binary.BigEndian.PutUint64(f.data[24:], uint64(phy))
	binary.BigEndian.PutUint32(f.data[36:], uint32(n+1))
	return nil
}

// writable returns the last file when it has room, else a new one. Caller holds mu.
func (x *index) writable(storeTS, phy int64) (*indexFile, error) {
	if n := len(x.files); n > 0 {
		f := x.files[n-1]
		if f.count() < f.capacity {
			if err := f.allocate(); err != nil {
				return nil, err
			}
			if f.count() == 1 {
				binary.BigEndian.PutUint64(f.data[0:], uint64(storeTS))
				binary.BigEndian.PutUint64(f.data[16:], uint64(phy))
			}
			return f, nil
		}
	}
	f, err := x.openFile(x.seq, true)
	if err != nil {
		return nil, err
	}
	x.seq++
	binary.BigEndian.PutUint64(f.data[0:], uint64(storeTS))
	binary.BigEndian.PutUint64(f.data[16:], uint64(phy))
	if n := len(x.files); n > 0 {
		// The full file is complete: make it durable now.
		if err := x.files[n-1].file.Sync(); err != nil {
			x.logger.Error("sync full index file", "err", err)
		}
	}
	x.files = append(x.files, f)
	x.synced = 0
	return f, nil
}

// query returns up to max commit-log offsets whose key hash matches, newest first, for
// records stored within [beginMs, endMs].
func (x *index) query(topic, key string, max int, beginMs, endMs int64) []int64 {
	h := javaHash(topic, key)
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []int64
	for i := len(x.files) - 1; i >= 0 && len(out) < max; i-- {
		f := x.files[i]
		n := f.count()
		if n <= 1 || f.endTS() < beginMs || f.beginTS() > endMs {
			continue
		}
		slotPos := idxHeaderSize + (int(h)%f.slots)*idxSlotSize
		cur := int(binary.BigEndian.Uint32(f.data[slotPos:]))
		for steps := 0; cur > 0 && cur < n && steps < n && len(out) < max; steps++ {
			b := f.data[idxHeaderSize+f.slots*idxSlotSize+cur*idxEntrySize:]
			eh := int32(binary.BigEndian.Uint32(b))
			phy := int64(binary.BigEndian.Uint64(b[4:]))
			ts := f.beginTS() + int64(binary.BigEndian.Uint32(b[12:]))*1000
			prev := int(binary.BigEndian.Uint32(b[16:]))
			// Timestamps are stored in whole seconds: widen the window by one second.
			if eh == h && ts >= beginMs-1000 && ts <= endMs {
				out = append(out, phy)
			}
			if prev >= cur {
				break
			}
			cur = prev
		}
	}
	return out
}

// trimBelow deletes index files whose entries all point below clMin (never the last).
func (x *index) trimBelow(clMin int64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for len(x.files) > 1 && x.files[0].endPhy() < clMin {
		f := x.files[0]
		x.files = x.files[1:]
		f.close()
		if err := x.fs.Remove(f.path); err != nil {
			return fmt.Errorf("store: remove index file %s: %w", f.path, err)
		}
	}
	return nil
}

// sync makes the last file durable (full files were synced when they filled up).
func (x *index) sync() error {
	x.mu.RLock()
	var f *indexFile
	var n int
	if len(x.files) > 0 {
		f = x.files[len(x.files)-1]
		n = f.count()
	}
	synced := x.synced
	x.mu.RUnlock()
	if f == nil || n == synced {
		return nil
	}
	if err := f.file.Sync(); err != nil {
		return fmt.Errorf("store: sync index %s: %w", f.path, err)
	}
	x.mu.Lock()
	if len(x.files) > 0 && x.files[len(x.files)-1] == f {
		x.synced = n
	}
	x.mu.Unlock()
	return nil
}

func (x *index) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, f := range x.files {
		f.close()
	}
	x.files = nil
}
