// Package ssh is sallyport's SSH bastion. Clients (ssh, scp, sftp, ssh -L)
// log in as IDENTITY@TARGET with a registered key or a token; every channel
// they open is admitted by the registry for its action (shell, exec, sftp,
// forward), and an admitted session is relayed to an unmodified OpenSSH
// target with a certificate minted for that session alone, while the
// recorder keeps the terminal, commands, sftp operations and forwards.
//
// gliderlabs/ssh faces the clients; golang.org/x/crypto/ssh dials targets.
// Used by `sallyport serve` (cmd/sallyport/serve_ssh.go).
package ssh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("ssh proxy: server closed")

// Recorder is what the proxy needs of recorder.Recorder.
type Recorder interface {
	Open(ctx context.Context, meta recorder.SessionMeta) (*recorder.Session, error)
}

// Target is an SSH target as the operator configured it.
type Target struct {
	// Name is the name clients log in to (IDENTITY@NAME).
	Name string
	// Address is host:port of the target's sshd.
	Address string
	// HostKeys are the host keys accepted from the target. Empty: only a
	// host certificate signed by HostCA is accepted.
	HostKeys []gossh.PublicKey
	// HostCA signs the target's host certificates. Nil: only HostKeys.
	// With neither, every session to the target is refused: no trust on
	// first use.
	HostCA gossh.PublicKey
}

// Server is the SSH proxy. Set the fields, then call Serve.
type Server struct {
	// Gate authenticates clients and admits their channels. Nil: every
	// login is refused.
	Gate proxy.Gate
	// Live is the table of live sessions, for kills and re-admission. Nil:
	// a table private to this server, which nobody watches.
	Live *proxy.Live
	// Recorder records sessions. Nil: every session is refused with
	// recording_unavailable.
	Recorder Recorder
	// CA mints the per-session certificates the targets trust. Nil: every
	// session is refused, as no target would let it in.
	CA *ca.SSHUserCA
	// HostSigners are the bastion's own host keys. Required.
	HostSigners []gossh.Signer
	// Targets looks up an SSH target by name. Nil: every target is unknown.
	Targets func(name string) (Target, bool)
	// IdleTimeout ends a session with no data in either direction for this
	// long. Zero: never.
	IdleTimeout time.Duration
	// MaxSession ends a session this long after it started. Zero: never.
	MaxSession time.Duration
	// FirstChannelTimeout closes a logged-in connection that has opened no
	// channel this long after login (an identity entitled to forward is
	// exempt: `ssh -N -L` waits for local clients), and one whose login the
	// registry refused, once its client had this long to read why. Zero:
	// DefaultFirstChannelTimeout.
	FirstChannelTimeout time.Duration
	// Dial connects to targets. Nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger receives session and failure lines. Nil: slog.Default().
	Logger *slog.Logger
	// ProxyProtocol makes trusted load balancers' PROXY headers name the
	// clients (ssh.proxy_protocol). Nil: no header is read, and the peer's
	// address is the client's.
	ProxyProtocol *proxy.ProxyProtocol

	mu       sync.Mutex
	gl       *gliderssh.Server
	closed   bool
	liveOnce sync.Once
	ownLive  *proxy.Live
}

const (
	// handshakeTimeout bounds key exchange and authentication: a client
	// that never finishes logging in must not hold a connection.
	handshakeTimeout = 30 * time.Second
	// authTimeout bounds one credential check (an OIDC token may need the
	// issuer's keys fetched).
	authTimeout = 10 * time.Second
	// decideTimeout bounds one admission decision.
	decideTimeout = 10 * time.Second
	// upstreamDialTimeout bounds connecting and logging in to a target.
	upstreamDialTimeout = 10 * time.Second
	// recordingCloseTimeout bounds sealing a recording at session end.
	recordingCloseTimeout = 10 * time.Second
	// drainTimeout bounds the wait for a session's channels to finish
	// after it was ended, before its recording is sealed.
	drainTimeout = 2 * time.Second
	// noticeTimeout bounds writing the "session ended" line to a client
	// that may have stopped reading.
	noticeTimeout = 200 * time.Millisecond
	// leaveGrace is how long a client whose session was ended may take to
	// disconnect by itself; kills must take effect within 1s in all.
	leaveGrace = 500 * time.Millisecond
)

// DefaultFirstChannelTimeout is FirstChannelTimeout's default: OpenSSH
// opens its session channel within milliseconds of logging in.
const DefaultFirstChannelTimeout = 10 * time.Second

// serverVersion is the banner clients see.
const serverVersion = "sallyport"

// Serve accepts SSH clients on ln until ctx ends or Shutdown is called;
// it then returns ErrServerClosed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if len(s.HostSigners) == 0 {
		return errors.New("serve ssh: no host key")
	}
	gl := s.glider()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.gl = gl
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = gl.Close() })
	defer stop()
	err := gl.Serve(proxy.Listen(ln, s.ProxyProtocol, s.logger())) // headers are read in onConnect
	if errors.Is(err, gliderssh.ErrServerClosed) || ctx.Err() != nil {
		return ErrServerClosed
	}
	return fmt.Errorf("serve ssh on %s: %w", ln.Addr(), err)
}

// Shutdown stops accepting connections and waits for live sessions to end
// until ctx is done; then it closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	gl := s.gl
	s.mu.Unlock()
	if gl == nil {
		return nil
	}
	if err := gl.Shutdown(ctx); err != nil {
		_ = gl.Close()
		return fmt.Errorf("shut down ssh proxy: %w", err)
	}
	// A connection closes before its session's recording is sealed: wait
	// for the seal, or the recorder may stop with the recording unsealed.
	if err := s.waitSessionsSealed(ctx); err != nil {
		return fmt.Errorf("shut down ssh proxy: %w", err)
	}
	return nil
}

// sealPoll is how often Shutdown looks whether the last sessions' recordings are sealed.
const sealPoll = 20 * time.Millisecond

// waitSessionsSealed waits until the live table holds no SSH session, or
// ctx ends.
func (s *Server) waitSessionsSealed(ctx context.Context) error {
	t := time.NewTicker(sealPoll)
	defer t.Stop()
	for {
		n := 0
		for _, sess := range s.live().Snapshot() {
			if sess.Protocol == "ssh" {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d sessions still sealing their recordings: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// glider builds the client-facing server. Authentication is set through
// ServerConfigCallback so that refusals can carry a banner; gliderlabs'
// own bool handlers stay nil, and NoClientAuthCallback refuses the "none"
// method that gliderlabs then enables.
func (s *Server) glider() *gliderssh.Server {
	gl := &gliderssh.Server{
		Version:              serverVersion,
		ServerConfigCallback: s.serverConfig,
		ConnCallback:         s.onConnect,
		ChannelHandlers: map[string]gliderssh.ChannelHandler{
			"session":      s.handleSessionChannel,
			"direct-tcpip": s.handleForwardChannel,
			"default":      s.onOtherChannel,
		},
		// Remote forwarding (tcpip-forward) and everything else global is
		// answered "no", and audited (refusals.go).
		RequestHandlers: map[string]gliderssh.RequestHandler{"default": s.onGlobalRequest},
	}
	for _, hs := range s.HostSigners {
		gl.AddHostKey(hs)
	}
	return gl
}

func (s *Server) live() *proxy.Live {
	if s.Live != nil {
		return s.Live
	}
	s.liveOnce.Do(func() { s.ownLive = &proxy.Live{Logger: s.Logger} })
	return s.ownLive
}

func (s *Server) firstChannelTimeout() time.Duration {
	if s.FirstChannelTimeout > 0 {
		return s.FirstChannelTimeout
	}
	return DefaultFirstChannelTimeout
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

func (s *Server) dial(ctx context.Context, addr string) (net.Conn, error) {
	if s.Dial != nil {
		return s.Dial(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
