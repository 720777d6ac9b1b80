package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Load reads and validates an ACL file (JSON, see ACL). A missing file is an error.
func Load(path string) (*ACL, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: load %s: %w", path, err)
	}
	// Unknown keys are refused, not ignored: a misspelt "users" or a restriction this
	// version does not know must not silently open access (QA R8K-6).
	var a ACL
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("auth: parse %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("auth: parse %s: data after the ACL object", path)
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return &a, nil
}

// Save validates a and writes it atomically (temp file, fsync, rename, fsync dir) with mode
// 0600, since the file holds secret keys.
func Save(path string, a *ACL) error {
	if err := a.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: encode: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".acl-*.tmp")
	if err != nil {
		return fmt.Errorf("auth: save %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("auth: save %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("auth: save %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("auth: save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: save %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("auth: save %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Store holds the current ACL and reloads it from its file when the file changes. Lookups are
// lock-free (an atomic pointer to an immutable index).
type Store struct {
	path   string
	logger *slog.Logger
	cur    atomic.Pointer[index]

	mu      sync.Mutex // guards modTime, size
	modTime time.Time
	size    int64
}

// NewStore loads path (which must exist and be valid) and returns the Store. An empty path
// yields a Store with no users (every authentication fails). A nil logger discards.
func NewStore(path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{path: path, logger: logger}
	if path == "" {
		s.cur.Store(newIndex(&ACL{}))
		return s, nil
	}
	if _, err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewStaticStore returns a Store serving a fixed ACL (tests, embedded use).
func NewStaticStore(a *ACL) (*Store, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	s := &Store{logger: slog.New(slog.DiscardHandler)}
	s.cur.Store(newIndex(a))
	return s, nil
}

// Lookup returns the current ACL's user by name; nil when unknown. The User must not be
// modified.
func (s *Store) Lookup(username string) *User { return s.lookup(username) }

func (s *Store) lookup(username string) *User {
	return s.cur.Load().users[username]
}

// reload re-reads the file when its mtime or size changed; it reports whether it swapped the
// ACL. A file that fails to load keeps the previous ACL in force.
func (s *Store) reload() (bool, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return false, fmt.Errorf("auth: stat %s: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Load() != nil && st.ModTime().Equal(s.modTime) && st.Size() == s.size {
		return false, nil
	}
	a, err := Load(s.path)
	if err != nil {
		return false, err
	}
	s.cur.Store(newIndex(a))
	s.modTime, s.size = st.ModTime(), st.Size()
	return true, nil
}

// Run polls the file every interval until ctx is done, reloading it on change.
func (s *Store) Run(ctx context.Context, interval time.Duration) {
	if s.path == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := s.reload()
			if err != nil {
				s.logger.Warn("acl reload failed; keeping previous policies", "path", s.path, "err", err)
			} else if changed {
				s.logger.Info("acl reloaded", "path", s.path)
			}
		}
	}
}
