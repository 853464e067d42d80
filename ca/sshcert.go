package ca

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// DefaultCertTTL is how long a session certificate is valid when
	// SSHUserCA.TTL is zero: only the handshake with the target needs it.
	DefaultCertTTL = 2 * time.Minute
	// certBackdate is subtracted from ValidAfter so a target whose clock is
	// slightly behind still accepts a fresh certificate.
	certBackdate = 30 * time.Second
)

// SSHUserCA issues per-session SSH user certificates (DESIGN §6). Targets
// trust its public key with sshd's TrustedUserCAKeys.
type SSHUserCA struct {
	// Key is the CA's signing key. Required.
	Key ed25519.PrivateKey
	// TTL is how long a certificate is valid after issue. Zero: 2m.
	TTL time.Duration
	// SourceAddress, a comma-separated list of addresses or CIDRs, pins the
	// certificate's source-address critical option to the bastion's
	// addresses. Zero: no source-address option.
	SourceAddress string
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// SSHCertRequest says whom a session certificate is for and what it permits.
type SSHCertRequest struct {
	// SessionID and Identity go into the KeyId, for the target's logs.
	SessionID string
	Identity  string
	// Login is the only principal: the entitled Unix login.
	Login string
	// PTY adds permit-pty (the identity is entitled to shell).
	PTY bool
	// PortForwarding adds permit-port-forwarding (entitled to forward).
	PortForwarding bool
	// ForceCommand, when set, is the force-command critical option: the
	// target's sshd runs this command line whatever the client asks for
	// (an exec of another command, a shell, a subsystem). Empty: none.
	ForceCommand string
}

// SessionCert is a freshly issued certificate with its in-memory key.
type SessionCert struct {
	// Signer authenticates with the certificate; its private key never
	// leaves memory.
	Signer ssh.Signer
	// Cert is the certificate itself, e.g. for its serial.
	Cert *ssh.Certificate
}

// Validate reports a CA that cannot issue.
func (c *SSHUserCA) Validate() error {
	if len(c.Key) != ed25519.PrivateKeySize {
		return errors.New("ssh user ca: no ed25519 signing key")
	}
	if c.TTL < 0 {
		return fmt.Errorf("ssh user ca: ttl %s is negative", c.TTL)
	}
	if c.SourceAddress != "" {
		if err := checkSourceAddress(c.SourceAddress); err != nil {
			return fmt.Errorf("ssh user ca: source address: %w", err)
		}
	}
	return nil
}

// checkSourceAddress parses the list sshd's source-address option takes.
func checkSourceAddress(list string) error {
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if _, err := netip.ParsePrefix(a); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("%q is neither an address nor a CIDR", a)
		}
	}
	return nil
}

// PublicKey is the CA's public key.
func (c *SSHUserCA) PublicKey() ssh.PublicKey {
	pub, err := ssh.NewPublicKey(c.Key.Public())
	if err != nil {
		panic(fmt.Sprintf("convert ed25519 public key: %v", err)) // always converts
	}
	return pub
}

// AuthorizedKey is the line for sshd's TrustedUserCAKeys file.
func (c *SSHUserCA) AuthorizedKey() string { return AuthorizedKey(c.Key) }

// Issue creates an ed25519 key in memory and a certificate for it: principal
// req.Login, valid from now−30s to now+TTL, KeyId
// "sallyport/<session>/<identity>", a random serial, source-address when
// configured, force-command when req has one, and only the extensions req
// permits (never agent or X11 forwarding, never user rc).
func (c *SSHUserCA) Issue(req SSHCertRequest) (*SessionCert, error) {
	if err := c.checkRequest(req); err != nil {
		return nil, err
	}
	caSigner, err := ssh.NewSignerFromKey(c.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for session %s: load ca key: %w", req.SessionID, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for session %s: generate key: %w", req.SessionID, err)
	}
	cert, err := c.template(req, pub)
	if err != nil {
		return nil, err
	}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		return nil, fmt.Errorf("sign certificate for session %s: %w", req.SessionID, err)
	}
	return sessionCert(req, cert, priv)
}

func (c *SSHUserCA) checkRequest(req SSHCertRequest) error {
	if len(c.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("issue certificate for session %s: the ca has no signing key", req.SessionID)
	}
	if req.Login == "" {
		return fmt.Errorf("issue certificate for session %s: no login to put in the certificate", req.SessionID)
	}
	if strings.IndexByte(req.ForceCommand, 0) >= 0 {
		// sshd reads a critical option as a C string and would refuse the
		// certificate; no registry pattern holds a NUL either.
		return fmt.Errorf("issue certificate for session %s: the forced command contains a NUL byte", req.SessionID)
	}
	return nil
}

// template fills in everything but the signature.
func (c *SSHUserCA) template(req SSHCertRequest, pub ed25519.PublicKey) (*ssh.Certificate, error) {
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for session %s: %w", req.SessionID, err)
	}
	now := c.now()
	cert := &ssh.Certificate{
		Key:             key,
		Serial:          randomSerial(),
		CertType:        ssh.UserCert,
		KeyId:           "sallyport/" + req.SessionID + "/" + req.Identity,
		ValidPrincipals: []string{req.Login},
		ValidAfter:      uint64(now.Add(-certBackdate).Unix()),
		ValidBefore:     uint64(now.Add(c.ttl()).Unix()),
		Permissions:     ssh.Permissions{CriticalOptions: c.criticalOptions(req), Extensions: extensions(req)},
	}
	return cert, nil
}

// criticalOptions are source-address when configured and force-command
// when the entitlement allows exactly one command; nil when neither.
func (c *SSHUserCA) criticalOptions(req SSHCertRequest) map[string]string {
	opts := map[string]string{}
	if c.SourceAddress != "" {
		opts["source-address"] = c.SourceAddress
	}
	if req.ForceCommand != "" {
		opts["force-command"] = req.ForceCommand
	}
	if len(opts) == 0 {
		return nil
	}
	return opts
}

// extensions are the permit-* extensions the entitlement's actions need:
// permit-pty for a terminal (shell), permit-port-forwarding for forward.
// Never permit-agent-forwarding or permit-X11-forwarding: the bastion
// relays neither. Never permit-user-rc: sshd runs the login's ~/.ssh/rc
// before every session's command, a certificate's force-command included
// (only sshd_config's ForceCommand skips it), so whatever someone with
// write access to that home once put there would run with every machine
// identity's session, outside what the entitlement names. Without the
// extension sshd skips it (and runs the root-owned /etc/ssh/sshrc, if any).
func extensions(req SSHCertRequest) map[string]string {
	ext := map[string]string{}
	if req.PTY {
		ext["permit-pty"] = ""
	}
	if req.PortForwarding {
		ext["permit-port-forwarding"] = ""
	}
	return ext
}

func sessionCert(req SSHCertRequest, cert *ssh.Certificate, priv ed25519.PrivateKey) (*SessionCert, error) {
	keySigner, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for session %s: %w", req.SessionID, err)
	}
	signer, err := ssh.NewCertSigner(cert, keySigner)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for session %s: %w", req.SessionID, err)
	}
	return &SessionCert{Signer: signer, Cert: cert}, nil
}

// randomSerial is a 63-bit random serial: unique enough to name one session
// certificate, positive for tools that print it signed.
func randomSerial() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random serial: %v", err)) // crypto/rand never fails on Linux
	}
	return binary.BigEndian.Uint64(b[:]) >> 1
}

func (c *SSHUserCA) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultCertTTL
}

func (c *SSHUserCA) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
