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

// TestMatch follows RocketMQ's evaluator (docs/qa/round10-U.md cites each rule in its
// sources): Java conversions, an evaluation error is no match, unary NOT binds tighter than
// comparisons, a bare property is FALSE, NULL handling of = and <>, string functions.
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		expr  string
		props []string
		want  bool
	}{
		{"a > 5", []string{"a", "10"}, true},
		{"a > 5", []string{"a", "+6"}, true},
		{"a > 5", []string{"a", " 10"}, false},                // Integer.valueOf fails: no match
		{"a > 5", []string{"a", "5.0"}, false},                // the same
		{"a > 5", []string{"a", "3000000000"}, false},         // out of the int range
		{"a > 5", []string{"a", "1e3"}, false},                // not an integer
		{"a = 10", []string{"a", "\uff11\uff10"}, true},       // full-width digits: Character.digit reads them
		{"a = 10", []string{"a", "\u0661\u0660"}, true},       // Arabic-Indic
		{"a > 5L", []string{"a", "3000000000"}, false},        // 5L is still an Integer (it fits)
		{"a > 3000000000", []string{"a", "3000000001"}, true}, // a Long literal: Long.valueOf
		{"a > 5.0", []string{"a", "10 "}, true},               // Double.valueOf trims
		{"a > 5.0", []string{"a", "NaN"}, true},               // Double.compareTo puts NaN on top
		{"a > 5.0", []string{"a", "7f"}, true},                // suffix
		{"a > 5.0", []string{"a", "Infinity"}, true},          // Java spelling
		{"a > 5.0", []string{"a", "0x1p3"}, true},             // hexadecimal
		{"a > 5.0", []string{"a", "inf"}, false},              // not Java
		{"a > 5.0", []string{"a", "1_0"}, false},              // not Java
		{"a = 10", []string{"a", "10"}, true},
		{"a <> 10", []string{"a", "10"}, false},
		{"a BETWEEN -10 AND 10", []string{"a", "-10"}, true},
		{"a NOT BETWEEN 1 AND 9", []string{"a", "10"}, true},
		{"a > 5 OR b = 'x'", []string{"a", "abc", "b", "x"}, false}, // the error aborts everything
		{"b = 'x' OR a > 5", []string{"a", "abc", "b", "x"}, true},  // unless the left side decided
		{"a > 5 OR b = 'x'", []string{"a", "10"}, true},
		{"a > 5 AND b = 'x'", []string{"a", "10", "b", "x"}, true},
		{"missing > 1", nil, false},
		{"NOT (missing > 1)", nil, false},
		{"missing > 1 OR a = 'y'", []string{"a", "y"}, true},
		{"missing IS NULL", nil, true},
		{"a IS NOT NULL", []string{"a", "1"}, true},
		// Unary NOT applies to the operand, not to the comparison.
		{"NOT a = 10", []string{"a", "10"}, false},
		{"NOT a = 10", []string{"a", "9"}, false},
		{"NOT (a = 10)", []string{"a", "9"}, true},
		{"NOT a IS NULL", nil, true},
		{"NOT a IS NULL", []string{"a", "x"}, false},
		{"NOT a CONTAINS 'b'", []string{"a", "abc"}, false},
		// A bare property is FALSE (a String is not a Boolean), NULL when absent.
		{"a", []string{"a", "true"}, false},
		{"NOT a", []string{"a", "true"}, true},
		{"NOT a", nil, false},
		{"a = FALSE", []string{"a", "yes"}, true}, // Boolean.valueOf
		{"a = FALSE", []string{"a", "TRUE"}, false},
		{"a <> TRUE", []string{"a", "no"}, true},
		{"a = TRUE", []string{"a", "True"}, true},
		{"TRUE = a", []string{"a", "true"}, false}, // a ClassCastException there
		{"TRUE", nil, true},
		{"FALSE OR a = 'y'", []string{"a", "y"}, true},
		// Two properties ordered as numbers.
		{"a > b", []string{"a", "10", "b", "9"}, true},
		{"a > b", []string{"a", "y", "b", "x"}, false},
		{"a = b", []string{"a", "x", "b", "x"}, true},
		// NULL with = and <>: NULL when the left is null, FALSE when only the right is.
		{"'x' <> b", nil, true},
		{"b <> 'x'", nil, false},
		{"a = b", nil, true},
		{"a = b", []string{"a", "1"}, false},
		// IN over strings.
		{"b IN ('x', 'y')", []string{"b", "x"}, true},
		{"b NOT IN ('x', 'y')", []string{"b", "z"}, true},
		{"b NOT IN ('x')", nil, false},
		{"TAGS IN ('TagA', 'TagB')", []string{"TAGS", "TagA"}, true},
		// String functions are FALSE, not NULL, for a missing property or an empty argument.
		{"NOT (a CONTAINS 'b')", nil, true},
		{"a CONTAINS ''", []string{"a", "abc"}, false},
		{"a NOT CONTAINS 'x'", nil, false},
		{"a NOT CONTAINS 'x'", []string{"a", "abc"}, true},
		{"a STARTSWITH 'ab'", []string{"a", "abc"}, true},
		{"a ENDSWITH 'bc'", []string{"a", "abc"}, true},
		{"a NOT STARTSWITH 'b'", []string{"a", "abc"}, true},
		// Lexical forms RocketMQ accepts.
		{"a = 10 /* c */", []string{"a", "10"}, true},
		{"a = 'abc' -- c\n", []string{"a", "abc"}, true},
		{"(a) = 10", []string{"a", "10"}, true},
		{"a = - 5", []string{"a", "-5"}, true},
		{"a = +5", []string{"a", "5"}, true},
		{"a\f= 10", []string{"a", "10"}, true},
		{"s = 'it''s'", []string{"s", "it's"}, true},
		{"a > 5 and B = 'x'", []string{"a", "6", "B", "x"}, true},
		{"(a > 5 OR missing = 1) AND (b = 'x')", []string{"a", "6", "b", "x"}, true},
	} {
		e, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if got := e.Match(props(tc.props...)); got != tc.want {
			t.Errorf("%q over %q: %v, want %v", tc.expr, tc.props, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, expr := range []string{
		"", "a >", "a > 5 AND", "(a > 5", "a > 5)", "a IN (1, 2)", "a IN ('x'", "a BETWEEN 1", "a BETWEEN 1 OR 2",
		"a IS 5", "a NOT 5", "'x'", "5", "a ! 5", "a > 'unterminated", "a @ 5", "a b", "NOT",
		// RocketMQ's compile-time checks.
		"a BETWEEN 10 AND 5", "a > 'abc'", "a = NULL", "a <> NULL", "a > TRUE", "'10' IN ('10')",
		"NOT a IN ('10')", "NOT a BETWEEN 1 AND 20", "TRUE = 'x'",
		// Lexical forms RocketMQ refuses.
		"a != 10", "x.y = '1'", "\u00e4 = 'u'", "a = 5D", "a > 9999999999999999999", "a > 0.0", "a = 007",
		"a = 1 -- no line end",
	} {
		if _, err := Parse(expr); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v, want ErrSyntax", expr, err)
		}
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
