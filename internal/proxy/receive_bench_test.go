package proxy

import (
	"strings"
	"testing"
	"time"
)

func benchStoredMessage() *Message {
	return &Message{
		Topic: "bench", Body: make([]byte, 1024), QueueID: 3, QueueOffset: 1234, CommitLogOffset: 1 << 30,
		BornTimestamp: time.Now().UnixMilli(), StoreTimestamp: time.Now().UnixMilli(), BornHost: "10.0.0.1:5555",
		StoreHost: "127.0.0.1:10911", OffsetMsgID: "7F00000100002A9F0000000040000000",
		Properties: map[string]string{
			PropUniqKey: "0A0B0C0D00002A9F000000000000000A", PropTags: "TagA", PropKeys: "k1 k2",
			PropWaitStoreMsgOK: "true", PropBornTimestamp: "1764118320000", "user-prop": "v",
		},
	}
}

// TestBodyDigestUpperHex: the digest is MD5 as upper-case hex (what the Java proxy sends and
// the Node.js SDK verifies).
func TestBodyDigestUpperHex(t *testing.T) {
	d := bodyDigest([]byte("hello"))
	if want := "5D41402ABC4B2A76B9719D911017C592"; d.GetChecksum() != want {
		t.Fatalf("digest %s, want %s", d.GetChecksum(), want)
	}
	if d.GetChecksum() != strings.ToUpper(d.GetChecksum()) {
		t.Fatal("not upper case")
	}
}

// BenchmarkToPBMessage: converting one popped 1 KiB message for a ReceiveMessage stream.
//
//	go test ./internal/proxy -run '^$' -bench ToPBMessage -benchmem
func BenchmarkToPBMessage(b *testing.B) {
	m := benchStoredMessage()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if out := toPBMessage(m, "h1 broker-a 3 1234 1073741824 raw", 30*time.Second); out.GetSystemProperties().GetMessageId() == "" {
			b.Fatal("no id")
		}
	}
}
