package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
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
}

// onConnect remembers the client's address and starts the handshake clock.
func (s *Server) onConnect(ctx gliderssh.Context, c net.Conn) net.Conn {
	st := &connState{netConn: c, keys: map[string]gossh.PublicKey{}, banners: map[string]bool{}}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		st.source = ap.Addr().Unmap()
	}
	ctx.SetValue(ctxKeyState{}, st)
	time.AfterFunc(handshakeTimeout, func() {
		if !st.authed.Load() {
			c.Close()
		}
	})
	st.relay = newRelayConn(c)
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

func (s *Server) checkKey(st *connState, user string, key gossh.PublicKey) (*gossh.Permissions, error) {
	fp := gossh.FingerprintSHA256(key)
	if err := s.authenticate(st, user, iga.Credential{SSHKey: key}); err != nil {
		return nil, err
	}
	st.mu.Lock()
	st.keys[fp] = key
	st.mu.Unlock()
	return &gossh.Permissions{Extensions: map[string]string{permKey: fp}}, nil
}

func (s *Server) checkToken(st *connState, user, token string) (*gossh.Permissions, error) {
	if err := s.authenticate(st, user, iga.Credential{Token: token}); err != nil {
		return nil, err
	}
	st.mu.Lock()
	st.token = token
	st.mu.Unlock()
	return &gossh.Permissions{Extensions: map[string]string{permToken: "1"}}, nil
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

// authenticate routes the login and checks the credential, turning a
// refusal into a banner the client shows.
func (s *Server) authenticate(st *connState, user string, c iga.Credential) error {
	identity, target, err := parseLogin(user)
	if err != nil {
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
		return st.banner(fmt.Errorf("sallyport: %s", denied.Error()))
	}
	if err != nil {
		s.logger().Error("check ssh credential", "identity", identity, "err", err)
		return st.banner(errors.New("sallyport: cannot check credentials right now; try again later"))
	}
	st.mu.Lock()
	st.identity, st.target = identity, target
	st.mu.Unlock()
	st.authed.Store(true)
	return nil
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
