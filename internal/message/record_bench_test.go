package message

import (
	"net/netip"
	"strconv"
	"testing"
)

// BenchmarkAppendRecord encodes the record every put stores: a 4 KiB body with the three
// properties an SDK send carries (tags, keys, unique id), into a reused buffer.
func BenchmarkAppendRecord(b *testing.B) {
	for _, size := range []int{128, 4096} {
		m := &Ext{
			Message:       Message{Topic: "BenchTopic", Body: make([]byte, size)},
			BornTimestamp: 1, BornHost: netip.MustParseAddrPort("10.0.0.1:5000"),
			StoreHost: netip.MustParseAddrPort("10.0.0.2:10911"),
		}
		m.SetProperty(PropertyTags, "TagA")
		m.SetProperty(PropertyKeys, "key-1")
		m.SetProperty(PropertyUniqKey, NewUniqID())
		b.Run(sizeName(size), func(b *testing.B) {
			buf := make([]byte, 0, 8192)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendRecord(buf[:0], m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
