package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/namesrv"
	"github.com/rocketry-mq/rocketry/internal/namesrv/route"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// TestNamesrvSubcommandEndToEnd builds the binary, runs `rocketry namesrv` on free ports,
// registers a broker over remoting, reads the route and /healthz, then stops it with
// SIGTERM and expects a clean exit.
func TestNamesrvSubcommandEndToEnd(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rocketry")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "namesrv", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	type logLine struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
		HTTP string `json:"http"`
	}
	lines := make(chan logLine, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l
			}
		}
		close(lines)
	}()
	var started logLine
	deadline := time.After(30 * time.Second)
	for started.Addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("namesrv exited before starting")
			}
			if l.Msg == "namesrv: started" {
				started = l
			}
		case <-deadline:
			t.Fatal("namesrv did not log its start")
		}
	}

	cli := remoting.NewClient(remoting.ClientConfig{}, slog.New(slog.DiscardHandler))
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = namesrv.RegisterBroker(ctx, cli, started.Addr, namesrv.RegisterRequest{
		ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: "127.0.0.1:10911",
		Topics: route.TopicConfigSerializeWrapper{TopicConfigTable: map[string]route.TopicConfig{
			"E2E": {TopicName: "E2E", ReadQueueNums: 2, WriteQueueNums: 2, Perm: route.PermReadWrite},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := namesrv.GetRouteInfo(ctx, cli, started.Addr, "E2E")
	if err != nil || len(rt.QueueDatas) != 1 || rt.BrokerDatas[0].BrokerAddrs[0] != "127.0.0.1:10911" {
		t.Fatalf("route %+v %v", rt, err)
	}
	resp, err := http.Get("http://" + started.HTTP + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"ok"`) {
		t.Fatalf("/healthz %d %s", resp.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := false
	for l := range lines {
		if l.Msg == "namesrv: stopped" {
			stopped = true
		}
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("namesrv did not exit after SIGTERM")
	}
	if !stopped {
		t.Fatal("no clean-shutdown log line")
	}
}
