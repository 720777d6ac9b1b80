package message

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

func TestOffsetMsgIDRoundTrip(t *testing.T) {
	cases := []struct {
		host netip.AddrPort
		off  int64
		want string
	}{
		{netip.MustParseAddrPort("10.0.0.1:10911"), 0x1234, "0A00000100002A9F0000000000001234"},
		{netip.MustParseAddrPort("[2001:db8::1]:10911"), 1 << 40, ""},
	}
	for _, c := range cases {
		id := OffsetMsgID(c.host, c.off)
		if c.want != "" && id != c.want {
			t.Errorf("OffsetMsgID = %s, want %s", id, c.want)
		}
		wantLen := 32
		if c.host.Addr().Is6() {
			wantLen = 56
		}
		if len(id) != wantLen || strings.ToUpper(id) != id {
			t.Errorf("id %q: want %d upper-case hex chars", id, wantLen)
		}
		h, off, err := ParseOffsetMsgID(id)
		if err != nil || h != c.host || off != c.off {
			t.Errorf("ParseOffsetMsgID(%s) = %v %d %v", id, h, off, err)
		}
		if _, _, err := ParseOffsetMsgID(strings.ToLower(id)); err != nil {
			t.Errorf("lower case rejected: %v", err)
		}
	}
	ext := &Ext{StoreHost: cases[0].host, CommitLogOffset: 0x1234}
	if ext.MsgID() != cases[0].want || ext.OffsetMsgID() != cases[0].want {
		t.Error("Ext.MsgID without UNIQ_KEY must be the offset id")
	}
	ext.SetProperty(PropertyUniqKey, "U1")
	if ext.MsgID() != "U1" {
		t.Error("Ext.MsgID must prefer UNIQ_KEY")
	}
	for _, bad := range []string{"", "XYZ", strings.Repeat("G", 32), "0A00000100012A9F0000000000001234", "0A0000010000FFFF8000000000000000"} {
		if _, _, err := ParseOffsetMsgID(bad); !errors.Is(err, ErrInvalidMsgID) {
			t.Errorf("ParseOffsetMsgID(%q) err = %v", bad, err)
		}
	}
}

func TestNewUniqID(t *testing.T) {
	const workers, per = 8, 5000
	var mu sync.Mutex
	seen := make(map[string]bool, workers*per)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]string, 0, per)
			for i := 0; i < per; i++ {
				local = append(local, NewUniqID())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
	for id := range seen {
		if !IsUniqID(id) || len(id) != 32 || strings.ToUpper(id) != id {
			t.Fatalf("bad id %q", id)
		}
		break
	}
	if n := testing.AllocsPerRun(100, func() { _ = NewUniqID() }); n > 1 {
		t.Errorf("NewUniqID allocates %v times", n)
	}
	if !IsUniqID("01"+strings.Repeat("a", 32)) || IsUniqID("02"+strings.Repeat("a", 32)) || IsUniqID("xyz") {
		t.Error("IsUniqID")
	}
}

func FuzzParseOffsetMsgID(f *testing.F) {
	f.Add("0A00000100002A9F0000000000001234")
	f.Add(OffsetMsgID(netip.MustParseAddrPort("[2001:db8::1]:1"), 7))
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		h, off, err := ParseOffsetMsgID(s)
		if err != nil {
			return
		}
		if h.Addr().Is4In6() {
			return // an IPv4-mapped IPv6 id re-encodes in the 32-character IPv4 form
		}
		if got := OffsetMsgID(h, off); !strings.EqualFold(got, s) {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	})
}
