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
	"sync/atomic"

	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// cqEntrySize is the size of one consume-queue entry: commit-log offset i64, size i32,
// tags code i64 (big-endian, RocketMQ's layout).
const cqEntrySize = 20

// cqEntry is a decoded consume-queue entry.
type cqEntry struct {
	offset   int64 // commit-log offset
	size     int32
	tagsCode int64
}

// cqFile is one consume-queue file mapped read-write; entries are written by the dispatcher
// straight into the mapping. The file's descriptor is closed once it is mapped (the mapping
// keeps the file), and the mapping is made durable with msync: a broker with tens of
// thousands of queues must not hold a descriptor per queue file (QA R8I-2: it ran out of
// descriptors and could not start again).
type cqFile struct {
	start int64 // byte offset in the queue (logical offset * 20)
	path  string
	data  []byte
	maps  *mapBudget
	// allocated is how many bytes from the file's start are known to have their blocks
	// reserved (dispatcher only). Files are sparse (thousands of queues must not reserve
	// 6 MB each), so put reserves cqAllocChunk (a page) at a time ahead of its writes: a write
	// through the mapping into a hole of a full file system raises SIGBUS, which kills the
	// process, while fallocate fails with ENOSPC (QA R10Q-6). It starts at 0 when a file is
	// opened: reserving a range already allocated costs one syscall and changes nothing.
	allocated int64
}

// cqAllocChunk is how much of a consume-queue file put reserves at a time: one page (204
// entries), what a write through the mapping would allocate anyway, so a queue costs the disk
// what it holds (a 256 KiB chunk made 649 queues take 164 MB: QA R10T-1). The reservation is
// an open, fallocate and close per page of entries.
const cqAllocChunk = 4 << 10

func (f *cqFile) close() error {
	if f.data == nil {
		return nil
	}
	err := unmap(f.data)
	f.data = nil
	f.maps.give()
	return err
}

// consumeQueue is the index of one (topic, queueId): entry i describes the i-th message of
// the queue. Only the dispatcher goroutine appends (and recovery truncates before it
// starts); readers take mu.RLock to find files and read entries below maxOffset. Retention
// and truncation take mu.Lock to change the file list.
type consumeQueue struct {
	topic    string
	queueID  int32
	dir      string
	fileSize int64
	fs       vfs.FS
	logger   *slog.Logger

	mu    sync.RWMutex
	files []*cqFile
	dead  bool // destroyed or closed; put becomes a no-op

	minOffset atomic.Int64 // first readable logical offset
	maxOffset atomic.Int64 // next logical offset (entries [min, max) are readable)
	synced    int64        // dispatcher/checkpoint: max offset covered by the last sync
	syncMu    sync.Mutex   // serialises sync (checkpointer) with file removal
	// newFiles is set when a file was created whose directory entries (the file in the
	// queue's directory, the queue directory in the topic's, the topic's in the root) are not
	// yet durable; the checkpointer syncs those directories before it claims the entries
	// (syncNewDirs). Creating a queue file thus costs no directory fsync on the dispatcher
	// (QA R8I-4: three per new queue made creating thousands of queues take minutes).
	newFiles atomic.Bool
	maps     *mapBudget // shared by the store's queues; nil: no budget
}

func newConsumeQueue(root, topic string, queueID int32, fileSize int64, fsys vfs.FS, logger *slog.Logger) *consumeQueue {
	return &consumeQueue{
		topic: topic, queueID: queueID, fileSize: fileSize, fs: fsys, logger: logger,
		dir: filepath.Join(root, topic, strconv.Itoa(int(queueID))),
	}
}

// load opens the queue's files and computes min/max offsets. Files must be contiguous.
func (q *consumeQueue) load() error {
	entries, err := q.fs.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("store: list %s: %w", q.dir, err)
	}
	var starts []int64
	for _, e := range entries {
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || len(e.Name()) != 20 {
			continue
		}
		starts = append(starts, v)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, start := range starts {
		if start%q.fileSize != 0 {
			return fmt.Errorf("store: consume-queue file %s/%020d is not aligned to the file size %d (was MappedFileSizeConsumeQueue changed?)", q.dir, start, q.fileSize)
		}
	}
	// Keep the newest contiguous run of files: anything before a gap is unreachable.
	first := len(starts) - 1
	for first > 0 && starts[first-1]+q.fileSize == starts[first] {
		first--
	}
	for _, start := range starts[:max(first, 0)] {
		q.logger.Warn("removing consume-queue file before a gap", "topic", q.topic, "queue", q.queueID, "file", segmentName(start))
		if err := q.fs.Remove(filepath.Join(q.dir, segmentName(start))); err != nil {
			return fmt.Errorf("store: remove %s: %w", segmentName(start), err)
		}
	}
	for _, start := range starts[max(first, 0):] {
		f, err := q.openFile(start, false)
		if err != nil {
			return err
		}
		q.files = append(q.files, f)
	}
	if len(q.files) == 0 {
		return nil
	}
	q.minOffset.Store(q.files[0].start / cqEntrySize)
	last := q.files[len(q.files)-1]
	n := int(q.fileSize / cqEntrySize)
	// No readahead while probing: each fault would read far more than the entry it needs
	// (QA R8I-4); consumers get the normal policy back for their sequential reads.
	_ = adviseRandom(last.data, true)
	used := usedEntries(last.data, n)
	_ = adviseRandom(last.data, false)
	q.maxOffset.Store(last.start/cqEntrySize + int64(used))
	q.synced = q.maxOffset.Load()
	return nil
}

// usedEntries returns how many of the n entries at the start of data are written. Entries
// are written in order, so the used part is a prefix: an exponential search from the start
// (1, 2, 4, ... entries) brackets its end, then a binary search finds it. A queue with few
// entries, the common case when a broker has thousands of queues, is thus settled on its
// first page; a plain binary search touched ~19 pages spread over each file, and faulting them
// in (with readahead) made a restart with 9,600 queues take 30 s (QA R8I-4).
func usedEntries(data []byte, n int) int {
	empty := func(i int) bool { return binary.BigEndian.Uint32(data[i*cqEntrySize+8:]) == 0 }
	lo, hi := 0, 1 // entries [0, lo) are used; the end is in [lo, hi)
	for hi <= n && !empty(hi-1) {
		lo, hi = hi, 2*hi
	}
	hi = min(hi, n+1)
	// The first empty entry is in [lo, hi-1] (or there is none: n).
	return lo + sort.Search(hi-1-lo, func(i int) bool { return empty(lo + i) })
}

func (q *consumeQueue) openFile(start int64, create bool) (*cqFile, error) {
	path := filepath.Join(q.dir, segmentName(start))
	flag := os.O_RDWR
	if create {
		if err := q.fs.MkdirAll(q.dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", q.dir, err)
		}
		flag |= os.O_CREATE
	}
	f, err := q.fs.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: open consume-queue file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: stat %s: %w", path, err)
	}
	if fi.Size() != q.fileSize {
		if err := f.Truncate(q.fileSize); err != nil {
			f.Close()
			return nil, fmt.Errorf("store: size consume-queue file %s: %w", path, err)
		}
	}
	if err := q.maps.take(); err != nil {
		f.Close()
		return nil, err
	}
	data, err := mapFile(f, q.fileSize, true)
	if err != nil {
		q.maps.give()
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		unmap(data)
		q.maps.give()
		return nil, fmt.Errorf("store: close consume-queue file %s: %w", path, err)
	}
	if create {
		q.newFiles.Store(true) // before any entry of the file can be dispatched
	}
	return &cqFile{start: start, path: path, data: data, maps: q.maps}, nil
}

// syncNewDirs makes the directory entries of files created since the last call durable:
// the queue's directory, its topic's and the root, each at most once per checkpoint (done
// records the directories already synced in this round).
func (q *consumeQueue) syncNewDirs(done map[string]bool) error {
	if !q.newFiles.Swap(false) {
		return nil
	}
	for _, d := range []string{q.dir, filepath.Dir(q.dir), filepath.Dir(filepath.Dir(q.dir))} {
		if done[d] && d != q.dir {
			continue
		}
		if err := q.fs.SyncDir(d); err != nil {
			q.newFiles.Store(true)
			return fmt.Errorf("store: sync %s: %w", d, err)
		}
		done[d] = true
	}
	return nil
}

// fileFor returns the file holding byte offset pos, or nil. Caller holds mu (any mode).
func (q *consumeQueue) fileFor(pos int64) *cqFile {
	if len(q.files) == 0 || pos < q.files[0].start {
		return nil
	}
	i := int((pos - q.files[0].start) / q.fileSize)
	if i >= len(q.files) {
		return nil
	}
	return q.files[i]
}

// put writes the entry for logical offset off. Dispatcher only. Offsets below maxOffset are
// ignored (replay is idempotent); an offset above maxOffset leaves a hole of empty entries,
// which readers skip. Writes happen under mu.RLock so that destroy/close never unmap a file
// being written.
func (q *consumeQueue) put(off int64, e cqEntry) error {
	max := q.maxOffset.Load()
	if off < max {
		return nil
	}
	pos := off * cqEntrySize
	q.mu.RLock()
	if q.dead {
		q.mu.RUnlock()
		return nil
	}
	f := q.fileFor(pos)
	if f == nil {
		q.mu.RUnlock()
		if err := q.addFile(pos - pos%q.fileSize); err != nil {
			return err
		}
		q.mu.RLock()
		if q.dead {
			q.mu.RUnlock()
			return nil
		}
		f = q.fileFor(pos)
	}
	defer q.mu.RUnlock()
	if off > max {
		q.logger.Warn("consume queue gap", "topic", q.topic, "queue", q.queueID, "expected", max, "got", off)
	}
	if end := pos - f.start + cqEntrySize; end > f.allocated {
		if err := q.reserve(f, end); err != nil {
			return err
		}
	}
	b := f.data[pos-f.start:]
	binary.BigEndian.PutUint64(b, uint64(e.offset))
	binary.BigEndian.PutUint32(b[8:], uint32(e.size))
	binary.BigEndian.PutUint64(b[12:], uint64(e.tagsCode))
	q.maxOffset.Store(off + 1)
	return nil
}

// reserve allocates f's blocks from f.allocated up to the chunk boundary past end (within the
// file). Dispatcher only. An error (ENOSPC) leaves nothing written.
func (q *consumeQueue) reserve(f *cqFile, end int64) error {
	upTo := min((end+cqAllocChunk-1)/cqAllocChunk*cqAllocChunk, q.fileSize)
	fh, err := q.fs.OpenFile(f.path, os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("store: open consume-queue file %s: %w", f.path, err)
	}
	err = fh.Allocate(f.allocated, upTo-f.allocated)
	if cerr := fh.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: allocate consume-queue file %s: %w", f.path, err)
	}
	f.allocated = upTo
	return nil
}

// addFile creates the file starting at byte offset start and appends it to the list; when
// it does not follow the last file (a gap) the older files are dropped.
func (q *consumeQueue) addFile(start int64) error {
	f, err := q.openFile(start, true)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dead {
		_ = f.close()
		return nil
	}
	if n := len(q.files); n > 0 && q.files[n-1].start+q.fileSize != start {
		q.logger.Warn("consume queue jumps past its files; older files dropped", "topic", q.topic, "queue", q.queueID)
		for _, old := range q.files {
			_ = old.close()
			_ = q.fs.Remove(old.path)
		}
		q.files = nil
		q.minOffset.Store(start / cqEntrySize)
	}
	if len(q.files) == 0 && q.maxOffset.Load() == 0 {
		q.minOffset.Store(start / cqEntrySize)
	}
	q.files = append(q.files, f)
	return nil
}

// read appends up to n entries starting at logical offset from to dst; it stops early at a
// missing file. Entries of holes have size 0.
func (q *consumeQueue) read(dst []cqEntry, from int64, n int) []cqEntry {
	max := q.maxOffset.Load()
	if from < q.minOffset.Load() {
		from = q.minOffset.Load()
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	for off := from; off < max && n > 0; off++ {
		pos := off * cqEntrySize
		f := q.fileFor(pos)
		if f == nil {
			break
		}
		b := f.data[pos-f.start:]
		dst = append(dst, cqEntry{
			offset:   int64(binary.BigEndian.Uint64(b)),
			size:     int32(binary.BigEndian.Uint32(b[8:])),
			tagsCode: int64(binary.BigEndian.Uint64(b[12:])),
		})
		n--
	}
	return dst
}

// entry reads one entry; ok is false outside [min, max) or for a hole.
func (q *consumeQueue) entry(off int64) (cqEntry, bool) {
	var buf [1]cqEntry
	if off < q.minOffset.Load() || off >= q.maxOffset.Load() {
		return cqEntry{}, false
	}
	got := q.read(buf[:0], off, 1)
	if len(got) == 0 || got[0].size <= 0 {
		return cqEntry{}, false
	}
	return got[0], true
}

// truncatePhysical drops every entry whose record ends past validEnd (recovery). Commit-log
// offsets grow along a queue, so the kept entries are a prefix.
func (q *consumeQueue) truncatePhysical(validEnd int64) error {
	min, max := q.minOffset.Load(), q.maxOffset.Load()
	cut := min + int64(sort.Search(int(max-min), func(i int) bool {
		e, ok := q.rawEntry(min + int64(i))
		return ok && e.size > 0 && e.offset+int64(e.size) > validEnd
	}))
	if cut >= max {
		return nil
	}
	q.logger.Warn("truncating consume queue past the valid commit log", "topic", q.topic, "queue", q.queueID,
		"from", cut, "to", max)
	q.mu.Lock()
	defer q.mu.Unlock()
	for off := cut; off < max; off++ {
		pos := off * cqEntrySize
		f := q.fileFor(pos)
		if f == nil {
			break
		}
		clear(f.data[pos-f.start : pos-f.start+cqEntrySize])
	}
	// Drop whole files past the cut, but keep the file holding the cut.
	keep := len(q.files)
	for keep > 1 && q.files[keep-1].start > cut*cqEntrySize {
		keep--
		f := q.files[keep]
		_ = f.close()
		if err := q.fs.Remove(f.path); err != nil {
			return fmt.Errorf("store: remove %s: %w", f.path, err)
		}
	}
	q.files = q.files[:keep]
	q.maxOffset.Store(cut)
	if q.minOffset.Load() > cut {
		q.minOffset.Store(cut)
	}
	q.synced = min64(q.synced, cut)
	return nil
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// rawEntry reads an entry including holes; ok false when no file holds it.
func (q *consumeQueue) rawEntry(off int64) (cqEntry, bool) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	pos := off * cqEntrySize
	f := q.fileFor(pos)
	if f == nil {
		return cqEntry{}, false
	}
	b := f.data[pos-f.start:]
	return cqEntry{
		offset:   int64(binary.BigEndian.Uint64(b)),
		size:     int32(binary.BigEndian.Uint32(b[8:])),
		tagsCode: int64(binary.BigEndian.Uint64(b[12:])),
	}, true
}

// trimBelow moves minOffset to the first entry whose record is at or above clMin and
// deletes files whose entries all point below it (never the last file, which keeps
// maxOffset alive). Retention only.
func (q *consumeQueue) trimBelow(clMin int64) error {
	min, max := q.minOffset.Load(), q.maxOffset.Load()
	newMin := min + int64(sort.Search(int(max-min), func(i int) bool {
		e, ok := q.rawEntry(min + int64(i))
		return !ok || (e.size > 0 && e.offset >= clMin)
	}))
	if newMin <= min {
		return nil
	}
	q.minOffset.Store(newMin)
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	var firstErr error
	for len(q.files) > 1 && q.files[0].start+q.fileSize <= newMin*cqEntrySize {
		f := q.files[0]
		q.files = q.files[1:]
		if err := f.close(); err != nil && firstErr == nil {
			firstErr = err
		}
		if err := q.fs.Remove(f.path); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("store: remove %s: %w", f.path, err)
		}
	}
	return firstErr
}

// sync makes the entries written so far durable (checkpointer); it returns the max offset
// it covered.
func (q *consumeQueue) sync() error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	max := q.maxOffset.Load()
	if max <= q.synced {
		return nil
	}
	from := q.synced * cqEntrySize
	q.mu.RLock()
	var files []*cqFile
	for _, f := range q.files {
		if f.start+q.fileSize > from && f.start < max*cqEntrySize {
			files = append(files, f)
		}
	}
	q.mu.RUnlock()
	for _, f := range files {
		// msync(MS_SYNC) of a shared file mapping is fdatasync of its range on Linux: the
		// entries and the file size set at creation are durable after it.
		if err := msync(f.data); err != nil {
			return fmt.Errorf("store: sync consume queue %s: %w", f.path, err)
		}
	}
	q.synced = max
	return nil
}

// close unmaps and closes every file.
func (q *consumeQueue) close() {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dead = true
	for _, f := range q.files {
		if err := f.close(); err != nil {
			q.logger.Error("close consume-queue file", "path", f.path, "err", err)
		}
	}
	q.files = nil
}

// destroy closes and deletes the queue's files and directory (DeleteTopic).
func (q *consumeQueue) destroy() error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dead = true
	var firstErr error
	for _, f := range q.files {
		_ = f.close()
		if err := q.fs.Remove(f.path); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	q.files = nil
	if err := q.fs.Remove(q.dir); err != nil && firstErr == nil && !os.IsNotExist(err) {
		firstErr = err
	}
	return firstErr
}
