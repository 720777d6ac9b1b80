package sql92

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("sql92: syntax error")

// Limits keep a hostile expression from costing much: its length and nesting depth. They are
// far above what selectors use (RocketMQ itself has none besides the request size).
const (
	maxExprLen = 256 << 10
	maxDepth   = 512
)

// Expr is a parsed selector.
type Expr struct {
	root node
	src  string
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

// Match reports whether the message whose properties get returns (value, present) matches:
// the selector evaluates to TRUE. An evaluation error (a property that does not convert to
// the literal it is compared with, say) is no match, as RocketMQ's ExpressionMessageFilter
// treats the exception.
func (e *Expr) Match(get func(name string) (string, bool)) bool {
	v, err := e.root.eval(get)
	return err == nil && v.kind == vBool && v.b
}

// Parse parses a selector with RocketMQ's grammar (SelectorParser.jj) and its compile-time
// checks: NULL cannot be compared with = or <>, only numbers (or expressions that are not
// boolean) with > >= < <= and BETWEEN, IN needs a property and string literals, a constant
// BETWEEN needs low <= high, and the whole selector must be boolean (a property is cast).
func Parse(src string) (*Expr, error) {
	if len(src) > maxExprLen {
		return nil, fmt.Errorf("%w: expression longer than %d bytes", ErrSyntax, maxExprLen)
	}
	if !utf8.ValidString(src) {
		return nil, fmt.Errorf("%w: expression is not UTF-8", ErrSyntax)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errf(t, "unexpected %s", t)
	}
	b, err := p.asBoolean(n, p.peek())
	if err != nil {
		return nil, err
	}
	return &Expr{root: b, src: src}, nil
}

// ---- lexer -------------------------------------------------------------------------------

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tDecimal // integer literal, optional L suffix
	tFloat
	tKeyword // AND OR NOT IS NULL BETWEEN IN TRUE FALSE CONTAINS STARTSWITH ENDSWITH
	tOp      // = <> > >= < <= + -
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string // keywords upper-cased; strings unquoted
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

var keywords = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "IS": true, "NULL": true, "BETWEEN": true, "IN": true,
	"TRUE": true, "FALSE": true, "CONTAINS": true, "STARTSWITH": true, "ENDSWITH": true,
}

// Identifiers are ASCII, as RocketMQ's ID token: [a-zA-Z_$][a-zA-Z0-9_$]*.
func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// floatLen is the length of the longest FLOATING_POINT_LITERAL at s (0 if none):
// digits "." digits? exp? | "." digits exp? | digits exp.
func floatLen(s string) int {
	digits := func(i int) int {
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		return j - i
	}
	exp := func(i int) int {
		if i >= len(s) || (s[i] != 'e' && s[i] != 'E') {
			return 0
		}
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if d := digits(j); d > 0 {
			return j + d - i
		}
		return 0
	}
	if n := digits(0); n > 0 {
		if n < len(s) && s[n] == '.' {
			m := n + 1 + digits(n+1)
			return m + exp(m)
		}
		if e := exp(n); e > 0 {
			return n + e
		}
		return 0
	}
	if len(s) > 1 && s[0] == '.' {
		if d := digits(1); d > 0 {
			return 1 + d + exp(1+d)
		}
	}
	return 0
}

// decimalLen is the length of the DECIMAL_LITERAL at s: "0", or [1-9][0-9]* with an optional
// l/L suffix.
func decimalLen(s string) int {
	if s == "" || !isDigit(s[0]) {
		return 0
	}
	if s[0] == '0' {
		return 1
	}
	j := 1
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j < len(s) && (s[j] == 'l' || s[j] == 'L') {
		j++
	}
	return j
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case strings.HasPrefix(s[i:], "--"):
			// A line comment runs to a line terminator, which RocketMQ's grammar requires.
			j := strings.IndexAny(s[i:], "\r\n")
			if j < 0 {
				return nil, fmt.Errorf("%w: at %d: line comment without a line end", ErrSyntax, i)
			}
			i += j + 1
		case strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("%w: at %d: unterminated comment", ErrSyntax, i)
			}
			i += 2 + j + 2
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '=' || c == '+' || c == '-':
			out = append(out, token{tOp, string(c), i})
			i++
		case c == '<' || c == '>':
			op := string(c)
			if i+1 < len(s) && (s[i+1] == '=' || (c == '<' && s[i+1] == '>')) {
				op += string(s[i+1])
			}
			out = append(out, token{tOp, op, i})
			i += len(op)
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("%w: at %d: unterminated string", ErrSyntax, i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{tString, b.String(), i})
			i = j + 1
		case isDigit(c) || c == '.':
			// The longest of the two literal forms wins, as in the generated tokenizer.
			f, d := floatLen(s[i:]), decimalLen(s[i:])
			switch {
			case f > 0 && f >= d:
				out = append(out, token{tFloat, s[i : i+f], i})
				i += f
			case d > 0:
				out = append(out, token{tDecimal, s[i : i+d], i})
				i += d
			default:
				return nil, fmt.Errorf("%w: at %d: unexpected character %q", ErrSyntax, i, c)
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			w := s[i:j]
			if up := strings.ToUpper(w); keywords[up] {
				out = append(out, token{tKeyword, up, i})
			} else {
				out = append(out, token{tIdent, w, i})
			}
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, fmt.Errorf("%w: at %d: unexpected character %q", ErrSyntax, i, r)
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}

// ---- parser ------------------------------------------------------------------------------

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peek2() token {
	if p.i+1 < len(p.toks) {
		return p.toks[p.i+1]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isKeyword(t token, k string) bool { return t.kind == tKeyword && t.text == k }

func (p *parser) keyword(k string) bool {
	if p.isKeyword(p.peek(), k) {
		p.i++
		return true
	}
	return false
}

func (p *parser) errf(t token, format string, args ...any) error {
	return fmt.Errorf("%w: at %d: %s", ErrSyntax, t.pos, fmt.Sprintf(format, args...))
}

// asBoolean is RocketMQ's asBooleanExpression: a boolean expression as it is, a property
// cast (a String is FALSE, a missing property NULL), anything else refused.
func (p *parser) asBoolean(n node, at token) (node, error) {
	switch x := n.(type) {
	case *property:
		return &boolCast{x}, nil
	case *constant:
		if x.v.kind == vBool || x.v.kind == vNull {
			return n, nil
		}
		return nil, p.errf(at, "expression will not result in a boolean value: %s", x.v)
	}
	if isBoolean(n) {
		return n, nil
	}
	return nil, p.errf(at, "expression will not result in a boolean value")
}

func (p *parser) or(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.peek(), "expression nested deeper than %d", maxDepth)
	}
	return p.chain(depth, "OR", false, p.and)
}

func (p *parser) and(depth int) (node, error) { return p.chain(depth, "AND", true, p.equality) }

// chain parses operand (keyword operand)*, each side of a keyword cast to boolean, into
// left-nested AND (and) or OR logic nodes.
func (p *parser) chain(depth int, keyword string, and bool, operand func(int) (node, error)) (node, error) {
	l, err := operand(depth)
	if err != nil {
		return nil, err
	}
	for p.isKeyword(p.peek(), keyword) {
		at := p.next()
		r, err := operand(depth)
		if err != nil {
			return nil, err
		}
		if l, err = p.asBoolean(l, at); err != nil {
			return nil, err
		}
		if r, err = p.asBoolean(r, at); err != nil {
			return nil, err
		}
		l = &logic{and: and, l: l, r: r}
	}
	return l, nil
}

// equality: comparison ( "=" comparison | "<>" comparison | IS NULL | IS NOT NULL )*
func (p *parser) equality(depth int) (node, error) {
	l, err := p.comparison(depth)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tOp && (t.text == "=" || t.text == "<>"):
			p.next()
			r, err := p.comparison(depth)
			if err != nil {
				return nil, err
			}
			if err := p.checkEqualOperands(l, r, t); err != nil {
				return nil, err
			}
			l = &equal{l: l, r: r}
			if t.text == "<>" {
				l = &not{l}
			}
		case p.isKeyword(t, "IS"):
			p.next()
			neg := p.keyword("NOT")
			if !p.keyword("NULL") {
				return nil, p.errf(p.peek(), "expected NULL after IS, got %s", p.peek())
			}
			l = &equal{l: l, r: &constant{value{kind: vNull}}}
			if neg {
				l = &not{l}
			}
		default:
			return l, nil
		}
	}
}

// checkEqualOperands: no NULL literal on either side, and a boolean constant may not be
// compared with another kind of constant (ComparisonExpression.checkEqualOperand*).
func (p *parser) checkEqualOperands(l, r node, at token) error {
	for _, n := range []node{l, r} {
		if c, ok := n.(*constant); ok && c.v.kind == vNull {
			return p.errf(at, "NULL cannot be compared with = or <>; use IS NULL")
		}
	}
	lc, ok1 := l.(*constant)
	rc, ok2 := r.(*constant)
	if ok1 && ok2 && lc.v.kind == vBool && rc.v.kind != vBool {
		return p.errf(at, "%s cannot be compared with %s", lc.v, rc.v)
	}
	return nil
}

// checkOrdered: only numbers among constants, and no boolean expression, on either side of
// > >= < <= and BETWEEN (ComparisonExpression.checkLessThanOperand).
func (p *parser) checkOrdered(n node, at token) error {
	if c, ok := n.(*constant); ok {
		if c.v.isNumber() {
			return nil
		}
		return p.errf(at, "value %s cannot be compared", c.v)
	}
	if isBoolean(n) {
		return p.errf(at, "a boolean expression cannot be compared")
	}
	return nil
}

// comparison: unary ( > >= < <= unary | [NOT] CONTAINS/STARTSWITH/ENDSWITH string |
// [NOT] BETWEEN unary AND unary | [NOT] IN (string, ...) )*
func (p *parser) comparison(depth int) (node, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind == tOp && (t.text == ">" || t.text == ">=" || t.text == "<" || t.text == "<=") {
			p.next()
			r, err := p.unary(depth)
			if err != nil {
				return nil, err
			}
			if err := p.checkOrdered(l, t); err != nil {
				return nil, err
			}
			if err := p.checkOrdered(r, t); err != nil {
				return nil, err
			}
			l = &ordered{op: t.text, l: l, r: r}
			continue
		}
		neg := false
		if p.isKeyword(t, "NOT") {
			switch n2 := p.peek2(); {
			case p.isKeyword(n2, "CONTAINS"), p.isKeyword(n2, "STARTSWITH"), p.isKeyword(n2, "ENDSWITH"),
				p.isKeyword(n2, "BETWEEN"), p.isKeyword(n2, "IN"):
				p.next()
				neg = true
				t = p.peek()
			default:
				return l, nil
			}
		}
		if t.kind != tKeyword {
			return l, nil
		}
		switch t.text {
		case "CONTAINS", "STARTSWITH", "ENDSWITH":
			p.next()
			s := p.next()
			if s.kind != tString {
				return nil, p.errf(s, "%s takes a string literal, got %s", t.text, s)
			}
			l = &strFunc{fn: t.text, v: l, arg: s.text, not: neg}
		case "BETWEEN":
			p.next()
			lo, err := p.unary(depth)
			if err != nil {
				return nil, err
			}
			if !p.keyword("AND") {
				return nil, p.errf(p.peek(), "expected AND in BETWEEN, got %s", p.peek())
			}
			hi, err := p.unary(depth)
			if err != nil {
				return nil, err
			}
			for _, n := range []node{l, lo, hi} {
				if err := p.checkOrdered(n, t); err != nil {
					return nil, err
				}
			}
			if !neg {
				if lc, ok := lo.(*constant); ok {
					if hc, ok := hi.(*constant); ok {
						if c, err := compareValues(hc.v, lc.v); err == nil && c < 0 {
							return nil, p.errf(t, "illegal values of between, left value(%s) must be less than or equal to right value(%s)", lc.v, hc.v)
						}
					}
				}
				l = &logic{and: true, l: &ordered{op: ">=", l: l, r: lo}, r: &ordered{op: "<=", l: l, r: hi}}
			} else {
				l = &logic{and: false, l: &ordered{op: "<", l: l, r: lo}, r: &ordered{op: ">", l: l, r: hi}}
			}
		case "IN":
			p.next()
			prop, ok := l.(*property)
			if !ok {
				return nil, p.errf(t, "expected a property for IN")
			}
			if tk := p.next(); tk.kind != tLParen {
				return nil, p.errf(tk, "expected '(' after IN, got %s", tk)
			}
			var set []string
			for {
				tk := p.next()
				if tk.kind != tString {
					return nil, p.errf(tk, "IN takes string literals, got %s", tk)
				}
				set = append(set, tk.text)
				tk = p.next()
				if tk.kind == tRParen {
					break
				}
				if tk.kind != tComma {
					return nil, p.errf(tk, "expected ',' or ')' in IN, got %s", tk)
				}
			}
			l = &in{v: prop, set: set, not: neg}
		default:
			if neg {
				return nil, p.errf(t, "expected CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN after NOT")
			}
			return l, nil
		}
	}
}

// unary: "+" unary | "-" unary | NOT unary | primary
func (p *parser) unary(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.peek(), "expression nested deeper than %d", maxDepth)
	}
	t := p.peek()
	switch {
	case t.kind == tOp && t.text == "+":
		p.next()
		return p.unary(depth + 1)
	case t.kind == tOp && t.text == "-":
		p.next()
		n, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &negate{n}, nil
	case p.isKeyword(t, "NOT"):
		p.next()
		n, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		b, err := p.asBoolean(n, t)
		if err != nil {
			return nil, err
		}
		return &not{b}, nil
	}
	return p.primary(depth)
}

// primary: literal | property | "(" or ")"
func (p *parser) primary(depth int) (node, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errf(c, "expected ')', got %s", c)
		}
		return n, nil
	case tIdent:
		return &property{t.text}, nil
	case tString:
		return &constant{value{kind: vStr, s: t.text}}, nil
	case tDecimal:
		text := strings.TrimRight(t.text, "lL")
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, p.errf(t, "integer %s out of the long range", t.text)
		}
		if n >= math.MinInt32 && n <= math.MaxInt32 {
			return &constant{value{kind: vInt, i: n}}, nil
		}
		return &constant{value{kind: vLong, i: n}}, nil
	case tFloat:
		f, err := strconv.ParseFloat(t.text, 64)
		// RocketMQ's createFloat refuses values above Double.MAX_VALUE and below
		// Double.MIN_VALUE (the smallest positive double, so 0.0 too).
		if err != nil || f > math.MaxFloat64 || f < math.SmallestNonzeroFloat64 {
			return nil, p.errf(t, "decimal %s out of range", t.text)
		}
		return &constant{value{kind: vDouble, f: f}}, nil
	case tKeyword:
		switch t.text {
		case "TRUE":
			return &constant{value{kind: vBool, b: true}}, nil
		case "FALSE":
			return &constant{value{kind: vBool, b: false}}, nil
		case "NULL":
			return &constant{value{kind: vNull}}, nil
		}
	}
	return nil, p.errf(t, "expected a property, a literal or '(', got %s", t)
}
