// Package cli tests the rocketry binary end to end: TestMain builds it, each test starts
// `rocketry standalone` as a child process on ephemeral loopback ports and drives it with
// `rocketry admin`, `produce`, `consume` and `bench`, checking exit codes, stderr and the
// documented JSON output (docs/cli.md).
package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rocketry-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "rocketry")
	build := exec.Command("go", "build", "-o", binary, "github.com/rocketry-mq/rocketry/cmd/rocketry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building rocketry:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// The official SDK inside produce/consume/bench writes its log file under this root.
	os.Setenv("rocketmq.client.logRoot", filepath.Join(dir, "sdk-logs"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a `rocketry standalone` child process.
type server struct {
	t       *testing.T
	dir     string
	cmd     *exec.Cmd
	stderr  *syncBuffer
	namesrv string
	grpc    string
	http    string
	exited  chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs `rocketry standalone` on dir (t.TempDir() when "") and waits for /healthz.
func startServer(t *testing.T, dir string, extra ...string) *server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s := &server{t: t, dir: dir, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	args := append([]string{"standalone", "--data-dir", dir, "--log-format", "json",
		"--namesrv-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"}, extra...)
	s.cmd = exec.Command(binary, args...)
	pr, pw := io.Pipe()
	s.cmd.Stderr = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); pw.Close() }()
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Bytes()
			s.stderr.Write(append(append([]byte(nil), line...), '\n'))
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil && rec["msg"] == "standalone: started" {
				s.namesrv, _ = rec["namesrv"].(string)
				s.grpc, _ = rec["grpc"].(string)
				s.http, _ = rec["http"].(string)
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case err := <-s.exited:
		t.Fatalf("standalone exited: %v\n%s", err, s.stderr.String())
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("standalone did not start\n%s", s.stderr.String())
	}
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("standalone not healthy\n%s", s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within 30 s.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			s.t.Errorf("standalone exited with %v after SIGTERM\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		s.t.Errorf("standalone did not exit within 30 s of SIGTERM")
	}
}

// result is one CLI invocation.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary with args (and stdin) and returns its exit code and output.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// ok runs the binary and fails the test unless it exits 0.
func ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := run(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("rocketry %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// jsonOut runs the binary and decodes its stdout into v.
func jsonOut(t *testing.T, v any, args ...string) {
	t.Helper()
	out := ok(t, "", args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("rocketry %s: bad JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// admin prefixes the server's NameServer and JSON output.
func (s *server) admin(args ...string) []string {
	return append([]string{"admin", "-n", s.namesrv, "-o", "json"}, args...)
}

// jsonLines decodes one JSON object per line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", l, err)
		}
		res = append(res, m)
	}
	return res
}

// eventually retries f until it returns nil or 20 s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
