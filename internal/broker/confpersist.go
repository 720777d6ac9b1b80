package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	out := rewriteProperties(old, props)
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("broker: persist config: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return fmt.Errorf("broker: persist config: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("broker: persist config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("broker: persist config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("broker: persist config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("broker: persist config: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// rewriteProperties returns src with the keys of props set to their values (see
// persistConfigKeys). Line endings of src are normalised to "\n".
func rewriteProperties(src []byte, props map[string]string) []byte {
	type logical struct {
		first, last int // physical line range
		key         string
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	var entries []logical
	for i := 0; i < len(lines); i++ {
		l := strings.TrimLeft(lines[i], " \t\f")
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		first := i
		var full strings.Builder
		for continued(l) && i+1 < len(lines) {
			full.WriteString(l[:len(l)-1])
			i++
			l = strings.TrimLeft(lines[i], " \t\f")
		}
		full.WriteString(l)
		k, _ := splitProperty(full.String())
		entries = append(entries, logical{first, i, unescapeProperty(k)})
	}
	lastOf := map[string]int{}
	for n, e := range entries {
		if _, ok := props[e.key]; ok {
			lastOf[e.key] = n
		}
	}
	replace := map[int]logical{} // first physical line -> entry to replace
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
	for _, k := range missing {
		b.WriteString(formatProperty(k, props[k]))
	}
	return b.Bytes()
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
