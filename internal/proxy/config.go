package proxy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/rocketry-mq/rocketry/internal/tlsmux"
)

// TLS modes of the gRPC port (reliability 4.3).
const (
	TLSDisabled   = tlsmux.Disabled   // plaintext only; a TLS ClientHello is refused
	TLSPermissive = tlsmux.Permissive // TLS and plaintext on the same port (sniffed)
	TLSEnforcing  = tlsmux.Enforcing  // TLS only; plaintext is refused
)

// MaxTransactionRecovery is the longest orphaned_transaction_recovery_duration a transactional
// message may ask for (Apache proxy maxTransactionRecoverySecond, 3600); longer is BAD_REQUEST.
const MaxTransactionRecovery = time.Hour

// Config configures the proxy's gRPC front door. Defaults are written on each field and
// returned by DefaultConfig.
type Config struct {
	// GRPCListen is the gRPC listen address. Default ":8081".
	GRPCListen string
	// AdvertiseAddr is the "host:port" returned in every route. Default "": the endpoints the
	// client dialled (QueryRouteRequest.endpoints), else 127.0.0.1 with the listen port.
	AdvertiseAddr string

	// TLSMode is disabled | permissive | enforcing. Default "permissive". Anything else is a
	// startup error.
	TLSMode string
	// TLSCertFile and TLSKeyFile name a PEM certificate and key. Default "": a self-signed
	// certificate is generated at start (and logged as such).
	TLSCertFile, TLSKeyFile string
	// HandshakeTimeout bounds the first byte and the TLS handshake of a new connection.
	// Default 10s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes (GOAWAY) a connection that has had no RPC or stream for this long
	// (Apache grpcClientIdleTimeMills). SDKs keep their Telemetry stream open, so live clients
	// are never idle. Default 120s.
	IdleTimeout time.Duration

	// Auth enables authentication and authorization. Default false (anonymous access).
	Auth bool
	// ACLFile is the JSON user/policy file (package auth), reloaded on change. Default "".
	// Required when Auth is on.
	ACLFile string
	// ACLReloadInterval is how often ACLFile's mtime is polled. Default 5s.
	ACLReloadInterval time.Duration
	// AuthClockSkew is the allowed age/skew of x-mq-date-time (replay guard). Default 15m;
	// 0 disables the check.
	AuthClockSkew time.Duration

	// AutoCreateTopic creates unknown topics on QueryRoute/Send. Default false (on in
	// standalone).
	AutoCreateTopic bool
	// AutoCreateQueues is the queue count of auto-created topics. Default 8.
	AutoCreateQueues int

	// MaxBodySize is the maximum message body in bytes, announced to producers. Default 4 MiB.
	MaxBodySize int
	// MaxDelay is the farthest delivery_timestamp accepted. Default 24h.
	MaxDelay time.Duration
	// MinInvisible and MaxInvisible bound invisible durations. Defaults 10s and 12h.
	MinInvisible, MaxInvisible time.Duration
	// DefaultInvisible is used when a ReceiveMessageRequest has none. Default 60s.
	DefaultInvisible time.Duration
	// ReceiveMargin is kept between the end of a long poll and the caller's deadline.
	// Default 1.5s.
	ReceiveMargin time.Duration
	// MaxLongPolling caps a long poll (and the value announced to consumers). Default 20s.
	MaxLongPolling time.Duration
	// ClientExpiry drops a client's settings after this long without heartbeat. Default 120s.
	ClientExpiry time.Duration
	// AutoRenewMax bounds how long an auto-renewed message (auto_renew receives, Java push
	// consumers) is kept invisible without an ack. Default 3h.
	AutoRenewMax time.Duration
	// MaxRecvMsgSize is the gRPC inbound message limit. Default 130 MiB (Java proxy).
	MaxRecvMsgSize int
	// StreamWorkers is the number of long-lived goroutines that serve incoming RPCs (gRPC
	// NumStreamWorkers); an RPC arriving when its worker is busy gets a goroutine of its own.
	// A fresh goroutine per RPC grows its stack through the handler's call chain every time
	// (runtime.newstack was 11% of the proxy's CPU under sends); reused workers keep theirs.
	// 0 = a goroutine per RPC. Default 64.
	StreamWorkers int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		GRPCListen:        ":8081",
		TLSMode:           TLSPermissive,
		HandshakeTimeout:  10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ACLReloadInterval: 5 * time.Second,
		AuthClockSkew:     15 * time.Minute,
		AutoCreateQueues:  8,
		MaxBodySize:       4 << 20,
		MaxDelay:          24 * time.Hour,
		MinInvisible:      10 * time.Second,
		MaxInvisible:      12 * time.Hour,
		DefaultInvisible:  60 * time.Second,
		ReceiveMargin:     1500 * time.Millisecond,
		MaxLongPolling:    20 * time.Second,
		ClientExpiry:      120 * time.Second,
		AutoRenewMax:      3 * time.Hour,
		MaxRecvMsgSize:    130 << 20,
		StreamWorkers:     64,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch c.TLSMode {
	case TLSDisabled, TLSPermissive, TLSEnforcing:
	default:
		return fmt.Errorf("proxy: unknown TLS mode %q (want disabled|permissive|enforcing)", c.TLSMode)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("proxy: --tls-cert and --tls-key must be given together")
	}
	if _, _, err := net.SplitHostPort(c.GRPCListen); err != nil {
		return fmt.Errorf("proxy: grpc listen %q: %w", c.GRPCListen, err)
	}
	if c.AdvertiseAddr != "" {
		h, p, err := net.SplitHostPort(c.AdvertiseAddr)
		if err != nil || h == "" {
			return fmt.Errorf("proxy: advertise address %q: want host:port", c.AdvertiseAddr)
		}
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("proxy: advertise address %q: bad port", c.AdvertiseAddr)
		}
	}
	if c.Auth && c.ACLFile == "" {
		return errors.New("proxy: auth is enabled but no ACL file is configured")
	}
	if c.IdleTimeout <= 0 {
		return errors.New("proxy: IdleTimeout must be positive")
	}
	if c.HandshakeTimeout <= 0 || c.ACLReloadInterval <= 0 || c.ClientExpiry <= 0 || c.AutoRenewMax <= 0 {
		return errors.New("proxy: handshake timeout, acl reload interval, client expiry and auto-renew max must be positive")
	}
	if c.AutoCreateQueues <= 0 || c.AutoCreateQueues > 1024 {
		return fmt.Errorf("proxy: auto-create queues %d out of 1..1024", c.AutoCreateQueues)
	}
	if c.MaxBodySize <= 0 {
		return errors.New("proxy: max body size must be positive")
	}
	if c.MinInvisible <= 0 || c.MaxInvisible < c.MinInvisible {
		return errors.New("proxy: invisible time bounds must satisfy 0 < min <= max")
	}
	if c.DefaultInvisible < c.MinInvisible || c.DefaultInvisible > c.MaxInvisible {
		return errors.New("proxy: default invisible time outside [min, max]")
	}
	if c.ReceiveMargin < 0 || c.MaxLongPolling <= 0 || c.MaxDelay <= 0 {
		return errors.New("proxy: receive margin, max long polling and max delay must be positive")
	}
	if c.MaxRecvMsgSize < c.MaxBodySize {
		return errors.New("proxy: max gRPC message size below max body size")
	}
	if c.StreamWorkers < 0 || c.StreamWorkers > 1<<16 {
		return errors.New("proxy: stream workers must be between 0 and 65536")
	}
	return nil
}
