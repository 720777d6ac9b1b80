package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/tlsmux"
)

func routeOK(t *testing.T, c pb.MessagingServiceClient) error {
	t.Helper()
	resp, err := c.QueryRoute(cctx(t, "cid-1", 3*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "T"}})
	if err != nil {
		return err
	}
	if resp.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("QueryRoute status = %v", resp.GetStatus())
	}
	return nil
}

func TestSniffPlaintextAndTLSOnOnePort(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 4)
	s := startProxy(t, b, nil) // permissive by default
	addr := s.Addr().String()
	if err := routeOK(t, dial(t, addr, false)); err != nil {
		t.Fatalf("plaintext client: %v", err)
	}
	if err := routeOK(t, dial(t, addr, true)); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
}

func TestTLSModes(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 4)
	for _, tc := range []struct {
		mode           string
		plainOK, tlsOK bool
	}{
		{TLSEnforcing, false, true},
		{TLSDisabled, true, false},
		{TLSPermissive, true, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			s := startProxy(t, b, func(c *Config) { c.TLSMode = tc.mode })
			addr := s.Addr().String()
			if err := routeOK(t, dial(t, addr, false)); (err == nil) != tc.plainOK {
				t.Errorf("plaintext: err = %v, want ok=%v", err, tc.plainOK)
			}
			if err := routeOK(t, dial(t, addr, true)); (err == nil) != tc.tlsOK {
				t.Errorf("TLS: err = %v, want ok=%v", err, tc.tlsOK)
			}
		})
	}
}

func TestUnknownTLSModeFailsStartup(t *testing.T) {
	cfg := testConfig()
	cfg.TLSMode = "enforce"
	if _, err := New(cfg, newMemBackend(), logging.Discard()); err == nil || !strings.Contains(err.Error(), "unknown TLS mode") {
		t.Fatalf("New with mode %q: err = %v", cfg.TLSMode, err)
	}
}

// A client that connects and stalls (or sends less than a ClientHello) is closed at the
// handshake deadline.
func TestStalledConnectionClosedAtHandshakeDeadline(t *testing.T) {
	s := startProxy(t, newMemBackend(), func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	for _, prefix := range [][]byte{nil, {0x16, 0x03}} {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if len(prefix) > 0 {
			c.Write(prefix)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil {
			t.Fatalf("prefix %x: read succeeded, want close", prefix)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("prefix %x: connection not closed by the server within 5s", prefix)
		}
		if err != io.EOF && !strings.Contains(err.Error(), "reset") {
			t.Logf("prefix %x: read error %v", prefix, err)
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("prefix %x: closed after %v", prefix, time.Since(start))
		}
	}
}

func TestGivenCertificateIsServed(t *testing.T) {
	dir := t.TempDir()
	cert, err := tlsmux.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writePEM(t, dir, cert)
	s := startProxy(t, newMemBackend(), func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	conn, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := conn.ConnectionState().PeerCertificates[0].Raw
	if string(got) != string(cert.Certificate[0]) {
		t.Fatal("served certificate differs from --tls-cert")
	}
}

// TestIdleAndStalledConnectionsClosed (QA R6F-2): a connection with no RPC for IdleTimeout
// gets GOAWAY (Apache's maxConnectionIdle), and one that starts the HTTP/2 preface and
// stalls is closed at the handshake timeout, not after grpc-go's 120 s.
func TestIdleAndStalledConnectionsClosed(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 4)
	s := startProxy(t, b, func(c *Config) {
		c.IdleTimeout = 300 * time.Millisecond
		c.HandshakeTimeout = 500 * time.Millisecond
	})
	addr := s.Addr().String()

	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := routeOK(t, pb.NewMessagingServiceClient(conn)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for st := conn.GetState(); st != connectivity.Idle; st = conn.GetState() {
		if !conn.WaitForStateChange(ctx, st) {
			t.Fatalf("idle connection not closed by the server: state %v", st)
		}
	}

	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte("PRI")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, raw); err != nil {
		t.Fatalf("stalled preface: %v (want the server to close the connection)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled preface held %v", d)
	}
}
