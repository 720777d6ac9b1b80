package pop

import (
	"errors"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		typ, expr string
		all       bool
		err       bool
		match     []string
		miss      []string
	}{
		{"", "", true, false, []string{"", "A"}, nil},
		{"TAG", "*", true, false, []string{"x"}, nil},
		{"tag", " A || B ", false, false, []string{"A", "B"}, []string{"", "C", "A||B"}},
		{"TAG", "A||*", true, false, []string{"Z"}, nil},
		{"TAG", "||", false, true, nil, nil},
		{"SQL92", "a > 1", false, false, nil, nil}, // evaluated whatever enablePropertyFilter says (R10U-7)
		{"SQL92", "a >", false, true, nil, nil},
		{"XPATH", "a", false, true, nil, nil},
	} {
		f, err := ParseFilter(c.typ, c.expr)
		if c.err {
			if !errors.Is(err, ErrInvalidFilter) {
				t.Errorf("%q %q: err = %v", c.typ, c.expr, err)
			}
			continue
		}
		if err != nil || f.All() != c.all {
			t.Fatalf("%q %q: %v all=%v", c.typ, c.expr, err, f != nil && f.All())
		}
		for _, tag := range c.match {
			if !f.MatchCode(message.TagsHashCode(tag)) || !f.MatchTag(tag) {
				t.Errorf("%q should match %q", c.expr, tag)
			}
		}
		for _, tag := range c.miss {
			if f.MatchCode(message.TagsHashCode(tag)) && f.MatchTag(tag) {
				t.Errorf("%q should not match %q", c.expr, tag)
			}
		}
	}
}
