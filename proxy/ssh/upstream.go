package ssh

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
)

// profile is what a target login is certified for. Channels needing the
// same profile share one upstream connection; a new profile gets its own
// certificate and connection, so no certificate permits more than its
// channel's action was admitted for.
type profile struct {
	login   string
	pty     bool
	forward bool
	// command is the certificate's force-command: the one command line an
	// exec entitlement allows. Part of the key, so a connection whose
	// certificate forces one command never carries another command or
	// action, and a connection without one never carries such an exec.
	// Empty: none.
	command string
}

// upstream is one logged-in connection to the target.
type upstream struct {
	cert   *ca.SessionCert
	once   sync.Once
	client *gossh.Client
	sock   *relayConn // the socket under client
	err    error
}

func (u *upstream) close() {
	if u.client != nil {
		_ = u.client.Close()
	}
}

// issue mints a certificate for prof in session id.
func (c *conn) issue(id string, prof profile) (*ca.SessionCert, error) {
	c.st.mu.Lock()
	identity := c.st.identity
	c.st.mu.Unlock()
	return c.srv.CA.Issue(ca.SSHCertRequest{SessionID: id, Identity: identity, Login: prof.login,
		PTY: prof.pty, PortForwarding: prof.forward, ForceCommand: prof.command})
}

// upstreamFor returns the logged-in target connection for prof, dialing
// it (and minting its certificate) on first use.
func (c *conn) upstreamFor(prof profile, t Target) (*upstream, error) {
	u, err := c.upstreamEntry(prof)
	if err != nil {
		return nil, err
	}
	u.once.Do(func() {
		ctx, cancel := context.WithTimeout(c.ctx, upstreamDialTimeout)
		defer cancel()
		u.client, u.sock, u.err = c.srv.login(ctx, t, prof.login, u.cert)
	})
	return u, u.err
}

func (c *conn) upstreamEntry(prof profile) (*upstream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return nil, fmt.Errorf("the session has ended")
	}
	if u := c.ups[prof]; u != nil {
		return u, nil
	}
	cert, err := c.issue(c.sess.ID, prof)
	if err != nil {
		return nil, err
	}
	u := &upstream{cert: cert}
	c.ups[prof] = u
	return u, nil
}

// login dials the target, verifies its host key and logs in with cert.
func (s *Server) login(ctx context.Context, t Target, login string, cert *ca.SessionCert) (*gossh.Client, *relayConn, error) {
	hk, algos, err := hostKeyCheck(t)
	if err != nil {
		return nil, nil, err
	}
	nc, err := s.dial(ctx, t.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to target %s at %s: %w", t.Name, t.Address, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	cfg := &gossh.ClientConfig{
		User: login, Auth: []gossh.AuthMethod{gossh.PublicKeys(cert.Signer)},
		HostKeyCallback: hk, HostKeyAlgorithms: algos, ClientVersion: "SSH-2.0-" + serverVersion,
		Config: gossh.Config{Ciphers: preferredCiphers},
	}
	sock := newRelayConn(nc)
	sc, chans, reqs, err := gossh.NewClientConn(sock, t.Address, cfg)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("log in to target %s as %s: %w", t.Name, login, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return gossh.NewClient(sc, chans, reqs), sock, nil
}

// hostKeyCheck verifies the target's host key against the configured keys
// or host CA. With neither configured the session is refused: no trust on
// first use.
func hostKeyCheck(t Target) (gossh.HostKeyCallback, []string, error) {
	if len(t.HostKeys) == 0 && t.HostCA == nil {
		return nil, nil, fmt.Errorf("target %s has no host_key or host_ca configured, and sallyport never trusts a host key on first use", t.Name)
	}
	var algos []string
	for _, k := range t.HostKeys {
		algos = append(algos, hostKeyAlgos(k.Type())...)
	}
	checker := &gossh.CertChecker{
		IsHostAuthority: func(auth gossh.PublicKey, _ string) bool {
			return t.HostCA != nil && bytes.Equal(auth.Marshal(), t.HostCA.Marshal())
		},
		HostKeyFallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
			for _, k := range t.HostKeys {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return nil
				}
			}
			return fmt.Errorf("target %s presented host key %s, which is not its configured host_key: refusing (the target was re-keyed or someone is in the middle)",
				t.Name, gossh.FingerprintSHA256(key))
		},
	}
	if t.HostCA != nil {
		algos = append(algos, gossh.CertAlgoED25519v01, gossh.CertAlgoECDSA256v01, gossh.CertAlgoRSASHA512v01, gossh.CertAlgoRSASHA256v01)
	}
	check := func(addr string, remote net.Addr, key gossh.PublicKey) error {
		cert, ok := key.(*gossh.Certificate)
		if !ok {
			return checker.CheckHostKey(addr, remote, key)
		}
		if !checker.IsHostAuthority(cert.SignatureKey, addr) {
			return fmt.Errorf("target %s presented a host certificate signed by %s, which is not its configured host_ca: refusing (the target was re-keyed or someone is in the middle)",
				t.Name, gossh.FingerprintSHA256(cert.SignatureKey))
		}
		if err := checker.CheckHostKey(addr, remote, key); err != nil {
			return fmt.Errorf("target %s presented a host certificate from its host_ca that does not hold for %s: %w", t.Name, addr, err)
		}
		return nil
	}
	return check, algos, nil
}

// hostKeyAlgos are the signature algorithms a host key of type typ can
// prove itself with; asking for them makes sshd present that key.
func hostKeyAlgos(typ string) []string {
	if typ == gossh.KeyAlgoRSA {
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256}
	}
	return []string{typ}
}
