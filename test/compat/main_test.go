//go:build !race

package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	golang "github.com/apache/rocketmq-clients/golang/v5"
)

var (
	binary  string // the rocketry binary built by TestMain
	workDir string // per-run scratch directory (process logs, data dirs of shared deployments)
	runID   = fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	nameSeq atomic.Int64
)

func TestMain(m *testing.M) {
	// The scenarios mostly wait (invisible times, delays, restarts), so run more of them at
	// once than go test's default of GOMAXPROCS (2 here), unless -parallel was given.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	dir, err := os.MkdirTemp("", "rocketry-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	binary = filepath.Join(dir, "rocketry")
	start := time.Now()
	build := exec.Command("go", "build", "-o", binary, "github.com/rocketry-mq/rocketry/cmd/rocketry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "compat: building rocketry:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "compat: built %s in %s\n", binary, time.Since(start).Round(time.Millisecond))
	// Both official SDKs log to files/stdout by default; keep them quiet and out of $HOME.
	os.Setenv("rocketmq.client.logRoot", filepath.Join(dir, "sdk-logs"))
	os.Setenv("mq.consoleAppender.enabled", "false")
	os.Setenv("rocketmq.client.logLevel", "error")
	golang.ResetLogger()
	// COMPAT_GO2_LOG=warn|info|debug shows the go2 client's own log (stdout) when debugging.
	if lvl := os.Getenv("COMPAT_GO2_LOG"); lvl != "" {
		rlog.SetLogLevel(lvl)
	} else {
		rlog.SetLogLevel("fatal")
	}

	code := m.Run()
	stopShared()
	if code == 0 {
		os.RemoveAll(dir)
	} else {
		// Keep the process logs (top-level *.log), drop data dirs and the binary (GBs).
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".log") {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
		fmt.Fprintf(os.Stderr, "compat: process logs kept in %s\n", dir)
	}
	os.Exit(code)
}

// uniq returns a unique resource name (topics and groups are never shared between tests).
func uniq(prefix string) string {
	return fmt.Sprintf("%s_%s_%d", prefix, runID, nameSeq.Add(1))
}

// ---------------------------------------------------------------------------------------
// processes

var (
	portMu   sync.Mutex
	usedPort = map[int]bool{}
)

// freePort returns a loopback port that was free a moment ago and that this run has not
// handed out before.
func freePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !usedPort[p] {
			usedPort[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no free port")
}

func freeAddr() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}

// proc is one rocketry child process; its stdout+stderr go to a log file under workDir.
type proc struct {
	name    string
	args    []string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

func startProc(name string, args ...string) (*proc, error) {
	logPath := filepath.Join(workDir, fmt.Sprintf("%s-%d.log", name, nameSeq.Add(1)))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, args: args, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the last n bytes of the process log.
func (p *proc) logTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stop sends SIGTERM and waits (bounded) for a clean exit; it escalates to SIGKILL.
func (p *proc) stop(timeout time.Duration) error {
	if p.exited() {
		return p.waitErr
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %s of SIGTERM (killed)", p.name, timeout)
	}
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *proc) kill9() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitFor polls cond every 50 ms until it returns nil, the process exits, or d passes.
func (p *proc) waitFor(d time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(d)
	var last error
	for {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited (%v) before %s; log tail:\n%s", p.name, p.waitErr, what, p.logTail(3000))
		}
		if last = cond(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			tail := ""
			if p != nil {
				tail = p.logTail(3000)
			}
			return fmt.Errorf("%s not %s within %s: %v; log tail:\n%s", nameOf(p), what, d, last, tail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nameOf(p *proc) string {
	if p == nil {
		return "condition"
	}
	return p.name
}

func dialOK(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func healthOK(addr string) func() error {
	return func() error {
		cl := http.Client{Timeout: 2 * time.Second}
		resp, err := cl.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz %d", resp.StatusCode)
		}
		return nil
	}
}

// brokerRegistered succeeds once `rocketry admin cluster list` shows a broker at addr.
func brokerRegistered(ns, addr string) func() error {
	return func() error {
		out, errOut, code := cli(20*time.Second, "admin", "-n", ns, "-o", "json", "cluster", "list")
		if code != 0 {
			return fmt.Errorf("admin cluster list: exit %d: %s", code, strings.TrimSpace(errOut))
		}
		var rows []struct {
			Addr  string `json:"addr"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			return fmt.Errorf("admin cluster list output: %w: %q", err, out)
		}
		for _, r := range rows {
			if r.Addr == addr && r.Error == "" {
				return nil
			}
		}
		return fmt.Errorf("broker %s not in cluster list %s", addr, out)
	}
}

// cli runs the rocketry binary and returns stdout, stderr and the exit code (-1 when it
// could not run or timed out).
func cli(timeout time.Duration, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			code = ee.ExitCode()
		} else {
			code = -1
			errb.WriteString(fmt.Sprintf("\n[compat: %v]", err))
		}
	}
	return out.String(), errb.String(), code
}

// ---------------------------------------------------------------------------------------
// deployments

// deployment is a running Rocketry: a standalone process or namesrv + broker + proxy.
type deployment struct {
	kind    string // "standalone" or "cluster"
	dir     string
	ns      string // NameServer remoting address
	broker  string // Broker remoting address
	grpc    string // Proxy gRPC address
	http    string // standalone HTTP address ("" in cluster mode)
	conf    string // broker.conf path
	procs   []*proc
	nsProc  *proc
	brProc  *proc
	pxProc  *proc
	saProc  *proc
	brArgs  []string
	saArgs  []string
	stopped bool
}

func (d *deployment) close() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		_ = d.procs[i].stop(15 * time.Second)
	}
	d.stopped = true
}

func (d *deployment) logs() string {
	var b strings.Builder
	for _, p := range d.procs {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.name, p.logPath, p.logTail(2000))
	}
	return b.String()
}

// brokerConf writes a broker.conf with the given lines (64 MiB segments are always set so
// temp dirs stay small).
func brokerConf(dir string, lines ...string) (string, error) {
	all := append([]string{"mappedFileSizeCommitLog=67108864"}, lines...)
	path := filepath.Join(dir, "broker.conf")
	return path, os.WriteFile(path, []byte(strings.Join(all, "\n")+"\n"), 0o644)
}

// startStandalone runs `rocketry standalone` with fresh ports on dir (created when "") and
// waits for /healthz 200.
func startStandalone(dir string, conf []string, extra ...string) (*deployment, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp(workDir, "standalone-"); err != nil {
			return nil, err
		}
	}
	d := &deployment{kind: "standalone", dir: dir}
	var err error
	for _, a := range []*string{&d.ns, &d.broker, &d.grpc, &d.http} {
		if *a, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if d.conf, err = brokerConf(dir, conf...); err != nil {
		return nil, err
	}
	d.saArgs = append([]string{"standalone", "--data-dir", filepath.Join(dir, "data"), "--config", d.conf,
		"--namesrv-listen", d.ns, "--broker-listen", d.broker, "--grpc-listen", d.grpc, "--http-listen", d.http,
		"--log-format", "json"}, extra...)
	return d, d.startSA()
}

func (d *deployment) startSA() error {
	p, err := startProc("standalone", d.saArgs...)
	if err != nil {
		return err
	}
	d.saProc = p
	d.procs = append(d.procs, p)
	if err := p.waitFor(45*time.Second, "healthy (/healthz 200)", healthOK(d.http)); err != nil {
		return err
	}
	return nil
}

// restartStandalone starts the standalone again on the same data dir and ports.
func (d *deployment) restartStandalone() error { return d.startSA() }

// startCluster runs `rocketry namesrv`, `rocketry broker` (with conf lines) and `rocketry
// proxy` (with proxyArgs) as three processes.
func startCluster(conf []string, proxyArgs ...string) (*deployment, error) {
	dir, err := os.MkdirTemp(workDir, "cluster-")
	if err != nil {
		return nil, err
	}
	d := &deployment{kind: "cluster", dir: dir}
	for _, a := range []*string{&d.ns, &d.broker, &d.grpc} {
		if *a, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if d.conf, err = brokerConf(dir, conf...); err != nil {
		return nil, err
	}
	ns, err := startProc("namesrv", "namesrv", "--listen", d.ns, "--log-format", "json")
	if err != nil {
		return d, err
	}
	d.nsProc = ns
	d.procs = append(d.procs, ns)
	if err := ns.waitFor(20*time.Second, "listening", dialOK(d.ns)); err != nil {
		return d, err
	}
	d.brArgs = []string{"broker", "--config", d.conf, "--listen", d.broker, "--namesrv-addr", d.ns,
		"--data-dir", filepath.Join(dir, "broker"), "--name", "broker-" + runID, "--advertise-addr", d.broker,
		"--log-format", "json"}
	if err := d.startBroker(); err != nil {
		return d, err
	}
	px, err := startProc("proxy", append([]string{"proxy", "--grpc-listen", d.grpc, "--namesrv-addr", d.ns,
		"--log-format", "json"}, proxyArgs...)...)
	if err != nil {
		return d, err
	}
	d.pxProc = px
	d.procs = append(d.procs, px)
	if err := px.waitFor(20*time.Second, "listening", dialOK(d.grpc)); err != nil {
		return d, err
	}
	return d, nil
}

// startBroker (re)starts the cluster's broker and waits until the NameServer lists it.
func (d *deployment) startBroker() error {
	br, err := startProc("broker", d.brArgs...)
	if err != nil {
		return err
	}
	d.brProc = br
	d.procs = append(d.procs, br)
	return br.waitFor(45*time.Second, "registered with the NameServer", brokerRegistered(d.ns, d.broker))
}

// shared deployments, started on first use and stopped after m.Run.
type lazy struct {
	once sync.Once
	d    *deployment
	err  error
}

var (
	sharedMu sync.Mutex
	shared   []*lazy
)

func (l *lazy) get(t *testing.T, what string, start func() (*deployment, error)) *deployment {
	t.Helper()
	l.once.Do(func() {
		t0 := time.Now()
		l.d, l.err = start()
		sharedMu.Lock()
		shared = append(shared, l)
		sharedMu.Unlock()
		if l.err == nil {
			fmt.Fprintf(os.Stderr, "compat: %s ready in %s (ns %s, broker %s, grpc %s)\n", what, time.Since(t0).Round(time.Millisecond), l.d.ns, l.d.broker, l.d.grpc)
		}
	})
	if l.err != nil {
		t.Fatalf("%s could not be started: %v", what, l.err)
	}
	return l.d
}

func stopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	for _, l := range shared {
		if l.d != nil {
			l.d.close()
		}
	}
}

var saShared, clShared lazy

// sharedConf is the broker.conf of the shared deployments: transaction check-backs after
// 2 s, checked every second (RocketMQ's defaults are 6 s and 30 s).
var sharedConf = []string{"transactionTimeOut=2000", "transactionCheckInterval=1000"}

// standalone is the shared `rocketry standalone` (auto-create on, defaults otherwise).
func standalone(t *testing.T) *deployment {
	return saShared.get(t, "rocketry standalone", func() (*deployment, error) { return startStandalone("", sharedConf) })
}

// cluster is the shared cluster-mode deployment: separate namesrv, broker (auto-create of
// topics off, as in a production RocketMQ) and proxy with the smallest invisible duration
// lowered to 1 s so redelivery tests stay short (both the proxy's --min-invisible and the
// broker's popMinInvisibleTime must be lowered: see docs/qa/findings.md F1).
func cluster(t *testing.T) *deployment {
	return clShared.get(t, "cluster (rocketry namesrv + broker + proxy)", func() (*deployment, error) {
		return startCluster(append([]string{"autoCreateTopicEnable=false", "popMinInvisibleTime=1000"}, sharedConf...), "--min-invisible", "1s")
	})
}

// ---------------------------------------------------------------------------------------
// admin helpers (through the CLI, as an operator would)

func adminJSON(t *testing.T, d *deployment, out any, args ...string) {
	t.Helper()
	full := append([]string{"admin", "-n", d.ns, "-o", "json", "--timeout", "15s"}, args...)
	stdout, stderr, code := cli(30*time.Second, full...)
	if code != 0 {
		t.Fatalf("rocketry %s: exit %d, stderr: %s", strings.Join(full, " "), code, strings.TrimSpace(stderr))
	}
	if out != nil {
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			t.Fatalf("rocketry %s: output is not the documented JSON: %v\n%s", strings.Join(full, " "), err, stdout)
		}
	}
}

// createTopic creates a topic of the given type (NORMAL, FIFO, DELAY, TRANSACTION).
func createTopic(t *testing.T, d *deployment, name, typ string, queues int) {
	t.Helper()
	adminJSON(t, d, nil, "topic", "create", "--name", name, "--type", typ, "--queues", fmt.Sprint(queues))
}

func createGroup(t *testing.T, d *deployment, name string, fifo bool, maxAttempts int) {
	t.Helper()
	args := []string{"group", "create", "--name", name, "--max-attempts", fmt.Sprint(maxAttempts)}
	if fifo {
		args = append(args, "--fifo")
	}
	adminJSON(t, d, nil, args...)
}

// waitUntil polls cond every 100 ms until it is true or d passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// tempDir makes a directory under the run's scratch directory.
func tempDir(prefix string) (string, error) { return os.MkdirTemp(workDir, prefix) }
