package cli

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStandaloneHonoursBrokerConfPaths (QA R5C-7, R5C-1): `standalone --config` takes the
// file's listenPort and storePathRootDir when no flag overrides them, and refuses a
// storePathCommitLog it cannot honour instead of writing elsewhere.
func TestStandaloneHonoursBrokerConfPaths(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	root := filepath.Join(dir, "store")
	conf := filepath.Join(dir, "broker.conf")
	body := "listenPort=" + strconv.Itoa(port) + "\nstorePathRootDir=" + root + "\nstorePathCommitLog=" + root + "/commitlog\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "standalone", "--config", conf, "--namesrv-listen", "127.0.0.1:0",
		"--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	cmd.Dir = dir
	out := &syncBuffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	eventually(t, "the broker listening on the file's listenPort with its store under storePathRootDir", func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err != nil {
			return err
		}
		c.Close()
		_, err = os.Stat(filepath.Join(root, "commitlog"))
		return err
	})
	if _, err := os.Stat(filepath.Join(dir, "rocketry-data")); err == nil {
		t.Errorf("data written to the default ./rocketry-data although the file names storePathRootDir\n%s", out.String())
	}

	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("storePathCommitLog=/elsewhere/commitlog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "standalone", "--config", bad, "--data-dir", filepath.Join(dir, "d2"), "--namesrv-listen", "127.0.0.1:0",
		"--broker-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stderr, "storePathCommitLog") {
		t.Fatalf("unsupported storePathCommitLog: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestBenchRefusesBadValues (QA R5C-9): values a bench would otherwise replace with its
// defaults are refused with exit 1, before any connection is made.
func TestBenchRefusesBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "produce", "-c", "0"},
		{"bench", "produce", "-s", "-5"},
		{"bench", "consume", "--consumers", "0"},
		{"bench", "e2e", "--batch", "64"},
	} {
		r := run(t, "", append(args, "--endpoint", "127.0.0.1:1")...)
		if r.code != 1 || !strings.Contains(r.stderr, "must be") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

// TestStandaloneAuthentication (QA R8K-11): standalone turns on the gRPC port's authentication
// from Apache's keys in its --config file (authenticationEnabled, aclFile): anonymous sends
// are refused, signed ones accepted; authenticationEnabled without an ACL file refuses to start.
func TestStandaloneAuthentication(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl.json")
	if err := os.WriteFile(acl, []byte(`{"users":[{"username":"app","password":"app-secret","super":true}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte("authenticationEnabled=true\naclFile="+acl+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, filepath.Join(dir, "data"), "--config", conf)
	if r := run(t, "", "produce", "--endpoint", s.grpc, "-t", "secured", "--body", "x"); r.code != 1 || !strings.Contains(r.stderr, "40100") && !strings.Contains(r.stderr, "UNAUTHORIZED") {
		t.Fatalf("anonymous send: %+v", r)
	}
	ok(t, "", "produce", "--endpoint", s.grpc, "-t", "secured", "--body", "x", "--access-key", "app", "--secret-key", "app-secret")
	if log := s.stderr.String(); strings.Contains(log, "not supported, ignored") || strings.Contains(log, "unknown broker.conf key") {
		t.Errorf("the proxy's keys reported as ignored broker keys (R8R-1):\n%s", log)
	}

	bad := filepath.Join(dir, "noacl.conf")
	os.WriteFile(bad, []byte("authenticationEnabled=true\n"), 0o644)
	if r := run(t, "", "standalone", "--config", bad, "--data-dir", filepath.Join(dir, "d2"), "--namesrv-listen", "127.0.0.1:0",
		"--broker-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", ""); r.code != 1 || !strings.Contains(r.stderr, "ACL file") {
		t.Fatalf("authenticationEnabled without aclFile: %+v", r)
	}
}

// TestSignals: SIGQUIT dumps the goroutines and the server keeps serving (as a JVM's thread
// dump, QA R11C-9); SIGHUP stops it as cleanly as SIGTERM: status 0 and a clean-shutdown
// log (QA R11C-8).
func TestSignals(t *testing.T) {
	s := startServer(t, "")
	if err := s.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	eventually(t, "goroutine dump on SIGQUIT", func() error {
		if !strings.Contains(s.stderr.String(), "goroutine dump (the process keeps running)") {
			return errors.New("no dump yet")
		}
		return nil
	})
	ok(t, "", s.admin("cluster", "list")...) // still serving
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("exit after SIGHUP: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGHUP")
	}
	if !strings.Contains(s.stderr.String(), "standalone: stopped") {
		t.Fatalf("no clean-shutdown log after SIGHUP:\n%s", s.stderr.String())
	}
}
