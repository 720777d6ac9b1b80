package txn

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

const crashChildEnv = "TXN_CRASH_CHILD_DIR"

// crashChild runs in a child process: on a sync-flush store it stores two half messages, lets
// the scanner record them (checkpoint), commits the first (no scanner round follows, so its op
// record is never written), prints the offsets and waits to be killed.
func crashChild(dir string) {
	fail := func(err error) {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	l, err := openStoreLog(dir)
	if err != nil {
		fail(err)
	}
	cfg := DefaultConfig()
	cfg.Dir = filepath.Join(dir, "txn")
	svc, err := New(cfg, l, CheckSenderFunc(func(context.Context, *Check) error { return nil }), nil)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	if err := svc.Recover(ctx); err != nil {
		fail(err)
	}
	var ps []Placement
	var uniqs []string
	for i := range 2 {
		m := &message.Ext{Message: message.Message{Topic: "T", Body: []byte(fmt.Sprint("m", i)), Properties: map[string]string{
			message.PropertyTransactionPrepared: "true", message.PropertyProducerGroup: "PG",
		}}, SysFlag: message.SysFlagTransactionPrepared, BornTimestamp: time.Now().UnixMilli()}
		p, err := l.PutDirect(ctx, ToHalf(m))
		if err != nil {
			fail(err)
		}
		ps = append(ps, p)
		uniqs = append(uniqs, m.UniqKey())
	}
	if err := waitDispatched(l); err != nil {
		fail(err)
	}
	if err := svc.scanOnce(ctx); err != nil {
		fail(err)
	}
	if err := svc.End(ctx, &EndRequest{ProducerGroup: "PG", TranStateTableOffset: ps[0].QueueOffset,
		CommitLogOffset: ps[0].CommitLogOffset, Resolution: ResolutionCommit, TransactionID: uniqs[0]}); err != nil {
		fail(err)
	}
	fmt.Println("READY", ps[0].CommitLogOffset, ps[1].CommitLogOffset)
	time.Sleep(time.Minute) // killed long before
	os.Exit(3)
}

// TestKill9CommittedBeforeOp kills (SIGKILL) a process right after a commit whose op record
// was not written, then recovers the store and the service from its files: the committed
// message is found through the key index and not checked back or re-delivered; the other
// half is still pending and is checked back.
func TestKill9CommittedBeforeOp(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "READY") || strings.HasPrefix(l, "ERROR") {
				lines <- l
				return
			}
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("child did not get ready")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	var committed, pending int64
	if _, err := fmt.Sscanf(line, "READY %d %d", &committed, &pending); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}

	e := &env{t: t, be: storeBackend(), dir: dir, clock: newFakeClock()}
	e.cfg = DefaultConfig()
	e.cfg.Dir = filepath.Join(dir, "txn")
	e.cfg.Clock = e.clock.now
	e.start()
	if st := e.svc.Stats(); st.Open != 2 {
		t.Fatalf("open after kill -9 = %d, want 2 (the commit's op record was never written)", st.Open)
	}
	e.clock.advance(time.Hour)
	e.scan() // verification round
	e.scan() // check round
	checks := e.takeChecks()
	if len(checks) != 1 || checks[0].CommitLogOffset != pending {
		t.Fatalf("checks after restart: %+v, want one for %d", checks, pending)
	}
	if got := e.queue("T", 0); len(got) != 1 || got[0].PreparedTransactionOffset != committed {
		t.Fatalf("real topic after restart: %d messages", len(got))
	}
	if st := e.svc.Stats(); st.Recovered != 1 || st.Open != 1 {
		t.Fatalf("stats %+v", st)
	}
}
