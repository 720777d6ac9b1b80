package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// GetStatus is the outcome of Get (RocketMQ GetMessageStatus).
type GetStatus int

// Get statuses. NextBeginOffset follows RocketMQ's rules (a master corrects offsets):
//   - Found: messages returned; next = offset after the last consume-queue entry examined;
//   - NoMessageInQueue: the queue is empty or unknown; next = 0;
//   - NoMatchedMessage: entries were examined but none matched the filter (or all were
//     removed); next = offset after the examined entries;
//   - OffsetTooSmall: offset < MinOffset; next = MinOffset;
//   - OffsetOverflowOne: offset == MaxOffset (caught up); next = offset;
//   - OffsetOverflowBadly: offset > MaxOffset; next = MaxOffset;
//   - OffsetFoundNull: offset in range but no entry readable there; next = offset of the
//     next consume-queue file (or MaxOffset).
const (
	Found GetStatus = iota
	NoMessageInQueue
	NoMatchedMessage
	OffsetTooSmall
	OffsetOverflowOne
	OffsetOverflowBadly
	OffsetFoundNull
)

var getStatusNames = [...]string{"FOUND", "NO_MESSAGE_IN_QUEUE", "NO_MATCHED_MESSAGE", "OFFSET_TOO_SMALL",
	"OFFSET_OVERFLOW_ONE", "OFFSET_OVERFLOW_BADLY", "OFFSET_FOUND_NULL"}

func (g GetStatus) String() string {
	if int(g) < len(getStatusNames) {
		return getStatusNames[g]
	}
	return fmt.Sprintf("GetStatus(%d)", int(g))
}

// Filter decides from a consume-queue tags code whether a message matches; nil matches all.
type Filter func(tagsCode int64) bool

// Record is one message returned by Get. Data is the stored record (RocketMQ layout, the
// bytes a PULL response carries), a slice of the mapped segment: valid until Release, never
// to be modified.
type Record struct {
	Data            []byte
	QueueOffset     int64
	CommitLogOffset int64
	TagsCode        int64
}

// GetResult holds Get's outcome. Call Release when done with the record slices.
type GetResult struct {
	Status          GetStatus
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	Records         []Record

	segs []*segment
}

// Release lets retention reclaim the segments the records point into. Idempotent.
func (r *GetResult) Release() {
	if r == nil {
		return
	}
	for _, s := range r.segs {
		s.release()
	}
	r.segs = nil
	r.Records = nil
}

// TotalBytes is the sum of the record sizes.
func (r *GetResult) TotalBytes() int {
	n := 0
	for _, rec := range r.Records {
		n += len(rec.Data)
	}
	return n
}

// minScanEntries is how many consume-queue entries one Get may examine when a filter
// rejects them (RocketMQ scans max(16000 bytes, maxMsgNums*20) of queue).
const minScanEntries = 800

// Get reads up to maxMsgs messages (and, past the first, at most maxBytes bytes) from
// (topic, queueID) starting at logical offset offset, keeping those whose tags code filter
// accepts. The error is non-nil only when the store is closed.
func (s *Store) Get(topic string, queueID int32, offset int64, maxMsgs int, maxBytes int, filter Filter) (*GetResult, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	res := &GetResult{}
	q := s.queue(topic, queueID)
	if q == nil {
		res.Status = NoMessageInQueue
		return res, nil
	}
	minOff, maxOff := q.minOffset.Load(), q.maxOffset.Load()
	res.MinOffset, res.MaxOffset = minOff, maxOff
	switch {
	case maxOff == 0:
		res.Status, res.NextBeginOffset = NoMessageInQueue, 0
		return res, nil
	case offset < minOff:
		res.Status, res.NextBeginOffset = OffsetTooSmall, minOff
		return res, nil
	case offset == maxOff:
		res.Status, res.NextBeginOffset = OffsetOverflowOne, offset
		return res, nil
	case offset > maxOff:
		res.Status, res.NextBeginOffset = OffsetOverflowBadly, maxOff
		return res, nil
	}
	if maxMsgs <= 0 {
		maxMsgs = 1
	}
	scan := maxMsgs
	if filter != nil {
		scan = max(minScanEntries, maxMsgs)
	}
	var stack [64]cqEntry
	entries := q.read(stack[:0], offset, scan)
	if len(entries) == 0 {
		res.Status = OffsetFoundNull
		next := (offset*cqEntrySize/q.fileSize + 1) * q.fileSize / cqEntrySize
		res.NextBeginOffset = min(next, maxOff)
		return res, nil
	}
	res.Status = NoMatchedMessage
	res.Records = make([]Record, 0, min(maxMsgs, len(entries)))
	res.segs = make([]*segment, 0, 2)
	clMin := s.cl.minOffset()
	var cur *segment
	bytesTotal := 0
	examined := 0
	for i, e := range entries {
		if len(res.Records) > 0 && (len(res.Records) >= maxMsgs || bytesTotal+int(e.size) > maxBytes) {
			break
		}
		examined = i + 1
		if e.size <= 0 || e.offset < clMin {
			continue // a hole, or a record retention already removed
		}
		if filter != nil && !filter(e.tagsCode) {
			continue
		}
		if cur == nil || e.offset < cur.start || e.offset+int64(e.size) > cur.end() {
			seg := s.cl.find(e.offset)
			if seg == nil {
				continue
			}
			res.segs = append(res.segs, seg)
			cur = seg
		}
		if e.offset+int64(e.size) > s.cl.written.Load() {
			break // never serve bytes past the written end
		}
		pos := e.offset - cur.start
		data := cur.data[pos : pos+int64(e.size)]
		if !entryMatches(data, e, offset+int64(i)) {
			// A damaged consume-queue entry must not serve bytes from the middle of a
			// record (a consumer would skip the rest of its batch): skip it like a hole
			// and say so (QA R6F-8).
			s.badEntry(topic, queueID, offset+int64(i), e)
			continue
		}
		res.Records = append(res.Records, Record{
			Data:            data,
			QueueOffset:     offset + int64(i),
			CommitLogOffset: e.offset,
			TagsCode:        e.tagsCode,
		})
		bytesTotal += int(e.size)
		res.Status = Found
	}
	res.NextBeginOffset = offset + int64(examined)
	return res, nil
}

// MinOffset is the first readable logical offset of the queue (0 when unknown).
func (s *Store) MinOffset(topic string, queueID int32) int64 {
	if q := s.queue(topic, queueID); q != nil {
		return q.minOffset.Load()
	}
	return 0
}

// MaxOffset is the next logical offset of the queue: the number of entries ever dispatched
// to it, including trimmed ones (0 when unknown).
func (s *Store) MaxOffset(topic string, queueID int32) int64 {
	if q := s.queue(topic, queueID); q != nil {
		return q.maxOffset.Load()
	}
	return 0
}

// storeTimeAt reads the STORETIMESTAMP of the record an entry points to.
func (s *Store) storeTimeAt(e cqEntry) (int64, error) {
	b, seg, err := s.cl.slice(e.offset, e.size)
	if err != nil {
		return 0, err
	}
	defer seg.release()
	var h message.RecordHeader
	if err := message.ParseRecordHeader(b, &h); err != nil {
		return 0, fmt.Errorf("%w: record at %d: %w", ErrNotFound, e.offset, err)
	}
	return h.StoreTimestamp, nil
}

// OffsetByTime returns the logical offset of the first message of the queue stored at or
// after timestampMs (binary search over store timestamps); MinOffset when every message is
// newer, MaxOffset when every message is older.
func (s *Store) OffsetByTime(topic string, queueID int32, timestampMs int64) int64 {
	q := s.queue(topic, queueID)
	if q == nil {
		return 0
	}
	_, first := s.firstByTime(q, func(ts int64) bool { return ts >= timestampMs })
	return first
}

// OffsetByTimeUpper returns the logical offset of the last message of the queue stored at
// or before timestampMs (RocketMQ's BoundaryType.UPPER; OffsetByTime is LOWER): the last
// offset when every message is older, and 0, as RocketMQ answers, when every message is
// newer or the queue is empty.
func (s *Store) OffsetByTimeUpper(topic string, queueID int32, timestampMs int64) int64 {
	q := s.queue(topic, queueID)
	if q == nil {
		return 0
	}
	minOff, first := s.firstByTime(q, func(ts int64) bool { return ts > timestampMs })
	if first == minOff {
		return 0
	}
	return first - 1
}

// firstByTime binary-searches q for the first logical offset whose store time satisfies
// reached (which must be monotone over the queue); it returns the queue's min offset and that
// offset, the max offset when no message satisfies it. An unreadable entry counts as not
// reached.
func (s *Store) firstByTime(q *consumeQueue, reached func(ts int64) bool) (minOff, first int64) {
	lo, hi := q.minOffset.Load(), q.maxOffset.Load()
	i := sort.Search(int(hi-lo), func(i int) bool {
		e, ok := q.entry(lo + int64(i))
		if !ok {
			return false
		}
		ts, err := s.storeTimeAt(e)
		return err == nil && reached(ts)
	})
	return lo, lo + int64(i)
}

// EarliestMessageTime is the store timestamp of the first readable message of the queue.
func (s *Store) EarliestMessageTime(topic string, queueID int32) (int64, error) {
	q := s.queue(topic, queueID)
	if q == nil {
		return 0, fmt.Errorf("%w: queue %s/%d", ErrNotFound, topic, queueID)
	}
	clMin := s.cl.minOffset()
	for off := q.minOffset.Load(); off < q.maxOffset.Load(); off++ {
		e, ok := q.entry(off)
		if !ok || e.offset < clMin {
			continue
		}
		return s.storeTimeAt(e)
	}
	return 0, fmt.Errorf("%w: queue %s/%d is empty", ErrNotFound, topic, queueID)
}

// InMemory reports whether the message at the queue's logical offset lies within the
// in-memory window: its commit-log distance from the end of the log is at most
// AccessMessageInMemoryMaxRatio percent of physical memory (RocketMQ's
// checkInMemByConsumeOffset). False when the queue has no such message.
func (s *Store) InMemory(topic string, queueID int32, offset int64) bool {
	q := s.queue(topic, queueID)
	if q == nil {
		return false
	}
	e, ok := q.entry(offset)
	if !ok {
		return false
	}
	return s.appendEnd()-e.offset <= s.memWindow
}

// OldestStoreTime is the store timestamp (ms) of the first record the commit log still
// holds; false when it holds none (rocketmq_storage_message_reserve_time).
func (s *Store) OldestStoreTime() (int64, bool) {
	b, seg, err := s.recordAt(s.cl.minOffset())
	if err != nil {
		return 0, false
	}
	defer seg.release()
	var h message.RecordHeader
	if message.ParseRecordHeader(b, &h) != nil {
		return 0, false
	}
	return h.StoreTimestamp, true
}

// MessageStoreTime is the store timestamp of the message at the queue's logical offset.
func (s *Store) MessageStoreTime(topic string, queueID int32, offset int64) (int64, error) {
	q := s.queue(topic, queueID)
	if q == nil {
		return 0, fmt.Errorf("%w: queue %s/%d", ErrNotFound, topic, queueID)
	}
	e, ok := q.entry(offset)
	if !ok {
		return 0, fmt.Errorf("%w: %s/%d offset %d", ErrNotFound, topic, queueID, offset)
	}
	return s.storeTimeAt(e)
}

// recordAt returns the record starting at commitLogOffset with its segment acquired.
func (s *Store) recordAt(commitLogOffset int64) ([]byte, *segment, error) {
	if s.closed.Load() {
		return nil, nil, ErrClosed
	}
	written := s.cl.written.Load()
	if s.cl.ring != nil && commitLogOffset+message.MinRecordSize > written && commitLogOffset < s.cl.buffered.Load() {
		// A record put a moment ago and still staged in the ring: commit it now so that a
		// read after Put returned (by the offset it reported) always finds it.
		if err := s.commit(); err != nil {
			return nil, nil, err
		}
		written = s.cl.written.Load()
	}
	if commitLogOffset < 0 || commitLogOffset+message.MinRecordSize > written {
		return nil, nil, fmt.Errorf("%w: commit-log offset %d", ErrNotFound, commitLogOffset)
	}
	seg := s.cl.find(commitLogOffset)
	if seg == nil {
		return nil, nil, fmt.Errorf("%w: commit-log offset %d (removed?)", ErrNotFound, commitLogOffset)
	}
	limit := min(seg.end(), written)
	b := seg.data[commitLogOffset-seg.start : limit-seg.start]
	var h message.RecordHeader
	if err := message.ParseRecordHeader(b, &h); err != nil || h.PhysicalOffset != commitLogOffset {
		seg.release()
		if err == nil {
			err = errors.New("physical offset mismatch")
		}
		return nil, nil, fmt.Errorf("%w: no record at commit-log offset %d: %w", ErrNotFound, commitLogOffset, err)
	}
	return b[:h.TotalSize], seg, nil
}

// ReadRecord returns a copy of the raw record at commitLogOffset.
func (s *Store) ReadRecord(commitLogOffset int64) ([]byte, error) {
	b, seg, err := s.recordAt(commitLogOffset)
	if err != nil {
		return nil, err
	}
	defer seg.release()
	return append([]byte(nil), b...), nil
}

// ReadMessage returns a decoded copy of the record at commitLogOffset, verifying its body
// CRC (VIEW_MESSAGE_BY_ID, transaction lookups).
func (s *Store) ReadMessage(commitLogOffset int64) (*message.Ext, error) {
	b, err := s.ReadRecord(commitLogOffset)
	if err != nil {
		return nil, err
	}
	m, _, err := message.DecodeRecord(b, true)
	if err != nil {
		return nil, fmt.Errorf("store: record at %d: %w", commitLogOffset, err)
	}
	return m, nil
}

// QueryByKey returns up to maxNum commit-log offsets (newest first) of messages of topic
// whose KEYS contain key or whose UNIQ_KEY equals key, stored within [beginMs, endMs]. Index
// hash collisions are filtered out by checking each candidate record.
func (s *Store) QueryByKey(topic, key string, maxNum int, beginMs, endMs int64) ([]int64, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if s.idx == nil {
		return nil, ErrIndexDisabled
	}
	if maxNum <= 0 {
		return nil, nil
	}
	cands := s.idx.query(topic, key, maxNum*4+16, beginMs, endMs)
	out := make([]int64, 0, min(len(cands), maxNum))
	seen := make(map[int64]bool, len(cands))
	var h message.RecordHeader
	for _, off := range cands {
		if len(out) >= maxNum {
			break
		}
		if seen[off] {
			continue
		}
		seen[off] = true
		b, seg, err := s.recordAt(off)
		if err != nil {
			continue
		}
		ok := message.ParseRecordHeader(b, &h) == nil && string(h.Topic(b)) == topic &&
			h.StoreTimestamp >= beginMs && h.StoreTimestamp <= endMs && recordHasKey(h.Props(b), key)
		seg.release()
		if ok {
			out = append(out, off)
		}
	}
	return out, nil
}

func recordHasKey(props []byte, key string) bool {
	if v, ok := message.LookupProperty(props, message.PropertyUniqKey); ok && string(v) == key {
		return true
	}
	found := false
	if v, ok := message.LookupProperty(props, message.PropertyKeys); ok {
		forEachKey(v, func(k []byte) bool {
			found = string(k) == key
			return !found
		})
	}
	return found
}

// entryMatches checks, without reading the body, that the record an entry points at is the
// one it names: TOTALSIZE equals the entry's size, QUEUEOFFSET the queue offset and
// PHYSICALOFFSET the entry's commit-log offset.
func entryMatches(rec []byte, e cqEntry, queueOffset int64) bool {
	if len(rec) < message.OffPhysicalOffset+8 {
		return false
	}
	return int32(binary.BigEndian.Uint32(rec[message.OffTotalSize:])) == e.size &&
		int64(binary.BigEndian.Uint64(rec[message.OffQueueOffset:])) == queueOffset &&
		int64(binary.BigEndian.Uint64(rec[message.OffPhysicalOffset:])) == e.offset
}

// badEntry logs a consume-queue entry that does not match its record, at most once a
// second per store.
func (s *Store) badEntry(topic string, qid int32, queueOffset int64, e cqEntry) {
	now := time.Now().UnixNano()
	last := s.badEntryLog.Load()
	if now-last < int64(time.Second) || !s.badEntryLog.CompareAndSwap(last, now) {
		return
	}
	s.logger.Error("consume-queue entry does not match the commit log; skipped (the queue file is damaged)",
		"topic", topic, "queue", qid, "queueOffset", queueOffset, "commitLogOffset", e.offset, "size", e.size)
}
