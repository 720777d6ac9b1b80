package message

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPropertiesRoundTrip(t *testing.T) {
	props := map[string]string{"KEYS": "k1 k2", "TAGS": "TagA", "UNIQ_KEY": "ABC", "empty": ""}
	enc := EncodeProperties(props)
	want := "KEYS\x01k1 k2\x02TAGS\x01TagA\x02UNIQ_KEY\x01ABC\x02empty\x01\x02"
	if string(enc) != want {
		t.Fatalf("encode = %q, want %q (sorted, deterministic)", enc, want)
	}
	if len(enc) != PropertiesSize(props) {
		t.Fatalf("PropertiesSize = %d, encoded %d", PropertiesSize(props), len(enc))
	}
	got, err := DecodeProperties(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(props, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if EncodeProperties(nil) != nil {
		t.Fatal("nil map must encode to nil")
	}
}

func TestDecodePropertiesTolerantAndStrict(t *testing.T) {
	got, err := DecodeProperties([]byte("A\x011\x02B\x012"))
	if err != nil {
		t.Fatalf("missing trailing separator must be accepted: %v", err)
	}
	if got["A"] != "1" || got["B"] != "2" || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	got, err = DecodeProperties([]byte("A\x011\x02A\x012\x02"))
	if err != nil || got["A"] != "2" {
		t.Fatalf("duplicate key: last wins, got %v %v", got, err)
	}
	got, err = DecodeProperties(nil)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty input: %v %v", got, err)
	}
	for _, bad := range []string{"A", "A\x02", "\x01v\x02", "A\x011\x02\x02", "A\x01\x01\x02", "\x02"} {
		if _, err := DecodeProperties([]byte(bad)); !errors.Is(err, ErrMalformedProperties) {
			t.Errorf("DecodeProperties(%q) err = %v, want ErrMalformedProperties", bad, err)
		}
	}
}

func TestValidateProperties(t *testing.T) {
	for _, p := range []map[string]string{{"": "v"}, {"a\x01": "v"}, {"a": "v\x02"}, {"a\x02b": ""}} {
		if err := ValidateProperties(p); !errors.Is(err, ErrInvalidProperty) {
			t.Errorf("ValidateProperties(%q) = %v", p, err)
		}
	}
	if err := ValidateProperties(map[string]string{"a": "", "b": "x y"}); err != nil {
		t.Fatal(err)
	}
}

func TestLookupProperty(t *testing.T) {
	enc := EncodeProperties(map[string]string{"KEYS": "k", "TAGS": "t1"})
	if v, ok := LookupProperty(enc, "TAGS"); !ok || string(v) != "t1" {
		t.Fatalf("TAGS = %q %v", v, ok)
	}
	if _, ok := LookupProperty(enc, "NOPE"); ok {
		t.Fatal("found a missing key")
	}
	if _, ok := LookupProperty([]byte("junk"), "junk"); ok {
		t.Fatal("malformed input must report not found")
	}
	if n := testing.AllocsPerRun(100, func() { LookupProperty(enc, "TAGS") }); n != 0 {
		t.Fatalf("LookupProperty allocates %v times", n)
	}
}

func TestIsSystemProperty(t *testing.T) {
	for _, k := range []string{"KEYS", "TAGS", "UNIQ_KEY", "DELAY", "__BORNHOST", "DLQ_ORIGIN_TOPIC", "TIMER_DELAY_MS", "__CRC32#"} {
		if !IsSystemProperty(k) {
			t.Errorf("%s should be a system property", k)
		}
	}
	// __SHARDINGKEY, TRACE_CONTEXT and __transactionId__ are not in MessageConst.STRING_HASH_SET.
	for _, k := range []string{"myKey", "__SHARDINGKEY", "TRACE_CONTEXT", "__transactionId__"} {
		if IsSystemProperty(k) {
			t.Errorf("%s should not be a system property", k)
		}
	}
}

func TestMessageHelpers(t *testing.T) {
	var m Message
	if m.Tags() != "" || len(m.Keys()) != 0 || m.UniqKey() != "" || m.Property("x") != "" {
		t.Fatal("nil properties must read as empty")
	}
	m.SetProperty(PropertyKeys, " a  b c ")
	m.SetProperty(PropertyTags, "T")
	m.SetProperty(PropertyUniqKey, "U")
	if diff := cmp.Diff([]string{"a", "b", "c"}, m.Keys()); diff != "" {
		t.Fatal(diff)
	}
	// R9N-6: only the space separates keys; a tab belongs to its key (as the index sees it).
	m.SetProperty(PropertyKeys, "tab\tkey other")
	if diff := cmp.Diff([]string{"tab\tkey", "other"}, m.Keys()); diff != "" {
		t.Fatal(diff)
	}
	if m.Tags() != "T" || m.UniqKey() != "U" {
		t.Fatal("helpers")
	}
	m.RemoveProperty(PropertyTags)
	if m.Tags() != "" {
		t.Fatal("RemoveProperty")
	}
}

func FuzzDecodeProperties(f *testing.F) {
	f.Add([]byte("KEYS\x01k1 k2\x02TAGS\x01TagA\x02"))
	f.Add([]byte("A\x011"))
	f.Add([]byte("\x01\x02\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		keys := []string{PropertyTags, PropertyKeys, "A"}
		vals := make([][]byte, len(keys))
		found := make([]bool, len(keys))
		ok := LookupProperties(b, keys, vals, found)
		for i, k := range keys {
			v, f := LookupProperty(b, k)
			if f != found[i] || string(v) != string(vals[i]) {
				t.Fatalf("LookupProperties[%q] = %q %v, LookupProperty %q %v", k, vals[i], found[i], v, f)
			}
		}
		m, err := DecodeProperties(b)
		if (err == nil) != ok {
			t.Fatalf("LookupProperties ok=%v, DecodeProperties err=%v", ok, err)
		}
		if err != nil {
			return
		}
		var buf [2]property // small, so more than two entries take the growing path
		ps, n, err := sortedProperties(m, buf[:])
		if err != nil || n != PropertiesSize(m) || string(appendSortedProperties(nil, ps)) != string(EncodeProperties(m)) {
			t.Fatalf("sortedProperties: %v, %d bytes (want %d), %q", err, n, PropertiesSize(m), appendSortedProperties(nil, ps))
		}
		if err := ValidateProperties(m); err != nil {
			t.Fatalf("decoded properties do not validate: %v", err)
		}
		enc := EncodeProperties(m)
		m2, err := DecodeProperties(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !cmp.Equal(m, m2) {
			t.Fatalf("unstable: %q -> %v -> %v", b, m, m2)
		}
		if string(EncodeProperties(m2)) != string(enc) {
			t.Fatal("encoding not deterministic")
		}
		for k, v := range m {
			if got, ok := LookupProperty(b, k); !ok || string(got) != v {
				t.Fatalf("LookupProperty(%q) = %q %v, want %q", k, got, ok, v)
			}
		}
	})
}
