package discover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
)

// Bounds of an SSH discovery.
const (
	// DefaultKeysFileCap is how much of one authorized_keys file is read
	// when SSH.KeysFileCap is zero: thousands of keys; a bigger file is
	// read up to it and reported as cut.
	DefaultKeysFileCap = 256 << 10
	// maxOutput caps the whole command output, whatever the number of
	// accounts: past it the rest is dropped and the result says so.
	maxOutput = 16 << 20
	// maxStderr is how much of the command's error output an error quotes.
	maxStderr = 512
	// discoveryIdentity names the certificate's holder in the target's logs.
	discoveryIdentity = "sallyport-discovery"
)

// DefaultKeysFile is where sshd looks for an account's keys unless its
// AuthorizedKeysFile says otherwise.
const DefaultKeysFile = "%h/.ssh/authorized_keys"

// SSH discovers the accounts of an SSH target: it logs in to the target's
// sshd as the discovery login with a short-lived certificate of the
// bastion's own CA, forced to one read-only command, which lists the
// accounts with a login shell and the keys in their authorized_keys.
type SSH struct {
	// Address is host:port of the target's sshd. Required.
	Address string
	// HostKeys and HostCA verify the target as the SSH proxy does; with
	// neither the target is not discovered: no trust on first use.
	HostKeys []ssh.PublicKey
	HostCA   ssh.PublicKey
	// Login is the discovery login. It reads every account's
	// authorized_keys only when it may (root, or files readable to it);
	// the others are reported unreadable. Required.
	Login string
	// CA issues the login's certificate. Required.
	CA *ca.SSHUserCA
	// KeysFile is the authorized_keys path, as sshd's AuthorizedKeysFile:
	// %h the home, %u the login, %% a percent sign; relative to the home
	// unless absolute. Empty: DefaultKeysFile.
	KeysFile string
	// KeysFileCap is how many bytes of one authorized_keys are read. Zero:
	// DefaultKeysFileCap.
	KeysFileCap int
	// Dial connects to Address. Nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Discover logs in, runs the listing command and parses its output.
func (s *SSH) Discover(ctx context.Context) (Found, error) {
	script, err := Script(s.KeysFile, s.keysCap())
	if err != nil {
		return Found{}, err
	}
	out, cut, err := s.run(ctx, script)
	if err != nil {
		return Found{}, err
	}
	found, err := ParseListing(out, s.keysCap())
	if err != nil {
		return Found{}, fmt.Errorf("read the account listing of %s: %w", s.Address, err)
	}
	if cut {
		found.Notes = append(found.Notes, fmt.Sprintf("the account listing passed %d bytes and was cut: accounts after it are missing", maxOutput))
	}
	return found, nil
}

func (s *SSH) keysCap() int {
	if s.KeysFileCap > 0 {
		return s.KeysFileCap
	}
	return DefaultKeysFileCap
}

// run logs in and runs script, returning at most maxOutput bytes of its
// output and whether more came.
func (s *SSH) run(ctx context.Context, script string) ([]byte, bool, error) {
	client, err := s.login(ctx, script)
	if err != nil {
		return nil, false, err
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	sess, err := client.NewSession()
	if err != nil {
		return nil, false, fmt.Errorf("open a session on %s: %w", s.Address, err)
	}
	defer sess.Close()
	stdout := &capped{max: maxOutput}
	stderr := &capped{max: maxStderr}
	sess.Stdout, sess.Stderr = stdout, stderr
	if err := sess.Run(script); err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("list accounts on %s: %w", s.Address, ctx.Err())
		}
		return nil, false, fmt.Errorf("list accounts on %s as %s: %w: %s", s.Address, s.Login, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), stdout.cut, nil
}

// login dials the target, checks its host key and logs in with a fresh
// certificate whose force-command is script: the certificate can do
// nothing else.
func (s *SSH) login(ctx context.Context, script string) (*ssh.Client, error) {
	if s.CA == nil || s.Login == "" {
		return nil, errors.New("no discovery_login or ssh user ca configured")
	}
	hk, algos, err := hostKeyCheck(s.HostKeys, s.HostCA)
	if err != nil {
		return nil, err
	}
	cert, err := s.CA.Issue(ca.SSHCertRequest{SessionID: "discovery-" + time.Now().UTC().Format("20060102T150405"),
		Identity: discoveryIdentity, Login: s.Login, ForceCommand: script})
	if err != nil {
		return nil, fmt.Errorf("issue the discovery certificate: %w", err)
	}
	nc, err := s.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.Address, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	cfg := &ssh.ClientConfig{User: s.Login, Auth: []ssh.AuthMethod{ssh.PublicKeys(cert.Signer)},
		HostKeyCallback: hk, HostKeyAlgorithms: algos}
	sc, chans, reqs, err := ssh.NewClientConn(nc, s.Address, cfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("log in to %s as %s: %w", s.Address, s.Login, err)
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

func (s *SSH) dial(ctx context.Context) (net.Conn, error) {
	if s.Dial != nil {
		return s.Dial(ctx, "tcp", s.Address)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.Address)
}

// hostKeyCheck accepts the configured host keys, or host certificates of
// the configured host CA; with neither nothing is trusted.
func hostKeyCheck(keys []ssh.PublicKey, hostCA ssh.PublicKey) (ssh.HostKeyCallback, []string, error) {
	if len(keys) == 0 && hostCA == nil {
		return nil, nil, errors.New("no host_key or host_ca configured, and sallyport never trusts a host key on first use")
	}
	var algos []string
	for _, k := range keys {
		algos = append(algos, k.Type())
		if k.Type() == ssh.KeyAlgoRSA {
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
	}
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			return hostCA != nil && bytes.Equal(auth.Marshal(), hostCA.Marshal())
		},
		HostKeyFallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			for _, k := range keys {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return nil
				}
			}
			return fmt.Errorf("host key %s is not the configured host_key: refusing", ssh.FingerprintSHA256(key))
		},
	}
	if hostCA != nil {
		algos = append(algos, ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01)
	}
	return checker.CheckHostKey, algos, nil
}

// capped keeps the first max bytes written to it and whether more came.
type capped struct {
	bytes.Buffer
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.cut = true
		c.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.Buffer.Write(p)
}
