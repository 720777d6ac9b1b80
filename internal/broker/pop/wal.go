package pop

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The pop log: records (see Record) appended to numbered files "poplog.<seq>" in the pop
// directory, each framed as u32 length | u32 CRC-32C(payload) | payload. A snapshot file
// ("snapshot.json") holds the whole machine state and the sequence number of the first log
// file written after it. Recovery = snapshot + every log file from that sequence on, each read
// up to its first torn or corrupt frame.
//
// Group commit: appends fill the current batch under mu (cheap, done while the Service holds
// its own lock, so log order = apply order); whoever needs durability becomes the flush
// leader under flushMu, takes every pending batch, writes them in order and issues one
// fdatasync for all of them. Waiters that arrive during a sync fill the next batch.

const (
	logPrefix    = "poplog."
	snapshotFile = "snapshot.json"
	frameHeader  = 8
	// maxFrame bounds a decoded frame (a pop record carries at most maxBatchLimit deliveries).
	maxFrame = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorruptRecord is returned by decodeRecord for a malformed payload.
var errCorruptRecord = errors.New("pop: corrupt log record")

// ErrLogFailed reports that the pop log hit a write or sync error earlier; pop state can no
// longer be made durable until the broker restarts.
var ErrLogFailed = errors.New("pop: log failed")

type batch struct {
	seq  uint64 // log file the batch belongs to
	buf  []byte
	done chan struct{}
	err  error
}

type wal struct {
	dir  string
	sync bool

	mu      sync.Mutex // leaf lock: guards cur, pending, failed, written
	cur     *batch
	pending []*batch // cut batches waiting to be flushed, in order
	failed  error
	written int64 // bytes appended since the last rotation

	flushMu sync.Mutex // held by the flush leader; guards f, fseq, pos, zeroed
	f       *os.File
	fseq    uint64
	pos     int64 // write offset in f
	zeroed  int64 // f is zero-filled up to here (preallocated in walChunk steps)
	// noPrealloc: a preallocation hit ENOSPC; records are appended without it until the
	// next file, so a (nearly) full disk still lets consumers pop and ack the backlog.
	noPrealloc bool
	// zeroWrite writes zero-fill (f.WriteAt; tests inject ENOSPC).
	zeroWrite func(b []byte, off int64) (int, error)
}

// walChunk is how far ahead log files are zero-filled. Overwriting initialised blocks lets
// fdatasync skip the extent and size metadata an append would journal (about twice the
// syncs per second on this VM's disk, see /work/shared/reference/performance.md); the
// metadata of one chunk is synced once per chunk. Recovery stops at the first zero frame.
const walChunk = 4 << 20

var zeroChunk = make([]byte, 256<<10)

func logName(seq uint64) string { return fmt.Sprintf("%s%020d", logPrefix, seq) }

// openWAL starts a new log file numbered seq in dir.
func openWAL(dir string, seq uint64, sync bool) (*wal, error) {
	f, err := os.OpenFile(filepath.Join(dir, logName(seq)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pop: open log: %w", err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("pop: sync dir: %w", err)
	}
	w := &wal{dir: dir, sync: sync, f: f, fseq: seq}
	w.cur = &batch{seq: seq, done: make(chan struct{})}
	return w, nil
}

// append adds r to the current batch and returns it (wait on it for durability).
func (w *wal) append(r *Record) (*batch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return nil, w.failed
	}
	n := len(w.cur.buf)
	w.cur.buf = append(w.cur.buf, make([]byte, frameHeader)...)
	w.cur.buf = appendRecord(w.cur.buf, r)
	payload := w.cur.buf[n+frameHeader:]
	binary.BigEndian.PutUint32(w.cur.buf[n:], uint32(len(payload)))
	binary.BigEndian.PutUint32(w.cur.buf[n+4:], crc32.Checksum(payload, castagnoli))
	w.written += int64(len(w.cur.buf) - n)
	return w.cur, nil
}

// rotate cuts the current batch: later appends go to log file seq+1. It returns the new
// sequence number. Call it while the state the next snapshot captures is frozen.
func (w *wal) rotate() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	next := w.cur.seq + 1
	w.pending = append(w.pending, w.cur)
	w.cur = &batch{seq: next, done: make(chan struct{})}
	w.written = 0
	return next
}

// size is the number of bytes appended since the last rotation.
func (w *wal) size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

// wait makes b durable (written and, with sync, fdatasynced), flushing as the leader when
// nobody else is.
func (w *wal) wait(b *batch) error {
	select {
	case <-b.done:
		return b.err
	default:
	}
	w.flushMu.Lock()
	select {
	case <-b.done:
		w.flushMu.Unlock()
		return b.err
	default:
	}
	w.mu.Lock()
	todo := append(w.pending, w.cur)
	w.pending = nil
	w.cur = &batch{seq: w.cur.seq, done: make(chan struct{})}
	w.mu.Unlock()
	err := w.flush(todo)
	if err != nil {
		w.mu.Lock()
		if w.failed == nil {
			w.failed = fmt.Errorf("%w: %w", ErrLogFailed, err)
		}
		w.mu.Unlock()
	}
	for _, t := range todo {
		t.err = err
		close(t.done)
	}
	w.flushMu.Unlock()
	return b.err
}

// flush writes batches in order, switching files as their sequence grows. flushMu held.
func (w *wal) flush(todo []*batch) error {
	for _, t := range todo {
		if t.seq != w.fseq {
			if err := w.switchFile(t.seq); err != nil {
				return err
			}
		}
		if len(t.buf) == 0 {
			continue
		}
		if err := w.prealloc(w.pos + int64(len(t.buf))); err != nil {
			return err
		}
		if _, err := w.f.WriteAt(t.buf, w.pos); err != nil {
			return fmt.Errorf("pop: write log: %w", err)
		}
		w.pos += int64(len(t.buf))
	}
	if w.sync {
		if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
			return fmt.Errorf("pop: fdatasync log: %w", err)
		}
	}
	return nil
}

// prealloc zero-fills the current file in walChunk steps until it covers end. flushMu held.
// When the disk has no room for a chunk (ENOSPC), the partial chunk is cut off again and the
// file is appended to without preallocation until the next file (QA R5C-3: with the commit
// log at its disk-full limit, gRPC consumers must still drain the backlog).
func (w *wal) prealloc(end int64) error {
	write := w.zeroWrite
	if write == nil {
		write = w.f.WriteAt
	}
	for !w.noPrealloc && w.zeroed < end {
		for off := int64(0); off < walChunk; off += int64(len(zeroChunk)) {
			if _, err := write(zeroChunk, w.zeroed+off); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return fmt.Errorf("pop: preallocate log: %w", err)
				}
				if terr := w.f.Truncate(max(w.zeroed, w.pos)); terr != nil {
					return fmt.Errorf("pop: preallocate log: %w (and truncating back: %w)", err, terr)
				}
				w.noPrealloc = true
				return nil
			}
		}
		w.zeroed += walChunk
	}
	return nil
}

func (w *wal) switchFile(seq uint64) error {
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return fmt.Errorf("pop: fdatasync log: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("pop: close log: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(w.dir, logName(seq)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pop: open log: %w", err)
	}
	w.f, w.fseq, w.pos, w.zeroed, w.noPrealloc = f, seq, 0, 0, false
	if err := syncDir(w.dir); err != nil {
		return fmt.Errorf("pop: sync dir: %w", err)
	}
	return nil
}

// close flushes what is pending and closes the file.
func (w *wal) close() error {
	w.mu.Lock()
	b := w.cur
	w.mu.Unlock()
	err := w.wait(b)
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeLogsBefore deletes log files numbered below seq (covered by a snapshot).
func removeLogsBefore(dir string, seq uint64) error {
	seqs, err := listLogs(dir)
	if err != nil {
		return err
	}
	for _, s := range seqs {
		if s < seq {
			if err := os.Remove(filepath.Join(dir, logName(s))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("pop: remove log: %w", err)
			}
		}
	}
	return nil
}

func listLogs(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pop: list dir: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), logPrefix)
		if !ok || strings.Contains(name, ".") {
			continue
		}
		s, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}

// snapshotDoc is the content of snapshot.json.
type snapshotDoc struct {
	LogSeq uint64   `json:"logSeq"` // first log file not covered by the snapshot
	State  Snapshot `json:"state"`
}

func writeSnapshot(dir string, doc *snapshotDoc) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("pop: encode snapshot: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, snapshotFile), b, 0o644); err != nil {
		return fmt.Errorf("pop: write snapshot: %w", err)
	}
	return nil
}

// recoverState rebuilds a machine from dir: the snapshot, then every log from its LogSeq on.
// It returns the number of the next log file to create and how many records it replayed.
func recoverState(dir string, m *Machine) (nextSeq uint64, replayed int, err error) {
	var doc snapshotDoc
	b, err := os.ReadFile(filepath.Join(dir, snapshotFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &doc); err != nil {
			return 0, 0, fmt.Errorf("pop: decode snapshot: %w", err)
		}
		m.Restore(doc.State)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return 0, 0, fmt.Errorf("pop: read snapshot: %w", err)
	}
	seqs, err := listLogs(dir)
	if err != nil {
		return 0, 0, err
	}
	nextSeq = doc.LogSeq
	for _, s := range seqs {
		if s < doc.LogSeq {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, logName(s)))
		if err != nil {
			return 0, 0, fmt.Errorf("pop: read log: %w", err)
		}
		for len(data) >= frameHeader {
			n := binary.BigEndian.Uint32(data)
			sum := binary.BigEndian.Uint32(data[4:])
			if n == 0 || n > maxFrame || int(n) > len(data)-frameHeader {
				break // preallocated zeros, or a torn tail
			}
			payload := data[frameHeader : frameHeader+int(n)]
			if crc32.Checksum(payload, castagnoli) != sum {
				break
			}
			var r Record
			if err := decodeRecord(payload, &r); err != nil {
				break
			}
			m.Apply(&r)
			replayed++
			data = data[frameHeader+int(n):]
		}
		if s+1 > nextSeq {
			nextSeq = s + 1
		}
	}
	return nextSeq, replayed, nil
}

// appendRecord appends the payload encoding of r.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, r.Kind)
	b = appendString(b, r.Key.Group)
	b = appendString(b, r.Key.Topic)
	b = binary.AppendVarint(b, int64(r.Key.Queue))
	b = binary.AppendVarint(b, r.Offset)
	b = binary.AppendUvarint(b, r.Epoch)
	switch r.Kind {
	case RecChange:
		b = binary.AppendUvarint(b, r.NewEpoch)
		b = binary.AppendVarint(b, r.PopTime)
		b = binary.AppendVarint(b, r.Invisible)
	case RecPop:
		b = binary.AppendUvarint(b, uint64(len(r.Deliveries)))
		for _, d := range r.Deliveries {
			b = binary.AppendVarint(b, d.Offset)
			b = binary.AppendVarint(b, int64(d.Reconsume))
			b = binary.AppendUvarint(b, d.Epoch)
			b = binary.AppendVarint(b, d.PopTime)
			b = binary.AppendVarint(b, d.Invisible)
		}
	}
	return b
}

// decodeRecord parses a payload written by appendRecord. It never panics; a malformed
// payload is errCorruptRecord.
func decodeRecord(p []byte, r *Record) error {
	if len(p) == 0 {
		return errCorruptRecord
	}
	*r = Record{Kind: p[0]}
	rd := handleReader{b: p[1:]}
	r.Key.Group = rd.str()
	r.Key.Topic = rd.str()
	r.Key.Queue = int32(rd.varint())
	r.Offset = rd.varint()
	r.Epoch = rd.uvarint()
	switch r.Kind {
	case RecInit, RecAck, RecRewind, RecForget:
	case RecChange:
		r.NewEpoch = rd.uvarint()
		r.PopTime = rd.varint()
		r.Invisible = rd.varint()
	case RecPop:
		n := rd.uvarint()
		if rd.bad || n > uint64(len(rd.b)) {
			return errCorruptRecord
		}
		r.Deliveries = make([]Delivery, 0, n)
		for i := uint64(0); i < n && !rd.bad; i++ {
			var d Delivery
			d.Offset = rd.varint()
			d.Reconsume = int32(rd.varint())
			d.Epoch = rd.uvarint()
			d.PopTime = rd.varint()
			d.Invisible = rd.varint()
			r.Deliveries = append(r.Deliveries, d)
		}
	default:
		return errCorruptRecord
	}
	if rd.bad || len(rd.b) != 0 {
		return errCorruptRecord
	}
	return nil
}
