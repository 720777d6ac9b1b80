package pop

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rocketry-mq/rocketry/internal/message"
)

// ErrInvalidFilter reports an unsupported filter type or a malformed expression.
var ErrInvalidFilter = errors.New("invalid filter expression")

// TagFilter is a parsed TAG subscription: "*" (or empty) matches everything, "A||B" matches
// messages whose TAGS is exactly A or B. Matching checks the ConsumeQueue tag hash first and
// then the exact tag string, as RocketMQ does.
type TagFilter struct {
	all    bool
	hashes map[int64]struct{}
	tags   map[string]struct{}
}

// ParseFilter parses a filter of type typ ("" or "TAG"; SQL92 is not supported here).
func ParseFilter(typ, expr string) (*TagFilter, error) {
	if typ != "" && !strings.EqualFold(typ, "TAG") {
		return nil, fmt.Errorf("%w: filter type %q not supported", ErrInvalidFilter, typ)
	}
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return &TagFilter{all: true}, nil
	}
	f := &TagFilter{hashes: make(map[int64]struct{}), tags: make(map[string]struct{})}
	for _, t := range strings.Split(expr, "||") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if t == "*" {
			return &TagFilter{all: true}, nil
		}
		f.tags[t] = struct{}{}
		f.hashes[message.TagsHashCode(t)] = struct{}{}
	}
	if len(f.tags) == 0 {
		return nil, fmt.Errorf("%w: %q has no tag", ErrInvalidFilter, expr)
	}
	return f, nil
}

// All reports whether the filter matches every message.
func (f *TagFilter) All() bool { return f.all }

// MatchCode is the cheap first check on a ConsumeQueue tag hash.
func (f *TagFilter) MatchCode(code int64) bool {
	if f.all {
		return true
	}
	_, ok := f.hashes[code]
	return ok
}

// MatchTag is the exact check on a message's TAGS.
func (f *TagFilter) MatchTag(tag string) bool {
	if f.all {
		return true
	}
	_, ok := f.tags[tag]
	return ok
}
