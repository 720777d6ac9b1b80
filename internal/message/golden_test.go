package message

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// TestGoldenRecord pins the exact bytes of a record (checked against the go2 decoder in
// TestRecordDecodedByGo2): any change to the layout fails here. Regenerate the file only for
// a deliberate, reviewed change: ROCKETRY_UPDATE_GOLDEN=1 go test -run TestGoldenRecord.
func TestGoldenRecord(t *testing.T) {
	rec, err := AppendRecord(nil, sampleExt())
	if err != nil {
		t.Fatal(err)
	}
	const path = "testdata/golden_record_v4.hex"
	if os.Getenv("ROCKETRY_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(rec)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(rec) != hex.EncodeToString(want) {
		t.Fatalf("record bytes changed:\n got %x\nwant %x", rec, want)
	}
	// Field spot checks against the RocketMQ layout.
	if rec[4] != 0xDA || rec[5] != 0xA3 || rec[6] != 0x20 || rec[7] != 0xA7 {
		t.Fatalf("magic %x", rec[4:8])
	}
}
