package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
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
	if scanErr != nil {
		if cpValid && validEnd < cp.flushed {
			return fmt.Errorf("%w: bad record at %d, below the durable checkpoint %d (refusing to truncate acknowledged data): %w",
				ErrCorrupt, validEnd, cp.flushed, scanErr)
		}
		s.logger.Warn(fmt.Sprintf("found a half message at %d, it will be truncated", validEnd), "reason", scanErr.Error())
	}
	syncFrom := clMin
	if cpValid && cp.flushed >= clMin {
		syncFrom = min(cp.flushed, validEnd)
	}
	if err := s.truncateLog(syncFrom, validEnd, abnormal || scanErr != nil); err != nil {
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
		err := message.ParseRecordHeader(b, h)
		if errors.Is(err, message.ErrBlank) {
			if int64(h.TotalSize) != seg.size-off {
				return pos, false, fmt.Errorf("blank record of %d bytes at %d does not end the segment", h.TotalSize, pos)
			}
			return seg.end(), true, nil
		}
		if err != nil {
			return pos, false, err
		}
		rec := b[:h.TotalSize]
		switch {
		case h.PhysicalOffset != pos:
			return pos, false, fmt.Errorf("record at %d claims physical offset %d", pos, h.PhysicalOffset)
		case !h.VerifyBodyCRC(rec):
			return pos, false, fmt.Errorf("record at %d: body CRC mismatch", pos)
		}
		if err := checkTail(rec, h); err != nil {
			return pos, false, fmt.Errorf("record at %d: %w", pos, err)
		}
		pos += int64(h.TotalSize)
	}
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
func (s *Store) truncateLog(syncFrom, validEnd int64, dirty bool) error {
	if err := s.cl.dropAfter(validEnd); err != nil {
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
			if serr := sg.file.Sync(); serr != nil {
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
