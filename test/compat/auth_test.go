//go:build !race

package compat

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	golang "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
)

// TestProxyAuth: a second proxy with --auth --acl-file in front of the shared cluster. go5
// signs every call (MQv2-HMAC-SHA1): a super user sends and receives; a user with Pub/Sub on
// "authok_*" may use such topics and gets FORBIDDEN elsewhere; a wrong secret and anonymous
// clients get UNAUTHORIZED.
func TestProxyAuth(t *testing.T) {
	t.Parallel()
	d := cluster(t)
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl.json")
	if err := os.WriteFile(acl, []byte(`{"users":[
 {"username":"admin","password":"adminsecret","super":true},
 {"username":"app","password":"appsecret","policies":[
   {"resource":"Topic:authok_*","actions":["Pub","Sub"],"decision":"Allow"},
   {"resource":"Group:authok_*","actions":["Sub"],"decision":"Allow"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	px, err := startProc("proxy-auth", "proxy", "--grpc-listen", addr, "--namesrv-addr", d.ns, "--auth", "--acl-file", acl, "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.stop(10 * time.Second) })
	if err := px.waitFor(20*time.Second, "listening", dialOK(addr)); err != nil {
		t.Fatal(err)
	}
	ok, denied := uniq("authok"), uniq("authno")
	createTopic(t, d, ok, "NORMAL", 1)
	createTopic(t, d, denied, "NORMAL", 1)

	cfg := func(ak, sk, group string) *golang.Config {
		return &golang.Config{Endpoint: addr, ConsumerGroup: group, Credentials: &credentials.SessionCredentials{AccessKey: ak, AccessSecret: sk}}
	}
	send := func(ak, sk, topic string) error {
		p, err := golang.NewProducer(cfg(ak, sk, ""))
		if err != nil {
			return err
		}
		if err := p.Start(); err != nil {
			return err
		}
		defer p.GracefulStop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = p.Send(ctx, &golang.Message{Topic: topic, Body: []byte("auth")})
		return err
	}
	if err := send("admin", "adminsecret", denied); err != nil {
		t.Errorf("super user send: %v", err)
	}
	if err := send("app", "appsecret", ok); err != nil {
		t.Errorf("user with Pub on authok_*: %v", err)
	}
	if err := send("app", "appsecret", denied); err == nil || !strings.Contains(err.Error(), "FORBIDDEN") {
		t.Errorf("user without Pub on %s: %v, want FORBIDDEN", denied, err)
	}
	if err := send("app", "wrong", ok); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("wrong secret: %v, want UNAUTHORIZED", err)
	}
	if err := send("", "", ok); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("anonymous: %v, want UNAUTHORIZED", err)
	}
	// The permitted user receives and acks what it sent.
	c, err := golang.NewSimpleConsumer(cfg("app", "appsecret", uniq("authok_g")), golang.WithAwaitDuration(2*time.Second),
		golang.WithSubscriptionExpressions(map[string]*golang.FilterExpression{ok: golang.SUB_ALL}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("authorized consumer Start: %v", err)
	}
	t.Cleanup(func() { _ = c.GracefulStop() })
	var got bool
	receiveUntil(t, c, 4, 10*time.Second, 20*time.Second, func(mv *golang.MessageView) { got = true; ack(t, c, mv) }, func() bool { return got })
	if !got {
		t.Errorf("authorized consumer received nothing")
	}
	_ = c.GracefulStop()
	// The official go5 SDK in a process whose local zone is not UTC (it stamps its wall time
	// with a literal Z; QA F16, R7G-1: the proxy must recognise go5's real x-mq-language
	// header "GO"). `rocketry produce` is go5; UTC+8 and UTC-5 both pass.
	for _, tz := range []string{"Asia/Shanghai", "America/New_York"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, binary, "produce", "--endpoint", addr, "-t", ok, "--body", "tz-"+tz,
			"--access-key", "app", "--secret-key", "appsecret")
		cmd.Env = append(os.Environ(), "TZ="+tz)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("go5 producer with TZ=%s: %v\n%s", tz, err, out)
		}
	}
	// A proxy stops cleanly on SIGTERM (exit status 0).
	if err := px.stop(15 * time.Second); err != nil {
		t.Errorf("proxy SIGTERM: %v (want exit status 0); log tail:\n%s", err, px.logTail(1500))
	}
}
