package tlsmux

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"
)

// Modes, Apache's tls.server.mode values.
const (
	Disabled   = "disabled"   // plaintext only; a TLS ClientHello is refused
	Permissive = "permissive" // TLS and plaintext on the same port (sniffed)
	Enforcing  = "enforcing"  // TLS only; plaintext is refused
)

// ValidMode reports whether m is one of the modes.
func ValidMode(m string) bool { return m == Disabled || m == Permissive || m == Enforcing }

// ServerConfig returns the TLS config of a server: the PEM pair certFile/keyFile, or, when
// both are empty, a generated self-signed certificate for hosts (selfSigned reports which).
// nextProtos is the ALPN list ("h2" for gRPC; nil for remoting).
func ServerConfig(certFile, keyFile string, hosts, nextProtos []string) (conf *tls.Config, selfSigned bool, err error) {
	var cert tls.Certificate
	switch {
	case certFile != "" || keyFile != "":
		if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, false, fmt.Errorf("tlsmux: load certificate: %w", err)
		}
	default:
		if cert, err = SelfSigned(hosts); err != nil {
			return nil, false, err
		}
		selfSigned = true
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: nextProtos}, selfSigned, nil
}

// tlsRecordHandshake is the first byte of a TLS ClientHello record.
const tlsRecordHandshake = 0x16

// Listener serves TLS and plaintext on one port. Each accepted connection is classified
// by its first byte (0x16 = TLS handshake record) within the handshake deadline, in its own
// goroutine so a stalled client never blocks Accept; TLS connections complete their handshake
// before Accept returns them. Connections not allowed by the mode are closed.
//
// Goroutines: one accept loop plus one short-lived classifier per pending connection, all
// ended by Close (pending connections are closed).
type Listener struct {
	inner   net.Listener
	mode    string
	tlsConf *tls.Config
	timeout time.Duration
	logger  *slog.Logger

	conns  chan net.Conn
	errc   chan error
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	mu      sync.Mutex // guards pending
	pending map[net.Conn]struct{}
}

func NewListener(inner net.Listener, mode string, tlsConf *tls.Config, timeout time.Duration, logger *slog.Logger) *Listener {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Listener{
		inner: inner, mode: mode, tlsConf: tlsConf, timeout: timeout, logger: logger,
		conns: make(chan net.Conn), errc: make(chan error, 1), closed: make(chan struct{}),
		pending: map[net.Conn]struct{}{},
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff AcceptBackoff
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			if TemporaryAcceptError(err) {
				backoff.Wait(err, l.logger, l.inner.Addr())
				continue
			}
			select {
			case l.errc <- err:
			case <-l.closed:
			}
			return
		}
		backoff.Reset()
		l.mu.Lock()
		l.pending[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.classify(c)
	}
}

func (l *Listener) classify(c net.Conn) {
	defer l.wg.Done()
	out, err := l.handshake(c)
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
	if err != nil {
		l.logger.Debug("connection refused", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	select {
	case l.conns <- out:
	case <-l.closed:
		out.Close()
	}
}

func (l *Listener) handshake(c net.Conn) (net.Conn, error) {
	deadline := time.Now().Add(l.timeout)
	if err := c.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	var first [1]byte
	if _, err := c.Read(first[:]); err != nil {
		return nil, fmt.Errorf("reading first byte: %w", err)
	}
	pc := &peekedConn{Conn: c, first: first[0], hasFirst: true}
	if first[0] == tlsRecordHandshake {
		if l.mode == Disabled || l.tlsConf == nil {
			return nil, errors.New("TLS handshake on a plaintext-only port")
		}
		tc := tls.Server(pc, l.tlsConf)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		if err := c.SetReadDeadline(time.Time{}); err != nil {
			return nil, err
		}
		return tc, nil
	}
	if l.mode == Enforcing {
		return nil, errors.New("plaintext connection on a TLS-only port")
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return pc, nil
}

// Accept returns the next classified connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes pending connections and waits for the goroutines.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.inner.Close()
		l.mu.Lock()
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// peekedConn replays the sniffed first byte before reading from the connection.
type peekedConn struct {
	net.Conn
	first    byte
	hasFirst bool
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if p.hasFirst && len(b) > 0 {
		b[0] = p.first
		p.hasFirst = false
		return 1, nil
	}
	return p.Conn.Read(b)
}

// SelfSigned generates an ECDSA P-256 certificate for hosts, valid for one year.
func SelfSigned(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsmux: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsmux: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "rocketry (self-signed)"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsmux: create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
