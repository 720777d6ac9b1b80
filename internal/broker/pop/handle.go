package pop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Handle is the content of a receipt handle. Clients and the proxy only copy the encoded
// string around; the broker decodes it, checks its MAC and compares Epoch with its state.
type Handle struct {
	Broker          string
	Topic           string
	Queue           int32
	Offset          int64 // queue offset
	CommitLogOffset int64
	PopTime         int64 // ms since the epoch
	Invisible       int64 // ms
	Reconsume       int32 // RECONSUMETIMES of this delivery
	Epoch           uint64
}

// handleVersion is the first byte of every encoded handle.
const handleVersion byte = 1

// macLen is the length of the truncated HMAC-SHA256 tag ending every handle.
const macLen = 16

// maxHandleLen bounds what Decode accepts (base64 text).
const maxHandleLen = 1024

// ErrHandleInvalid reports a receipt handle that was not minted by this broker for this
// group: bad encoding, bad MAC, or another broker's name.
var ErrHandleInvalid = errors.New("receipt handle is invalid")

// ErrHandleExpired reports a receipt handle whose invisible time has passed, or one
// superseded by a later delivery of its message (a change of invisible time, or a revive
// followed by a new pop).
var ErrHandleExpired = errors.New("receipt handle is expired")

// expired reports whether the handle's invisible time has passed at now (ms): Ack and
// ChangeInvisible refuse it with ErrHandleExpired and the message is delivered again, as
// RocketMQ's proxy refuses a ReceiptHandle that isExpired() (nextVisibleTime <= now) with
// INVALID_RECEIPT_HANDLE "receipt handle is expired". The check uses the handle alone, so it
// holds whether or not the message was received again or acknowledged meanwhile.
func (h *Handle) expired(now int64) bool { return h.PopTime+h.Invisible <= now }

// Signer mints and verifies receipt handles with a per-broker secret. Safe for concurrent use.
type Signer struct {
	secret []byte
	macs   sync.Pool // hash.Hash: HMAC-SHA256 keyed with secret
}

// NewSigner returns a Signer using secret (at least 16 bytes).
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("pop: handle secret of %d bytes, need >= 16", len(secret))
	}
	s := &Signer{secret: append([]byte(nil), secret...)}
	s.macs.New = func() any { return hmac.New(sha256.New, s.secret) }
	return s, nil
}

// secretFile is the name of the handle secret inside the pop directory.
const secretFile = "handle.secret"

// LoadOrCreateSecret reads the broker's handle secret from dir, creating a random 32-byte one
// (written atomically, mode 0600) on first use, so handles survive restarts.
func LoadOrCreateSecret(dir string) ([]byte, error) {
	p := filepath.Join(dir, secretFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if len(b) < 16 {
			return nil, fmt.Errorf("pop: handle secret %s is %d bytes, need >= 16", p, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pop: read handle secret: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("pop: generate handle secret: %w", err)
	}
	if err := writeFileAtomic(p, b, 0o600); err != nil {
		return nil, fmt.Errorf("pop: write handle secret: %w", err)
	}
	return b, nil
}

func (s *Signer) mac(group string, payload []byte) []byte {
	h := s.macs.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(group))
	h.Write([]byte{0})
	h.Write(payload)
	var sum [sha256.Size]byte
	out := h.Sum(sum[:0])[:macLen]
	s.macs.Put(h)
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Encode mints the URL-safe text of h, bound to group (a handle of one group is invalid for
// another).
func (s *Signer) Encode(group string, h *Handle) string {
	b := make([]byte, 0, 64+len(h.Broker)+len(h.Topic))
	b = append(b, handleVersion)
	b = appendString(b, h.Broker)
	b = appendString(b, h.Topic)
	b = binary.AppendVarint(b, int64(h.Queue))
	b = binary.AppendVarint(b, h.Offset)
	b = binary.AppendVarint(b, h.CommitLogOffset)
	b = binary.AppendVarint(b, h.PopTime)
	b = binary.AppendVarint(b, h.Invisible)
	b = binary.AppendVarint(b, int64(h.Reconsume))
	b = binary.AppendUvarint(b, h.Epoch)
	b = append(b, s.mac(group, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode parses and authenticates text minted by Encode for group. Any failure wraps
// ErrHandleInvalid.
func (s *Signer) Decode(group, text string) (*Handle, error) {
	h, payload, tag, err := parseHandle(text)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(tag, s.mac(group, payload)) {
		return nil, fmt.Errorf("%w: bad signature", ErrHandleInvalid)
	}
	return h, nil
}

// parseHandle decodes the structure of a handle without authenticating it.
func parseHandle(text string) (h *Handle, payload, tag []byte, err error) {
	if len(text) == 0 || len(text) > maxHandleLen {
		return nil, nil, nil, fmt.Errorf("%w: length %d", ErrHandleInvalid, len(text))
	}
	b, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: not base64url", ErrHandleInvalid)
	}
	if len(b) < 1+macLen || b[0] != handleVersion {
		return nil, nil, nil, fmt.Errorf("%w: bad version or length", ErrHandleInvalid)
	}
	payload, tag = b[:len(b)-macLen], b[len(b)-macLen:]
	r := handleReader{b: payload[1:]}
	h = &Handle{}
	h.Broker = r.str()
	h.Topic = r.str()
	h.Queue = int32(r.varint())
	h.Offset = r.varint()
	h.CommitLogOffset = r.varint()
	h.PopTime = r.varint()
	h.Invisible = r.varint()
	h.Reconsume = int32(r.varint())
	h.Epoch = r.uvarint()
	if r.bad || len(r.b) != 0 {
		return nil, nil, nil, fmt.Errorf("%w: malformed", ErrHandleInvalid)
	}
	return h, payload, tag, nil
}

type handleReader struct {
	b   []byte
	bad bool
}

func (r *handleReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *handleReader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *handleReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// writeFileAtomic writes data to path through a synced temporary file renamed over it, then
// syncs the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
