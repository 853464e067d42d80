// Package postgres is the bastion's PostgreSQL proxy: psql, pgx, pgbench and
// any libpq-style client connect with user = identity, dbname = target and a
// token as password; the registry decides; the bastion logs in to the target
// as a role minted for this one session and relays the wire protocol,
// recording every statement — simple or extended, with bound parameters and
// outcome — without decoding result rows. The codec is pgx's pgproto3 and
// targets are described by pgconn configs; the upstream SCRAM login is done
// here, unbuffered, so the relay owns every byte after it (see login.go).
// Per-session roles come from ca/postgres.
package postgres

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = proxy.ErrServerClosed

const (
	// defaultStartupTimeout bounds the startup phase of a client (TLS,
	// startup message, password): a client that never finishes it must not
	// hold a connection slot.
	defaultStartupTimeout = 10 * time.Second
	// defaultMaxMessage bounds one protocol message in either direction.
	// PostgreSQL's own limit is 1 GB; large bytea binds are the biggest
	// messages real clients send.
	defaultMaxMessage = 64 << 20
	// defaultRoleValidity is the per-session role's VALID UNTIL when no
	// MaxSession is set. PostgreSQL checks it only when logging in, which
	// the bastion does right after minting the role.
	defaultRoleValidity = time.Minute
	// setupTimeout bounds admission, role creation and the upstream login.
	setupTimeout = 15 * time.Second
	// teardownTimeout bounds dropping the role and sealing the recording
	// after a session.
	teardownTimeout = 15 * time.Second
)

// Recorder opens session recordings; *recorder.Recorder has it.
type Recorder interface {
	Open(ctx context.Context, meta recorder.SessionMeta) (*recorder.Session, error)
}

// Server is the PostgreSQL listener of the bastion.
type Server struct {
	// Gate authenticates tokens and decides admission. Nil: every login is
	// refused.
	Gate proxy.Gate
	// Live is the table of live sessions (kill switch, re-admission). Nil:
	// the server keeps a table of its own that nothing outside can kill.
	Live *proxy.Live
	// Targets returns the postgres target a client names as its database.
	// Nil: every target is unknown and every login refused.
	Targets func(name string) (*Target, bool)
	// Recorder records each session. Nil: every login is refused
	// recording_unavailable.
	Recorder Recorder
	// TLSConfig serves SSLRequest. Nil: SSLRequest is answered 'N', and
	// unless AllowPlaintext is set every login is refused.
	TLSConfig *tls.Config
	// AllowPlaintext accepts tokens over unencrypted connections
	// (postgres.require_tls: false). Zero: tokens only over TLS.
	AllowPlaintext bool
	// MaxSession ends sessions after this long and bounds the role's VALID
	// UNTIL. Zero: no limit (the role is valid for logging in for a minute).
	MaxSession time.Duration
	// StartupTimeout bounds a client's startup phase. Zero: 10s.
	StartupTimeout time.Duration
	// MaxMessageSize bounds one protocol message either way that the
	// audit must hold (not rows, COPY data or a simple Query, which pass
	// whatever their size). Zero: 64 MiB.
	MaxMessageSize int
	// Dial connects to targets. Nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now returns the current time. Nil: time.Now.
	Now func() time.Time
	// Logger receives session starts, ends and failures. Nil: slog.Default().
	Logger *slog.Logger
	// ProxyProtocol makes trusted load balancers' PROXY headers name the
	// clients (postgres.proxy_protocol). Nil: no header is read, and the peer's
	// address is the client's.
	ProxyProtocol *proxy.ProxyProtocol

	keys cancelKeys

	acceptor proxy.Acceptor
	mu       sync.Mutex
	live     *proxy.Live
}

// Serve accepts clients on ln until Shutdown or ctx ends. It returns
// ErrServerClosed after Shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.acceptor.Serve(ctx, proxy.Listen(ln, s.ProxyProtocol, s.logger()), s.handle)
}

// Shutdown stops accepting clients and waits for live sessions to end
// until ctx is done; then it ends them, and waits for their roles to be
// dropped and recordings sealed.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.acceptor.Shutdown(ctx, teardownTimeout)
}

func (s *Server) liveTable() *proxy.Live {
	if s.Live != nil {
		return s.Live
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = &proxy.Live{}
	}
	return s.live
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) startupTimeout() time.Duration {
	if s.StartupTimeout > 0 {
		return s.StartupTimeout
	}
	return defaultStartupTimeout
}

func (s *Server) maxMessage() int {
	if s.MaxMessageSize > 0 {
		return s.MaxMessageSize
	}
	return defaultMaxMessage
}

func (s *Server) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.Dial != nil {
		return s.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
