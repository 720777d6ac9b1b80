package message

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidMsgID is returned by ParseOffsetMsgID.
var ErrInvalidMsgID = errors.New("message: invalid offset message id")

const hexUpper = "0123456789ABCDEF"

func appendHexUpper(dst, src []byte) []byte {
	for _, c := range src {
		dst = append(dst, hexUpper[c>>4], hexUpper[c&0xF])
	}
	return dst
}

// OffsetMsgID builds RocketMQ's offset message id: upper-case hex of the store IP (4 bytes, or
// 16 for IPv6), the port as i32 and the commit-log offset as i64. 32 characters for IPv4, 56
// for IPv6. An invalid address encodes as 0.0.0.0.
func OffsetMsgID(storeHost netip.AddrPort, commitLogOffset int64) string {
	var raw [28]byte
	b := appendHost(raw[:0], storeHost)
	b = binary.BigEndian.AppendUint64(b, uint64(commitLogOffset))
	var out [56]byte
	return string(appendHexUpper(out[:0], b))
}

// ParseOffsetMsgID decodes an offset message id (32 or 56 hex characters, either case).
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	if len(id) != 32 && len(id) != 56 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: length %d, want 32 or 56", ErrInvalidMsgID, len(id))
	}
	var raw [28]byte
	n, err := hex.Decode(raw[:], []byte(id))
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %w", ErrInvalidMsgID, err)
	}
	b := raw[:n]
	ipLen := n - 12
	port := binary.BigEndian.Uint32(b[ipLen:])
	if port > 65535 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: port %d out of range", ErrInvalidMsgID, port)
	}
	var addr netip.Addr
	if ipLen == 4 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		addr = netip.AddrFrom16([16]byte(b[:16]))
	}
	off := int64(binary.BigEndian.Uint64(b[ipLen+4:]))
	if off < 0 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: negative offset", ErrInvalidMsgID)
	}
	return netip.AddrPortFrom(addr, uint16(port)), off, nil
}

// IsUniqID reports whether id has the shape of a client unique id: 32 hex characters (v4
// clients) or "01" followed by 32 hex characters (v5 clients). Unique ids are otherwise opaque
// keys: the store indexes and looks them up byte for byte.
func IsUniqID(id string) bool {
	switch len(id) {
	case 32:
	case 34:
		if id[:2] != "01" {
			return false
		}
		id = id[2:]
	default:
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// uniq is the state of NewUniqID: a fixed 8-byte prefix (IPv4 + pid + a random i32 in the
// place of Java's class-loader hash) and a counter; the time part is milliseconds since the
// start of the current month, like RocketMQ's MessageClientIDSetter.
var uniq struct {
	once    sync.Once
	prefix  [16]byte // hex of IP(4) + pid(2) + random(2) of the i32 field's first half
	rnd     [2]byte  // second half of the random i32
	counter atomic.Uint32
	month   atomic.Int64 // unix ms of the start of the month, refreshed when passed
	next    atomic.Int64 // unix ms of the start of the next month
}

func initUniq() {
	var raw [8]byte
	ip := localIPv4()
	copy(raw[:4], ip[:])
	binary.BigEndian.PutUint16(raw[4:], uint16(os.Getpid()))
	_, _ = rand.Read(raw[6:8])
	_, _ = rand.Read(uniq.rnd[:])
	appendHexUpper(uniq.prefix[:0], raw[:])
	var c [2]byte
	_, _ = rand.Read(c[:])
	uniq.counter.Store(uint32(binary.BigEndian.Uint16(c[:])))
	refreshMonth(time.Now())
}

func refreshMonth(now time.Time) {
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
	uniq.month.Store(start.UnixMilli())
	uniq.next.Store(start.AddDate(0, 1, 0).UnixMilli())
}

// localIPv4 returns a non-loopback IPv4 address of this host, or random bytes when none.
func localIPv4() [4]byte {
	var ip [4]byte
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
				if v4 := n.IP.To4(); v4 != nil {
					copy(ip[:], v4)
					return ip
				}
			}
		}
	}
	_, _ = rand.Read(ip[:])
	return ip
}

// NewUniqID returns a new 32-hex-character unique message id in the RocketMQ 4.x layout:
// IPv4(4) + pid(2) + random(4) + ms-since-month-start(4) + counter(2). It is safe for
// concurrent use and allocates only the returned string.
func NewUniqID() string {
	uniq.once.Do(initUniq)
	nowMs := time.Now().UnixMilli()
	if nowMs >= uniq.next.Load() {
		refreshMonth(time.UnixMilli(nowMs))
	}
	var tail [8]byte
	tail[0], tail[1] = uniq.rnd[0], uniq.rnd[1]
	binary.BigEndian.PutUint32(tail[2:], uint32(nowMs-uniq.month.Load()))
	binary.BigEndian.PutUint16(tail[6:], uint16(uniq.counter.Add(1)))
	var out [32]byte
	copy(out[:16], uniq.prefix[:])
	appendHexUpper(out[16:16], tail[:])
	return string(out[:])
}
