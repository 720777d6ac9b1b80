package broker

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/rocketry-mq/rocketry/internal/store"
)

// persistConfigKeys writes props (broker.conf keys and their new values) into the properties
// file at path, atomically: a key already in the file has its logical line (with any
// continuation lines) replaced where it stands, the last one when the key repeats (the one
// that wins on load); keys not in the file are appended in name order. Comments, blank lines,
// other keys and their order are kept. Apache's Configuration.persist rewrites the whole
// -c file with every setting; editing in place keeps an operator's file readable and diffable.
func persistConfigKeys(path string, props map[string]string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("broker: persist config: %w", err)
	}
	out, err := rewriteProperties(old, props)
	if err != nil {
		return fmt.Errorf("broker: persist config %s: %w", path, err)
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := store.WriteFileAtomic(path, out, mode); err != nil {
		return fmt.Errorf("broker: persist config: %w", err)
	}
	return nil
}

// rewriteProperties returns src with the keys of props set to their values (see
// persistConfigKeys). Line endings of src are normalised to "\n".
func rewriteProperties(src []byte, props map[string]string) ([]byte, error) {
	lines, entries, err := scanProperties(src)
	if err != nil {
		return nil, err
	}
	lastOf := map[string]int{}
	for n, e := range entries {
		if _, ok := props[e.key]; ok {
			lastOf[e.key] = n
		}
	}
	replace := map[int]propertyEntry{} // first physical line -> entry to replace
	for _, n := range lastOf {
		replace[entries[n].first] = entries[n]
	}
	var b bytes.Buffer
	for i := 0; i < len(lines); i++ {
		if e, ok := replace[i]; ok {
			b.WriteString(formatProperty(e.key, props[e.key]))
			i = e.last
			continue
		}
		b.WriteString(lines[i])
		b.WriteByte('\n')
	}
	var missing []string
	for k := range props {
		if _, ok := lastOf[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if n := len(entries); len(missing) > 0 && n > 0 {
		// A file whose last entry ends in an open continuation (a trailing backslash at
		// EOF) would swallow the first appended line: close it with an empty line.
		e := entries[n-1]
		if _, replaced := replace[e.first]; !replaced && e.last == len(lines)-1 && continued(strings.TrimLeft(lines[e.last], " \t\f")) {
			b.WriteByte('\n')
		}
	}
	for _, k := range missing {
		b.WriteString(formatProperty(k, props[k]))
	}
	return b.Bytes(), nil
}

// formatProperty renders one "key=value\n" line, escaped so ReadProperties reads it back.
func formatProperty(k, v string) string {
	esc := func(s string, key bool) string {
		var b strings.Builder
		for i, r := range s {
			switch {
			case r == '\\':
				b.WriteString(`\\`)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\r':
				b.WriteString(`\r`)
			case r == '\t':
				b.WriteString(`\t`)
			case key && (r == '=' || r == ':' || r == ' '), !key && i == 0 && r == ' ':
				b.WriteByte('\\')
				b.WriteRune(r)
			default:
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	return esc(k, true) + "=" + esc(v, false) + "\n"
}
