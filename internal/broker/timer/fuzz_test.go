package timer

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// FuzzDecodeEntry: a timer-log entry decodes only with a valid checksum, and what decodes
// re-encodes to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	var b [entrySize]byte
	encodeEntry(b[:], logEntry{Entry: Entry{Due: 1_700_000_000_000, Offset: 4096, QueueOffset: 7, Size: 300}, prev: -1})
	f.Add(b[:])
	f.Add(make([]byte, entrySize))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < entrySize {
			return
		}
		e, ok := decodeEntry(in[:entrySize])
		if !ok {
			return
		}
		var out [entrySize]byte
		encodeEntry(out[:], e)
		if string(out[:]) != string(in[:entrySize]) {
			t.Fatalf("re-encoding %+v changed the bytes", e)
		}
	})
}

// FuzzParseLevels: ParseLevels never panics and accepts only positive delays.
func FuzzParseLevels(f *testing.F) {
	for _, s := range []string{DefaultDelayLevels, "1s", "2d 3h", "", "0s", "9999999999999h", "1x", " 5m  7s "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLevels(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidLevels) {
				t.Fatalf("error %v does not match ErrInvalidLevels", err)
			}
			return
		}
		for i, d := range l {
			if d <= 0 {
				t.Fatalf("level %d = %v", i+1, d)
			}
		}
	})
}

// FuzzIntercept: any property values either leave the message alone, move it to the timer
// topic with a due time in (now, now+max] (timers) or now+level (levels), or fail with
// ErrIllegal.
func FuzzIntercept(f *testing.F) {
	f.Add("", "", "", "")
	f.Add("3", "", "", "")
	f.Add("", "10", "", "")
	f.Add("", "", "1500", "")
	f.Add("", "", "", "1700000005000")
	f.Add("x", "-1", "9223372036854775807", "-9223372036854775808")
	levels, _ := ParseLevels(DefaultDelayLevels)
	now := time.UnixMilli(1_700_000_000_000)
	f.Fuzz(func(t *testing.T, level, sec, ms, deliver string) {
		m := &message.Ext{Message: message.Message{Topic: "T"}}
		for k, v := range map[string]string{message.PropertyDelayLevel: level, message.PropertyTimerDelaySec: sec,
			message.PropertyTimerDelayMS: ms, message.PropertyTimerDeliverMS: deliver} {
			if v != "" {
				m.SetProperty(k, v)
			}
		}
		taken, err := Intercept(m, now, time.Hour, levels)
		if err != nil {
			if !errors.Is(err, ErrIllegal) || taken {
				t.Fatalf("err %v taken %v", err, taken)
			}
			return
		}
		if !taken {
			if m.Topic != "T" {
				t.Fatal("untaken message moved")
			}
			return
		}
		due, ok := dueOf(m)
		if !ok || m.Topic != Topic || m.Property(message.PropertyRealTopic) != "T" {
			t.Fatalf("bad timer record %+v", m)
		}
		if _, isLevel := m.Properties[message.PropertyDelayLevel]; isLevel {
			if due <= now.UnixMilli() || due > now.Add(2*time.Hour).UnixMilli() {
				t.Fatalf("level due %d", due)
			}
			return
		}
		if due <= now.UnixMilli() || due > now.Add(time.Hour).UnixMilli() {
			t.Fatalf("timer due %d outside (now, now+max]", due)
		}
	})
}

// FuzzCheckpoint: decoding an arbitrary checkpoint file never panics, and restoring a wheel
// from any decodable checkpoint over an empty log does not either.
func FuzzCheckpoint(f *testing.F) {
	b, _ := json.Marshal(checkpoint{Version: 1, IngestOffset: 5, CursorDue: 10, CursorOffset: 20, Done: [][2]int64{{30, 40}}, CommitLogEnd: 50, LogEnd: 0})
	f.Add(b)
	f.Add([]byte(`{"version":1,"logEnd":-40}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var c checkpoint
		if json.Unmarshal(in, &c) != nil {
			return
		}
		l, err := openLog(t.TempDir(), entrySize*4)
		if err != nil {
			t.Fatal(err)
		}
		defer l.close()
		_, _, _ = restoreWheel(l, 1000, 0, c, nil)
	})
}

// FuzzDecodeRecallHandle: a recall handle decodes to fields that re-encode to a handle
// decoding to the same fields, or fails with ErrRecallHandle.
func FuzzDecodeRecallHandle(f *testing.F) {
	f.Add(RecallHandle{Topic: "T", Broker: "broker-a", DueMs: 1_700_000_000_000, MsgID: "01ABCDEF"}.Encode())
	f.Add("djEgYSBiIGMgZA") // "v1 a b c d" without padding: due is not a number
	f.Add("")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, text string) {
		h, err := DecodeRecallHandle(text)
		if err != nil {
			if !errors.Is(err, ErrRecallHandle) {
				t.Fatalf("error %v does not match ErrRecallHandle", err)
			}
			return
		}
		if strings.Contains(h.Topic+h.Broker+h.MsgID, " ") {
			return // fields with spaces cannot round-trip (RocketMQ's layout)
		}
		back, err := DecodeRecallHandle(h.Encode())
		if err != nil || back.Topic != h.Topic || back.Broker != h.Broker || back.MsgID != h.MsgID ||
			(h.DueMs != -1 && back.DueMs != h.DueMs) {
			t.Fatalf("%+v re-decoded as %+v, %v", h, back, err)
		}
	})
}
