package tlsmux

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// TemporaryAcceptError reports whether an Accept error should be retried after a pause
// rather than end the server: a timeout, the process or system out of file descriptors,
// buffers or memory, or a connection aborted before it was accepted. Running out of
// descriptors must not stop a broker (QA R8I-1): it recovers as soon as connections close.
func TemporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// AcceptBackoff paces an accept loop through temporary errors: 5 ms doubling to 1 s, and one
// warning per episode (the first error after a success).
type AcceptBackoff struct {
	d time.Duration
}

// Wait sleeps before the next Accept after the temporary error err.
func (b *AcceptBackoff) Wait(err error, log *slog.Logger, addr net.Addr) {
	if b.d == 0 && log != nil {
		log.Warn("accept failed, retrying", "addr", addr.String(), "err", err)
	}
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	time.Sleep(b.d)
}

// Reset ends an episode (an Accept succeeded).
func (b *AcceptBackoff) Reset() { b.d = 0 }
