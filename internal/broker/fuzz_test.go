package broker

import (
	"bytes"
	"maps"
	"strings"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func FuzzReadProperties(f *testing.F) {
	f.Add("brokerName=a\n# c\nk: v\\\n  w\nx y\n")
	f.Add("a\\u00\\")
	f.Add("=\n:\n\\\n")
	f.Fuzz(func(t *testing.T, s string) {
		props, err := ReadProperties(strings.NewReader(s))
		if err != nil {
			return
		}
		cfg := DefaultConfig()
		_ = ApplyProperties(&cfg, props, nil) // must not panic on any value
		_ = cfg.Validate()
		// Rewriting one key in place (run-time config persistence) keeps every other key.
		out, err := rewriteProperties([]byte(s), map[string]string{"fileReservedTime": "7"})
		if err != nil {
			t.Fatalf("rewrite of a readable file: %v", err)
		}
		back, err := ReadProperties(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("rewritten file unreadable: %v\n%q", err, out)
		}
		props["fileReservedTime"] = "7"
		if !maps.Equal(back, props) {
			t.Fatalf("rewrite changed other keys:\n%q\n-> %q\n%v\n%v", s, out, props, back)
		}
	})
}

func FuzzParseTopicAttributes(f *testing.F) {
	f.Add("+message.type=FIFO,-a,+b=2")
	f.Add("+=,-")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := ParseTopicAttributes(map[string]string{"a": "1"}, s)
		if err == nil && out == nil {
			t.Fatal("nil map without error")
		}
	})
}

func FuzzParseTagExpression(f *testing.F) {
	f.Add("A || B")
	f.Add("*")
	f.Add("||")
	f.Fuzz(func(t *testing.T, s string) {
		filt := ParseTagExpression(s)
		for tag := range filt.tags {
			if !filt.MatchTag(tag) || !filt.MatchCode(message.TagsHashCode(tag)) {
				t.Fatalf("tag %q of %q does not match itself", tag, s)
			}
		}
	})
}
