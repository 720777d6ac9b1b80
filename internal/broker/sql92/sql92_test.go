package sql92

import (
	"errors"
	"testing"
)

func props(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestMatch(t *testing.T) {
	msg := props("a", "10", "b", "x", "c", "3.5", "TAGS", "TagA", "flag", "true", "neg", "-4", "s", "it's")
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"a > 5", true},
		{"a > 10", false},
		{"a >= 10", true},
		{"a < 11 AND a <= 10", true},
		{"a = 10", true},
		{"a <> 10", false},
		{"a != 9", true},
		{"a > 5 AND b = 'x'", true},
		{"a > 5 AND b = 'y'", false},
		{"a > 50 OR b = 'x'", true},
		{"NOT (a > 50)", true},
		{"a BETWEEN 1 AND 10", true},
		{"a BETWEEN 11 AND 20", false},
		{"a NOT BETWEEN 11 AND 20", true},
		{"c > 3", true},
		{"c = 3.5", true},
		{"c < 3.25", false},
		{"neg < -3", true},
		{"neg = -4", true},
		{"b IN ('x', 'y')", true},
		{"b NOT IN ('x', 'y')", false},
		{"TAGS IN ('TagA', 'TagB')", true},
		{"TAGS IS NOT NULL AND TAGS IN ('TagB')", false},
		{"missing IS NULL", true},
		{"missing IS NOT NULL", false},
		{"a IS NULL", false},
		// Unknown is not true, and NOT unknown is unknown (SQL).
		{"missing > 1", false},
		{"NOT (missing > 1)", false},
		{"missing > 1 OR a = 10", true},
		{"missing > 1 AND a = 10", false},
		{"b > 1", false},       // text that is not a number against a number: unknown
		{"NOT (b > 1)", false}, // still unknown
		{"b CONTAINS 'x'", true},
		{"TAGS STARTSWITH 'Tag'", true},
		{"TAGS ENDSWITH 'A'", true},
		{"TAGS NOT CONTAINS 'B'", true},
		{"flag = TRUE", true},
		{"flag", true},
		{"flag = FALSE", false},
		{"TRUE", true},
		{"FALSE OR a = 10", true},
		{"s = 'it''s'", true},
		{"a and B = 'x'", false}, // property names are case-sensitive: B is missing
		{"a > 5 and b = 'x'", true},
		{"(a > 5 OR missing = 1) AND (b = 'x')", true},
		{"a = 10L", true},
		{"b = NULL", false}, // comparison with NULL is unknown
	} {
		e, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if got := e.Match(msg); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, expr := range []string{
		"", "a >", "a > 5 AND", "(a > 5", "a > 5)", "a IN (1, 2)", "a IN ('x'", "a BETWEEN 1", "a BETWEEN 1 OR 2",
		"a IS 5", "a NOT 5", "'x'", "a ! 5", "a > 'unterminated", "a @ 5", "5", "a b", "NOT",
	} {
		if _, err := Parse(expr); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v, want ErrSyntax", expr, err)
		}
	}
	deep := ""
	for range 100 {
		deep += "("
	}
	if _, err := Parse(deep + "a > 1"); !errors.Is(err, ErrSyntax) {
		t.Errorf("deep nesting: %v", err)
	}
}

// FuzzParse: Parse never panics, fails only with ErrSyntax, and what parses evaluates on any
// message without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a > 5 AND b = 'x'", "TAGS IN ('A','B')", "c IS NOT NULL OR NOT (d BETWEEN -1 AND 2.5e3)",
		"x CONTAINS 'y'", "((((a))))", "a <> 'it''s'", "flag"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("%q: error %v is not ErrSyntax", s, err)
			}
			return
		}
		e.Match(props("a", "1", "b", "x", "TAGS", "A", "c", "", "d", "2"))
		e.Match(props())
	})
}
