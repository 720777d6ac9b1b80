package timer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Entry is one pending timer: when it is due and where its record is in the commit log.
type Entry struct {
	Due         int64 // effective due time, ms since the epoch
	Offset      int64 // commit-log offset of the timer record (unique per timer)
	QueueOffset int64 // offset of the record in the timer topic's queue 0
	Size        int32 // record size in bytes
}

// key orders timers: by due time, then by record offset (ingest order).
type key struct{ due, off int64 }

func (e Entry) key() key { return key{e.Due, e.Offset} }

func (a key) less(b key) bool { return a.due < b.due || a.due == b.due && a.off < b.off }

// Timer log layout: fixed 40-byte entries appended in ingest order to segment files named by
// the 20-digit position of their first entry:
//
//	0 due i64 | 8 offset i64 | 16 queueOffset i64 | 24 prev i64 | 32 size i32 | 36 crc32c i32
//
// prev is the position of the previous entry of the same wheel bucket (-1 for none), so a
// bucket is paged in by walking its chain backwards from its last entry. crc covers bytes 0-36.
const entrySize = 40

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorruptLog reports an entry that fails its checksum or breaks a chain.
var errCorruptLog = errors.New("timer: corrupt timer log")

type logEntry struct {
	Entry
	prev int64
}

func encodeEntry(b []byte, e logEntry) {
	binary.BigEndian.PutUint64(b[0:], uint64(e.Due))
	binary.BigEndian.PutUint64(b[8:], uint64(e.Offset))
	binary.BigEndian.PutUint64(b[16:], uint64(e.QueueOffset))
	binary.BigEndian.PutUint64(b[24:], uint64(e.prev))
	binary.BigEndian.PutUint32(b[32:], uint32(e.Size))
	binary.BigEndian.PutUint32(b[36:], crc32.Checksum(b[:36], crcTable))
}

func decodeEntry(b []byte) (logEntry, bool) {
	if crc32.Checksum(b[:36], crcTable) != binary.BigEndian.Uint32(b[36:]) {
		return logEntry{}, false
	}
	return logEntry{
		Entry: Entry{
			Due:         int64(binary.BigEndian.Uint64(b[0:])),
			Offset:      int64(binary.BigEndian.Uint64(b[8:])),
			QueueOffset: int64(binary.BigEndian.Uint64(b[16:])),
			Size:        int32(binary.BigEndian.Uint32(b[32:])),
		},
		prev: int64(binary.BigEndian.Uint64(b[24:])),
	}, true
}

// timerLog is the append-only log of timer entries. It is owned by one goroutine (the service
// loop); it has no lock.
//
// Appends are buffered and written when the buffer is full and on sync; a read of the buffered
// range is served from memory. Only sync makes entries durable; the checkpoint records the
// synced end, and recovery truncates anything past it (see restoreWheel).
type timerLog struct {
	dir     string
	segSize int64 // bytes per segment, a multiple of entrySize

	segs    []int64 // start positions of live segments, ascending
	start   int64   // position of the oldest live entry (segs[0])
	end     int64   // position after the last appended entry (buffered included)
	written int64   // position up to which bytes are in the active file

	active    *os.File // segment containing written (nil until first write)
	activeSeg int64
	buf       []byte             // entries in [written, end)
	dirtySegs []int64            // segments written since the last sync (besides active)
	readers   map[int64]*os.File // read handles of older segments (page-in walks)
}

const logBufSize = 64 << 10

func segName(dir string, start int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", start))
}

// openLog opens (creating) the log in dir and truncates it to end (the synced end recorded in
// the checkpoint; -1 means "keep everything valid").
func openLog(dir string, segSize int64) (*timerLog, error) {
	if segSize < entrySize || segSize%entrySize != 0 {
		return nil, fmt.Errorf("timer: segment size %d is not a positive multiple of %d", segSize, entrySize)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("timer: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("timer: %w", err)
	}
	l := &timerLog{dir: dir, segSize: segSize, buf: make([]byte, 0, logBufSize)}
	for _, de := range ents {
		n, err := strconv.ParseInt(de.Name(), 10, 64)
		if err != nil || len(de.Name()) != 20 || n%segSize != 0 {
			continue // temp files and strangers are ignored
		}
		l.segs = append(l.segs, n)
	}
	slices.Sort(l.segs)
	if len(l.segs) > 0 {
		l.start = l.segs[0]
		last := l.segs[len(l.segs)-1]
		fi, err := os.Stat(segName(dir, last))
		if err != nil {
			return nil, fmt.Errorf("timer: %w", err)
		}
		l.end = last + fi.Size()/entrySize*entrySize
		l.written = l.end
	}
	return l, nil
}

// truncate drops every entry at or after pos (recovery: entries past the checkpoint).
func (l *timerLog) truncate(pos int64) error {
	if pos >= l.end {
		return nil
	}
	if err := l.flush(); err != nil {
		return err
	}
	l.closeActive()
	l.closeReaders()
	if pos < l.start {
		pos = l.start
	}
	for len(l.segs) > 0 && l.segs[len(l.segs)-1] >= pos && l.segs[len(l.segs)-1] > l.start {
		if err := os.Remove(segName(l.dir, l.segs[len(l.segs)-1])); err != nil {
			return fmt.Errorf("timer: %w", err)
		}
		l.segs = l.segs[:len(l.segs)-1]
	}
	if len(l.segs) > 0 {
		last := l.segs[len(l.segs)-1]
		if err := os.Truncate(segName(l.dir, last), pos-last); err != nil {
			return fmt.Errorf("timer: %w", err)
		}
	}
	l.end, l.written = pos, pos
	return nil
}

// append adds e (with its chain pointer) and returns its position.
func (l *timerLog) append(e logEntry) (int64, error) {
	pos := l.end
	var b [entrySize]byte
	encodeEntry(b[:], e)
	l.buf = append(l.buf, b[:]...)
	l.end += entrySize
	if len(l.buf) >= logBufSize {
		if err := l.flush(); err != nil {
			return 0, err
		}
	}
	return pos, nil
}

// flush writes the buffer to the segment files (not durable).
func (l *timerLog) flush() error {
	for len(l.buf) > 0 {
		seg := l.written / l.segSize * l.segSize
		if l.active == nil || l.activeSeg != seg {
			if l.active != nil {
				l.dirtySegs = append(l.dirtySegs, l.activeSeg)
				l.closeActive()
			}
			f, err := os.OpenFile(segName(l.dir, seg), os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				return fmt.Errorf("timer: %w", err)
			}
			l.active, l.activeSeg = f, seg
			if len(l.segs) == 0 || l.segs[len(l.segs)-1] < seg {
				l.segs = append(l.segs, seg)
				if len(l.segs) == 1 {
					l.start = seg
				}
			}
		}
		n := min(int64(len(l.buf)), seg+l.segSize-l.written)
		if _, err := l.active.WriteAt(l.buf[:n], l.written-seg); err != nil {
			return fmt.Errorf("timer: write timer log: %w", err)
		}
		l.buf = l.buf[n:]
		l.written += n
	}
	l.buf = l.buf[:0:cap(l.buf)]
	return nil
}

func (l *timerLog) closeActive() {
	if l.active != nil {
		_ = l.active.Close()
		l.active = nil
	}
}

func (l *timerLog) closeReaders() {
	for seg, f := range l.readers {
		_ = f.Close()
		delete(l.readers, seg)
	}
}

// prepareSync writes the buffer out and returns the durable-to-be end plus the files whose
// fsync makes every entry below it durable (segments rolled since the last sync and the
// active one). The fsyncs themselves (syncFiles) may run on another goroutine: they touch no
// timerLog state. On failure the caller hands the names back through unsynced.
func (l *timerLog) prepareSync() (end int64, files []string, err error) {
	if err := l.flush(); err != nil {
		return 0, nil, err
	}
	for _, seg := range l.dirtySegs {
		files = append(files, segName(l.dir, seg))
	}
	l.dirtySegs = l.dirtySegs[:0]
	if l.active != nil {
		files = append(files, segName(l.dir, l.activeSeg))
	}
	return l.end, files, nil
}

// unsynced re-marks segments whose fsync failed so the next sync retries them.
func (l *timerLog) unsynced(files []string) {
	for _, f := range files {
		if n, err := strconv.ParseInt(filepath.Base(f), 10, 64); err == nil && !slices.Contains(l.dirtySegs, n) {
			l.dirtySegs = append(l.dirtySegs, n)
		}
	}
}

// syncFiles fsyncs the named segment files (missing ones were deleted: nothing to sync) and
// the log directory.
func syncFiles(dir string, files []string) error {
	for _, f := range files {
		if err := syncFile(f); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// sync makes every appended entry durable and returns the durable end.
func (l *timerLog) sync() (int64, error) {
	end, files, err := l.prepareSync()
	if err != nil {
		return 0, err
	}
	if err := syncFiles(l.dir, files); err != nil {
		l.unsynced(files)
		return 0, err
	}
	return end, nil
}

// read returns the entry at pos (which must be in [start, end)).
func (l *timerLog) read(pos int64) (logEntry, error) {
	if pos < l.start || pos >= l.end || pos%entrySize != 0 {
		return logEntry{}, fmt.Errorf("%w: position %d outside [%d,%d)", errCorruptLog, pos, l.start, l.end)
	}
	var b [entrySize]byte
	if pos >= l.written {
		copy(b[:], l.buf[pos-l.written:])
	} else {
		seg := pos / l.segSize * l.segSize
		if l.active != nil && l.activeSeg == seg {
			if _, err := l.active.ReadAt(b[:], pos-seg); err != nil {
				return logEntry{}, fmt.Errorf("timer: read timer log: %w", err)
			}
		} else {
			f := l.readers[seg]
			if f == nil {
				var err error
				if f, err = os.Open(segName(l.dir, seg)); err != nil {
					return logEntry{}, fmt.Errorf("timer: %w", err)
				}
				if l.readers == nil {
					l.readers = make(map[int64]*os.File)
				}
				l.readers[seg] = f
			}
			if _, err := f.ReadAt(b[:], pos-seg); err != nil {
				return logEntry{}, fmt.Errorf("timer: read timer log: %w", err)
			}
		}
	}
	e, ok := decodeEntry(b[:])
	if !ok {
		return logEntry{}, fmt.Errorf("%w: bad checksum at %d", errCorruptLog, pos)
	}
	return e, nil
}

// scan calls fn for every entry in [start, end) in order; it stops at the first bad checksum
// and returns its position as the valid end.
func (l *timerLog) scan(fn func(pos int64, e logEntry)) (validEnd int64, err error) {
	if err := l.flush(); err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20/entrySize*entrySize)
	for _, seg := range l.segs {
		f, err := os.Open(segName(l.dir, seg))
		if err != nil {
			return 0, fmt.Errorf("timer: %w", err)
		}
		pos := seg
		for {
			n, rerr := f.ReadAt(buf, pos-seg)
			n = n / entrySize * entrySize
			for i := 0; i < n; i += entrySize {
				e, ok := decodeEntry(buf[i : i+entrySize])
				if !ok {
					f.Close()
					return pos + int64(i), nil
				}
				fn(pos+int64(i), e)
			}
			pos += int64(n)
			if rerr == io.EOF || n == 0 {
				break
			}
			if rerr != nil {
				f.Close()
				return 0, fmt.Errorf("timer: read timer log: %w", rerr)
			}
		}
		f.Close()
		if pos < seg+l.segSize && seg != l.segs[len(l.segs)-1] {
			return pos, nil // a short segment that is not the last one ends the valid log
		}
	}
	return l.end, nil
}

// dropBefore deletes whole segments that end at or before pos (never the one holding end).
func (l *timerLog) dropBefore(pos int64) error {
	for len(l.segs) > 1 && l.segs[1] <= pos && l.segs[0]+l.segSize <= pos {
		if l.active != nil && l.activeSeg == l.segs[0] {
			l.closeActive()
		}
		if f := l.readers[l.segs[0]]; f != nil {
			_ = f.Close()
			delete(l.readers, l.segs[0])
		}
		if err := os.Remove(segName(l.dir, l.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("timer: %w", err)
		}
		l.dirtySegs = slices.DeleteFunc(l.dirtySegs, func(s int64) bool { return s == l.segs[0] })
		l.segs = l.segs[1:]
		l.start = l.segs[0]
	}
	return nil
}

func (l *timerLog) close() error {
	err := l.flush()
	l.closeActive()
	l.closeReaders()
	return err
}

func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("timer: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("timer: sync %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("timer: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("timer: sync dir %s: %w", dir, err)
	}
	return nil
}
