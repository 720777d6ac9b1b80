package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewMux returns a mux serving:
//   - GET /healthz: 200 {"status":"ok","checks":[...]} when every check of health passes,
//     503 {"status":"unavailable",...} otherwise;
//   - GET /metrics: the registry in Prometheus text (or OpenMetrics when negotiated);
//   - /debug/pprof/...: the runtime profiles of net/http/pprof.
//
// Callers may add more routes (the console) to the returned mux.
func NewMux(reg *Registry, health *Health) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", HealthHandler(health))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg.Gatherer(), promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
	}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// HealthHandler serves the readiness checks as JSON (see NewMux).
func HealthHandler(h *Health) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ready, results := h.Check()
		body := struct {
			Status string        `json:"status"`
			Checks []CheckResult `json:"checks"`
		}{Status: "ok", Checks: results}
		code := http.StatusOK
		if !ready {
			body.Status, code = "unavailable", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
}

// Serve serves h on ln until ctx is cancelled, then shuts down gracefully (in-flight
// requests get up to 5 s; long pprof profiles are cut). It returns nil after a shutdown
// caused by ctx, or the error that stopped the server. ln is closed on return.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
