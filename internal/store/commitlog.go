package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// segment is one commit-log file: a fixed-size, preallocated file named by its 20-digit
// start offset, read through a shared mapping and written either by copying into that
// mapping (real filesystem) or with WriteAt through the vfs (any other FS, so tests can
// inject write faults). refs counts the owner (the segment list) plus every reader holding a slice of
// data; the mapping is released when the count drops to zero, so retention never unmaps
// under a reader.
type segment struct {
	start int64
	size  int64
	path  string
	// file is the segment's descriptor, closed (nil) once the segment is full and flushed:
	// it is then only read, through data, so a long retention does not hold a descriptor per
	// segment (QA R8I-7). fileMu guards the nil-ing against sync and release.
	fileMu sync.Mutex
	file   vfs.File
	data   []byte

	mapWrites bool // writes copy into data (mapped read-write) instead of WriteAt

	// sealed is, once the appender wrote the end-of-segment blank marker, the absolute end
	// of the marker (ring mode: the committer writes nothing of the segment past it).
	sealed atomic.Int64

	refs    atomic.Int32
	removed atomic.Bool // file unlinked; closing happens at refs == 0
	fs      vfs.FS
	logger  *slog.Logger
}

func (s *segment) end() int64 { return s.start + s.size }

// write stores b at byte position pos of the segment. Appender only (putMu).
func (s *segment) write(b []byte, pos int64) error {
	if s.mapWrites {
		copy(s.data[pos:], b)
		return nil
	}
	_, err := s.file.WriteAt(b, pos)
	return err
}

// acquire takes a reader reference; false when the segment is already released.
func (s *segment) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops one reference and frees the mapping and descriptor on the last one.
func (s *segment) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	if err := unmap(s.data); err != nil {
		s.logger.Error("munmap commit-log segment", "path", s.path, "err", err)
	}
	s.data = nil
	if err := s.closeFile(); err != nil {
		s.logger.Error("close commit-log segment", "path", s.path, "err", err)
	}
}

// sync makes the segment's written bytes durable (fdatasync). A segment whose descriptor was
// closed (closeFile) was already fully flushed.
func (s *segment) sync() error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.file == nil {
		return nil
	}
	return s.file.Sync()
}

// closeFile closes the descriptor, once; the mapping stays. Only for a segment that will
// not be written or flushed again (full and flushed), or on the last release.
func (s *segment) closeFile() error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

// closeFlushedFiles closes the descriptors of the segments that end at or below flushed,
// except the newest (the appender's). Their bytes are durable and they are only read now.
func (c *commitLog) closeFlushedFiles(flushed int64) {
	c.mu.RLock()
	segs := c.segs
	if len(segs) > 0 {
		segs = segs[:len(segs)-1]
	}
	var done []*segment
	for _, sg := range segs {
		if sg.end() > flushed {
			break
		}
		sg.fileMu.Lock()
		open := sg.file != nil
		sg.fileMu.Unlock()
		if open && sg.acquire() {
			done = append(done, sg)
		}
	}
	c.mu.RUnlock()
	for _, sg := range done {
		if err := sg.closeFile(); err != nil {
			c.logger.Warn("close flushed commit-log segment", "path", sg.path, "err", err)
		}
		sg.release()
	}
}

func segmentName(start int64) string { return fmt.Sprintf("%020d", start) }

// commitLog owns the segment list and the appender position. The list is guarded by mu;
// the append position (wrote, active) is owned by whoever holds Store.putMu. written is the
// published end of appended bytes: everything below it is readable and consists of whole
// records.
type commitLog struct {
	fs        vfs.FS
	dir       string
	segSize   int64
	prealloc  string
	mapWrites bool // see segment.write
	logger    *slog.Logger

	mu   sync.RWMutex
	segs []*segment // ascending start, contiguous

	written atomic.Int64 // published append end (max physical offset)
	// ring, when not nil, stages appends (Config.TransientStorePoolEnable): bytes of log
	// position p live at ring[p % len(ring)] from the append until the commit that writes
	// them to their segment. buffered is the staged end (written <= buffered); without a ring
	// buffered is unused. Appends need buffered - written + n <= len(ring).
	ring      []byte
	buffered  atomic.Int64
	active    *segment // putMu
	wrote     int64    // putMu: absolute position of the next append
	prepAsked bool     // putMu: the next segment was requested from the preparer

	// Background preparation of the next segment. At most one request is outstanding
	// (prepStart, -1 when none), so the preparer's send on prepDone never blocks.
	prepMu    sync.Mutex
	prepStart int64
	prepReq   chan int64
	prepDone  chan prepared
	stop      chan struct{}
	wg        sync.WaitGroup
}

type prepared struct {
	seg *segment
	err error
}

func newCommitLog(fsys vfs.FS, dir string, segSize int64, prealloc string, logger *slog.Logger) *commitLog {
	_, isOS := fsys.(vfs.OS)
	return &commitLog{
		fs: fsys, dir: dir, segSize: segSize, prealloc: prealloc, mapWrites: isOS,
		logger:    logger,
		prepStart: -1,
		prepReq:   make(chan int64, 1),
		prepDone:  make(chan prepared, 1),
		stop:      make(chan struct{}),
	}
}

// load opens every segment file in dir (removing leftover .tmp files) and checks that they
// are contiguous and of the configured size.
func (c *commitLog) load() error {
	if err := c.fs.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("store: create %s: %w", c.dir, err)
	}
	entries, err := c.fs.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("store: list %s: %w", c.dir, err)
	}
	var starts []int64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			if err := c.fs.Remove(filepath.Join(c.dir, name)); err != nil {
				return fmt.Errorf("store: remove leftover %s: %w", name, err)
			}
			continue
		}
		start, err := strconv.ParseInt(name, 10, 64)
		if err != nil || len(name) != 20 {
			c.logger.Warn("ignoring unexpected file in commit log directory", "name", name)
			continue
		}
		starts = append(starts, start)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	if len(starts) > 0 {
		// Checked before alignment so a changed mappedFileSizeCommitLog is named as such.
		if err := c.checkSegmentSize(filepath.Join(c.dir, segmentName(starts[0]))); err != nil {
			return err
		}
	}
	for i, start := range starts {
		if start%c.segSize != 0 {
			return fmt.Errorf("store: commit-log segment %s not aligned to segment size %d", segmentName(start), c.segSize)
		}
		if i > 0 && start != starts[i-1]+c.segSize {
			return fmt.Errorf("store: commit log has a gap between %s and %s", segmentName(starts[i-1]), segmentName(start))
		}
		seg, err := c.openSegment(start)
		if err != nil {
			return err
		}
		c.segs = append(c.segs, seg)
	}
	return nil
}

func (c *commitLog) openSegment(start int64) (*segment, error) {
	path := filepath.Join(c.dir, segmentName(start))
	f, err := c.fs.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: open segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: stat segment: %w", err)
	}
	if fi.Size() != c.segSize {
		f.Close()
		return nil, c.sizeMismatch(path, fi.Size())
	}
	return c.mapSegment(start, path, f)
}

// checkSegmentSize refuses a commit log whose segment at path is not segSize bytes long.
func (c *commitLog) checkSegmentSize(path string) error {
	fi, err := c.fs.Stat(path)
	if err != nil {
		return fmt.Errorf("store: stat segment: %w", err)
	}
	if fi.Size() != c.segSize {
		return c.sizeMismatch(path, fi.Size())
	}
	return nil
}

// sizeMismatch is the error for a segment of another size than configured. Segments are
// created under a temporary name, preallocated and renamed, so a segment of another size
// under its final name means mappedFileSizeCommitLog changed (or the file was altered).
// The store refuses to open, as RocketMQ's MappedFileQueue.doLoad does ("length not
// matched message store config value"): offsets map to segments by the size, so neither
// extending nor reading such a log under the new size is safe.
func (c *commitLog) sizeMismatch(path string, size int64) error {
	return fmt.Errorf("%w: segment %s is %d bytes but mappedFileSizeCommitLog is %d; "+
		"the segment size of an existing commit log cannot change (set mappedFileSizeCommitLog=%d)",
		ErrSegmentSize, path, size, c.segSize, size)
}

func (c *commitLog) mapSegment(start int64, path string, f vfs.File) (*segment, error) {
	data, err := mapFile(f, c.segSize, c.mapWrites)
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &segment{start: start, size: c.segSize, path: path, file: f, data: data, fs: c.fs, logger: c.logger, mapWrites: c.mapWrites}
	s.refs.Store(1)
	return s, nil
}

// createSegment creates, preallocates and maps a new segment (temp file, prealloc,
// fdatasync, rename, fsync dir) so a crash never leaves a half-made segment under its final
// name.
func (c *commitLog) createSegment(start int64) (*segment, error) {
	path := filepath.Join(c.dir, segmentName(start))
	tmp := path + ".tmp"
	f, err := c.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: create segment: %w", err)
	}
	fail := func(err error) (*segment, error) {
		f.Close()
		_ = c.fs.Remove(tmp)
		return nil, err
	}
	if err := f.Allocate(0, c.segSize); err != nil {
		return fail(fmt.Errorf("store: preallocate segment %s: %w", path, err))
	}
	if c.prealloc == PreallocZero {
		// Zero in 32 MiB steps, each made durable before the next, so the disk never holds
		// one huge writeback burst that would stall the flusher's fdatasync behind it.
		const step = 32 << 20
		for off := int64(0); off < c.segSize; off += step {
			n := min(step, c.segSize-off)
			if err := vfs.WriteZeros(f, off, n); err != nil {
				return fail(fmt.Errorf("store: zero segment %s: %w", path, err))
			}
			if err := f.Sync(); err != nil {
				return fail(fmt.Errorf("store: sync new segment %s: %w", path, err))
			}
		}
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("store: sync new segment %s: %w", path, err))
	}
	if err := c.fs.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("store: rename new segment %s: %w", path, err))
	}
	if err := c.fs.SyncDir(c.dir); err != nil {
		return fail(fmt.Errorf("store: sync commit-log dir: %w", err))
	}
	return c.mapSegment(start, path, f)
}

// startPreparer runs the goroutine that creates the next segment ahead of need.
func (c *commitLog) startPreparer() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-c.stop:
				return
			case start := <-c.prepReq:
				t0 := time.Now()
				seg, err := c.createSegment(start)
				if err == nil {
					c.logger.Debug("prepared commit-log segment", "start", start, "took", time.Since(t0))
				}
				c.prepDone <- prepared{seg, err} // never blocks: one request at a time
			}
		}
	}()
}

func (c *commitLog) requestPrepare(start int64) {
	c.prepMu.Lock()
	defer c.prepMu.Unlock()
	if c.prepStart != -1 {
		return
	}
	c.prepStart = start
	c.prepReq <- start
}

// nextSegment returns a mapped segment starting at start: the prepared one when the
// preparer made (or is making) it, else one created synchronously. Called with putMu held
// while the preparer runs.
func (c *commitLog) nextSegment(start int64) (*segment, error) {
	c.prepMu.Lock()
	pending := c.prepStart
	c.prepMu.Unlock()
	if pending != -1 {
		p := <-c.prepDone
		c.prepMu.Lock()
		c.prepStart = -1
		c.prepMu.Unlock()
		if p.err == nil && p.seg.start == start {
			return p.seg, nil
		}
		if p.seg != nil {
			c.logger.Warn("discarding prepared segment", "start", p.seg.start, "want", start)
			c.discard(p.seg)
		} else {
			c.logger.Warn("preparing the next segment failed; retrying synchronously", "err", p.err)
		}
	}
	return c.createSegment(start)
}

// discard releases and deletes a prepared segment nobody will use.
func (c *commitLog) discard(seg *segment) {
	_ = c.fs.Remove(seg.path)
	seg.release()
}

// stopPreparer stops the goroutine; a segment it prepared but nobody used is deleted
// (recovery would delete it anyway as it lies past the end of the log).
func (c *commitLog) stopPreparer() {
	close(c.stop)
	c.wg.Wait()
	select {
	case p := <-c.prepDone:
		if p.seg != nil {
			c.discard(p.seg)
		}
	default:
	}
}

// appendSegment adds seg to the list (it must continue the log).
func (c *commitLog) appendSegment(seg *segment) {
	c.mu.Lock()
	c.segs = append(c.segs, seg)
	c.mu.Unlock()
}

// find returns the segment holding offset, acquired, or nil.
func (c *commitLog) find(offset int64) *segment {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.segs) == 0 || offset < c.segs[0].start {
		return nil
	}
	i := int((offset - c.segs[0].start) / c.segSize)
	if i >= len(c.segs) {
		return nil
	}
	s := c.segs[i]
	if !s.acquire() {
		return nil
	}
	return s
}

// minOffset is the start of the oldest segment.
func (c *commitLog) minOffset() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.segs) == 0 {
		return 0
	}
	return c.segs[0].start
}

// snapshot returns the acquired segments overlapping [from, to); callers release them.
func (c *commitLog) snapshot(from, to int64) []*segment {
	return c.snapshotInto(nil, from, to)
}

// snapshotInto is snapshot appending to out (reuse its storage).
func (c *commitLog) snapshotInto(out []*segment, from, to int64) []*segment {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.segs {
		if s.end() > from && s.start < to && s.acquire() {
			out = append(out, s)
		}
	}
	return out
}

// slice returns data[off, off+size) of the log, with the segment acquired (caller releases).
// It fails when the range is not below written or crosses a segment boundary.
func (c *commitLog) slice(off int64, size int32) ([]byte, *segment, error) {
	if size <= 0 || off < 0 || off+int64(size) > c.written.Load() {
		return nil, nil, fmt.Errorf("%w: commit-log range [%d,+%d) not readable", ErrNotFound, off, size)
	}
	seg := c.find(off)
	if seg == nil {
		return nil, nil, fmt.Errorf("%w: commit-log offset %d not in any segment", ErrNotFound, off)
	}
	pos := off - seg.start
	if pos+int64(size) > seg.size {
		seg.release()
		return nil, nil, fmt.Errorf("%w: record at %d crosses a segment end", ErrNotFound, off)
	}
	return seg.data[pos : pos+int64(size)], seg, nil
}

// removeSegment unlinks seg (it must be the oldest) and drops the list's reference.
func (c *commitLog) removeOldest(seg *segment) error {
	c.mu.Lock()
	if len(c.segs) == 0 || c.segs[0] != seg {
		c.mu.Unlock()
		return errors.New("store: segment to remove is not the oldest")
	}
	c.segs = c.segs[1:]
	c.mu.Unlock()
	err := c.fs.Remove(seg.path)
	seg.removed.Store(true)
	seg.release()
	if err != nil {
		return fmt.Errorf("store: remove segment %s: %w", seg.path, err)
	}
	return nil
}

// truncateAfter removes every segment starting after off (recovery) and returns them
// released.
func (c *commitLog) dropAfter(off int64) error { return c.dropAfterInto(off, "") }

// dropAfterInto is dropAfter moving the dropped segment files into quarantine (a directory
// on the same file system) instead of deleting them, when quarantine is not empty.
func (c *commitLog) dropAfterInto(off int64, quarantine string) error {
	c.mu.Lock()
	var keep, drop []*segment
	for _, s := range c.segs {
		if s.start > off {
			drop = append(drop, s)
		} else {
			keep = append(keep, s)
		}
	}
	c.segs = keep
	c.mu.Unlock()
	for i := len(drop) - 1; i >= 0; i-- {
		s := drop[i]
		if quarantine != "" {
			to := filepath.Join(quarantine, filepath.Base(s.path))
			if err := c.fs.Rename(s.path, to); err != nil {
				return fmt.Errorf("store: move segment %s to %s: %w", s.path, quarantine, err)
			}
			s.release()
			c.logger.Error("moved commit-log segment after damaged data into quarantine", "segment", filepath.Base(s.path), "to", to)
			continue
		}
		if err := c.fs.Remove(s.path); err != nil {
			return fmt.Errorf("store: remove segment %s past the log end: %w", s.path, err)
		}
		s.release()
		c.logger.Info("removed commit-log segment past the end of the valid log", "segment", filepath.Base(s.path))
	}
	if len(drop) > 0 {
		if err := c.fs.SyncDir(c.dir); err != nil {
			return fmt.Errorf("store: sync commit-log dir: %w", err)
		}
	}
	return nil
}

// closeAll releases every segment (Close).
func (c *commitLog) closeAll() {
	c.mu.Lock()
	segs := c.segs
	c.segs = nil
	c.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
}

// sizeOnDisk is the number of segment bytes.
func (c *commitLog) sizeOnDisk() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return int64(len(c.segs)) * c.segSize
}
