package timer

import "log/slog"

// restoreWheel rebuilds the state machine from the timer log and checkpoint cp: the log is cut
// back to cp.LogEnd (entries appended after the checkpoint are re-ingested from the store),
// the delivered state comes from cp, and one sequential scan of the live log rebuilds the
// per-bucket slots (chain heads and counts) and the per-segment maximum keys. Nothing is paged
// in: the caller advances the wheel afterwards.
//
// It returns the queue offset to resume ingesting from: cp.IngestOffset, or less when the
// synced log turned out damaged (then the records after the last intact entry are re-ingested;
// a damaged log can cause duplicates, never losses).
func restoreWheel(log *timerLog, width, lookahead int64, cp checkpoint, logger *slog.Logger) (*wheel, int64, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := log.truncate(cp.LogEnd); err != nil {
		return nil, 0, err
	}
	w := newWheel(log, width, lookahead)
	w.cursor = key{cp.CursorDue, cp.CursorOffset}
	for _, d := range cp.Done {
		w.doneAbove[d[0]] = key{d[1], d[0]}
	}
	for _, m := range cp.Skip {
		w.skip[m.Offset] = skipMark{dequeue: m.Dequeue, topic: m.Topic}
	}
	ingest := cp.IngestOffset
	type agg struct {
		last  int64
		count int
		live  bool
	}
	buckets := make(map[int64]*agg)
	lastQueueOffset := int64(-1)
	validEnd, err := log.scan(func(pos int64, e logEntry) {
		b := w.bucketOf(e.Due)
		a := buckets[b]
		if a == nil {
			a = &agg{}
			buckets[b] = a
		}
		a.last = pos
		a.count++
		if w.cursor.less(e.key()) {
			a.live = true
		}
		w.noteSeg(pos, e.key())
		lastQueueOffset = e.QueueOffset
	})
	if err != nil {
		return nil, 0, err
	}
	if validEnd < cp.LogEnd {
		logger.Error("timer log damaged inside its synced part; re-ingesting the records after the last intact entry (duplicates possible)",
			"validEnd", validEnd, "logEnd", cp.LogEnd, "resumeQueueOffset", lastQueueOffset+1)
		if err := log.truncate(validEnd); err != nil {
			return nil, 0, err
		}
		ingest = lastQueueOffset + 1
	}
	for b, a := range buckets {
		w.chainLast[b] = a.last
		if a.live {
			w.slots[b] = &slot{last: a.last, count: a.count}
			w.diskBuckets = append(w.diskBuckets, b)
		}
	}
	sortInt64(w.diskBuckets)
	return w, ingest, nil
}
