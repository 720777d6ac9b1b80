package broker

import (
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
