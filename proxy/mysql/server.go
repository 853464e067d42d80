// Package mysql is the bastion's MariaDB/MySQL proxy: the mysql and mariadb
// clients, go-sql-driver and any client of the 4.1 protocol connect with
// user = identity, database = target (or user IDENTITY@TARGET) and a token
// as password, sent with mysql_clear_password over TLS; the registry
// decides; the bastion logs in to the target as a user minted for this one
// session and relays the packets unchanged, recording every statement —
// COM_QUERY text, prepared statements with their bound parameters decoded,
// and each outcome — without decoding result rows. The wire codec is
// sallyport's own (handshake, auth switch, command and response framing);
// per-session users come from ca/mysql.
package mysql

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = proxy.ErrServerClosed

const (
	// defaultStartupTimeout bounds the login phase of a client (TLS,
	// handshake response, token): a client that never finishes it must not
	// hold a connection slot.
	defaultStartupTimeout = 10 * time.Second
	// defaultMaxMessage bounds one logical packet from the client and the
	// server packets the audit reads whole. The server's max_allowed_packet
	// is 16 MB by default; large BLOB parameters are the biggest real ones.
	defaultMaxMessage = 64 << 20
	// setupTimeout bounds admission, user creation and the upstream login.
	setupTimeout = 15 * time.Second
	// teardownTimeout bounds dropping the user and sealing the recording
	// after a session.
	teardownTimeout = 15 * time.Second
)

// Recorder opens session recordings; *recorder.Recorder has it.
type Recorder interface {
	Open(ctx context.Context, meta recorder.SessionMeta) (*recorder.Session, error)
}

// Server is the MySQL listener of the bastion.
type Server struct {
	// Gate authenticates tokens and decides admission. Nil: every login is
	// refused.
	Gate proxy.Gate
	// Live is the table of live sessions (kill switch, re-admission). Nil:
	// the server keeps a table of its own that nothing outside can kill.
	Live *proxy.Live
	// Targets returns the mysql target a client names as its database.
	// Nil: every target is unknown and every login refused.
	Targets func(name string) (*Target, bool)
	// Recorder records each session. Nil: every login is refused
	// recording_unavailable.
	Recorder Recorder
	// TLSConfig serves SSLRequest. Nil: TLS is not offered, and unless
	// AllowPlaintext is set every login is refused.
	TLSConfig *tls.Config
	// AllowPlaintext accepts tokens over unencrypted connections
	// (mysql.require_tls: false). Zero: tokens only over TLS.
	AllowPlaintext bool
	// MaxSession ends sessions after this long (MySQL users have no VALID
	// UNTIL: the bastion enforces the lifetime). Zero: no limit.
	MaxSession time.Duration
	// StartupTimeout bounds a client's login phase. Zero: 10s.
	StartupTimeout time.Duration
	// MaxMessageSize bounds one client packet (and the server packets the
	// audit reads whole). Zero: 64 MiB.
	MaxMessageSize int
	// Dial connects to targets. Nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now returns the current time. Nil: time.Now.
	Now func() time.Time
	// Logger receives session starts, ends and failures. Nil: slog.Default().
	Logger *slog.Logger
	// ProxyProtocol makes trusted load balancers' PROXY headers name the
	// clients (mysql.proxy_protocol). Nil: no header is read, and the peer's
	// address is the client's.
	ProxyProtocol *proxy.ProxyProtocol

	nextID atomic.Uint32
	byID   sync.Map // connection id the client was given -> *session

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
// until ctx is done; then it ends them, and waits for their users to be
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
