package proxy

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestToPBMessageInvalidUTF8 (QA R10Q-4): tags, keys and user properties stored with bytes
// that are not UTF-8 (legal over remoting) reach gRPC consumers with U+FFFD in their place,
// as Apache's proxy decodes them, instead of failing the marshalling of the whole receive.
func TestToPBMessageInvalidUTF8(t *testing.T) {
	m := &Message{
		Topic: "T",
		Body:  []byte("body"),
		Properties: map[string]string{
			PropTags: "caf\xe9", PropKeys: "k\xff1 k2", PropUniqKey: "01ABCDEF",
			"my\xffkey": "val\xfe\xff", "ok": "fine",
		},
	}
	pm := toPBMessage(m, "h", 0)
	if _, err := proto.Marshal(pm); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	sp := pm.GetSystemProperties()
	if sp.GetTag() != "caf\uFFFD" || len(sp.GetKeys()) != 2 || sp.GetKeys()[0] != "k\uFFFD1" {
		t.Fatalf("tag %q keys %q", sp.GetTag(), sp.GetKeys())
	}
	if pm.GetUserProperties()["my\uFFFDkey"] != "val\uFFFD" || pm.GetUserProperties()["ok"] != "fine" {
		t.Fatalf("user properties %q", pm.GetUserProperties())
	}
	if m.Properties[PropTags] != "caf\xe9" {
		t.Fatal("the stored message's properties were modified")
	}
}
