package sql92

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Evaluation follows RocketMQ's filter module (ActiveMQ's selector classes) value by value:
// values are Java objects (String properties, Integer/Long/Double/Boolean literals, null),
// comparisons convert a String to the other side's type with Integer.valueOf, Long.valueOf,
// Double.valueOf or Boolean.valueOf, and a conversion that fails aborts the evaluation: the
// message does not match, whatever the rest of the selector says.

type getter = func(name string) (string, bool)

// errEval aborts an evaluation (a Java exception in RocketMQ's evaluator).
var errEval = errors.New("sql92: evaluation error")

type valueKind int8

const (
	vNull valueKind = iota
	vStr
	vInt  // java.lang.Integer
	vLong // java.lang.Long
	vDouble
	vBool
)

type value struct {
	kind valueKind
	s    string
	i    int64 // vInt, vLong
	f    float64
	b    bool
}

func (v value) isNumber() bool { return v.kind == vInt || v.kind == vLong || v.kind == vDouble }

func (v value) String() string {
	switch v.kind {
	case vNull:
		return "NULL"
	case vStr:
		return "'" + strings.ReplaceAll(v.s, "'", "''") + "'"
	case vInt, vLong:
		return strconv.FormatInt(v.i, 10)
	case vDouble:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	}
	if v.b {
		return "TRUE"
	}
	return "FALSE"
}

var (
	vTrue  = value{kind: vBool, b: true}
	vFalse = value{kind: vBool, b: false}
	null   = value{kind: vNull}
)

func boolValue(b bool) value {
	if b {
		return vTrue
	}
	return vFalse
}

// ---- Java conversions --------------------------------------------------------------------

// javaInt is Long.parseLong (bits 64) or Integer.parseInt (bits 32): an optional sign and
// decimal digits, any Unicode decimal digit counting as Java's Character.digit reads it
// (full-width "１０" is 10, QA R10V-1), nothing else.
func javaInt(s string, bits int) (int64, bool) {
	if s == "" {
		return 0, false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		var b strings.Builder
		for i, r := range s {
			switch {
			case i == 0 && (r == '+' || r == '-'):
				b.WriteRune(r)
			case unicode.Is(unicode.Nd, r):
				b.WriteByte(byte('0' + digitValue(r)))
			default:
				return 0, false
			}
		}
		s = b.String()
	}
	if strings.ContainsAny(s, "_ \t") {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, bits)
	return n, err == nil
}

// digitValue is the value of a Unicode decimal digit: its distance from the zero that starts
// its run of ten (Unicode lays every Nd set out as 0..9 in order).
func digitValue(r rune) int {
	start := r
	for unicode.Is(unicode.Nd, start-1) && r-start < 9 {
		start--
	}
	return int(r-start) % 10
}

// javaDouble is Double.valueOf: leading and trailing whitespace (chars <= ' ') ignored, an
// optional sign, decimal digits with an optional exponent or hexadecimal digits with a
// binary exponent, an optional f/F/d/D suffix, or NaN / Infinity spelled as Java does.
func javaDouble(s string) (float64, bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	switch s {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	if n := len(s); n > 0 && strings.IndexByte("fFdD", s[n-1]) >= 0 {
		s = s[:n-1]
	}
	if !javaDecimalFloat.MatchString(s) && !javaHexFloat.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range: Java rounds to Infinity or 0 as ParseFloat does
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}

var (
	javaDecimalFloat = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
	javaHexFloat     = regexp.MustCompile(`^0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+$`)
)

// javaBool is Boolean.valueOf: "true" in any case, everything else false.
func javaBool(s string) bool { return strings.EqualFold(s, "true") }

// convert turns a String into the kind of the other side (RocketMQ's __compare with
// convertStringExpressions); a failure is an evaluation error.
func convert(s string, to valueKind) (value, error) {
	switch to {
	case vBool:
		return boolValue(javaBool(s)), nil
	case vInt:
		if n, ok := javaInt(s, 32); ok {
			return value{kind: vInt, i: n}, nil
		}
	case vLong:
		if n, ok := javaInt(s, 64); ok {
			return value{kind: vLong, i: n}, nil
		}
	case vDouble:
		if f, ok := javaDouble(s); ok {
			return value{kind: vDouble, f: f}, nil
		}
	}
	return value{}, errEval
}

// javaDoubleCompare is Double.compareTo: NaN above everything, -0.0 below 0.0.
func javaDoubleCompare(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	ab, bb := math.Float64bits(a), math.Float64bits(b)
	if math.IsNaN(a) {
		ab = 0x7ff8000000000000
	}
	if math.IsNaN(b) {
		bb = 0x7ff8000000000000
	}
	switch {
	case ab == bb:
		return 0
	case int64(ab) < int64(bb):
		return -1
	}
	return 1
}

// compareValues is RocketMQ's __compare for two non-null values: numbers widen (Integer ->
// Long -> Double), a String takes the other side's type, a Boolean on the left with a String
// on the right is an error (a ClassCastException there); other mixes order the left first
// (-1), as __compare's fallthrough does.
func compareValues(l, r value) (int, error) {
	if l.kind != r.kind {
		switch {
		case l.kind == vStr:
			if r.kind == vNull {
				return -1, nil
			}
			c, err := convert(l.s, r.kind)
			if err != nil {
				return 0, err
			}
			l = c
		case r.kind == vStr:
			if l.kind == vBool {
				return 0, errEval
			}
			c, err := convert(r.s, l.kind)
			if err != nil {
				return 0, err
			}
			r = c
		case l.isNumber() && r.isNumber():
			if l.kind == vDouble || r.kind == vDouble {
				if l.kind != vDouble {
					l = value{kind: vDouble, f: float64(l.i)}
				}
				if r.kind != vDouble {
					r = value{kind: vDouble, f: float64(r.i)}
				}
			} else {
				l.kind, r.kind = vLong, vLong
			}
		default:
			return -1, nil
		}
	}
	switch l.kind {
	case vStr:
		return strings.Compare(l.s, r.s), nil
	case vInt, vLong:
		switch {
		case l.i < r.i:
			return -1, nil
		case l.i > r.i:
			return 1, nil
		}
		return 0, nil
	case vDouble:
		return javaDoubleCompare(l.f, r.f), nil
	case vBool:
		switch {
		case l.b == r.b:
			return 0, nil
		case !l.b:
			return -1, nil
		}
		return 1, nil
	}
	return 0, errEval
}

// javaEquals is Object.equals for two values of the same Java class.
func javaEquals(l, r value) bool {
	if l.kind != r.kind {
		return false
	}
	switch l.kind {
	case vStr:
		return l.s == r.s
	case vInt, vLong:
		return l.i == r.i
	case vDouble:
		return javaDoubleCompare(l.f, r.f) == 0
	case vBool:
		return l.b == r.b
	}
	return true
}

// ---- nodes -------------------------------------------------------------------------------

type node interface {
	eval(get getter) (value, error)
}

// isBoolean reports whether n is one of RocketMQ's BooleanExpressions (comparisons, logic,
// NOT, casts, IN, the string functions; the TRUE/FALSE/NULL constants are handled apart).
func isBoolean(n node) bool {
	switch n.(type) {
	case *logic, *not, *boolCast, *equal, *ordered, *in, *strFunc:
		return true
	}
	return false
}

type constant struct{ v value }

func (n *constant) eval(getter) (value, error) { return n.v, nil }

type property struct{ name string }

func (n *property) eval(get getter) (value, error) {
	s, ok := get(n.name)
	if !ok {
		return null, nil
	}
	return value{kind: vStr, s: s}, nil
}

// negate is unary minus: a number negated, anything else NULL.
type negate struct{ n node }

func (n *negate) eval(get getter) (value, error) {
	v, err := n.n.eval(get)
	if err != nil {
		return value{}, err
	}
	switch v.kind {
	case vInt:
		if v.i == math.MinInt32 {
			return v, nil // Java int negation wraps
		}
		return value{kind: vInt, i: -v.i}, nil
	case vLong:
		if v.i == math.MinInt64 {
			return v, nil
		}
		return value{kind: vLong, i: -v.i}, nil
	case vDouble:
		return value{kind: vDouble, f: -v.f}, nil
	}
	return null, nil
}

// boolCast is a property used as a boolean: NULL when absent, FALSE for any String.
type boolCast struct{ n node }

func (n *boolCast) eval(get getter) (value, error) {
	v, err := n.n.eval(get)
	if err != nil || v.kind == vNull {
		return v, err
	}
	if v.kind != vBool {
		return vFalse, nil
	}
	return v, nil
}

type not struct{ n node }

func (n *not) eval(get getter) (value, error) {
	v, err := n.n.eval(get)
	if err != nil || v.kind == vNull {
		return v, err
	}
	if v.kind != vBool {
		return value{}, errEval // a ClassCastException in RocketMQ
	}
	return boolValue(!v.b), nil
}

// logic is AND / OR with SQL's three values, evaluated left first with short circuit.
type logic struct {
	and  bool
	l, r node
}

func boolOrNull(v value) (b, isNull bool, err error) {
	switch v.kind {
	case vNull:
		return false, true, nil
	case vBool:
		return v.b, false, nil
	}
	return false, false, errEval
}

func (n *logic) eval(get getter) (value, error) {
	lv, err := n.l.eval(get)
	if err != nil {
		return value{}, err
	}
	lb, lnull, err := boolOrNull(lv)
	if err != nil {
		return value{}, err
	}
	if !lnull && lb != n.and { // AND: FALSE decides; OR: TRUE decides
		return boolValue(lb), nil
	}
	rv, err := n.r.eval(get)
	if err != nil {
		return value{}, err
	}
	rb, rnull, err := boolOrNull(rv)
	if err != nil {
		return value{}, err
	}
	if !rnull && rb != n.and {
		return boolValue(rb), nil
	}
	if lnull || rnull {
		return null, nil
	}
	return boolValue(n.and), nil
}

// equal is RocketMQ's doCreateEqual (also IS NULL, and <> as its NOT): NULL when only the
// left side is null, FALSE when only the right side is, TRUE when both are.
type equal struct{ l, r node }

func (n *equal) eval(get getter) (value, error) {
	lv, err := n.l.eval(get)
	if err != nil {
		return value{}, err
	}
	rv, err := n.r.eval(get)
	if err != nil {
		return value{}, err
	}
	if (lv.kind == vNull) != (rv.kind == vNull) {
		if lv.kind == vNull {
			return null, nil
		}
		return vFalse, nil
	}
	if lv.kind == vNull || javaEquals(lv, rv) {
		return vTrue, nil
	}
	c, err := compareValues(lv, rv)
	if err != nil {
		return value{}, err
	}
	return boolValue(c == 0), nil
}

// ordered is > >= < <=: NULL when either side is null; two Strings both read as doubles.
type ordered struct {
	op   string
	l, r node
}

func (n *ordered) eval(get getter) (value, error) {
	lv, err := n.l.eval(get)
	if err != nil || lv.kind == vNull {
		return lv, err
	}
	rv, err := n.r.eval(get)
	if err != nil || rv.kind == vNull {
		return rv, err
	}
	if lv.kind == vStr && rv.kind == vStr {
		a, ok1 := javaDouble(lv.s)
		b, ok2 := javaDouble(rv.s)
		if !ok1 || !ok2 {
			return value{}, errEval
		}
		lv, rv = value{kind: vDouble, f: a}, value{kind: vDouble, f: b}
	}
	c, err := compareValues(lv, rv)
	if err != nil {
		return value{}, err
	}
	switch n.op {
	case ">":
		return boolValue(c > 0), nil
	case ">=":
		return boolValue(c >= 0), nil
	case "<":
		return boolValue(c < 0), nil
	}
	return boolValue(c <= 0), nil
}

// in is [NOT] IN over string literals: NULL unless the property is a String.
type in struct {
	v   *property
	set []string
	not bool
}

func (n *in) eval(get getter) (value, error) {
	v, err := n.v.eval(get)
	if err != nil || v.kind != vStr {
		return null, err
	}
	found := false
	for _, x := range n.set {
		if x == v.s {
			found = true
			break
		}
	}
	return boolValue(found != n.not), nil
}

// strFunc is [NOT] CONTAINS / STARTSWITH / ENDSWITH: FALSE, not NULL, for an empty search
// string or a value that is not a String (absent included), in both forms.
type strFunc struct {
	fn  string
	v   node
	arg string
	not bool
}

func (n *strFunc) eval(get getter) (value, error) {
	if n.arg == "" {
		return vFalse, nil
	}
	v, err := n.v.eval(get)
	if err != nil {
		return value{}, err
	}
	if v.kind != vStr {
		return vFalse, nil
	}
	var ok bool
	switch n.fn {
	case "CONTAINS":
		ok = strings.Contains(v.s, n.arg)
	case "STARTSWITH":
		ok = strings.HasPrefix(v.s, n.arg)
	case "ENDSWITH":
		ok = strings.HasSuffix(v.s, n.arg)
	}
	return boolValue(ok != n.not), nil
}
