package sql92

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("sql92: syntax error")

// Limits keep a hostile expression from costing much: its length and nesting depth.
const (
	maxExprLen = 16 << 10
	maxDepth   = 64
)

// Expr is a parsed selector.
type Expr struct {
	root node
	src  string
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

// Match reports whether the message whose properties get returns (value, present) matches.
func (e *Expr) Match(get func(name string) (string, bool)) bool {
	return e.root.eval(get) == triTrue
}

// Parse parses a selector.
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
	return &Expr{root: n, src: src}, nil
}

// ---- lexer -------------------------------------------------------------------------------

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tKeyword // AND OR NOT IS NULL BETWEEN IN TRUE FALSE CONTAINS STARTSWITH ENDSWITH
	tOp      // = <> != > >= < <=
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

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c == '.' || (c >= '0' && c <= '9') }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '=':
			out = append(out, token{tOp, "=", i})
			i++
		case c == '<' || c == '>' || c == '!':
			op := string(c)
			if i+1 < len(s) && (s[i+1] == '=' || (c == '<' && s[i+1] == '>')) {
				op += string(s[i+1])
			}
			if op == "!" {
				return nil, fmt.Errorf("%w: at %d: '!' must be followed by '='", ErrSyntax, i)
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
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])) || (c == '-' && negativeAllowed(out) &&
			i+1 < len(s) && (isDigit(s[i+1]) || s[i+1] == '.')):
			j := i
			if c == '-' {
				j++
			}
			for j < len(s) && (isDigit(s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				((s[j] == '+' || s[j] == '-') && j > i+1 && (s[j-1] == 'e' || s[j-1] == 'E'))) {
				j++
			}
			// A trailing L / D / F suffix (Java literals) is accepted and dropped.
			text := s[i:j]
			if j < len(s) && strings.ContainsRune("lLdDfF", rune(s[j])) {
				j++
			}
			if _, err := strconv.ParseFloat(text, 64); err != nil {
				return nil, fmt.Errorf("%w: at %d: bad number %q", ErrSyntax, i, text)
			}
			out = append(out, token{tNumber, text, i})
			i = j
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
			return nil, fmt.Errorf("%w: at %d: unexpected character %q", ErrSyntax, i, c)
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}

// negativeAllowed reports whether a '-' here starts a negative number: where an operand is
// expected (after an operator, a keyword, '(' or ',', or at the start).
func negativeAllowed(prev []token) bool {
	if len(prev) == 0 {
		return true
	}
	switch prev[len(prev)-1].kind {
	case tOp, tKeyword, tLParen, tComma:
		return true
	}
	return false
}

// ---- parser ------------------------------------------------------------------------------

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(k string) bool {
	if t := p.peek(); t.kind == tKeyword && t.text == k {
		p.i++
		return true
	}
	return false
}

func (p *parser) errf(t token, format string, args ...any) error {
	return fmt.Errorf("%w: at %d: %s", ErrSyntax, t.pos, fmt.Sprintf(format, args...))
}

func (p *parser) or(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.peek(), "expression nested deeper than %d", maxDepth)
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = &logic{and: false, l: l, r: r}
	}
	return l, nil
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		r, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		l = &logic{and: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) not(depth int) (node, error) {
	if p.keyword("NOT") {
		if depth > maxDepth {
			return nil, p.errf(p.peek(), "expression nested deeper than %d", maxDepth)
		}
		n, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return &negate{n}, nil
	}
	return p.predicate(depth)
}

func (p *parser) predicate(depth int) (node, error) {
	if p.peek().kind == tLParen {
		p.next()
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tRParen {
			return nil, p.errf(t, "expected ')', got %s", t)
		}
		return n, nil
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	switch {
	case t.kind == tOp:
		p.next()
		r, err := p.operand()
		if err != nil {
			return nil, err
		}
		return &compare{op: t.text, l: l, r: r}, nil
	case t.kind == tKeyword && t.text == "IS":
		p.next()
		neg := p.keyword("NOT")
		if !p.keyword("NULL") {
			return nil, p.errf(p.peek(), "expected NULL after IS, got %s", p.peek())
		}
		return &isNull{v: l, not: neg}, nil
	}
	neg := p.keyword("NOT")
	t = p.peek()
	if t.kind != tKeyword {
		if neg {
			return nil, p.errf(t, "expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT, got %s", t)
		}
		if isBoolOperand(l) {
			return &truth{v: l}, nil // a bare boolean: TRUE, FALSE or a property
		}
		return nil, p.errf(t, "expected a comparison, got %s", t)
	}
	switch t.text {
	case "BETWEEN":
		p.next()
		lo, err := p.operand()
		if err != nil {
			return nil, err
		}
		if !p.keyword("AND") {
			return nil, p.errf(p.peek(), "expected AND in BETWEEN, got %s", p.peek())
		}
		hi, err := p.operand()
		if err != nil {
			return nil, err
		}
		return &between{v: l, lo: lo, hi: hi, not: neg}, nil
	case "IN":
		p.next()
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
		return &in{v: l, set: set, not: neg}, nil
	case "CONTAINS", "STARTSWITH", "ENDSWITH":
		p.next()
		tk := p.next()
		if tk.kind != tString {
			return nil, p.errf(tk, "%s takes a string literal, got %s", t.text, tk)
		}
		return &strFunc{fn: t.text, v: l, arg: tk.text, not: neg}, nil
	}
	if neg {
		return nil, p.errf(t, "expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT, got %s", t)
	}
	if isBoolOperand(l) {
		return &truth{v: l}, nil
	}
	return nil, p.errf(t, "expected a comparison, got %s", t)
}

func isBoolOperand(o operand) bool {
	return o.kind == oIdent || (o.kind == oLit && o.lit.kind == vBool)
}

func (p *parser) operand() (operand, error) {
	t := p.next()
	switch t.kind {
	case tIdent:
		return operand{kind: oIdent, name: t.text}, nil
	case tString:
		return operand{kind: oLit, lit: value{kind: vStr, s: t.text}}, nil
	case tNumber:
		return operand{kind: oLit, lit: numberValue(t.text)}, nil
	case tKeyword:
		switch t.text {
		case "TRUE":
			return operand{kind: oLit, lit: value{kind: vBool, b: true}}, nil
		case "FALSE":
			return operand{kind: oLit, lit: value{kind: vBool, b: false}}, nil
		case "NULL":
			return operand{kind: oLit, lit: value{kind: vNull}}, nil
		}
	}
	return operand{}, p.errf(t, "expected a property, a literal or '(', got %s", t)
}
