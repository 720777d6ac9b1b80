package store

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

func newTestQueue(t *testing.T, root string) *consumeQueue {
	q := newConsumeQueue(root, "T", 1, 10*cqEntrySize, vfs.Default, slog.New(slog.DiscardHandler))
	if err := vfs.Default.MkdirAll(q.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := q.load(); err != nil {
		t.Fatal(err)
	}
	return q
}

func TestConsumeQueueFilesTruncateTrim(t *testing.T) {
	root := t.TempDir()
	q := newTestQueue(t, root)
	for i := int64(0); i < 35; i++ { // 4 files of 10 entries
		if err := q.put(i, cqEntry{offset: i * 100, size: 100, tagsCode: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.put(3, cqEntry{offset: 1, size: 1}); err != nil { // replay: ignored
		t.Fatal(err)
	}
	if e, ok := q.entry(3); !ok || e.offset != 300 || e.tagsCode != 3 {
		t.Fatalf("entry 3 = %+v %v (a replayed put must not overwrite)", e, ok)
	}
	if len(q.files) != 4 || q.maxOffset.Load() != 35 {
		t.Fatalf("files %d max %d", len(q.files), q.maxOffset.Load())
	}
	// Reload finds the same max.
	q.close()
	q = newTestQueue(t, root)
	if q.maxOffset.Load() != 35 || q.minOffset.Load() != 0 {
		t.Fatalf("reloaded min/max %d/%d", q.minOffset.Load(), q.maxOffset.Load())
	}
	// Recovery: records from offset 2050 on are gone -> entries 20.. dropped (20*100 + 100 > 2050).
	if err := q.truncatePhysical(2050); err != nil {
		t.Fatal(err)
	}
	if q.maxOffset.Load() != 20 || len(q.files) != 3 {
		t.Fatalf("after truncate: max %d files %d", q.maxOffset.Load(), len(q.files))
	}
	if err := q.put(20, cqEntry{offset: 2000, size: 50}); err != nil {
		t.Fatal(err)
	}
	// Retention: the log now starts at 1500 -> min moves to 15, the first file goes.
	if err := q.trimBelow(1500); err != nil {
		t.Fatal(err)
	}
	if q.minOffset.Load() != 15 || len(q.files) != 2 || q.files[0].start != 10*cqEntrySize {
		t.Fatalf("after trim: min %d files %d", q.minOffset.Load(), len(q.files))
	}
	got := q.read(nil, 0, 100)
	if len(got) != 6 || got[0].offset != 1500 || got[5].offset != 2000 {
		t.Fatalf("read after trim: %+v", got)
	}
	if err := q.sync(); err != nil {
		t.Fatal(err)
	}
	q.close()
	q = newTestQueue(t, root)
	defer q.close()
	if q.minOffset.Load() != 10 || q.maxOffset.Load() != 21 {
		t.Fatalf("reloaded after trim: min %d max %d (min is refined by the store's trim at open)", q.minOffset.Load(), q.maxOffset.Load())
	}
}

func TestConsumeQueueLoadKeepsNewestContiguousRun(t *testing.T) {
	root := t.TempDir()
	q := newTestQueue(t, root)
	for i := int64(0); i < 20; i++ {
		q.put(i, cqEntry{offset: i * 100, size: 100})
	}
	for i := int64(30); i < 35; i++ { // a jump: files for 20-29 never exist
		q.put(i, cqEntry{offset: i * 100, size: 100})
	}
	q.close()
	// A stray older file before the gap (an interrupted deletion): load drops it.
	stray := filepath.Join(q.dir, segmentName(0))
	if err := os.WriteFile(stray, make([]byte, 10*cqEntrySize), 0o644); err != nil {
		t.Fatal(err)
	}
	q = newTestQueue(t, root)
	defer q.close()
	if len(q.files) != 1 || q.minOffset.Load() != 30 || q.maxOffset.Load() != 35 {
		t.Fatalf("files %d min %d max %d", len(q.files), q.minOffset.Load(), q.maxOffset.Load())
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatal("file before the gap kept")
	}
}

// TestInMemory: a queue offset is in memory while its record lies within
// AccessMessageInMemoryMaxRatio percent of PhysicalMemory from the end of the log.
func TestInMemory(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.PhysicalMemory = 100 << 10 // window: 40 KiB
	s := openT(t, cfg)
	defer s.Close()
	if s.InMemory("M", 0, 0) {
		t.Fatal("an unknown queue is in memory")
	}
	put(t, s, newMsg("M", 0, 0, 1000))
	waitDispatched(t, s)
	if !s.InMemory("M", 0, 0) {
		t.Fatal("the only message is not in memory")
	}
	if s.InMemory("M", 0, 1) {
		t.Fatal("an offset past the end is in memory")
	}
	for i := 1; i < 60; i++ { // ~60 KiB more: offset 0 leaves the 40 KiB window
		put(t, s, newMsg("M", 1, i, 1000))
	}
	waitDispatched(t, s)
	if s.InMemory("M", 0, 0) {
		t.Fatal("a message 60 KiB behind the end is still in a 40 KiB window")
	}
	if !s.InMemory("M", 1, 58) {
		t.Fatal("a recent message is not in memory")
	}
}

// TestGetSkipsDamagedEntry (QA R6F-8): a consume-queue entry whose offset was damaged on disk
// would serve bytes from the middle of a record (a go2 consumer then drops the rest of the
// batch and skips valid messages). Get checks TOTALSIZE, QUEUEOFFSET and PHYSICALOFFSET of
// the record an entry names and skips a mismatch like a hole; the other messages are served.
func TestGetSkipsDamagedEntry(t *testing.T) {
	dir, cfg, res := closedStore(t, 10, 100)
	cq := filepath.Join(dir, "consumequeue", "R", "0", segmentName(0))
	f, err := os.OpenFile(cq, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(res[5].CommitLogOffset+7)) // entry 5 now points 7 bytes into its record
	if _, err := f.WriteAt(b[:], 5*cqEntrySize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s := openT(t, cfg)
	defer s.Close()
	r, err := s.Get("R", 0, 0, 32, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Records) != 9 || r.NextBeginOffset != 10 {
		t.Fatalf("%d records, next %d; want 9 (entry 5 skipped), next 10", len(r.Records), r.NextBeginOffset)
	}
	for _, rec := range r.Records {
		if rec.QueueOffset == 5 {
			t.Fatal("damaged entry served")
		}
		if _, _, err := message.DecodeRecord(rec.Data, true); err != nil {
			t.Fatalf("record %d does not decode: %v", rec.QueueOffset, err)
		}
	}
}

// TestConsumeQueueFilesHoldNoDescriptor (QA R8I-2): a consume-queue file keeps its mapping,
// not its descriptor, so thousands of queues do not use up the process's descriptors (and a
// restart can open them all); entries written and synced through the mapping survive a reopen.
func TestConsumeQueueFilesHoldNoDescriptor(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	dir := t.TempDir()
	cfg := testConfig(dir)
	s := openT(t, cfg)
	defer func() { s.Close() }()
	before := fds()
	const queues = 300
	for q := range int32(queues) {
		put(t, s, newMsg("fd-topic", q, int(q), 16))
	}
	waitDispatched(t, s)
	if grew := fds() - before; grew > queues/10 {
		t.Fatalf("%d queue files hold %d more descriptors", queues, grew)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, cfg) // closed by the deferred func above
	for _, q := range []int32{0, queues / 2, queues - 1} {
		if got := getAll(t, s, "fd-topic", q); len(got) != 1 || got[0].QueueOffset != 0 {
			t.Fatalf("queue %d after reopen: %d messages", q, len(got))
		}
	}
}

// TestUsedEntries: the exponential-then-binary search finds the end of the written prefix
// for every prefix length, including empty and full files.
func TestUsedEntries(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 100} {
		for k := 0; k <= n; k++ {
			data := make([]byte, n*cqEntrySize)
			for i := range k {
				binary.BigEndian.PutUint32(data[i*cqEntrySize+8:], 1+uint32(i))
			}
			if got := usedEntries(data, n); got != k {
				t.Errorf("n=%d k=%d: usedEntries = %d", n, k, got)
			}
		}
	}
}

// TestMapBudget (QA R8I-6): past its budget a new consume-queue file fails with an error that
// names vm.max_map_count (the store stops taking writes instead of the Go runtime dying for
// want of mappings); closed files give their mapping back.
func TestMapBudget(t *testing.T) {
	var logBuf bytes.Buffer
	b := &mapBudget{limit: 2, logger: slog.New(slog.NewTextHandler(&logBuf, nil))}
	root := t.TempDir()
	var qs []*consumeQueue
	for i := range int32(3) {
		q := newConsumeQueue(root, "T", i, 10*cqEntrySize, vfs.Default, slog.New(slog.DiscardHandler))
		q.maps = b
		qs = append(qs, q)
	}
	for i, q := range qs[:2] {
		if err := q.put(0, cqEntry{offset: int64(i), size: 1}); err != nil {
			t.Fatalf("queue %d within the budget: %v", i, err)
		}
	}
	if !strings.Contains(logBuf.String(), "half of their mapping budget") {
		t.Errorf("no warning at half the budget:\n%s", logBuf.String())
	}
	err := qs[2].put(0, cqEntry{offset: 2, size: 1})
	if err == nil || !strings.Contains(err.Error(), "vm.max_map_count") {
		t.Fatalf("queue past the budget: %v", err)
	}
	qs[0].close()
	if err := qs[2].put(0, cqEntry{offset: 2, size: 1}); err != nil {
		t.Fatalf("after a queue closed: %v", err)
	}
	qs[1].close()
	qs[2].close()
	if n := b.used.Load(); n != 0 {
		t.Fatalf("%d mappings still counted after every queue closed", n)
	}
}

// TestFlushedSegmentsHoldNoDescriptor (QA R8I-7): full, flushed commit-log segments give
// their descriptor back at the next checkpoint; their messages stay readable, and retention
// (which reads their modification time) still removes them.
func TestFlushedSegmentsHoldNoDescriptor(t *testing.T) {
	segFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		n := 0
		for _, e := range ents {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.Contains(target, "commitlog") {
				n++
			}
		}
		return n
	}
	cfg := testConfig(t.TempDir())
	cfg.FlushDiskType = SyncFlush
	s := openT(t, cfg)
	defer func() { s.Close() }()
	var last PutResult
	for i := range 200 { // 64 KiB segments, ~1 KiB records: several segments
		last = put(t, s, newMsg("T", 0, i, 900))
	}
	waitDispatched(t, s)
	snap := s.cl.snapshot(0, last.CommitLogOffset+int64(last.Size))
	segs := len(snap)
	for _, sg := range snap {
		sg.release()
	}
	if segs < 3 {
		t.Fatalf("only %d segments written", segs)
	}
	before := segFDs()
	if err := s.writeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	after := segFDs()
	if after > 2 || after >= before {
		t.Fatalf("commit-log descriptors: %d before the checkpoint, %d after (%d segments)", before, after, segs)
	}
	if got := getAll(t, s, "T", 0); len(got) != 200 {
		t.Fatalf("read back %d of 200 messages", len(got))
	}
	// More writes still land and flush in the open segment.
	put(t, s, newMsg("T", 0, 200, 900))
	waitDispatched(t, s) // a put is acknowledged before the dispatcher indexes it
	if got := getAll(t, s, "T", 0); len(got) != 201 {
		t.Fatalf("after another put: %d messages", len(got))
	}
}
