// Package web serves sallyport's HTTP side on web.listen: health, Prometheus
// metrics, and the console and JSON API for auditors, owners and admins,
// signed in with OIDC. It is the only package that speaks HTTP status codes.
package web

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

// ErrDraining, returned by Health, makes /healthz answer 503 with
// {"status":"draining"}: the bastion is shutting down, so a load balancer
// should send new connections to another replica.
var ErrDraining = errors.New("draining: shutting down, new sessions go to another replica")

const (
	// readHeaderTimeout bounds how long a client may dribble request headers
	// (slowloris); the console's requests are small.
	readHeaderTimeout = 10 * time.Second
	// healthTimeout bounds the health check so a stuck registry shows as
	// unhealthy instead of hanging the load balancer's probe.
	healthTimeout = 3 * time.Second
	// oidcTimeout bounds discovery and the code exchange with the provider.
	oidcTimeout = 15 * time.Second
	// pageTimeout bounds the registry and index reads behind one page; a
	// recording download streams and is not bound by it.
	pageTimeout = 20 * time.Second
)

// Server is the HTTP server. Its zero value serves /healthz as always
// healthy, no metrics, a console that says sign-in is not configured, and
// refuses every API call with 401.
type Server struct {
	// Metrics serves /metrics. Nil: /metrics answers 404.
	Metrics http.Handler
	// SCIM serves /scim/v2/ (package scim) with its own bearer-token
	// check; the console's sign-in does not apply there. Nil: 404.
	SCIM http.Handler
	// Health reports whether the bastion can serve (registry reachable).
	// Nil: always healthy.
	Health func(ctx context.Context) error
	// Logger receives request errors. Nil: slog.Default().
	Logger *slog.Logger

	// OIDC is the provider people sign in with. Zero: nobody signs in.
	OIDC OIDCConfig
	// TLSCertFile and TLSKeyFile, both set, make Serve speak HTTPS.
	TLSCertFile, TLSKeyFile string
	// SessionKey signs the console's cookies (32 bytes or more). Nil: a
	// random key per process, so sign-ins end when serve restarts.
	SessionKey []byte
	// BearerToken maps an API bearer token to a person's e-mail. Nil:
	// bearer tokens are refused.
	BearerToken func(ctx context.Context, token string) (string, error)

	// Directory is the registry people sign in against and the console
	// shows. Nil: nobody signs in.
	Directory Directory
	// Sessions is the session index. Nil: no sessions are shown.
	Sessions SessionIndex
	// Recordings reads recordings. Nil: no replay, downloads or integrity.
	Recordings Recordings
	// Workflows completes reviews and decides campaign items. Nil: those
	// forms are refused.
	Workflows Workflows
	// Hygiene lists the registry's hygiene findings (OWASP NHI Top 10) for
	// the registry view. Nil: none are shown.
	Hygiene func(ctx context.Context) ([]iga.Finding, error)
	// Suggestions proposes tighter entitlements from recent use, shown on
	// the registry page to each identity's owner, auditors and admins.
	// Nil: no suggestions are shown.
	Suggestions Suggestions
	// Live taps the sessions this replica runs, for the live view
	// (recorder.Recorder). Nil: no live view.
	Live Watcher
	// LiveStore follows, in the shared store, the recording of a live
	// session another replica runs, for the live view of any replica
	// (recorder.StoreTail; live.go). Nil: the page says which replica's
	// console watches it.
	LiveStore RecordingWatcher
	// Replica names this serve process as the session index does; a live
	// session of another replica is watched through LiveStore, or without
	// it on that replica's console.
	// Empty: unknown, every live session is tried here.
	Replica string
	// AskFlush asks, through the registry, the replica that runs live
	// session id to flush its recording faster until until, while a
	// LiveStore view of it is open (sqlstore.Store.RequestWatch); asked
	// again every liveAskEvery. Nil: the view trails by the flush interval.
	AskFlush func(ctx context.Context, id string, until time.Time) error
	// Audit appends an event to the registry's audit trail (who watched
	// which session). Nil: live view is refused, as it could not be audited.
	Audit func(ctx context.Context, e iga.AuditEvent) error
	// Search searches what happened inside sessions (package search). Nil:
	// the sessions page has no search box.
	Search Searcher

	// HTTPClient talks to the OIDC provider. Nil: http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock. Nil: time.Now.
	Now func() time.Time

	mu      sync.Mutex
	srv     *http.Server
	keyOnce sync.Once
	key     []byte
	oidc    oidcProvider
	liveEnd chan struct{} // closed by Shutdown: live streams end (live.go)
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.Handle("GET /static/", staticHandler())
	if s.SCIM != nil {
		mux.Handle("/scim/v2/", s.SCIM)
	}
	mux.HandleFunc("GET /auth/signin", s.signInPage)
	mux.HandleFunc("GET /auth/login", s.login)
	mux.HandleFunc("GET /auth/callback", s.callback)
	mux.HandleFunc("POST /auth/logout", s.page(nil, s.logout))
	s.pageRoutes(mux)
	s.apiRoutes(mux)
	return securityHeaders(mux)
}

// Serve accepts connections on ln until Shutdown, over TLS when the
// certificate and key files are set.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	srv := s.srv
	s.mu.Unlock()
	if s.TLSCertFile != "" && s.TLSKeyFile != "" {
		err := srv.ServeTLS(ln, s.TLSCertFile, s.TLSKeyFile)
		if !errors.Is(err, ErrServerClosed) {
			err = fmt.Errorf("serve the console over TLS (web.tls_cert_file %s): %w", s.TLSCertFile, err)
		}
		return err
	}
	return srv.Serve(ln)
}

// Shutdown stops accepting and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.endLive()
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

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// codec signs cookies with SessionKey, or a random per-process key.
func (s *Server) codec() cookieCodec {
	s.keyOnce.Do(func() {
		s.key = s.SessionKey
		if len(s.key) == 0 {
			s.key = make([]byte, 32)
			rand.Read(s.key)
		}
	})
	return cookieCodec{key: s.key}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		err := s.Health(ctx)
		if errors.Is(err, ErrDraining) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining", "error": err.Error()})
			return
		}
		if err != nil {
			s.logger().Warn("health check failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An encode error means the client went away; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// contentSecurityPolicy allows only this origin's scripts and styles;
// 'wasm-unsafe-eval' lets the player compile its bundled terminal emulator
// (WebAssembly), nothing else is evaluated.
const contentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
	"img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}
