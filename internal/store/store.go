package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// Errors returned by the store. Callers map them with errors.Is.
var (
	// ErrFlushTimeout: the message was written (the PutResult is valid) but no fdatasync
	// confirmed it within SyncFlushTimeout (or ctx ended first). Not durable.
	ErrFlushTimeout = errors.New("store: flush timeout")
	// ErrDiskFull: disk usage is above DiskSpaceWarningLevelRatio; puts are refused until it
	// drops. Reads continue.
	ErrDiskFull = errors.New("store: disk full")
	// ErrMessageTooLarge: body above MaxMessageSize, properties above 32767 bytes, or a batch
	// larger than a segment.
	ErrMessageTooLarge = errors.New("store: message too large")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store: closed")
	// ErrNotWritable: a write or fdatasync failed; the store refuses every later put (and
	// every waiter the failed fdatasync covered gets this error). Restart to recover.
	ErrNotWritable = errors.New("store: not writable")
	// ErrNotFound: no readable record at the given offset.
	ErrNotFound = errors.New("store: not found")
	// ErrCorrupt: recovery found damage in the region an earlier checkpoint recorded as
	// durable; the store refuses to open rather than silently truncate acknowledged data.
	ErrCorrupt = errors.New("store: commit log corrupt")
	// ErrLocked: another Store (process) holds the store's lock file.
	ErrLocked = errors.New("store: lock held, store already started")
	// ErrIndexDisabled: QueryByKey on a store opened with MessageIndexEnable false.
	ErrIndexDisabled = errors.New("store: message index disabled")
	// ErrSegmentSize: the commit log on disk was written with another
	// mappedFileSizeCommitLog; the store refuses to open (as RocketMQ does).
	ErrSegmentSize = errors.New("store: commit-log segment size differs from mappedFileSizeCommitLog")
)

// PutResult describes a stored message.
type PutResult struct {
	CommitLogOffset int64
	Size            int32
	QueueOffset     int64
	StoreTimestamp  int64  // unix ms
	MsgID           string // offset message id (store host + commit-log offset)
}

type queueKey struct {
	topic string
	qid   int32
}

// Store is the storage engine: commit log, consume queues, index, flush, recovery and
// retention. All methods are safe for concurrent use. See doc.go for goroutines and locks.
type Store struct {
	cfg    Config
	fs     vfs.FS
	logger *slog.Logger
	root   string
	lock   io.Closer

	cl   *commitLog
	idx  *index     // nil when MessageIndexEnable is false
	zero *zeroAhead // nil unless appends copy into the mapping and ZeroAheadBytes > 0

	putMu        sync.Mutex
	queueOffsets map[queueKey]int64 // putMu: next queue offset per (topic, queue)
	encPool      sync.Pool

	queuesMu sync.RWMutex
	queues   map[string]map[int32]*consumeQueue
	maps     *mapBudget // consume-queue mappings against vm.max_map_count

	flushed     atomic.Int64
	flushRounds atomic.Int64 // completed fdatasync rounds
	flushReq    chan struct{}
	flushMu     sync.Mutex
	flushWake   notifier // signalled after every flush round
	flushErr    error    // sticky
	// roundMu serialises flush rounds (flushOnce): flushed only moves forward, and flushSegs
	// (the round's segments, reused so that a round allocates nothing) has one user.
	roundMu   sync.Mutex
	flushSegs []*segment
	// flushTickCh is closed and replaced every flushTick (SYNC_FLUSH) for waiter timeouts.
	flushTickCh chan struct{}

	// commitMu serialises commits of the ring (TransientStorePoolEnable) to the segments;
	// commitReq wakes the committer goroutine after an append.
	commitMu  sync.Mutex
	commitReq chan struct{}

	dispatched atomic.Int64
	dispReq    chan struct{}
	dispMu     sync.Mutex
	dispCh     chan struct{} // closed and replaced when dispatched advances and dispWaited
	dispWaited bool          // dispMu: a WaitDispatched caller holds dispCh
	// badEntryLog rate-limits the log of damaged consume-queue entries (UnixNano).
	badEntryLog atomic.Int64
	listeners   atomic.Pointer[[]func(DispatchEvent)]
	lisMu       sync.Mutex

	closed   atomic.Bool
	ioErr    atomic.Pointer[error] // sticky write/fsync failure
	diskFull atomic.Bool
	// dispStall is the ENOSPC/EMFILE that stopped the dispatcher (a consume-queue file or
	// directory could not be made, opened or reserved), nil while it runs: puts are refused with ErrDiskFull
	// and the dispatcher retries every dispatchRetry until it can write again (QA R10Q-1).
	dispStall atomic.Pointer[error]
	dispRetry atomic.Bool   // a retry timer of the stalled dispatcher is armed
	diskRatio atomic.Uint64 // math.Float64bits of the last measured ratio

	memWindow int64 // in-memory window in bytes (see InMemory)
	retention atomic.Pointer[retention]
	now       func() time.Time
	lastCP    checkpoint

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open opens (creating when needed) the store at cfg.StorePathRootDir: it takes the lock
// file, recovers the commit log, consume queues and index (see docs/store.md), creates the
// abort marker and starts the flusher, dispatcher, checkpointer, cleaner and segment
// preparer goroutines.
func Open(cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "store")
	fsys := cfg.FS
	if fsys == nil {
		fsys = vfs.Default
	}
	hours, _ := parseDeleteWhen(cfg.DeleteWhen)
	s := &Store{
		cfg: cfg, fs: fsys, logger: logger, root: cfg.StorePathRootDir,
		maps:         newMapBudget(logger),
		queueOffsets: make(map[queueKey]int64),
		queues:       make(map[string]map[int32]*consumeQueue),
		flushReq:     make(chan struct{}, 1),
		flushTickCh:  make(chan struct{}),
		dispReq:      make(chan struct{}, 1),
		commitReq:    make(chan struct{}, 1),
		dispCh:       make(chan struct{}),
		now:          time.Now,
		stop:         make(chan struct{}),
	}
	s.encPool.New = func() any { b := make([]byte, 0, 4096); return &b }
	s.memWindow = memWindow(cfg)
	s.retention.Store(&retention{fileReservedTime: cfg.FileReservedTime, deleteHours: hours, diskMaxUsedSpaceRatio: cfg.DiskMaxUsedSpaceRatio})
	if err := fsys.MkdirAll(s.root, 0o755); err != nil {
		return nil, fmt.Errorf("store: create root: %w", err)
	}
	for _, d := range []string{"commitlog", "consumequeue", "index"} {
		if err := fsys.MkdirAll(filepath.Join(s.root, d), 0o755); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", d, err)
		}
	}
	if err := fsys.SyncDir(s.root); err != nil {
		return nil, fmt.Errorf("store: sync root: %w", err)
	}
	lock, err := fsys.Lock(filepath.Join(s.root, "lock"))
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, s.root)
		}
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	s.lock = lock
	s.cl = newCommitLog(fsys, filepath.Join(s.root, "commitlog"), cfg.MappedFileSizeCommitLog, cfg.preallocMode(), logger)
	if on, size := cfg.transientRing(); on {
		// Segments are then written only with WriteAt and mapped read-only: the flusher's
		// writeback never has to write-protect pages in a writable mapping.
		s.cl.mapWrites = false
		s.cl.ring = make([]byte, size)
		for i := 0; i < size; i += 4096 {
			s.cl.ring[i] = 0 // fault the ring in now, not on the first puts
		}
	}
	if cfg.MessageIndexEnable {
		s.idx = newIndex(filepath.Join(s.root, "index"), cfg.MaxHashSlotNum, cfg.MaxIndexNum, fsys, logger)
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if err := s.createAbort(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.updateDiskUsage()
	// PreallocZero segments are written with zeros (and synced) before use: their pages are
	// already in the page cache, and zeroing them again would only dirty them.
	if s.cl.mapWrites && cfg.ZeroAheadBytes > 0 && cfg.preallocMode() != PreallocZero {
		s.zero = newZeroAhead(cfg.ZeroAheadBytes, s.cl.written.Load, logger)
		if s.cl.active != nil {
			s.zero.setSegment(s.cl.active, s.cl.wrote)
		}
	}
	s.cl.startPreparer()
	s.wg.Add(4)
	if cfg.FlushDiskType == SyncFlush {
		s.wg.Add(1)
		go s.flushTickLoop()
	}
	if s.cl.ring != nil {
		s.wg.Add(1)
		go s.commitLoop()
	}
	go s.flushLoop()
	go s.dispatchLoop()
	go s.checkpointLoop()
	go s.cleanLoop()
	return s, nil
}

func (s *Store) abortPath() string      { return filepath.Join(s.root, "abort") }
func (s *Store) checkpointPath() string { return filepath.Join(s.root, "checkpoint") }

func (s *Store) createAbort() error {
	f, err := s.fs.OpenFile(s.abortPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("store: create abort marker: %w", err)
	}
	f.Close()
	if err := s.fs.SyncDir(s.root); err != nil {
		return fmt.Errorf("store: sync root: %w", err)
	}
	return nil
}

// Close flushes and dispatches everything written, writes a final checkpoint, stops the
// goroutines and removes the abort marker when the shutdown was clean (no I/O error, all
// bytes flushed and dispatched). Close is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	// Wait for in-flight appends; later puts see closed.
	s.putMu.Lock()
	s.putMu.Unlock() //nolint:staticcheck // barrier
	close(s.stop)
	s.wg.Wait()
	if s.zero != nil {
		s.zero.close()
	}
	s.cl.stopPreparer()
	flushErr := s.flushOnce()
	s.dispatchAvailable()
	cpErr := s.writeCheckpoint()
	clean := flushErr == nil && cpErr == nil && s.ioErr.Load() == nil && s.appendEnd() == s.cl.written.Load() &&
		s.flushed.Load() == s.cl.written.Load() && s.dispatched.Load() == s.cl.written.Load()
	// Wake anybody still waiting.
	s.broadcastFlush(nil)
	s.broadcastDispatch()
	var err error
	if clean {
		if rerr := s.fs.Remove(s.abortPath()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("store: remove abort marker: %w", rerr)
		} else if serr := s.fs.SyncDir(s.root); serr != nil {
			err = fmt.Errorf("store: sync root: %w", serr)
		}
	} else {
		s.logger.Warn("shutdown not clean, keeping abort marker", "flushErr", flushErr, "checkpointErr", cpErr)
		err = errors.Join(flushErr, cpErr)
		if p := s.ioErr.Load(); err == nil && p != nil {
			err = fmt.Errorf("store: unclean shutdown: %w: %w", ErrNotWritable, *p)
		} else if err == nil {
			err = errors.New("store: unclean shutdown: unflushed or undispatched bytes remain")
		}
	}
	s.closeFiles()
	return err
}

func (s *Store) closeFiles() {
	s.queuesMu.Lock()
	for _, qs := range s.queues {
		for _, q := range qs {
			q.close()
		}
	}
	s.queues = map[string]map[int32]*consumeQueue{}
	s.queuesMu.Unlock()
	if s.idx != nil {
		s.idx.close()
	}
	s.cl.closeAll()
	if s.lock != nil {
		_ = s.lock.Close()
		s.lock = nil
	}
}

// Failed returns the I/O failure that made the store refuse writes for good (wrapping
// ErrNotWritable), or nil. Disk-full refusals are not failures: they end when space is freed.
func (s *Store) Failed() error {
	if p := s.ioErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrNotWritable, *p)
	}
	return nil
}

// failIO makes the store refuse writes for good after a write or fsync error.
func (s *Store) failIO(err error) {
	if s.ioErr.CompareAndSwap(nil, &err) {
		s.logger.Error("store I/O failure, refusing further writes", "err", err)
	}
}

func (s *Store) writable() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.Failed(); err != nil {
		return err
	}
	if s.diskFull.Load() {
		return fmt.Errorf("%w: disk usage above %d%%", ErrDiskFull, s.cfg.DiskSpaceWarningLevelRatio)
	}
	if p := s.dispStall.Load(); p != nil {
		return fmt.Errorf("%w: consume queues cannot be written: %w", ErrDiskFull, *p)
	}
	return nil
}

func (s *Store) checkMessage(m *message.Ext) error {
	// The topic names a directory: enforce RocketMQ's charset and length rules here too.
	if err := message.ValidateTopic(m.Topic); err != nil {
		return fmt.Errorf("%w: %w", message.ErrInvalidMessage, err)
	}
	if m.QueueID < 0 {
		return fmt.Errorf("%w: negative queue id %d", message.ErrInvalidMessage, m.QueueID)
	}
	if len(m.Body) > s.cfg.MaxMessageSize {
		return fmt.Errorf("%w: body %d bytes > %d", ErrMessageTooLarge, len(m.Body), s.cfg.MaxMessageSize)
	}
	return nil
}

func (s *Store) encode(dst []byte, m *message.Ext) ([]byte, error) {
	m.StoreHost = s.cfg.StoreHost
	out, err := message.AppendRecord(dst, m)
	if err != nil {
		if errors.Is(err, message.ErrPropertiesTooLarge) {
			return dst, fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
		}
		return dst, err
	}
	return out, nil
}

// Put appends m to the commit log. The store assigns m.QueueOffset (next offset of
// (m.Topic, m.QueueID)), m.CommitLogOffset, m.StoreTimestamp, m.StoreHost and m.StoreSize.
// With SYNC_FLUSH (and unless the WAIT property is "false") it returns after an fdatasync
// covered the message; if none does within SyncFlushTimeout it returns the result together
// with ErrFlushTimeout. On success the message is readable by Get once dispatched
// (WaitDispatched).
func (s *Store) Put(ctx context.Context, m *message.Ext) (PutResult, error) {
	if err := s.writable(); err != nil {
		return PutResult{}, err
	}
	if err := s.checkMessage(m); err != nil {
		return PutResult{}, err
	}
	bp := s.encPool.Get().(*[]byte)
	rec, err := s.encode((*bp)[:0], m)
	if err != nil {
		s.encPool.Put(bp)
		return PutResult{}, err
	}
	var one [1]*message.Ext
	one[0] = m
	var offs [1]int
	end, err := s.appendRecords(rec, one[:], offs[:])
	if cap(rec) <= 1<<20 {
		*bp = rec[:0]
		s.encPool.Put(bp)
	}
	if err != nil {
		return PutResult{}, err
	}
	res := PutResult{
		CommitLogOffset: m.CommitLogOffset, Size: m.StoreSize, QueueOffset: m.QueueOffset,
		StoreTimestamp: m.StoreTimestamp, MsgID: message.OffsetMsgID(s.cfg.StoreHost, m.CommitLogOffset),
	}
	if s.cfg.FlushDiskType == SyncFlush {
		if m.Property(message.PropertyWaitStoreMsgOK) == "false" {
			s.requestCommit()
			s.requestFlush() // flushed soon, not only by the next waiting put (as Apache)
		} else if err := s.waitFlushed(ctx, end); err != nil {
			return res, err
		}
	}
	return res, nil
}

// PutBatch appends all messages as one contiguous write (and, with SYNC_FLUSH, one
// durability wait). Either all are appended or none. Results are in input order.
func (s *Store) PutBatch(ctx context.Context, ms []*message.Ext) ([]PutResult, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	if err := s.writable(); err != nil {
		return nil, err
	}
	offs := make([]int, len(ms))
	var buf []byte
	wait := false
	for i, m := range ms {
		if err := s.checkMessage(m); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		offs[i] = len(buf)
		var err error
		if buf, err = s.encode(buf, m); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		if m.Property(message.PropertyWaitStoreMsgOK) != "false" {
			wait = true
		}
	}
	end, err := s.appendRecords(buf, ms, offs)
	if err != nil {
		return nil, err
	}
	res := make([]PutResult, len(ms))
	for i, m := range ms {
		res[i] = PutResult{
			CommitLogOffset: m.CommitLogOffset, Size: m.StoreSize, QueueOffset: m.QueueOffset,
			StoreTimestamp: m.StoreTimestamp, MsgID: message.OffsetMsgID(s.cfg.StoreHost, m.CommitLogOffset),
		}
	}
	if s.cfg.FlushDiskType == SyncFlush {
		if !wait {
			s.requestCommit()
			s.requestFlush()
		} else if err := s.waitFlushed(ctx, end); err != nil {
			return res, err
		}
	}
	return res, nil
}

// appendRecords writes buf (the encoded records ms, record i starting at offs[i]) at the end
// of the log under putMu, patching queue offsets, physical offsets and store timestamps in
// place, and returns the new end of the log.
func (s *Store) appendRecords(buf []byte, ms []*message.Ext, offs []int) (int64, error) {
	total := int64(len(buf))
	if total+message.BlankHeaderSize > s.cfg.MappedFileSizeCommitLog {
		return 0, fmt.Errorf("%w: %d bytes do not fit a %d-byte segment", ErrMessageTooLarge, total, s.cfg.MappedFileSizeCommitLog)
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if err := s.writable(); err != nil {
		return 0, err
	}
	if err := s.ensureSpace(total); err != nil {
		return 0, err
	}
	seg := s.cl.active
	base := s.cl.wrote
	now := s.now().UnixMilli()
	for i, m := range ms {
		rec := buf[offs[i]:]
		key := queueKey{m.Topic, m.QueueID}
		qo := s.queueOffsets[key]
		s.queueOffsets[key] = qo + 1
		m.QueueOffset = qo
		m.CommitLogOffset = base + int64(offs[i])
		m.StoreTimestamp = now
		end := len(buf)
		if i+1 < len(offs) {
			end = offs[i+1]
		}
		m.StoreSize = int32(end - offs[i])
		message.PutQueueOffset(rec, qo)
		message.PutPhysicalOffset(rec, m.CommitLogOffset)
		message.PutStoreTimestamp(rec, now)
	}
	if err := s.appendBytes(seg, buf, base); err != nil {
		for _, m := range ms {
			s.queueOffsets[queueKey{m.Topic, m.QueueID}]--
		}
		err = fmt.Errorf("store: write commit log at %d: %w", base, err)
		s.failIO(err)
		return 0, fmt.Errorf("%w: %w", ErrNotWritable, err)
	}
	s.cl.wrote = base + total
	s.publishAppend()
	// Prepare the next segment once this one is half full: early enough to be ready when
	// needed, late enough that its zeroing does not compete with a fresh store's first
	// fdatasyncs.
	if !s.cl.prepAsked && s.cl.wrote-seg.start >= seg.size/2 {
		s.cl.prepAsked = true
		s.cl.requestPrepare(seg.end())
	}
	return s.cl.wrote, nil
}

// publishAppend makes the appended bytes up to cl.wrote visible: readable at once (mapped
// writes), or staged for the committer (ring). Caller holds putMu.
func (s *Store) publishAppend() {
	if s.cl.ring != nil {
		s.cl.buffered.Store(s.cl.wrote)
		if s.cfg.FlushDiskType != SyncFlush {
			s.requestCommit()
		}
		// SYNC_FLUSH: the flush round the put is about to ask for commits it; a put that
		// does not wait (WAIT=false) asks the committer itself (see Put). This saves a
		// goroutine hand-off per put: single-writer sync puts were 20% slower with it.
		return
	}
	s.cl.written.Store(s.cl.wrote)
	s.wakeDispatcher()
}

// requestFlush asks the flusher for a round (SYNC_FLUSH); requests coalesce.
func (s *Store) requestFlush() {
	select {
	case s.flushReq <- struct{}{}:
	default:
	}
}

// requestCommit wakes the committer (ring mode); requests coalesce.
func (s *Store) requestCommit() {
	select {
	case s.commitReq <- struct{}{}:
	default:
	}
}

// appendBytes writes b at absolute log position at of seg: into the mapping or file, or
// into the ring (committing first when the ring has no room). A write larger than the ring
// commits everything staged and goes straight to the file. Caller holds putMu.
func (s *Store) appendBytes(seg *segment, b []byte, at int64) error {
	ring := s.cl.ring
	if ring == nil {
		if s.zero != nil {
			s.zero.claim(at + int64(len(b)))
		}
		return seg.write(b, at-seg.start)
	}
	r, n := int64(len(ring)), int64(len(b))
	if n > r {
		if err := s.commit(); err != nil {
			return err
		}
		if err := seg.write(b, at-seg.start); err != nil {
			return err
		}
		s.commitMu.Lock()
		s.cl.buffered.Store(at + n)
		s.cl.written.Store(at + n)
		s.commitMu.Unlock()
		s.wakeDispatcher()
		return nil
	}
	for at+n-s.cl.written.Load() > r {
		if err := s.commit(); err != nil {
			return err
		}
	}
	k := copy(ring[at%r:], b)
	copy(ring, b[k:])
	return nil
}

// commit writes the staged bytes [written, buffered) from the ring to their segments, in
// as few WriteAt calls as ring wrap and segment ends allow, then publishes them as written
// and wakes the dispatcher. Ring mode only; any goroutine may call it. Lock order: putMu,
// then commitMu, then commitLog.mu.
func (s *Store) commit() error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if err := s.Failed(); err != nil {
		return err
	}
	c, e := s.cl.written.Load(), s.cl.buffered.Load()
	if c >= e {
		return nil
	}
	r := int64(len(s.cl.ring))
	for c < e {
		seg := s.cl.find(c)
		if seg == nil {
			err := fmt.Errorf("store: commit: no segment holds log position %d", c)
			s.failIO(err)
			return fmt.Errorf("%w: %w", ErrNotWritable, err)
		}
		end := min(e, seg.end())
		sealed := seg.sealed.Load()
		if sealed > 0 && end > sealed {
			end = sealed // nothing past the blank marker is staged
		}
		for c < end {
			n := min(end, (c/r+1)*r) - c
			if err := seg.write(s.cl.ring[c%r:c%r+n], c-seg.start); err != nil {
				seg.release()
				err = fmt.Errorf("store: commit log write at %d: %w", c, err)
				s.failIO(err)
				return fmt.Errorf("%w: %w", ErrNotWritable, err)
			}
			c += n
		}
		if sealed > 0 && c == sealed {
			c = seg.end()
		}
		seg.release()
	}
	s.cl.written.Store(e)
	s.wakeDispatcher()
	return nil
}

// commitChunk is the staged size at which the committer stops waiting for more appends.
const commitChunk = 256 << 10

// commitLoop is the committer goroutine (ring mode): it commits whatever is staged each time
// an append signals. Appends made while it writes wait in the ring, so the next commit takes
// them all in one go: the busier the store, the larger the writes.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.commitReq:
			// Like the flusher's group commit: while a writer keeps appending, give it a few
			// scheduler turns so one pwrite covers many records (a 4 KiB pwrite costs about
			// three times the page-cache copy of 4 KiB within a 1 MiB one); stop as soon as a
			// turn brings nothing new or a chunk is big enough.
			prev := s.cl.buffered.Load()
			for i := 0; i < 8 && prev-s.cl.written.Load() < commitChunk; i++ {
				runtime.Gosched()
				cur := s.cl.buffered.Load()
				if cur == prev {
					break
				}
				prev = cur
			}
			_ = s.commit()
		}
	}
}

// wakeDispatcher asks the dispatcher to run (it coalesces requests).
func (s *Store) wakeDispatcher() {
	select {
	case s.dispReq <- struct{}{}:
	default:
	}
}

// appendEnd is the end of everything appended: staged bytes included, except after an I/O
// failure, when staged bytes will never be written (commit refuses) and the end is what
// reached the file.
func (s *Store) appendEnd() int64 {
	if s.cl.ring != nil && s.ioErr.Load() == nil {
		return s.cl.buffered.Load()
	}
	return s.cl.written.Load()
}

// ensureSpace makes the active segment able to take n more bytes while keeping room for
// the 8-byte blank marker; otherwise it seals the segment with a blank record and rolls.
// Caller holds putMu.
func (s *Store) ensureSpace(n int64) error {
	seg := s.cl.active
	if seg != nil {
		pos := s.cl.wrote - seg.start
		if pos+n+message.BlankHeaderSize <= seg.size {
			return nil
		}
		blank := message.AppendBlank(make([]byte, 0, message.BlankHeaderSize), int32(seg.size-pos))
		if err := s.appendBytes(seg, blank, s.cl.wrote); err != nil {
			err = fmt.Errorf("store: write end-of-segment marker at %d: %w", s.cl.wrote, err)
			s.failIO(err)
			return fmt.Errorf("%w: %w", ErrNotWritable, err)
		}
		seg.sealed.Store(s.cl.wrote + message.BlankHeaderSize)
		s.cl.wrote = seg.end()
		s.publishAppend()
		s.cl.active = nil
	}
	next, err := s.cl.nextSegment(s.cl.wrote)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
		return fmt.Errorf("%w: %w", ErrNotWritable, err)
	}
	s.cl.appendSegment(next)
	s.cl.active = next
	s.cl.prepAsked = false
	if s.zero != nil {
		s.zero.setSegment(next, s.cl.wrote)
	}
	return nil
}

// waitFlushed blocks until an fdatasync covered end, the flusher failed, ctx ended or
// SyncFlushTimeout passed. It allocates nothing per call: waiters sleep on the flusher's
// per-round broadcast channel and on a shared tick (flushTickCh, every flushTick) that lets
// them notice their deadline when the disk is stuck and no round completes.
func (s *Store) waitFlushed(ctx context.Context, end int64) error {
	if s.flushed.Load() >= end {
		return nil
	}
	s.requestFlush()
	deadline := time.Now().Add(s.cfg.SyncFlushTimeout)
	for {
		// Register before checking: a round that completes after the check signals ch.
		ch := s.flushWake.register()
		s.flushMu.Lock()
		ferr, tick := s.flushErr, s.flushTickCh
		s.flushMu.Unlock()
		var err error
		switch {
		case s.flushed.Load() >= end:
		case ferr != nil:
			err = fmt.Errorf("%w: %w", ErrNotWritable, ferr)
		case s.closed.Load() && s.stopped():
			err = fmt.Errorf("%w: %w", ErrFlushTimeout, ErrClosed)
		case !time.Now().Before(deadline):
			s.commitStaged()
			err = fmt.Errorf("%w: not durable after %v", ErrFlushTimeout, s.cfg.SyncFlushTimeout)
		default:
			select {
			case <-ch:
			case <-tick:
			case <-ctx.Done():
				s.flushWake.done(ch)
				s.commitStaged()
				return fmt.Errorf("%w: %w", ErrFlushTimeout, ctx.Err())
			}
			s.flushWake.done(ch)
			continue
		}
		s.flushWake.done(ch)
		return err
	}
}

// commitStaged writes what the ring holds to the segments (ring mode) before a sync put is
// answered "stored, not yet durable" (ErrFlushTimeout): the put is then at least in the page
// cache and readable, as on the mapped path, not only in process memory while a stuck
// fdatasync holds the flusher. A commit failure makes the store read-only (commit's own
// rule); the put's answer stays ErrFlushTimeout.
func (s *Store) commitStaged() {
	if s.cl.ring != nil {
		_ = s.commit()
	}
}

// flushTickLoop closes and replaces flushTickCh every flushTick so that waiters can time out
// without a timer each. SYNC_FLUSH only.
func (s *Store) flushTickLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.flushTick())
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.flushMu.Lock()
			close(s.flushTickCh)
			s.flushTickCh = make(chan struct{})
			s.flushMu.Unlock()
		}
	}
}

// flushTick is the timeout resolution of sync waiters: a tenth of SyncFlushTimeout, between
// 1ms and 100ms.
func (s *Store) flushTick() time.Duration {
	return min(max(s.cfg.SyncFlushTimeout/10, time.Millisecond), 100*time.Millisecond)
}

func (s *Store) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// broadcastFlush wakes the sync waiters after a round (err: the round failed, sticky).
func (s *Store) broadcastFlush(err error) {
	if err != nil {
		s.flushMu.Lock()
		if s.flushErr == nil {
			s.flushErr = err
		}
		s.flushMu.Unlock()
	}
	s.flushWake.broadcast()
}

// flushLoop is the single flusher goroutine: in SYNC_FLUSH it runs a round whenever a put
// asks (group commit: one fdatasync covers every put written before it started); in
// ASYNC_FLUSH every FlushIntervalCommitLog.
func (s *Store) flushLoop() {
	defer s.wg.Done()
	var tick <-chan time.Time
	interval := s.cfg.FlushIntervalCommitLog
	if s.cfg.FlushDiskType == SyncFlush {
		interval = 10 * time.Second // a safety net only
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	tick = t.C
	for {
		select {
		case <-s.stop:
			return
		case <-s.flushReq:
			// Group commit: let writers that are runnable (typically the waiters the last
			// round just woke) append first, so this round's fdatasync covers them too;
			// stop yielding as soon as a yield brings no new bytes.
			prev := s.appendEnd() // staged bytes count too (ring mode)
			for i := 0; i < 8; i++ {
				runtime.Gosched()
				cur := s.appendEnd()
				if cur == prev {
					break
				}
				prev = cur
			}
		case <-tick:
		}
		_ = s.flushOnce()
	}
}

// flushOnce fdatasyncs every segment holding bytes in [flushed, written) and publishes the
// new flushed offset. After a failure it never flushes again: the error is sticky so no
// later round can claim durability for bytes the failed fdatasync covered.
func (s *Store) flushOnce() error {
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	s.flushMu.Lock()
	ferr := s.flushErr
	s.flushMu.Unlock()
	if ferr != nil {
		return ferr
	}
	if s.cl.ring != nil {
		if err := s.commit(); err != nil {
			// The staged bytes never reached the file: fail the waiters now (sticky,
			// like a failed fdatasync) instead of letting them run into SyncFlushTimeout.
			s.broadcastFlush(err)
			return err
		}
	}
	from, target := s.flushed.Load(), s.cl.written.Load()
	if target <= from {
		return nil
	}
	segs := s.cl.snapshotInto(s.flushSegs[:0], from, target)
	s.flushSegs = segs
	var err error
	for i, seg := range segs {
		segs[i] = nil // do not pin segments in the reused slice
		if err == nil {
			if serr := seg.sync(); serr != nil {
				err = fmt.Errorf("store: fdatasync %s: %w", filepath.Base(seg.path), serr)
			}
		}
		seg.release()
	}
	if err != nil {
		s.failIO(err)
		s.broadcastFlush(err)
		return err
	}
	s.flushed.Store(target)
	s.flushRounds.Add(1)
	s.broadcastFlush(nil)
	return nil
}

// OnDispatch registers fn, called for every record after its consume-queue and index
// entries are readable, on the dispatcher goroutine (or on the goroutine running Close for
// the last records). Records replayed by Open are dispatched before any listener can be
// registered. fn must not block; it may call Get, Put (ASYNC_FLUSH) and the read methods,
// but not WaitDispatched or DeleteTopic, which wait for the dispatcher itself.
func (s *Store) OnDispatch(fn func(DispatchEvent)) {
	s.lisMu.Lock()
	defer s.lisMu.Unlock()
	var cur []func(DispatchEvent)
	if p := s.listeners.Load(); p != nil {
		cur = *p
	}
	next := append(append([]func(DispatchEvent){}, cur...), fn)
	s.listeners.Store(&next)
}

// Topics lists the topics that have consume queues, sorted.
func (s *Store) Topics() []string {
	s.queuesMu.RLock()
	defer s.queuesMu.RUnlock()
	out := make([]string, 0, len(s.queues))
	for t := range s.queues {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// QueueIDs lists the queue ids of topic, sorted.
func (s *Store) QueueIDs(topic string) []int32 {
	s.queuesMu.RLock()
	defer s.queuesMu.RUnlock()
	out := make([]int32, 0, len(s.queues[topic]))
	for id := range s.queues[topic] {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// DeleteTopic drops the topic's consume queues (after dispatching everything written so
// far) and restarts its queue offsets at 0. Commit-log records stay until retention.
func (s *Store) DeleteTopic(topic string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Every record appended before the delete must be dispatched (into the queues about to
	// be removed) before the queues go: waiting with putMu held, so no put can slip in between
	// with an offset of the old queue whose dispatch would then land in the new one (QA
	// R12E-4). The dispatcher, the committer and the flusher never take putMu.
	s.putMu.Lock()
	if err := s.WaitDispatched(ctx, s.appendEnd()); err != nil {
		s.putMu.Unlock()
		return fmt.Errorf("store: delete topic %s: %w", topic, err)
	}
	for k := range s.queueOffsets {
		if k.topic == topic {
			delete(s.queueOffsets, k)
		}
	}
	s.queuesMu.Lock()
	qs := s.queues[topic]
	delete(s.queues, topic)
	s.putMu.Unlock()
	// The old queues' files are removed while queuesMu is held: a put to a topic created
	// again under the name (auto-creation by a producer that kept sending) may follow at
	// once, and its dispatch must not create the new queue's files, at the same paths, before
	// the old ones are gone (QA R12E-4: the removal raced with it).
	defer s.queuesMu.Unlock()
	var errs []error
	for _, q := range qs {
		if err := q.destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.fs.Remove(filepath.Join(s.root, "consumequeue", topic)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Stats is a snapshot of the store's state.
type Stats struct {
	MinPhysicalOffset int64   // start of the oldest segment
	MaxPhysicalOffset int64   // end of the appended log (ring: staged bytes included until an I/O failure)
	FlushedOffset     int64   // everything below is fdatasync'ed
	DispatchedOffset  int64   // everything below is in the consume queues and index
	DiskUsedRatio     float64 // 0.0-1.0, last measurement
	DiskFull          bool    // puts refused for disk usage
	Writable          bool    // false after an I/O error, when disk full, or closed
	CommitLogSize     int64   // bytes of segment files
	FlushRounds       int64   // fdatasync rounds of the commit log since Open (group commits)
	Segments          int
	Topics            int
}

// Stats returns a snapshot.
func (s *Store) Stats() Stats {
	st := Stats{
		MinPhysicalOffset: s.cl.minOffset(),
		MaxPhysicalOffset: s.appendEnd(),
		FlushedOffset:     s.flushed.Load(),
		DispatchedOffset:  s.dispatched.Load(),
		DiskUsedRatio:     s.diskUsedRatio(),
		DiskFull:          s.diskFull.Load(),
		Writable:          s.writable() == nil,
		CommitLogSize:     s.cl.sizeOnDisk(),
		FlushRounds:       s.flushRounds.Load(),
	}
	s.cl.mu.RLock()
	st.Segments = len(s.cl.segs)
	s.cl.mu.RUnlock()
	s.queuesMu.RLock()
	st.Topics = len(s.queues)
	s.queuesMu.RUnlock()
	return st
}

// StoreHost returns the configured store host.
func (s *Store) StoreHost() netip.AddrPort { return s.cfg.StoreHost }

// WriteFileAtomic replaces path with data on the real filesystem: temp file, fsync, rename,
// fsync of the directory (see vfs.WriteFileAtomic). The broker persists its metadata (topics,
// groups, consumer offsets) with it.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return vfs.WriteFileAtomic(vfs.Default, path, data, perm)
}
