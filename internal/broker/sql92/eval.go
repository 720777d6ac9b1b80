package sql92

import (
	"math"
	"strconv"
	"strings"
)

// tri is a three-valued truth value.
type tri int8

const (
	triUnknown tri = iota
	triFalse
	triTrue
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

type getter = func(name string) (string, bool)

type node interface {
	eval(get getter) tri
}

// ---- values ------------------------------------------------------------------------------

type valueKind int8

const (
	vNull valueKind = iota
	vStr
	vNum
	vBool
)

type value struct {
	kind  valueKind
	s     string
	f     float64
	i     int64
	isInt bool // f == float64(i) and the literal had no fraction
	b     bool
}

func numberValue(text string) value {
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return value{kind: vNum, i: i, f: float64(i), isInt: true}
	}
	f, _ := strconv.ParseFloat(text, 64) // the lexer checked it
	return value{kind: vNum, f: f}
}

type operandKind int8

const (
	oLit operandKind = iota
	oIdent
)

type operand struct {
	kind operandKind
	name string
	lit  value
}

func (o operand) value(get getter) value {
	if o.kind == oLit {
		return o.lit
	}
	s, ok := get(o.name)
	if !ok {
		return value{kind: vNull}
	}
	return value{kind: vStr, s: s}
}

// asNumber reads v as a number (a property's text); false when it is not one.
func asNumber(v value) (value, bool) {
	switch v.kind {
	case vNum:
		return v, true
	case vStr:
		t := strings.TrimSpace(v.s)
		if i, err := strconv.ParseInt(t, 10, 64); err == nil {
			return value{kind: vNum, i: i, f: float64(i), isInt: true}, true
		}
		if f, err := strconv.ParseFloat(t, 64); err == nil && !math.IsNaN(f) {
			return value{kind: vNum, f: f}, true
		}
	}
	return value{}, false
}

func asBool(v value) (bool, bool) {
	switch v.kind {
	case vBool:
		return v.b, true
	case vStr:
		switch {
		case strings.EqualFold(v.s, "true"):
			return true, true
		case strings.EqualFold(v.s, "false"):
			return false, true
		}
	}
	return false, false
}

// cmp orders two values: -1, 0, 1, ok=false when they cannot be compared (a null, or a text
// that is not a number compared with a number). Numbers win over text (a property compared
// with a number is read as one), booleans over text; two texts compare as strings.
func cmp(l, r value) (int, bool) {
	if l.kind == vNull || r.kind == vNull {
		return 0, false
	}
	if l.kind == vNum || r.kind == vNum {
		a, ok1 := asNumber(l)
		b, ok2 := asNumber(r)
		if !ok1 || !ok2 {
			return 0, false
		}
		if a.isInt && b.isInt {
			return cmpOrdered(a.i, b.i), true
		}
		return cmpOrdered(a.f, b.f), true
	}
	if l.kind == vBool || r.kind == vBool {
		a, ok1 := asBool(l)
		b, ok2 := asBool(r)
		if !ok1 || !ok2 {
			return 0, false
		}
		if a == b {
			return 0, true
		}
		if !a {
			return -1, true
		}
		return 1, true
	}
	return strings.Compare(l.s, r.s), true
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ---- nodes -------------------------------------------------------------------------------

type logic struct {
	and  bool
	l, r node
}

func (n *logic) eval(get getter) tri {
	a := n.l.eval(get)
	if n.and && a == triFalse {
		return triFalse
	}
	if !n.and && a == triTrue {
		return triTrue
	}
	b := n.r.eval(get)
	if n.and {
		switch {
		case b == triFalse:
			return triFalse
		case a == triTrue && b == triTrue:
			return triTrue
		}
		return triUnknown
	}
	switch {
	case b == triTrue:
		return triTrue
	case a == triFalse && b == triFalse:
		return triFalse
	}
	return triUnknown
}

type negate struct{ n node }

func (n *negate) eval(get getter) tri {
	switch n.n.eval(get) {
	case triTrue:
		return triFalse
	case triFalse:
		return triTrue
	}
	return triUnknown
}

type compare struct {
	op   string
	l, r operand
}

func (n *compare) eval(get getter) tri {
	l, r := n.l.value(get), n.r.value(get)
	c, ok := cmp(l, r)
	if !ok {
		return triUnknown
	}
	if (l.kind == vBool || r.kind == vBool) && n.op != "=" && n.op != "<>" && n.op != "!=" {
		return triUnknown // booleans are not ordered
	}
	switch n.op {
	case "=":
		return triOf(c == 0)
	case "<>", "!=":
		return triOf(c != 0)
	case ">":
		return triOf(c > 0)
	case ">=":
		return triOf(c >= 0)
	case "<":
		return triOf(c < 0)
	case "<=":
		return triOf(c <= 0)
	}
	return triUnknown
}

type isNull struct {
	v   operand
	not bool
}

func (n *isNull) eval(get getter) tri {
	null := n.v.value(get).kind == vNull
	return triOf(null != n.not)
}

type between struct {
	v, lo, hi operand
	not       bool
}

func (n *between) eval(get getter) tri {
	v := n.v.value(get)
	a, ok1 := cmp(v, n.lo.value(get))
	b, ok2 := cmp(v, n.hi.value(get))
	if !ok1 || !ok2 {
		return triUnknown
	}
	return triOf((a >= 0 && b <= 0) != n.not)
}

type in struct {
	v   operand
	set []string
	not bool
}

func (n *in) eval(get getter) tri {
	v := n.v.value(get)
	if v.kind == vNull {
		return triUnknown
	}
	s := v.s
	if v.kind != vStr {
		return triUnknown
	}
	for _, x := range n.set {
		if x == s {
			return triOf(!n.not)
		}
	}
	return triOf(n.not)
}

type strFunc struct {
	fn  string // CONTAINS, STARTSWITH, ENDSWITH
	v   operand
	arg string
	not bool
}

func (n *strFunc) eval(get getter) tri {
	v := n.v.value(get)
	if v.kind != vStr {
		return triUnknown
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
	return triOf(ok != n.not)
}

// truth is a bare boolean operand: TRUE, FALSE, or a property reading "true"/"false".
type truth struct{ v operand }

func (n *truth) eval(get getter) tri {
	b, ok := asBool(n.v.value(get))
	if !ok {
		return triUnknown
	}
	return triOf(b)
}
