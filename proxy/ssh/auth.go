package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// maxLoginLen bounds the login a client may send; longer ones are refused
// before anything is looked up.
const maxLoginLen = 256

// credential extension keys in gossh.Permissions: which credential the
// successful method proved.
const (
	permKey   = "sallyport-key"   // fingerprint of the public key
	permToken = "sallyport-token" // "1": the token stored in connState
)

// ctxKeyState finds a connection's connState in its gliderlabs context.
type ctxKeyState struct{}

// connState is what the authentication callbacks learn about a connection.
type connState struct {
	netConn  net.Conn
	relay    *relayConn // netConn as x/crypto uses it
	source   netip.Addr
	authed   atomic.Bool
	mu       sync.Mutex
	identity string
	target   string
	keys     map[string]gossh.PublicKey // by fingerprint, keys that passed
	token    string
	banners  map[string]bool // lines already shown, so each shows once
	conn     *conn           // set once the first channel arrives
	channels bool            // a channel was opened
	// refusal is the line of a login the registry refused for every
	// action: each channel the client opens is refused with it.
	refusal string
	// entitled are the actions the login decision admitted.
	entitled []iga.Action
	// session is the id of the connection's session, minted at login so
	// that the login's and every channel's decision name it; the session
	// begun with the first admitted channel takes it.
	session string
	// failure is the last credential refusal, audited when the connection
	// closes without a login; failedKeys counts the keys refused.
	failure    *iga.Refusal
	failedKeys int
	// lines are refusals of requests that have no stderr (global ones),
	// for the next session channel; notes are refusals waiting for the
	// session's recording to open.
	lines []string
	notes []recorder.Event
}

// onConnect reads the PROXY header (in the connection's goroutine),
// remembers the client's address and starts the handshake clock.
func (s *Server) onConnect(ctx gliderssh.Context, c net.Conn) net.Conn {
	c, err := proxy.Open(c)
	if err != nil {
		return nil // closed and logged by the listener
	}
	st := &connState{netConn: c, keys: map[string]gossh.PublicKey{}, banners: map[string]bool{}}
	st.source = proxy.ClientAddr(c).Addr()
	ctx.SetValue(ctxKeyState{}, st)
	time.AfterFunc(handshakeTimeout, func() {
		if !st.authed.Load() {
			c.Close()
		}
	})
	st.relay = newRelayConn(c)
	st.relay.onClose = func() { s.auditFailedLogin(st) }
	return st.relay
}

func stateOf(ctx context.Context) *connState {
	st, _ := ctx.Value(ctxKeyState{}).(*connState)
	return st
}

// serverConfig sets the authentication callbacks and the ciphers.
func (s *Server) serverConfig(ctx gliderssh.Context) *gossh.ServerConfig {
	st := stateOf(ctx)
	cfg := &gossh.ServerConfig{
		NoClientAuth: true, // gliderlabs forces it; the callback refuses "none"
		NoClientAuthCallback: func(gossh.ConnMetadata) (*gossh.Permissions, error) {
			return nil, errors.New("a key or a token is required")
		},
		PublicKeyCallback: func(m gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
			return s.checkKey(st, m.User(), key)
		},
		VerifiedPublicKeyCallback: func(_ gossh.ConnMetadata, _ gossh.PublicKey, perms *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			s.admitLogin(st, perms)
			return perms, nil
		},
		PasswordCallback: func(m gossh.ConnMetadata, pw []byte) (*gossh.Permissions, error) {
			return s.checkToken(st, m.User(), string(pw))
		},
		KeyboardInteractiveCallback: func(m gossh.ConnMetadata, ch gossh.KeyboardInteractiveChallenge) (*gossh.Permissions, error) {
			return s.askToken(st, m.User(), ch)
		},
		MaxAuthTries: 6,
	}
	cfg.Ciphers = preferredCiphers
	return cfg
}

// preferredCiphers puts AES-GCM first (hardware AES makes it the fastest
// here). Towards targets the bastion is the client, so its order wins and
// both OpenSSH and x/crypto settle on aes128-gcm. Towards clients the
// client's order wins: chacha20-poly1305, first in OpenSSH's list, is left
// out because x/crypto's implementation is the relay's bottleneck, but a
// stock OpenSSH client then picks aes128-ctr (with hmac-sha2-256-etm),
// which it lists before AES-GCM. `ssh -c aes128-gcm@openssh.com`, or
// `Ciphers aes128-gcm@openssh.com,...` in ssh_config, gets AES-GCM on the
// client leg too; CTR stays offered for clients without AES-GCM.
var preferredCiphers = []string{
	"aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
	"aes128-ctr", "aes192-ctr", "aes256-ctr",
}

// checkKey accepts a public key the identity holds. x/crypto calls it
// before the client has signed anything with the key (a public key is no
// secret), so a refusal says nothing about why; the login happens in the
// VerifiedPublicKeyCallback, once the signature is checked.
func (s *Server) checkKey(st *connState, user string, key gossh.PublicKey) (*gossh.Permissions, error) {
	fp := gossh.FingerprintSHA256(key)
	if err := s.authenticate(st, user, iga.Credential{SSHKey: key}, "publickey "+fp); err != nil {
		return nil, err
	}
	st.mu.Lock()
	st.keys[fp] = key
	st.mu.Unlock()
	return &gossh.Permissions{Extensions: map[string]string{permKey: fp}}, nil
}

// checkToken accepts a token bound to the identity: the token is the
// proof, so the login happens here.
func (s *Server) checkToken(st *connState, user, token string) (*gossh.Permissions, error) {
	if err := s.authenticate(st, user, iga.Credential{Token: token}, "token"); err != nil {
		return nil, err
	}
	st.mu.Lock()
	st.token = token
	st.mu.Unlock()
	perms := &gossh.Permissions{Extensions: map[string]string{permToken: "1"}}
	s.admitLogin(st, perms)
	return perms, nil
}

// askToken is keyboard-interactive: one hidden prompt for the token.
func (s *Server) askToken(st *connState, user string, ch gossh.KeyboardInteractiveChallenge) (*gossh.Permissions, error) {
	answers, err := ch("", "", []string{"sallyport token: "}, []bool{false})
	if err != nil {
		return nil, err
	}
	if len(answers) != 1 {
		return nil, errors.New("want one answer")
	}
	return s.checkToken(st, user, answers[0])
}

// loginRefused is all a client learns of a credential check that failed,
// whatever failed: an unknown identity, a key or token not bound to it, an
// expired one. Telling them apart before the client has proven a
// credential would let anyone list the identities and their keys; the
// reasons go to the audit trail.
const loginRefused = "sallyport: access denied (credential_invalid): this key or token does not log in as that identity; " +
	"check the login (IDENTITY@TARGET) and the credential, or ask the identity's owner"

// authenticate routes the login and checks the credential, turning a
// refusal into a banner the client shows; asked names the credential for
// the audit trail.
func (s *Server) authenticate(st *connState, user string, c iga.Credential, asked string) error {
	identity, target, err := parseLogin(user)
	if err != nil {
		st.failed(s, iga.Refusal{Identity: proxy.AuditName(user), Asked: asked,
			Reasons: []iga.Reason{{Code: loginCode(err), Message: err.Error()}}})
		return st.banner(err)
	}
	if s.Gate == nil {
		return st.banner(errors.New("sallyport: no registry is configured; ask an operator"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	defer cancel()
	err = s.Gate.Authenticate(ctx, identity, c)
	var denied *iga.Denied
	if errors.As(err, &denied) {
		st.failed(s, iga.Refusal{Identity: identity, Target: target, Asked: asked, Reasons: denied.Reasons})
		return st.banner(errors.New(loginRefused))
	}
	if err != nil {
		s.logger().Error("check ssh credential", "identity", identity, "err", err)
		return st.banner(errors.New("sallyport: cannot check credentials right now; try again later"))
	}
	st.mu.Lock()
	st.identity, st.target = identity, target
	st.mu.Unlock()
	return nil
}

// loginCode is the reason code of a login that does not parse.
func loginCode(err error) string {
	if strings.Contains(err.Error(), "("+iga.ReasonUnknownTarget+")") {
		return iga.ReasonUnknownTarget
	}
	return iga.ReasonUnknownIdentity
}

// failed keeps a credential refusal until the connection closes: a client
// offering three keys of which the last logs in has not failed to log in.
func (st *connState) failed(s *Server, f iga.Refusal) {
	f.Login, f.Protocol, f.Source = true, "ssh", st.source
	st.mu.Lock()
	defer st.mu.Unlock()
	if strings.HasPrefix(f.Asked, "publickey ") {
		st.failedKeys++
	}
	st.failure = &f
}

// auditFailedLogin writes the connection's last credential refusal when it
// closes without a login, one event per connection.
func (s *Server) auditFailedLogin(st *connState) {
	st.mu.Lock()
	f, keys := st.failure, st.failedKeys
	st.mu.Unlock()
	if st.authed.Load() || f == nil {
		return
	}
	if keys > 1 {
		f.Asked += fmt.Sprintf(" (and %d other keys)", keys-1)
	}
	go proxy.RecordRefusal(s.Gate, s.logger(), *f)
}

// admitLogin runs the connect decision once the client has proven its
// credential: whether the registry admits the identity on the target for
// anything at all. A refusal is kept for the channels' stderr (the client
// reads why there); the connection is closed when it opens no channel in
// time (see watchChannels).
func (s *Server) admitLogin(st *connState, perms *gossh.Permissions) {
	st.authed.Store(true)
	st.mu.Lock()
	st.session = sessionid.New(s.now())
	st.mu.Unlock()
	req := st.request(iga.ActionConnect, perms)
	ctx, cancel := context.WithTimeout(context.Background(), decideTimeout)
	defer cancel()
	d, err := onItsOwnStack(func() (iga.Decision, error) { return s.Gate.Decide(ctx, req) })
	st.mu.Lock()
	switch {
	case err != nil:
		s.logger().Error("admit ssh login", "identity", req.Identity, "target", req.Target, "err", err)
		st.refusal = "sallyport: cannot check access right now; try again later"
	case !d.Allow:
		st.refusal = "sallyport: " + d.Err().Error()
	default:
		st.entitled = d.Entitled
	}
	st.mu.Unlock()
	// A timer, not a sleeping goroutine: an idle session must not hold a
	// stack for the first channel timeout (see BenchmarkSSHIdleSessionMemory).
	time.AfterFunc(s.firstChannelTimeout(), func() { s.watchChannels(st) })
}

// onItsOwnStack runs fn on a goroutine of its own and waits for it. The
// login decision runs inside the handshake, on the goroutine that then
// serves the connection for its whole life; a registry query there would
// leave that goroutine's stack grown for as long as an idle session lasts.
func onItsOwnStack[T any](fn func() (T, error)) (T, error) {
	var v T
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err = fn()
	}()
	<-done
	return v, err
}

// request is the admission request for action on this connection, with
// the credential that perms says was proven.
func (st *connState) request(action iga.Action, perms *gossh.Permissions) iga.Request {
	st.mu.Lock()
	defer st.mu.Unlock()
	return iga.Request{Identity: st.identity, Target: st.target, Action: action,
		Source: st.source, Credential: st.credentialLocked(perms), Session: st.session}
}

// refusedAtLogin is the login's refusal line, empty when it was admitted.
func (st *connState) refusedAtLogin() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.refusal
}

// watchChannels closes a logged-in connection that has no use, once
// FirstChannelTimeout has passed since login: one refused at login (its
// client had time to open a channel and read why); one that opened no
// channel, unless its identity may forward (`ssh -N -L` opens channels
// only when a local client connects).
func (s *Server) watchChannels(st *connState) {
	st.mu.Lock()
	refused, opened := st.refusal != "", st.channels
	forwards := slices.Contains(st.entitled, iga.ActionForward)
	identity, target := st.identity, st.target
	st.mu.Unlock()
	if refused || (!opened && !forwards) {
		if !refused {
			s.logger().Info("ssh connection closed: no channel opened", "identity", identity, "target", target,
				"source", st.source, "after", s.firstChannelTimeout())
		}
		_ = st.relay.Close()
	}
}

// banner returns err as a BannerError, with its text only the first time:
// a client trying several keys sees the reason once.
func (st *connState) banner(err error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	msg := err.Error()
	if st.banners[msg] {
		return err
	}
	st.banners[msg] = true
	return &gossh.BannerError{Err: err, Message: msg + "\r\n"}
}

// credentialLocked is what the successful method proved, for admission.
// st.mu must be held.
func (st *connState) credentialLocked(perms *gossh.Permissions) *iga.Credential {
	if perms == nil {
		return nil
	}
	if fp, ok := perms.Extensions[permKey]; ok {
		return &iga.Credential{SSHKey: st.keys[fp]}
	}
	if _, ok := perms.Extensions[permToken]; ok {
		return &iga.Credential{Token: st.token}
	}
	return nil
}

// parseLogin splits IDENTITY@TARGET at the last '@' (as OpenSSH does with
// user@target@host), or IDENTITY+TARGET at the last '+'. The errors are the
// lines the client sees.
func parseLogin(user string) (identity, target string, err error) {
	if len(user) > maxLoginLen || strings.IndexFunc(user, unicode.IsControl) >= 0 {
		return "", "", fmt.Errorf("sallyport: access denied (unknown_identity): the login is not a valid IDENTITY@TARGET; log in as e.g. ssh svc-backup@web-01@bastion")
	}
	i := strings.LastIndexByte(user, '@')
	if i < 0 {
		i = strings.LastIndexByte(user, '+')
	}
	if i < 0 {
		return "", "", fmt.Errorf("sallyport: access denied (unknown_target): login %q names no target; log in as IDENTITY@TARGET, e.g. ssh %s@web-01@bastion", user, user)
	}
	identity, target = user[:i], user[i+1:]
	if identity == "" {
		return "", "", fmt.Errorf("sallyport: access denied (unknown_identity): login %q names no identity; log in as IDENTITY@TARGET", user)
	}
	if target == "" {
		return "", "", fmt.Errorf("sallyport: access denied (unknown_target): login %q names no target; log in as IDENTITY@TARGET", user)
	}
	return identity, target, nil
}
