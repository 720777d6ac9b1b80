package timer

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// The kill -9 test runs the store and the timer service in a child process (this test binary
// re-executed with crashChildEnv set), lets it deliver for a random while and kills it with
// SIGKILL: no final checkpoint, no store close, deliveries possibly half done. After several
// rounds (every third one a bare restart killed at a random moment, possibly mid-recovery)
// the parent recovers in-process and checks every timer was delivered exactly once.
const crashChildEnv = "ROCKETRY_TIMER_CRASH_CHILD"

// runCrashChild is the child's main: env ROCKETRY_TIMER_CRASH_CHILD="storeDir|timerDir|prefix|n|seed".
func runCrashChild() int {
	parts := strings.Split(os.Getenv(crashChildEnv), "|")
	n, _ := strconv.Atoi(parts[3])
	seed, _ := strconv.ParseUint(parts[4], 10, 64)
	t := &childTB{}
	r := startReal(t, parts[0], storeConfig(parts[0]), testConfig(parts[1]))
	rnd := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		r.send(t, fmt.Sprintf("%s-%d", parts[2], i), map[string]string{
			message.PropertyTimerDelayMS: strconv.FormatInt(50+rnd.Int64N(2000), 10),
		})
	}
	fmt.Println("SENT")
	select {} // deliver until killed
}

// childTB lets the test helpers run in the child; any failure exits with status 3.
type childTB struct{ testing.TB }

func (c *childTB) Helper() {}
func (c *childTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(3)
}
func (c *childTB) Fatalf(f string, args ...any) { c.Fatal(fmt.Sprintf(f, args...)) }
func (c *childTB) Error(args ...any)            { c.Fatal(args...) }

func TestRealStoreKill9(t *testing.T) {
	root := t.TempDir()
	sdir, tdir := filepath.Join(root, "store"), filepath.Join(root, "timer")
	rnd := rand.New(rand.NewPCG(31, 32))
	var ids []string
	for round := range 6 {
		prefix, n := fmt.Sprintf("k%d", round), 150
		if round%3 == 2 {
			// A restart killed at a random moment, possibly in the middle of recovery.
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%d|%d", crashChildEnv, sdir, tdir, prefix, 0, round))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rnd.Int64N(400)) * time.Millisecond)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			continue
		}
		for i := range n {
			ids = append(ids, fmt.Sprintf("%s-%d", prefix, i))
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%d|%d", crashChildEnv, sdir, tdir, prefix, n, round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sent := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			ok := false
			for sc.Scan() {
				if sc.Text() == "SENT" {
					ok = true
					break
				}
			}
			sent <- ok
		}()
		select {
		case ok := <-sent:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("round %d: child exited before sending (%v)", round, cmd.ProcessState)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: child did not send in time", round)
		}
		time.Sleep(time.Duration(100+rnd.Int64N(1500)) * time.Millisecond) // mid-delivery
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	r := startReal(t, sdir, storeConfig(sdir), testConfig(tdir))
	defer r.stop(t)
	deadline := time.Now().Add(2500 * time.Millisecond)
	waitFor(t, 15*time.Second, "all timers", func() bool {
		s := r.svc.Stats()
		return time.Now().After(deadline) && s.InMemory == 0 && s.OnDisk == 0
	})
	checkRealExactlyOnce(t, r.st, ids)
	if n := pendingTotal(r.svc); n != 0 {
		t.Fatalf("%d still counted pending", n)
	}
}
