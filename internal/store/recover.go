package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// recover brings the files to a consistent state before the goroutines start (see
// docs/store.md, "Recovery"):
//
//  1. load segments, consume queues, index and the checkpoint;
//  2. scan the commit log from the checkpointed dispatch offset (from the first segment when
//     the checkpoint is missing or corrupt), checking every record's magic, lengths, physical
//     offset, body CRC and properties, up to the first record that fails;
//  3. refuse to open (ErrCorrupt) when that failure lies below the checkpointed flushed
//     offset: those bytes were acknowledged as durable and must not be silently cut;
//  4. otherwise truncate there ("half message at X truncated"): zero the rest of the segment
//     and delete later segments;
//  5. drop consume-queue entries pointing past the valid end, trim those below the oldest
//     segment, and replay the log into consume queues and index from the checkpointed
//     dispatch offset (idempotent: entries already present are skipped);
//  6. rebuild the queue-offset table from the consume queues.
func (s *Store) recover() error {
	t0 := time.Now()
	_, aerr := s.fs.Stat(s.abortPath())
	abnormal := aerr == nil
	cp, cpErr := readCheckpoint(s.fs, s.checkpointPath())
	cpValid := cpErr == nil
	if cpErr != nil && !errors.Is(cpErr, fs.ErrNotExist) {
		s.logger.Warn("checkpoint unreadable; scanning the whole commit log", "err", cpErr)
	}
	if err := s.cl.load(); err != nil {
		return err
	}
	if err := s.loadQueues(); err != nil {
		return err
	}
	if s.idx != nil {
		if err := s.idx.load(); err != nil {
			return err
		}
	}
	if len(s.cl.segs) == 0 {
		seg, err := s.cl.createSegment(0)
		if errors.Is(err, syscall.ENOSPC) && len(s.allQueues()) == 0 {
			// A new store on a full disk starts (as Apache's, whose first segment is made
			// by the first put): ensureSpace makes segment 0 then, or answers ErrDiskFull
			// until space is freed (QA R10T-2). There is nothing to recover.
			s.logger.Warn("no space for the first commit-log segment; starting empty, puts are refused until space is freed", "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		s.cl.appendSegment(seg)
	}
	clMin := s.cl.minOffset()
	last := s.cl.segs[len(s.cl.segs)-1]
	scanStart := clMin
	if cpValid && cp.dispatched >= clMin && cp.dispatched <= last.end() {
		scanStart = cp.dispatched
	}
	validEnd, scanErr := s.scan(scanStart)
	quarantine := ""
	if scanErr != nil {
		belowCP := cpValid && validEnd < cp.flushed
		if belowCP && !s.cfg.RecoverTruncateCorrupt {
			return fmt.Errorf("%w: bad record at %d, below the durable checkpoint %d (refusing to truncate acknowledged data; recoverTruncateCorrupt=true truncates): %w",
				ErrCorrupt, validEnd, cp.flushed, scanErr)
		}
		// A torn write leaves nothing intact behind it: an intact record after the damage
		// means the damage may sit in the middle of acknowledged data (media corruption, QA
		// R6F-1). Apache truncates there all the same; Rocketry truncates too (after a power
		// loss the records past a torn page were never acknowledged, and refusing to start
		// would turn that into an outage) but first moves every byte it cuts into a
		// quarantine directory, so nothing is deleted, and says so at ERROR.
		if next, ok := s.intactRecordAfter(validEnd); ok || belowCP {
			q, err := s.quarantineTail(validEnd)
			if err != nil {
				return fmt.Errorf("%w: bad record at %d followed by intact records (the next at %d); saving the tail before truncating failed, nothing was changed: %w",
					ErrCorrupt, validEnd, next, err)
			}
			quarantine = q
			s.logger.Error("damaged record followed by intact records: the log is truncated at the damage and everything after it was moved to the quarantine directory (recover messages from there)",
				"offset", validEnd, "nextIntact", next, "quarantine", q, "reason", scanErr.Error())
		}
		s.logger.Warn(fmt.Sprintf("found a half message at %d, it will be truncated", validEnd), "reason", scanErr.Error())
	}
	syncFrom := clMin
	if cpValid && cp.flushed >= clMin {
		syncFrom = min(cp.flushed, validEnd)
	}
	if err := s.truncateLog(syncFrom, validEnd, abnormal || scanErr != nil, quarantine); err != nil {
		return err
	}
	for _, q := range s.allQueues() {
		if err := q.truncatePhysical(validEnd); err != nil {
			return err
		}
		if err := q.trimBelow(clMin); err != nil {
			return err
		}
	}
	if s.idx != nil && s.idx.from > validEnd {
		s.idx.from = validEnd
	}
	replayFrom := clMin
	if cpValid && cp.dispatched >= clMin && cp.dispatched <= validEnd {
		replayFrom = cp.dispatched
	}
	s.dispatched.Store(replayFrom)
	s.dispatchAvailable()
	if p := s.ioErr.Load(); p != nil {
		return fmt.Errorf("store: replay into consume queues: %w", *p)
	}
	for _, q := range s.allQueues() {
		s.queueOffsets[queueKey{q.topic, q.queueID}] = q.maxOffset.Load()
	}
	if cpValid {
		s.lastCP = cp
	}
	s.logger.Info("store recovered",
		"abnormal", abnormal, "checkpoint", cpValid, "scanFrom", scanStart, "replayFrom", replayFrom,
		"maxOffset", validEnd, "minOffset", clMin, "took", time.Since(t0))
	return nil
}

// scan validates records from pos (a record boundary) and returns the end of the last
// valid one. err is nil when the scan ended cleanly (zeros, or the end of the last
// segment) and describes the damage otherwise.
func (s *Store) scan(pos int64) (int64, error) {
	var h message.RecordHeader
	for {
		seg := s.cl.find(pos)
		if seg == nil {
			return pos, nil
		}
		end, next, err := scanSegment(seg, pos, &h)
		seg.release()
		if err != nil || !next {
			return end, err
		}
		pos = end
	}
}

// scanSegment validates the records of seg from pos. next reports that the segment is
// complete (sealed by a blank record) and the scan continues at end.
func scanSegment(seg *segment, pos int64, h *message.RecordHeader) (end int64, next bool, err error) {
	for {
		off := pos - seg.start
		if off >= seg.size {
			return pos, true, nil
		}
		b := seg.data[off:]
		if len(b) >= 8 && allZero(b[:8]) {
			return pos, false, nil
		}
		err := checkRecord(b, pos, h)
		if errors.Is(err, message.ErrBlank) {
			if int64(h.TotalSize) != seg.size-off {
				return pos, false, fmt.Errorf("blank record of %d bytes at %d does not end the segment", h.TotalSize, pos)
			}
			return seg.end(), true, nil
		}
		if err != nil {
			return pos, false, err
		}
		pos += int64(h.TotalSize)
	}
}

// intactRecordAfter looks past the damaged record at bad for an intact record: a later
// segment whose first record validates, or, in bad's segment, a position p after bad where a
// record validates and names p as its physical offset (an 8-byte self-reference no torn
// write or stale byte produces by chance). Zero runs are skipped word by word, so a torn
// tail followed by zeros (the common crash case) costs a fast scan of the rest of the
// segment. It returns the first such position.
func (s *Store) intactRecordAfter(bad int64) (int64, bool) {
	var h message.RecordHeader
	valid := func(seg *segment, p int64) bool { return checkRecord(seg.data[p-seg.start:], p, &h) == nil }
	seg := s.cl.find(bad)
	if seg != nil {
		data := seg.data
		for off := bad - seg.start + 1; off+message.OffPhysicalOffset+8 <= int64(len(data)); off++ {
			if off%8 == 0 {
				// Skip whole zero words quickly. A record may still start in the last
				// skipped word's tail (TOTALSIZE begins with zero bytes), so resume 7 bytes
				// back.
				skipped := false
				for off+16 <= int64(len(data)) && binary.LittleEndian.Uint64(data[off:]) == 0 {
					off += 8
					skipped = true
				}
				if skipped {
					off -= 7
				}
				if off+message.OffPhysicalOffset+8 > int64(len(data)) {
					break
				}
			}
			if binary.BigEndian.Uint64(data[off+message.OffPhysicalOffset:]) == uint64(seg.start+off) && valid(seg, seg.start+off) {
				seg.release()
				return seg.start + off, true
			}
		}
		end := seg.end()
		seg.release()
		for later := s.cl.find(end); later != nil; later = s.cl.find(end) {
			ok := valid(later, later.start)
			end = later.end()
			later.release()
			if ok {
				return later.start, true
			}
		}
	}
	return 0, false
}

// quarantineTail saves what truncating the log at bad would cut: the rest of bad's segment
// is copied to <root>/quarantine/<time>-<bad>/<segment>.from-<bad> (fdatasync'ed) and the
// directory is returned; truncateLog then moves the later segments there. Every record keeps
// its commit-log position (file name + offset), so messages can be recovered with the
// record layout.
func (s *Store) quarantineTail(bad int64) (string, error) {
	seg := s.cl.find(bad)
	if seg == nil {
		return "", fmt.Errorf("store: no segment holds offset %d", bad)
	}
	defer seg.release()
	dir := filepath.Join(s.root, "quarantine", fmt.Sprintf("%s-%d", time.Now().UTC().Format("20060102T150405Z"), bad))
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("store: quarantine: %w", err)
	}
	data := seg.data[bad-seg.start:]
	n := len(data)
	for n > 0 && data[n-1] == 0 { // the segment's unused, zero-filled end is not data
		n--
	}
	name := filepath.Join(dir, fmt.Sprintf("%s.from-%d", filepath.Base(seg.path), bad))
	f, err := s.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("store: quarantine: %w", err)
	}
	_, werr := f.WriteAt(data[:n], 0)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = s.fs.SyncDir(dir)
	}
	if werr != nil {
		return "", fmt.Errorf("store: quarantine %s: %w", name, werr)
	}
	return dir, nil
}

// checkRecord validates the record starting b, which lies at log position pos: a parsable
// header (message.ErrBlank for the end-of-segment marker), PHYSICALOFFSET equal to pos, the
// body CRC, and the topic and properties (checkTail).
func checkRecord(b []byte, pos int64, h *message.RecordHeader) error {
	if err := message.ParseRecordHeader(b, h); err != nil {
		return err
	}
	rec := b[:h.TotalSize]
	switch {
	case h.PhysicalOffset != pos:
		return fmt.Errorf("record at %d claims physical offset %d", pos, h.PhysicalOffset)
	case !h.VerifyBodyCRC(rec):
		return fmt.Errorf("record at %d: body CRC mismatch", pos)
	}
	if err := checkTail(rec, h); err != nil {
		return fmt.Errorf("record at %d: %w", pos, err)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// truncateLog makes validEnd the end of the log: the rest of its segment is zeroed (when
// dirty may hold garbage) and later segments are deleted. It also sets the append position
// and makes the kept bytes durable: every segment holding bytes in [syncFrom, validEnd) is
// fdatasync'ed (after a process crash they may still sit only in the page cache), so the
// flushed offset can start at validEnd.
func (s *Store) truncateLog(syncFrom, validEnd int64, dirty bool, quarantine string) error {
	if err := s.cl.dropAfterInto(validEnd, quarantine); err != nil {
		return err
	}
	seg := s.cl.find(validEnd)
	if seg != nil {
		defer seg.release()
		if dirty {
			off := validEnd - seg.start
			if err := seg.file.ZeroRange(off, seg.size-off); err != nil {
				return fmt.Errorf("store: truncate %s at %d: %w", filepath.Base(seg.path), off, err)
			}
		}
		s.cl.active = seg
	}
	segs := s.cl.snapshot(syncFrom, validEnd+1)
	var err error
	for _, sg := range segs {
		if err == nil {
			if serr := sg.sync(); serr != nil {
				err = fmt.Errorf("store: sync %s: %w", filepath.Base(sg.path), serr)
			}
		}
		sg.release()
	}
	if err != nil {
		return err
	}
	s.cl.wrote = validEnd
	s.cl.written.Store(validEnd)
	s.cl.buffered.Store(validEnd)
	s.flushed.Store(validEnd)
	return nil
}

// loadQueues opens every consume queue under <root>/consumequeue.
func (s *Store) loadQueues() error {
	dir := filepath.Join(s.root, "consumequeue")
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store: create %s: %w", dir, err)
	}
	topics, err := s.fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: list %s: %w", dir, err)
	}
	for _, t := range topics {
		if !t.IsDir() || message.ValidateTopic(t.Name()) != nil {
			continue
		}
		qdirs, err := s.fs.ReadDir(filepath.Join(dir, t.Name()))
		if err != nil {
			return fmt.Errorf("store: list queues of %s: %w", t.Name(), err)
		}
		for _, qd := range qdirs {
			id, err := strconv.ParseInt(qd.Name(), 10, 32)
			if err != nil || !qd.IsDir() || id < 0 {
				continue
			}
			q := newConsumeQueue(dir, t.Name(), int32(id), s.cfg.MappedFileSizeConsumeQueue, s.fs, s.logger)
			q.maps = s.maps
			if err := q.load(); err != nil {
				return err
			}
			if len(q.files) == 0 {
				continue
			}
			if s.queues[q.topic] == nil {
				s.queues[q.topic] = make(map[int32]*consumeQueue)
			}
			s.queues[q.topic][q.queueID] = q
		}
	}
	return nil
}

func (s *Store) allQueues() []*consumeQueue {
	s.queuesMu.RLock()
	defer s.queuesMu.RUnlock()
	var out []*consumeQueue
	for _, qs := range s.queues {
		for _, q := range qs {
			out = append(out, q)
		}
	}
	return out
}

// checkTail catches a record whose end was lost (a torn write leaves zeros): the body CRC
// does not cover topic and properties, so recovery also requires a valid topic name and a
// well-formed properties string that, when non-empty, ends with the \x02 separator every
// RocketMQ encoder writes.
func checkTail(rec []byte, h *message.RecordHeader) error {
	if message.ValidateTopic(string(h.Topic(rec))) != nil {
		return errors.New("invalid topic bytes")
	}
	props := h.Props(rec)
	if len(props) > 0 && props[len(props)-1] != message.PropertySeparator {
		return errors.New("properties do not end with a separator")
	}
	return message.CheckProperties(props)
}
