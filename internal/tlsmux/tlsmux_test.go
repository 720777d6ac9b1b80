package tlsmux

import (
	"bufio"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// echoOnce serves ln: every accepted connection echoes one line back.
func echoOnce(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err == nil {
				_, _ = c.Write([]byte(line))
			}
		}()
	}
}

func roundTrip(c net.Conn) bool {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func TestListenerModes(t *testing.T) {
	conf, selfSigned, err := ServerConfig("", "", []string{"127.0.0.1"}, nil)
	if err != nil || !selfSigned {
		t.Fatalf("ServerConfig: %v, self-signed %v", err, selfSigned)
	}
	for _, tc := range []struct {
		mode           string
		plainOK, tlsOK bool
	}{{Permissive, true, true}, {Disabled, true, false}, {Enforcing, false, true}} {
		t.Run(tc.mode, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := NewListener(inner, tc.mode, conf, 2*time.Second, nil)
			defer ln.Close()
			go echoOnce(ln)
			// A client that connects and sends nothing must not hold up the others.
			stalled, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer stalled.Close()
			plain, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if got := roundTrip(plain); got != tc.plainOK {
				t.Errorf("plaintext round trip = %v, want %v", got, tc.plainOK)
			}
			got := false
			if tc0, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}); err == nil {
				got = roundTrip(tc0)
			}
			if got != tc.tlsOK {
				t.Errorf("TLS round trip = %v, want %v", got, tc.tlsOK)
			}
		})
	}
}
