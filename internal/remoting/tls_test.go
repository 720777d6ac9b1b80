package remoting

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/tlsmux"
)

// heartbeatOver sends one HEART_BEAT frame over c and reads the answer.
func heartbeatOver(c net.Conn) error {
	frame, err := EncodeFrame(NewRequest(HeartBeat, map[string]string{"k": "v"}, []byte("body")), SerializeJSON)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return err
	}
	resp, err := ReadFrame(c, DefaultMaxFrameSize)
	if err != nil {
		return err
	}
	cmd, err := DecodePayload(resp)
	if err != nil {
		return err
	}
	if cmd.Code != Success || string(cmd.Body) != "body" {
		return &net.OpError{Op: "heartbeat", Err: net.UnknownNetworkError("bad answer")}
	}
	return nil
}

// TestServerTLSModes: a remoting port in permissive mode serves TLS clients (go2 WithTls)
// and plaintext clients side by side; disabled (or no certificate) serves plaintext only.
func TestServerTLSModes(t *testing.T) {
	conf, _, err := DefaultTLSSettings().ServerConfig([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		mode    string
		conf    *tls.Config
		tlsOK   bool
		plainOK bool
	}{
		{"permissive", tlsmux.Permissive, conf, true, true},
		{"disabled", tlsmux.Disabled, conf, false, true},
		{"no certificate", tlsmux.Permissive, nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultServerConfig()
			cfg.TLSMode, cfg.TLS = tc.mode, tc.conf
			_, addr := startServer(t, cfg, nil)
			plain, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			if err := heartbeatOver(plain); (err == nil) != tc.plainOK {
				t.Errorf("plaintext client: %v, want ok=%v", err, tc.plainOK)
			}
			tc0, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
			if err == nil {
				defer tc0.Close()
				err = heartbeatOver(tc0)
			}
			if (err == nil) != tc.tlsOK {
				t.Errorf("TLS client: %v, want ok=%v", err, tc.tlsOK)
			}
		})
	}
}

func TestTLSSettingsCheck(t *testing.T) {
	for _, tc := range []struct {
		mode, cert, key string
		ok              bool
	}{
		{"", "", "", true}, {"disabled", "", "", true}, {"permissive", "", "", true},
		{"permissive", "c.pem", "k.pem", true}, {"permissive", "c.pem", "", false},
		{"enforcing", "", "", false}, {"bogus", "", "", false},
	} {
		if err := (TLSSettings{Mode: tc.mode, CertFile: tc.cert, KeyFile: tc.key}).Check(); (err == nil) != tc.ok {
			t.Errorf("Check(%q, %q, %q) = %v, want ok=%v", tc.mode, tc.cert, tc.key, err, tc.ok)
		}
	}
}

func TestTLSSettingsApplyKey(t *testing.T) {
	var ts TLSSettings
	for k, v := range map[string]string{"tls.server.mode": "Permissive", "tls.server.certPath": "c.pem", "tls.server.keyPath": "k.pem"} {
		if !ts.ApplyKey(k, v) {
			t.Fatalf("%s not applied", k)
		}
	}
	if ts != (TLSSettings{Mode: "permissive", CertFile: "c.pem", KeyFile: "k.pem"}) {
		t.Fatalf("settings %+v", ts)
	}
	if ts.ApplyKey("listenPort", "1") {
		t.Fatal("a non-TLS key was taken")
	}
}
