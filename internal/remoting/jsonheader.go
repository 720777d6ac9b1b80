package remoting

import (
	"unicode/utf16"
	"unicode/utf8"
)

// decodeJSONHeaderFast parses the common shape of a remoting JSON header without
// reflection: one object whose keys are exactly code, language, version, opaque, flag,
// remark, extFields (string values) or other keys with scalar values, strings (every JSON
// escape, including \uXXXX and surrogate pairs), integer numbers. Anything else (or anything it is not sure
// to decode exactly as encoding/json would) returns ok=false and the caller falls back to
// encoding/json, so both paths always agree; FuzzDecodeJSONHeader checks that.
func decodeJSONHeaderFast(b []byte) (c *Command, ok bool) {
	p := jsonParser{b: b}
	p.ws()
	if !p.eat('{') {
		return nil, false
	}
	c = &Command{}
	seen := 0
	p.ws()
	if p.eat('}') {
		return c, p.end()
	}
	for {
		p.ws()
		key, kok := p.str()
		if !kok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		var bit int
		switch key {
		case "code":
			bit = 1
			n, nok := p.int32()
			if !nok {
				return nil, false
			}
			c.Code = n
		case "language":
			bit = 2
			switch p.peek() {
			case '"':
				s, sok := p.str()
				if !sok {
					return nil, false
				}
				c.Language = s
			case 'n':
				if !p.lit("null") {
					return nil, false
				}
			default:
				n, nok := p.int32()
				if !nok || n < 0 || n > 255 {
					return nil, false
				}
				c.Language = LanguageName(byte(n))
			}
		case "version":
			bit = 4
			n, nok := p.int32()
			if !nok {
				return nil, false
			}
			c.Version = n
		case "opaque":
			bit = 8
			n, nok := p.int32()
			if !nok {
				return nil, false
			}
			c.Opaque = n
		case "flag":
			bit = 16
			n, nok := p.int32()
			if !nok {
				return nil, false
			}
			c.Flag = n
		case "remark":
			bit = 32
			if p.peek() == 'n' {
				if !p.lit("null") {
					return nil, false
				}
			} else {
				s, sok := p.str()
				if !sok {
					return nil, false
				}
				c.Remark = s
			}
		case "extFields":
			bit = 64
			if p.peek() == 'n' {
				if !p.lit("null") {
					return nil, false
				}
				break
			}
			if !p.eat('{') {
				return nil, false
			}
			p.ws()
			if !p.eat('}') {
				c.ExtFields = make(map[string]string, 8)
				for {
					p.ws()
					k, kok := p.str()
					if !kok {
						return nil, false
					}
					p.ws()
					if !p.eat(':') {
						return nil, false
					}
					p.ws()
					v, vok := p.str()
					if !vok {
						return nil, false
					}
					c.ExtFields[k] = v
					p.ws()
					if p.eat('}') {
						break
					}
					if !p.eat(',') {
						return nil, false
					}
				}
			}
		default:
			if !isPlainUnknownKey(key) {
				return nil, false // may match a field case-insensitively: let encoding/json decide
			}
			if !p.skipScalar() {
				return nil, false
			}
		}
		if seen&bit != 0 {
			return nil, false // duplicate key: encoding/json semantics differ per type
		}
		seen |= bit
		p.ws()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return nil, false
		}
	}
	if len(c.ExtFields) == 0 {
		c.ExtFields = nil
	}
	return c, p.end()
}

// isPlainUnknownKey reports whether key cannot match any header field under
// encoding/json's case-insensitive matching.
func isPlainUnknownKey(key string) bool {
	for _, f := range [...]string{"code", "language", "version", "opaque", "flag", "remark", "extFields"} {
		if len(key) == len(f) && equalFoldASCII(key, f) {
			return false
		}
	}
	// Non-ASCII letters can fold to ASCII ones (e.g. the Kelvin sign); be conservative.
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *jsonParser) eat(ch byte) bool {
	if p.i < len(p.b) && p.b[p.i] == ch {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

func (p *jsonParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// str parses a string holding valid UTF-8 (invalid UTF-8 falls back: encoding/json
// replaces it) and any JSON escape.
func (p *jsonParser) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		ch := p.b[p.i]
		switch {
		case ch == '"':
			raw := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			return string(raw), true
		case ch == '\\':
			return p.strEscaped(start)
		case ch < 0x20:
			return "", false
		case ch >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return "", false
}

func (p *jsonParser) strEscaped(start int) (string, bool) {
	out := make([]byte, 0, p.i-start+16)
	out = append(out, p.b[start:p.i]...)
	for p.i < len(p.b) {
		ch := p.b[p.i]
		switch {
		case ch == '"':
			p.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case ch == '\\':
			if p.i+1 >= len(p.b) {
				return "", false
			}
			var r byte
			switch p.b[p.i+1] {
			case '"', '\\', '/':
				r = p.b[p.i+1]
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'u':
				rr := hex4(p.b[p.i:])
				if rr < 0 {
					return "", false
				}
				p.i += 6
				if utf16.IsSurrogate(rr) {
					// encoding/json: a valid pair decodes to one rune and consumes both
					// escapes; anything else yields U+FFFD and leaves what follows alone.
					if dec := utf16.DecodeRune(rr, hex4(p.b[p.i:])); dec != utf8.RuneError {
						p.i += 6
						rr = dec
					} else {
						rr = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, rr)
				continue
			default:
				return "", false
			}
			out = append(out, r)
			p.i += 2
			continue
		case ch < 0x20:
			return "", false
		}
		out = append(out, ch)
		p.i++
	}
	return "", false
}

// hex4 decodes the escape \uXXXX at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// int32 parses a JSON integer (no fraction or exponent) that fits in int32.
func (p *jsonParser) int32() (int32, bool) {
	neg := p.eat('-')
	start := p.i
	var n int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		if n > 1<<31 {
			return 0, false
		}
		p.i++
	}
	digits := p.i - start
	if digits == 0 || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	if n > 1<<31-1 || n < -(1<<31) {
		return 0, false
	}
	return int32(n), true
}

// skipScalar skips a string, integer, true, false or null.
func (p *jsonParser) skipScalar() bool {
	switch ch := p.peek(); {
	case ch == '"':
		_, ok := p.str()
		return ok
	case ch == 't':
		return p.lit("true")
	case ch == 'f':
		return p.lit("false")
	case ch == 'n':
		return p.lit("null")
	case ch == '-' || (ch >= '0' && ch <= '9'):
		_, ok := p.int32()
		return ok
	}
	return false
}
