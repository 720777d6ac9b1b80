package admin

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// decodeJSON decodes b into v, accepting fastjson's non-standard map keys (bare numbers and
// JSON objects) by rewriting them as JSON strings first. Object keys become the compact
// string of the object; use parseQueueKey to read them back.
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err == nil {
		return nil
	}
	fixed, err := normalizeJSON(b)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(fixed, v); err != nil {
		return fmt.Errorf("admin: decode %T: %w", v, err)
	}
	return nil
}

// normalizeJSON rewrites object keys that are numbers or objects into strings. It only
// tokenizes enough to know where keys are; json.Unmarshal validates the rest.
func normalizeJSON(b []byte) ([]byte, error) {
	out := make([]byte, 0, len(b)+32)
	// stack of container kinds: '{' or '['; expectKey is true right after '{' or ',' in an object.
	var stack []byte
	expectKey := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			out = append(out, c)
			continue
		case c == '"':
			j, err := skipString(b, i)
			if err != nil {
				return nil, err
			}
			out = append(out, b[i:j]...)
			i = j - 1
			expectKey = false
			continue
		}
		if expectKey && c != '}' {
			expectKey = false
			var j int
			switch {
			case c == '{' || c == '[':
				end, err := skipValue(b, i)
				if err != nil {
					return nil, err
				}
				j = end
			case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n':
				j = i
				for j < len(b) && b[j] != ':' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
					j++
				}
			default:
				return nil, fmt.Errorf("admin: bad JSON key at %d", i)
			}
			key, err := compact(b[i:j])
			if err != nil {
				return nil, err
			}
			out = strconv.AppendQuote(out, string(key))
			i = j - 1
			continue
		}
		switch c {
		case '{':
			stack = append(stack, '{')
			expectKey = true
		case '[':
			stack = append(stack, '[')
		case '}', ']':
			if len(stack) == 0 {
				return nil, fmt.Errorf("admin: unbalanced JSON at %d", i)
			}
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1] == '{'
		}
		out = append(out, c)
	}
	return out, nil
}

// compact removes insignificant whitespace from a JSON fragment (keys only).
func compact(b []byte) ([]byte, error) {
	if b[0] != '{' && b[0] != '[' {
		return b, nil
	}
	norm, err := normalizeJSON(b)
	if err != nil {
		return nil, err
	}
	var out []byte
	for i := 0; i < len(norm); i++ {
		c := norm[i]
		if c == '"' {
			j, err := skipString(norm, i)
			if err != nil {
				return nil, err
			}
			out = append(out, norm[i:j]...)
			i = j - 1
			continue
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("admin: unterminated JSON string at %d", i)
}

// skipValue returns the index just past the object or array starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			k, err := skipString(b, j)
			if err != nil {
				return 0, err
			}
			j = k - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("admin: unterminated JSON value at %d", i)
}

// queueKey is a MessageQueue used as a map key ({"brokerName":..,"queueId":..,"topic":..}).
type queueKey struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

// parseQueueKey parses a map key holding a MessageQueue: its JSON object form, or
// "topic@brokerName@queueId" as some servers print it.
func parseQueueKey(k string) (queueKey, error) {
	var q queueKey
	if len(k) > 0 && k[0] == '{' {
		if err := json.Unmarshal([]byte(k), &q); err != nil {
			return q, fmt.Errorf("admin: bad queue key %q: %w", k, err)
		}
		return q, nil
	}
	// MessageQueue.toString(): MessageQueue [topic=T, brokerName=b, queueId=0]
	var a, c int
	for i := 0; i < len(k); i++ {
		if k[i] == '@' {
			if a == 0 {
				a = i
			} else {
				c = i
			}
		}
	}
	if a > 0 && c > a {
		id, err := strconv.Atoi(k[c+1:])
		if err == nil {
			return queueKey{Topic: k[:a], BrokerName: k[a+1 : c], QueueID: int32(id)}, nil
		}
	}
	return q, fmt.Errorf("admin: bad queue key %q", k)
}
