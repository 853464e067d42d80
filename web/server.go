// Package web serves sallyport's HTTP side on web.listen: health, Prometheus
// metrics, and the JSON API and console for auditors, owners and reviewers.
// It is the only package that speaks HTTP status codes.
package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

const (
	// readHeaderTimeout bounds how long a client may dribble request headers
	// (slowloris); the console's requests are small.
	readHeaderTimeout = 10 * time.Second
	// healthTimeout bounds the health check so a stuck registry shows as
	// unhealthy instead of hanging the load balancer's probe.
	healthTimeout = 3 * time.Second
)

// Server is the HTTP server. Its zero value serves /healthz as always
// healthy, no metrics, and refuses every API call with 401.
type Server struct {
	// Metrics serves /metrics. Nil: /metrics answers 404.
	Metrics http.Handler
	// Health reports whether the bastion can serve (registry reachable).
	// Nil: always healthy.
	Health func(ctx context.Context) error
	// Logger receives request errors. Nil: slog.Default().
	Logger *slog.Logger

	mu  sync.Mutex
	srv *http.Server
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("/api/v1/", s.unauthenticated)
	return securityHeaders(mux)
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
	}
	srv := s.srv
	s.mu.Unlock()
	return srv.Serve(ln)
}

// Shutdown stops accepting and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if err := s.Health(ctx); err != nil {
			s.logger().Warn("health check failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// unauthenticated refuses API calls until sign-in exists; anonymous callers
// never reach the registry or recordings.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="sallyport"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "authentication required: sign in to the console or send an API token"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An encode error means the client went away; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
