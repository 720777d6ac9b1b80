package metrics

import (
	"errors"
	"sort"
	"sync"
	"sync/atomic"
)

// Health is the set of readiness checks behind /healthz. The process is ready only when at
// least one check is registered and every check passes.
type Health struct {
	mu     sync.Mutex
	checks map[string]func() error
}

// NewHealth returns an empty set of checks (not ready until one is added and passes).
func NewHealth() *Health { return &Health{checks: make(map[string]func() error)} }

// Add registers (or replaces) the named check. f must be fast and must not block: it runs on
// every /healthz request. A nil error means ready.
func (h *Health) Add(name string, f func() error) {
	h.mu.Lock()
	h.checks[name] = f
	h.mu.Unlock()
}

// Remove unregisters the named check.
func (h *Health) Remove(name string) {
	h.mu.Lock()
	delete(h.checks, name)
	h.mu.Unlock()
}

// ErrNotReady is the error of a Flag that has not been set.
var ErrNotReady = errors.New("not ready")

// errNoChecks is reported when nothing is registered.
var errNoChecks = errors.New("no readiness checks registered")

// Flag registers a check backed by an atomic flag, initially not ready, and returns the
// flag. Components call Set once they serve and Clear when they start shutting down.
func (h *Health) Flag(name string) *Flag {
	f := &Flag{}
	h.Add(name, f.check)
	return f
}

// Flag is a readiness flag; the zero value is not ready.
type Flag struct{ ready atomic.Bool }

// Set marks the component ready.
func (f *Flag) Set() { f.ready.Store(true) }

// Clear marks the component not ready (shutting down).
func (f *Flag) Clear() { f.ready.Store(false) }

// Ready reports the flag.
func (f *Flag) Ready() bool { return f.ready.Load() }

func (f *Flag) check() error {
	if f.ready.Load() {
		return nil
	}
	return ErrNotReady
}

// CheckResult is one check's outcome; Error is "" when it passed.
type CheckResult struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

// Check runs every check (in name order) and reports whether all passed.
func (h *Health) Check() (ready bool, results []CheckResult) {
	h.mu.Lock()
	names := make([]string, 0, len(h.checks))
	fs := make(map[string]func() error, len(h.checks))
	for n, f := range h.checks {
		names = append(names, n)
		fs[n] = f
	}
	h.mu.Unlock()
	if len(names) == 0 {
		return false, []CheckResult{{Name: "health", Error: errNoChecks.Error()}}
	}
	sort.Strings(names)
	ready = true
	for _, n := range names {
		r := CheckResult{Name: n, Ready: true}
		if err := fs[n](); err != nil {
			r.Ready, r.Error = false, err.Error()
			ready = false
		}
		results = append(results, r)
	}
	return ready, results
}
