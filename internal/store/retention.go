package store

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// maxDeletesPerRound bounds how many segments one cleaning round deletes (RocketMQ
// deleteCommitLogFilesInterval / destroyMapedFileIntervalForcibly spread work similarly).
const maxDeletesPerRound = 10

// statfsUsage is the default DiskUsage: (blocks - free blocks) / blocks of path's filesystem.
func statfsUsage(path string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return usedRatio(st.Blocks, st.Bfree, st.Bavail), nil
}

// usedRatio is the disk usage as df and RocketMQ (UtilAll.getDiskPartitionSpaceUsedPercent)
// compute it: used / (used + available to unprivileged users), so blocks reserved for root
// count as used up, not as free. (Blocks - free) / blocks under-reported it badly on a
// file system with a large reserve: 0.30 where df showed 82 % (QA R9O-2).
func usedRatio(blocks, free, avail uint64) float64 {
	if blocks == 0 || free > blocks {
		return 0
	}
	used := blocks - free
	if used+avail == 0 {
		return 0
	}
	return float64(used) / float64(used+avail)
}

func (s *Store) diskUsedRatio() float64 { return math.Float64frombits(s.diskRatio.Load()) }

// updateDiskUsage measures disk usage, sets or clears the disk-full flag and returns the
// ratio (0.0-1.0).
func (s *Store) updateDiskUsage() float64 {
	usage := s.cfg.DiskUsage
	if usage == nil {
		usage = statfsUsage
	}
	ratio, err := usage(s.root)
	if err != nil {
		s.logger.Error("measuring disk usage failed", "err", err)
		return s.diskUsedRatio()
	}
	s.diskRatio.Store(math.Float64bits(ratio))
	full := ratio*100 > float64(s.cfg.DiskSpaceWarningLevelRatio)
	if was := s.diskFull.Swap(full); was != full {
		if full {
			s.logger.Error("disk full: refusing puts", "usedRatio", ratio, "limit", s.cfg.DiskSpaceWarningLevelRatio)
		} else {
			s.logger.Info("disk usage back under the limit: accepting puts", "usedRatio", ratio)
		}
	}
	return ratio
}

// cleanLoop is the retention goroutine.
func (s *Store) cleanLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.CleanInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.cleanOnce(time.Now())
		}
	}
}

// cleanOnce runs one retention round at time now:
//   - segments older than FileReservedTime are deleted at a DeleteWhen hour, or at any hour
//     when disk usage is above DiskMaxUsedSpaceRatio;
//   - above DiskSpaceCleanForciblyRatio the oldest segment is deleted even when not expired
//     (one per round, re-measuring in between);
//   - the active segment, and any segment not yet fully dispatched, is never deleted.
//
// Consume queues and index files are then trimmed to the new oldest offset. It returns the
// number of segments deleted.
func (s *Store) cleanOnce(now time.Time) int {
	r := s.retention.Load()
	deleted := 0
rounds:
	for deleted < maxDeletesPerRound {
		ratio := s.updateDiskUsage()
		over := ratio*100 > float64(r.diskMaxUsedSpaceRatio)
		forcible := ratio*100 > float64(s.cfg.DiskSpaceCleanForciblyRatio)
		s.cl.mu.RLock()
		if len(s.cl.segs) < 2 {
			s.cl.mu.RUnlock()
			break
		}
		oldest := s.cl.segs[0]
		s.cl.mu.RUnlock()
		if oldest.end() > s.dispatched.Load() {
			break
		}
		fi, err := s.fs.Stat(oldest.path) // its descriptor may be closed (flushed)
		if err != nil {
			s.logger.Error("stat segment", "path", oldest.path, "err", err)
			break
		}
		expired := now.Sub(fi.ModTime()) > r.fileReservedTime
		switch {
		case expired && (r.deleteHours[now.Hour()] || over):
			s.logger.Info("deleting expired commit-log segment", "segment", oldest.start, "usedRatio", ratio)
		case forcible:
			s.logger.Warn("disk usage above the forcible-clean ratio: deleting the oldest segment before it expires; unconsumed messages in it are lost",
				"segment", oldest.start, "usedRatio", ratio, "ratio", s.cfg.DiskSpaceCleanForciblyRatio)
		default:
			break rounds
		}
		if err := s.cl.removeOldest(oldest); err != nil {
			s.logger.Error("delete segment", "err", err)
			break
		}
		deleted++
		if !expired {
			break // forced: one per round, then re-measure
		}
	}
	if deleted > 0 {
		s.trimIndexes()
	}
	return deleted
}

// trimIndexes moves consume-queue minimum offsets and deletes consume-queue and index files
// that only point below the oldest segment.
func (s *Store) trimIndexes() {
	clMin := s.cl.minOffset()
	for _, q := range s.allQueues() {
		if err := q.trimBelow(clMin); err != nil {
			s.logger.Error("trim consume queue", "topic", q.topic, "queue", q.queueID, "err", err)
		}
	}
	if s.idx != nil {
		if err := s.idx.trimBelow(clMin); err != nil {
			s.logger.Error("trim index", "err", err)
		}
	}
}

// checkpointLoop periodically makes consume queues and index durable and records the
// flushed and dispatched offsets.
func (s *Store) checkpointLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.writeCheckpoint(); err != nil {
				s.logger.Error("checkpoint failed", "err", err)
			}
		}
	}
}

// writeCheckpoint syncs consume queues and index, then records min(dispatched, flushed) as
// the dispatch offset: after a crash, replay from there rebuilds everything not durable.
func (s *Store) writeCheckpoint() error {
	d := s.dispatched.Load()
	dirs := map[string]bool{}
	for _, q := range s.allQueues() {
		// Files (and directories) created by the dispatcher up to d: their entries in their
		// directories first, then their contents.
		if err := q.syncNewDirs(dirs); err != nil {
			return err
		}
		if err := q.sync(); err != nil {
			return err
		}
	}
	if s.idx != nil {
		if err := s.idx.sync(); err != nil {
			return err
		}
	}
	f := s.flushed.Load()
	s.cl.closeFlushedFiles(f)
	cp := checkpoint{flushed: f, dispatched: min(d, f), timestamp: time.Now().UnixMilli()}
	if cp.flushed == s.lastCP.flushed && cp.dispatched == s.lastCP.dispatched {
		return nil
	}
	if err := writeCheckpoint(s.fs, s.checkpointPath(), cp); err != nil {
		return err
	}
	s.lastCP = cp
	return nil
}

// retention is the part of the retention policy that may change while the store runs.
type retention struct {
	fileReservedTime      time.Duration
	deleteHours           [24]bool
	diskMaxUsedSpaceRatio int
}

// SetRetention changes FileReservedTime, DeleteWhen and DiskMaxUsedSpaceRatio of a running
// store (broker UPDATE_BROKER_CONFIG, e.g. shortening retention under disk pressure); the
// next clean round uses them. The values are validated as Config.Validate does.
func (s *Store) SetRetention(fileReservedTime time.Duration, deleteWhen string, diskMaxUsedSpaceRatio int) error {
	next := s.cfg
	next.FileReservedTime, next.DeleteWhen, next.DiskMaxUsedSpaceRatio = fileReservedTime, deleteWhen, diskMaxUsedSpaceRatio
	if err := next.Validate(); err != nil {
		return err
	}
	hours, _ := parseDeleteWhen(deleteWhen) // checked by Validate
	s.retention.Store(&retention{fileReservedTime: fileReservedTime, deleteHours: hours, diskMaxUsedSpaceRatio: diskMaxUsedSpaceRatio})
	return nil
}
