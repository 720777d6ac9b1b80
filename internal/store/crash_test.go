package store

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// crashChildEnv marks the child process of TestCrashKill9; its value is the store dir.
const crashChildEnv = "ROCKETRY_STORE_CRASH_CHILD"

// crashFlushEnv is the child's FlushDiskType (SYNC_FLUSH when unset).
const crashFlushEnv = "ROCKETRY_STORE_CRASH_FLUSH"

const (
	crashTopic    = "CrashTopic"
	crashQueues   = 4
	crashWriters  = 8
	crashSegSize  = 256 << 10
	crashChildMax = 20 * time.Second // a child never outlives this even if nobody kills it
)

func crashConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.StorePathRootDir = dir
	cfg.FlushDiskType = SyncFlush
	cfg.MappedFileSizeCommitLog = crashSegSize
	cfg.MappedFileSizeConsumeQueue = 1000 * cqEntrySize
	cfg.MaxMessageSize = 8 << 10
	cfg.MaxHashSlotNum = 1024
	cfg.MaxIndexNum = 4096
	cfg.StoreHost = testHost
	cfg.CheckpointInterval = 20 * time.Millisecond
	cfg.CleanInterval = time.Hour
	cfg.DiskUsage = func(string) (float64, error) { return 0.1, nil }
	return cfg
}

// crashMessage is the deterministic message a child writes as (round, writer, seq).
func crashMessage(round, writer, seq int) *message.Ext {
	id := fmt.Sprintf("r%d-w%d-s%d", round, writer, seq)
	n := 64 + (round*7919+writer*104729+seq*31)%3000
	body := make([]byte, n)
	x := crc32.ChecksumIEEE([]byte(id))
	for i := range body {
		x = x*1664525 + 1013904223
		body[i] = byte(x >> 24)
	}
	m := &message.Ext{
		Message:       message.Message{Topic: crashTopic, Body: body},
		QueueID:       int32((writer + seq) % crashQueues),
		BornTimestamp: int64(round)*1e6 + int64(seq),
		BornHost:      netip.MustParseAddrPort("127.0.0.1:40000"),
	}
	m.SetProperty(message.PropertyKeys, id)
	m.SetProperty(message.PropertyTags, "w"+strconv.Itoa(writer))
	return m
}

// crashChild runs in the re-executed test binary: it appends with SYNC_FLUSH from 8
// goroutines and prints one line per acknowledged put until it is killed.
func crashChild(dir string) {
	round, _ := strconv.Atoi(os.Getenv("ROCKETRY_STORE_CRASH_ROUND"))
	cfg := crashConfig(dir)
	if f := os.Getenv(crashFlushEnv); f != "" {
		cfg.FlushDiskType = f
	}
	s, err := Open(cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := os.Stdout
	fmt.Fprintln(out, "READY")
	deadline := time.Now().Add(crashChildMax)
	var wg sync.WaitGroup
	for w := 0; w < crashWriters; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for seq := 0; time.Now().Before(deadline); seq++ {
				m := crashMessage(round, w, seq)
				res, err := s.Put(context.Background(), m)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child put:", err)
					os.Exit(4)
				}
				rec, _ := message.AppendRecord(nil, m) // the exact bytes the store wrote
				line := fmt.Sprintf("ACK %d %d %d %d %d %d %d %d\n", round, w, seq, res.CommitLogOffset, res.Size,
					res.QueueOffset, m.QueueID, crc32.ChecksumIEEE(rec))
				mu.Lock()
				io.WriteString(out, line)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	os.Exit(0)
}

type crashAck struct {
	round, writer, seq int
	offset             int64
	size               int32
	queueOffset        int64
	qid                int32
	crc                uint32
}

func parseAck(line string) (crashAck, bool) {
	f := strings.Fields(line)
	if len(f) != 9 || f[0] != "ACK" {
		return crashAck{}, false
	}
	var v [8]int64
	for i := range v {
		n, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			return crashAck{}, false
		}
		v[i] = n
	}
	return crashAck{int(v[0]), int(v[1]), int(v[2]), v[3], int32(v[4]), v[5], int32(v[6]), uint32(v[7])}, true
}

// TestCrashKill9 starts the test binary as a child that writes with SYNC_FLUSH, SIGKILLs it
// at random moments (20 rounds; 5 with -short), and after every kill reopens the store and
// checks that every acknowledged message is readable and byte-identical, that nothing past
// the valid tail is served and that the consume queues agree with the commit log.
func TestCrashKill9(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	crashRounds(t, SyncFlush, rounds)
}

// TestCrashKill9AsyncMapped: the same with ASYNC_FLUSH on the mapped write path, where the
// zeroer writes zeros ahead of the appenders: a process crash loses nothing acknowledged
// (the page cache keeps it) and the zeroer never overwrote an appended byte.
func TestCrashKill9AsyncMapped(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	crashRounds(t, AsyncFlush, rounds)
}

// crashRounds runs rounds of: start a child writing with flush (crashChild), kill -9 it after
// a random time, reopen the store and verify every acknowledged message.
func crashRounds(t *testing.T, flush string, rounds int) {
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	t.Logf("seed %d", seed)
	acked := map[int64]crashAck{}
	var truncatedRounds, totalTruncated int
	start := time.Now()
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "ROCKETRY_STORE_CRASH_ROUND="+strconv.Itoa(round),
			crashFlushEnv+"="+flush)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Wait for READY (bounded), then let it write for a random time and kill it.
		ready := time.After(10 * time.Second)
	waitReady:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					cmd.Wait()
					t.Fatalf("round %d: child exited before READY: %s", round, stderr.String())
				}
				if l == "READY" {
					break waitReady
				}
			case <-ready:
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: child not ready: %s", round, stderr.String())
			}
		}
		killAfter := time.Duration(20+rng.IntN(400)) * time.Millisecond
		timer := time.NewTimer(killAfter)
		n := 0
	collect:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break collect
				}
				if a, ok := parseAck(l); ok {
					acked[a.offset] = a
					n++
				}
			case <-timer.C:
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatalf("kill: %v", err)
				}
				timer.Reset(time.Hour)
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child not killed by a signal (%v): %s", round, err, stderr.String())
		}
		trunc := verifyCrashStore(t, dir, acked)
		if trunc > 0 {
			truncatedRounds++
			totalTruncated += trunc
		}
		t.Logf("round %d: killed after %v, %d acks this round", round, killAfter, n)
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
	t.Logf("crash test: %d rounds in %v, %d acked messages all verified byte-identical; %d rounds had a torn tail (%d bytes truncated)",
		rounds, time.Since(start).Round(time.Millisecond), len(acked), truncatedRounds, totalTruncated)
	if len(acked) < rounds {
		t.Fatalf("only %d acks over %d rounds: the child is not writing", len(acked), rounds)
	}
}

// verifyCrashStore opens the crashed store and checks it; it returns the bytes recovery cut.
func verifyCrashStore(t *testing.T, dir string, acked map[int64]crashAck) int {
	t.Helper()
	// Where did the child's bytes end? Scan raw files for the last non-zero byte.
	rawEnd := rawLogEnd(t, dir)
	s, err := Open(crashConfig(dir), testLogger(t))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	st := s.Stats()
	truncated := 0
	if rawEnd > st.MaxPhysicalOffset {
		truncated = int(rawEnd - st.MaxPhysicalOffset)
	}
	// 1. Every acked message is readable and byte-identical.
	for off, a := range acked {
		rec, err := s.ReadRecord(off)
		if err != nil {
			t.Fatalf("acked message %+v unreadable: %v", a, err)
		}
		if crc32.ChecksumIEEE(rec) != a.crc || int32(len(rec)) != a.size {
			t.Fatalf("acked message %+v differs on disk", a)
		}
		m, _, err := message.DecodeRecord(rec, true)
		want := crashMessage(a.round, a.writer, a.seq)
		if err != nil || string(m.Body) != string(want.Body) || m.QueueOffset != a.queueOffset || m.QueueID != a.qid {
			t.Fatalf("acked message %+v decodes wrong: %v", a, err)
		}
		if a.offset+int64(a.size) > st.MaxPhysicalOffset {
			t.Fatalf("acked message past the recovered end %d", st.MaxPhysicalOffset)
		}
	}
	// 2. The consume queues agree with the commit log: queue entry i points to a record of
	//    that queue with queue offset i; no holes; every record below the end is indexed.
	total := int64(0)
	for qid := int32(0); qid < crashQueues; qid++ {
		max := s.MaxOffset(crashTopic, qid)
		for off := int64(0); off < max; {
			r, err := s.Get(crashTopic, qid, off, 32, 1<<20, nil)
			if err != nil || r.Status != Found {
				t.Fatalf("queue %d offset %d: %v %v", qid, off, r.Status, err)
			}
			for i, rec := range r.Records {
				var h message.RecordHeader
				if err := message.ParseRecordHeader(rec.Data, &h); err != nil || !h.VerifyBodyCRC(rec.Data) {
					t.Fatalf("queue %d offset %d: bad record: %v", qid, rec.QueueOffset, err)
				}
				if h.QueueOffset != off+int64(i) || h.QueueID != qid || h.PhysicalOffset != rec.CommitLogOffset {
					t.Fatalf("queue %d offset %d points to record with queue %d offset %d", qid, off+int64(i), h.QueueID, h.QueueOffset)
				}
				if rec.CommitLogOffset+int64(len(rec.Data)) > st.MaxPhysicalOffset {
					t.Fatal("served a record past the valid end")
				}
				if a, ok := acked[rec.CommitLogOffset]; ok && a.queueOffset != h.QueueOffset {
					t.Fatalf("ack %+v but queue says %d", a, h.QueueOffset)
				}
			}
			off = r.NextBeginOffset
			r.Release()
		}
		total += max
	}
	// 3. The number of queue entries equals the number of records in the log.
	if n := countRecords(t, s); n != total {
		t.Fatalf("commit log holds %d records, consume queues %d", n, total)
	}
	return truncated
}

func countRecords(t *testing.T, s *Store) int64 {
	var n int64
	var h message.RecordHeader
	for pos := s.cl.minOffset(); pos < s.cl.written.Load(); {
		seg := s.cl.find(pos)
		if seg == nil {
			t.Fatalf("no segment at %d", pos)
		}
		err := message.ParseRecordHeader(seg.data[pos-seg.start:], &h)
		seg.release()
		if err != nil {
			if err.Error() == message.ErrBlank.Error() {
				pos = seg.end()
				continue
			}
			t.Fatalf("record at %d: %v", pos, err)
		}
		n++
		pos += int64(h.TotalSize)
	}
	return n
}

// rawLogEnd returns the offset just past the last non-zero byte of the commit log files.
func rawLogEnd(t *testing.T, dir string) int64 {
	entries, _ := os.ReadDir(dir + "/commitlog")
	var end int64
	for _, e := range entries {
		start, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(dir + "/commitlog/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				if start+int64(i)+1 > end {
					end = start + int64(i) + 1
				}
				break
			}
		}
	}
	return end
}
