// Package logging builds the *slog.Logger every daemon receives. Nothing else in Rocketry
// creates loggers; components derive theirs with With("component", ...).
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Config selects the log format and level.
type Config struct {
	Format string // "text" (default) or "json"
	Level  string // "debug", "info" (default), "warn", "error"
}

// New returns a logger writing to w.
func New(w io.Writer, cfg Config) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(cfg.Level) {
	case "", "info":
		lvl = slog.LevelInfo
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("logging: unknown level %q (want debug|info|warn|error)", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(cfg.Format) {
	case "", "text":
		return slog.New(&componentHandler{inner: slog.NewTextHandler(w, opts)}), nil
	case "json":
		return slog.New(&componentHandler{inner: slog.NewJSONHandler(w, opts)}), nil
	default:
		return nil, fmt.Errorf("logging: unknown format %q (want text|json)", cfg.Format)
	}
}

// componentKey is the attribute every component sets on its logger (With(componentKey, x)).
const componentKey = "component"

// componentHandler keeps one component attribute per record. A logger derived with
// With("component", "store") from one that has a component already (the broker's) names both,
// "broker/store", where slog would write the key twice (JSON readers keep only one of them,
// QA R10X-13); a record's own component attribute joins the chain the same way. The
// attribute is written last.
type componentHandler struct {
	inner slog.Handler
	comp  string
}

func joinComponent(a, b string) string {
	if a == "" || a == b {
		return b
	}
	return a + "/" + b
}

func (h *componentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *componentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	comp := h.comp
	rest := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if a.Key == componentKey {
			comp = joinComponent(comp, a.Value.String())
			continue
		}
		rest = append(rest, a)
	}
	inner := h.inner
	if len(rest) > 0 {
		inner = inner.WithAttrs(rest)
	}
	return &componentHandler{inner: inner, comp: comp}
}

func (h *componentHandler) WithGroup(name string) slog.Handler {
	return &componentHandler{inner: h.inner.WithGroup(name), comp: h.comp}
}

func (h *componentHandler) Handle(ctx context.Context, r slog.Record) error {
	comp := h.comp
	own := false
	r.Attrs(func(a slog.Attr) bool {
		own = own || a.Key == componentKey
		return !own
	})
	if own {
		nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == componentKey {
				comp = joinComponent(comp, a.Value.String())
			} else {
				nr.AddAttrs(a)
			}
			return true
		})
		r = nr
	}
	if comp != "" {
		r.AddAttrs(slog.String(componentKey, comp))
	}
	return h.inner.Handle(ctx, r)
}

// Discard returns a logger that drops everything (tests).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
