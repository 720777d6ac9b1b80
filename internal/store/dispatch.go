package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// DispatchEvent describes one record that reached its consume queue.
type DispatchEvent struct {
	Topic           string
	QueueID         int32
	QueueOffset     int64
	CommitLogOffset int64
	Size            int32
	TagsCode        int64
	StoreTimestamp  int64

	props []byte // the record's encoded properties; valid during the callback only
}

// Property returns the value of the record's property key (a copy), "" and false when
// absent. Listeners that need a property look it up here: the dispatcher does not decode
// every record's properties into a map for them.
func (ev DispatchEvent) Property(key string) (string, bool) {
	v, ok := message.LookupProperty(ev.props, key)
	if !ok {
		return "", false
	}
	return string(v), true
}

// transientDispatchErr reports the dispatch errors that stall rather than fail the store:
// no space left (ENOSPC) and no file descriptor left (EMFILE, ENFILE: a consume-queue file
// is opened for a new queue or reservation, and a flood of connections can exhaust them).
func transientDispatchErr(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// dispatchRetry is how often a stalled dispatcher tries again.
var dispatchRetry = time.Second

// dispatchBatch bounds how many records one dispatcher pass handles before publishing
// progress, so readers and WaitDispatched see entries promptly under load.
const dispatchBatch = 512

// dispatchLoop is the dispatcher goroutine: it turns commit-log records into consume-queue
// and index entries, in log order, and publishes DispatchedOffset.
func (s *Store) dispatchLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.dispReq:
		}
		s.dispatchAvailable()
	}
}

// dispatchAvailable dispatches everything in [dispatched, written). Only the dispatcher
// goroutine (and Open/Close while it is not running) calls it.
func (s *Store) dispatchAvailable() {
	for {
		from, to := s.dispatched.Load(), s.cl.written.Load()
		if from >= to {
			return
		}
		next, err := s.dispatchSome(from, to)
		if transientDispatchErr(err) {
			// Transient: space or descriptors may come back (retention, an operator, closed
			// connections). Keep the records (dispatched later, nothing is lost) and refuse
			// puts meanwhile.
			if next > from { // the records before the failing one are dispatched
				s.dispatched.Store(next)
				s.broadcastDispatch()
			}
			if s.dispStall.Swap(&err) == nil {
				s.logger.Error("dispatch stalled (no space or no file descriptors left); refusing puts and retrying", "at", from, "err", err)
			}
			if s.dispRetry.CompareAndSwap(false, true) { // one retry timer at a time
				time.AfterFunc(dispatchRetry, func() {
					s.dispRetry.Store(false)
					s.wakeDispatcher()
				})
			}
			return
		}
		if err != nil {
			s.failIO(err)
			return
		}
		if s.dispStall.Swap(nil) != nil {
			s.logger.Info("dispatch resumed: accepting puts", "at", from)
		}
		s.dispatched.Store(next)
		s.broadcastDispatch()
	}
}

// dispatchSome dispatches up to dispatchBatch records from from (a record boundary) and
// returns the offset after the last one.
func (s *Store) dispatchSome(from, to int64) (int64, error) {
	seg := s.cl.find(from)
	if seg == nil {
		// The segment was removed by retention before it was dispatched: skip to the oldest.
		if min := s.cl.minOffset(); min > from {
			s.logger.Warn("dispatch skipped a removed segment", "from", from, "to", min)
			return min, nil
		}
		return from, fmt.Errorf("store: dispatch: no segment holds offset %d", from)
	}
	defer seg.release()
	end := min(to, seg.end())
	pos := from
	var h message.RecordHeader
	for n := 0; pos < end && n < dispatchBatch; n++ {
		b := seg.data[pos-seg.start : end-seg.start]
		err := message.ParseRecordHeader(b, &h)
		if errors.Is(err, message.ErrBlank) {
			return seg.end(), nil
		}
		if err != nil {
			return pos, fmt.Errorf("store: dispatch: bad record at %d: %w", pos, err)
		}
		if err := s.dispatchRecord(b[:h.TotalSize], &h, pos); err != nil {
			return pos, err
		}
		pos += int64(h.TotalSize)
	}
	return pos, nil
}

func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (s *Store) dispatchRecord(rec []byte, h *message.RecordHeader, pos int64) error {
	topicB := h.Topic(rec)
	q, err := s.queueFor(topicB, h.QueueID)
	if err != nil {
		s.logger.Error("record not dispatched", "offset", pos, "err", err)
		return nil
	}
	props := h.Props(rec)
	lis := s.listeners.Load()
	// One pass over the properties for the tag and the index keys.
	var vals [3][]byte
	var found [3]bool
	message.LookupProperties(props, dispatchKeys[:], vals[:], found[:])
	var tagsCode int64
	if s.cfg.TagsCode != nil {
		propMap, err := message.DecodeProperties(props)
		if err != nil {
			propMap = map[string]string{}
		}
		tagsCode = s.cfg.TagsCode(q.topic, propMap)
	} else if found[0] {
		tagsCode = message.TagsHashCode(bytesString(vals[0]))
	}
	if err := q.put(h.QueueOffset, cqEntry{offset: pos, size: h.TotalSize, tagsCode: tagsCode}); err != nil {
		return err
	}
	if s.idx != nil {
		s.idx.mu.Lock()
		if pos >= s.idx.from {
			if err := s.indexRecord(q.topic, vals[1], vals[2], pos, h.StoreTimestamp); err != nil {
				s.logger.Error("index write failed; record not indexed", "offset", pos, "err", err)
			}
		}
		s.idx.mu.Unlock()
	}
	if lis != nil {
		ev := DispatchEvent{
			Topic: q.topic, QueueID: h.QueueID, QueueOffset: h.QueueOffset, CommitLogOffset: pos,
			Size: h.TotalSize, TagsCode: tagsCode, StoreTimestamp: h.StoreTimestamp, props: props,
		}
		for _, fn := range *lis {
			fn(ev)
		}
	}
	return nil
}

// dispatchKeys are the properties dispatchRecord reads: tag, index keys, unique key.
var dispatchKeys = [3]string{message.PropertyTags, message.PropertyKeys, message.PropertyUniqKey}

// indexRecord adds the record's KEYS (space separated) and UNIQ_KEY (either empty when the
// record has none). Caller holds idx.mu.
func (s *Store) indexRecord(topic string, keys, uniq []byte, pos, storeTS int64) error {
	if len(keys) > 0 {
		var err error
		forEachKey(keys, func(k []byte) bool {
			err = s.idx.add(topic, bytesString(k), pos, storeTS)
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	if len(uniq) > 0 {
		if err := s.idx.add(topic, bytesString(uniq), pos, storeTS); err != nil {
			return err
		}
	}
	s.idx.from = pos + 1
	return nil
}

// queueFor returns the consume queue of (topic, qid), creating it on first use.
func (s *Store) queueFor(topic []byte, qid int32) (*consumeQueue, error) {
	s.queuesMu.RLock()
	q := s.queues[string(topic)][qid]
	s.queuesMu.RUnlock()
	if q != nil {
		return q, nil
	}
	t := string(topic)
	if err := message.ValidateTopic(t); err != nil {
		return nil, fmt.Errorf("store: dispatch: unusable topic name: %w", err)
	}
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	qs := s.queues[t]
	if qs == nil {
		qs = make(map[int32]*consumeQueue)
		s.queues[t] = qs
	}
	if q = qs[qid]; q == nil {
		q = newConsumeQueue(filepath.Join(s.root, "consumequeue"), t, qid, s.cfg.MappedFileSizeConsumeQueue, s.fs, s.logger)
		q.maps = s.maps
		qs[qid] = q
	}
	return q, nil
}

// queue returns the consume queue of (topic, qid) or nil.
func (s *Store) queue(topic string, qid int32) *consumeQueue {
	s.queuesMu.RLock()
	defer s.queuesMu.RUnlock()
	return s.queues[topic][qid]
}

// broadcastDispatch wakes WaitDispatched callers. The channel is replaced only when a
// waiter took it since the last broadcast, so dispatch rounds nobody waits for allocate
// nothing.
func (s *Store) broadcastDispatch() {
	s.dispMu.Lock()
	if s.dispWaited {
		close(s.dispCh)
		s.dispCh = make(chan struct{})
		s.dispWaited = false
	}
	s.dispMu.Unlock()
}

// WaitDispatched returns when every record below commitLogOffset is in the consume queues
// (and index), or ctx ends, or the store is closed.
func (s *Store) WaitDispatched(ctx context.Context, commitLogOffset int64) error {
	for {
		if s.dispatched.Load() >= commitLogOffset {
			return nil
		}
		s.dispMu.Lock()
		ch := s.dispCh
		s.dispWaited = true
		s.dispMu.Unlock()
		if s.dispatched.Load() >= commitLogOffset {
			return nil
		}
		if s.closed.Load() && s.stopped() {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// forEachKey calls fn for each space-separated, non-empty key of a KEYS value until fn
// returns false. It does not allocate.
func forEachKey(v []byte, fn func(k []byte) bool) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ' ')
		if i < 0 {
			i = len(v)
		}
		if i > 0 && !fn(v[:i]) {
			return
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}
