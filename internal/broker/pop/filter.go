package pop

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rocketry-mq/rocketry/internal/broker/sql92"
	"github.com/rocketry-mq/rocketry/internal/message"
)

// ErrInvalidFilter reports an unsupported filter type or a malformed expression.
var ErrInvalidFilter = errors.New("invalid filter expression")

// TagFilter is a parsed subscription. TAG: "*" (or empty) matches everything, "A||B" matches
// messages whose TAGS is exactly A or B; matching checks the ConsumeQueue tag hash first and
// then the exact tag string, as RocketMQ does. SQL92: a selector over the message's
// properties (package sql92), evaluated on each message (every tag hash passes).
type TagFilter struct {
	all    bool
	hashes map[int64]struct{}
	tags   map[string]struct{}
	sql    *sql92.Expr
}

// ParseFilter parses a filter of type typ: "" or "TAG", or "SQL92", which pop evaluates
// whatever the broker's enablePropertyFilter says, as Apache's PopMessageProcessor (QA
// R10U-7); any other type is RocketMQ's refusal "The broker does not support consumer to
// filter message by <type>".
func ParseFilter(typ, expr string) (*TagFilter, error) {
	if strings.EqualFold(typ, "SQL92") {
		e, err := sql92.Parse(expr)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidFilter, err)
		}
		return &TagFilter{sql: e}, nil
	}
	if typ != "" && !strings.EqualFold(typ, "TAG") {
		return nil, fmt.Errorf("%w: The broker does not support consumer to filter message by %s", ErrInvalidFilter, typ)
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
	if f.all || f.sql != nil {
		return true
	}
	_, ok := f.hashes[code]
	return ok
}

// MatchTag is the exact check on a message's TAGS (TAG filters only).
func (f *TagFilter) MatchTag(tag string) bool {
	if f.all {
		return true
	}
	_, ok := f.tags[tag]
	return ok
}

// MatchMessage is the exact check on a decoded message: its TAGS, or the SQL92 selector
// over its properties.
func (f *TagFilter) MatchMessage(m *message.Ext) bool {
	if f.sql != nil {
		return f.sql.Match(func(k string) (string, bool) {
			v, ok := m.Properties[k]
			return v, ok
		})
	}
	return f.MatchTag(m.Tags())
}
