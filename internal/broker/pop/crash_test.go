package pop

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/store"
)

// The kill -9 test: a child process pops and acks over the real store and the pop log,
// printing "GOT <body>" for each popped message and "ACK <body>" after each Ack returned
// (durable); the parent kills it with SIGKILL mid-stream, then recovers both from disk. No
// message acked by the child may be delivered again; every message must be delivered and
// acked by someone, except at most the one whose Ack was in progress when the kill landed
// (durably acked but not yet reported: then it was GOT by the child).

const crashChildEnv = "ROCKETRY_POP_CRASH_CHILD"

const crashMessages = 300

func crashStoreConfig(dir string) store.Config {
	cfg := store.DefaultConfig()
	cfg.StorePathRootDir = filepath.Join(dir, "store")
	cfg.MappedFileSizeCommitLog = 8 << 20
	cfg.PreallocMode = store.PreallocFallocate
	return cfg
}

func crashService(dir string, st *store.Store) (*Service, *memTables, error) {
	tables := newMemTables(newMemStore())
	tables.topics["T"] = benchQueues
	tables.groups["G"] = GroupInfo{RetryMaxTimes: 16}
	cfg := DefaultConfig()
	cfg.Dir = filepath.Join(dir, "pop")
	cfg.BrokerName = "broker-a"
	cfg.MinInvisibleTime = 100 * time.Millisecond
	svc, err := New(cfg, Deps{Store: StoreReader{st}, Topics: tables, Groups: tables, Offsets: tables,
		DeadLetter: tables.deadLetter}, nil)
	return svc, tables, err
}

// crashChild consumes until killed.
func crashChild(dir string) {
	st, err := store.Open(crashStoreConfig(dir), nil)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	svc, _, err := crashService(dir, st)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	ctx := context.Background()
	go svc.Run(ctx)
	fmt.Println("READY")
	for i := 0; ; i++ {
		res, err := svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: -1, MaxMessages: 8,
			InvisibleTime: time.Second, PollTime: time.Second})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		for _, m := range res.Messages {
			fmt.Println("GOT", string(m.Ext.Body))
		}
		for j, m := range res.Messages {
			if (i+j)%3 == 0 {
				continue // left unacked: must come back after the crash
			}
			if err := svc.Ack(ctx, "G", "T", m.Handle); err != nil {
				fmt.Println("ERR", err)
				os.Exit(2)
			}
			fmt.Println("ACK", string(m.Ext.Body))
		}
	}
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	st, err := store.Open(crashStoreConfig(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	putBodies(t, st, crashMessages)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	childAcked, childGot := map[string]bool{}, map[string]bool{}
	record := func(line string) {
		if body, ok := strings.CutPrefix(line, "ACK "); ok {
			childAcked[body] = true
		} else if body, ok := strings.CutPrefix(line, "GOT "); ok {
			childGot[body] = true
		} else if strings.HasPrefix(line, "ERR") {
			t.Errorf("child: %s", line)
		}
	}
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(30 * time.Second)
	for sc.Scan() && len(childAcked) < crashMessages/3 && time.Now().Before(deadline) {
		record(sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Lines printed before the kill landed are acks that returned: count them too.
	for sc.Scan() {
		record(sc.Text())
	}
	cmd.Wait()
	if len(childAcked) < crashMessages/3 {
		t.Fatalf("child acked only %d before the deadline; stderr: %s", len(childAcked), stderr.String())
	}

	st, err = store.Open(crashStoreConfig(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, _, err := crashService(dir, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	parentAcked := map[string]bool{}
	recovered := time.Now()
	deadline = recovered.Add(20 * time.Second)
	for len(childAcked)+len(parentAcked) < crashMessages && time.Now().Before(deadline) {
		res, err := svc.Pop(ctx, PopRequest{Group: "G", Topic: "T", QueueID: -1, MaxMessages: 32,
			InvisibleTime: time.Minute, PollTime: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 && time.Since(recovered) > 2*time.Second {
			break // the child's 1s invisible times are over: everything due was delivered
		}
		for _, m := range res.Messages {
			body := string(m.Ext.Body)
			if childAcked[body] {
				t.Fatalf("message %s acked before the crash was delivered again", body)
			}
			if parentAcked[body] {
				t.Fatalf("message %s delivered twice after the crash", body)
			}
			if err := svc.Ack(ctx, "G", "T", m.Handle); err != nil {
				t.Fatal(err)
			}
			parentAcked[body] = true
		}
	}
	var missing []string
	for i := range crashMessages {
		body := fmt.Sprint(i)
		if !childAcked[body] && !parentAcked[body] {
			missing = append(missing, body)
		}
	}
	if len(missing) > 1 || len(missing) == 1 && !childGot[missing[0]] {
		t.Fatalf("never acked: %v (child acked %d, parent %d of %d)", missing, len(childAcked), len(parentAcked), crashMessages)
	}
	t.Logf("child acked %d before SIGKILL, %d delivered after recovery", len(childAcked), len(parentAcked))
}

func putBodies(t testing.TB, st *store.Store, n int) {
	t.Helper()
	for i := range n {
		putOne(t, st, int32(i%benchQueues), fmt.Sprint(i))
	}
}
