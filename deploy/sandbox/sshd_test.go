package sandbox

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// newSigner generates an ed25519 key and returns it with its private half.
func newSigner(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return signer, priv
}

// writeClientKey writes an OpenSSH private key file (and KEY-cert.pub when
// cert is set) for the real ssh client, returning the key's path.
func writeClientKey(t *testing.T, priv ed25519.PrivateKey, cert *ssh.Certificate) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id_ed25519")
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	if cert != nil {
		require.NoError(t, os.WriteFile(path+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o644))
	}
	return path
}

// signCert signs a user certificate for key with the given principal and validity.
func signCert(t *testing.T, ca ssh.Signer, key ssh.PublicKey, principal, keyID string, from, until time.Time) *ssh.Certificate {
	t.Helper()
	cert := &ssh.Certificate{
		Key:             key,
		CertType:        ssh.UserCert,
		KeyId:           keyID,
		ValidPrincipals: []string{principal},
		ValidAfter:      uint64(from.Unix()),
		ValidBefore:     uint64(until.Unix()),
		Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	require.NoError(t, cert.SignCert(rand.Reader, ca))
	return cert
}

// runSSH runs the real ssh client non-interactively, trusting only s's host key.
func runSSH(t *testing.T, s *SSHD, keyPath, command string) (string, int) {
	t.Helper()
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, []byte(s.KnownHostsLine()+"\n"), 0o644))
	cmd := exec.Command("ssh", "-F", "/dev/null", "-i", keyPath,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		// The default post-quantum key exchange costs a quarter second of CPU
		// per login; x/crypto, which sallyport uses towards targets, picks this one.
		"-o", "KexAlgorithms=curve25519-sha256",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+knownHosts,
		"-o", "ConnectTimeout=5", "-p", strconv.Itoa(s.Port), s.User+"@"+s.Host, command)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err, "run ssh")
	return string(out), 0
}

func TestSSHD(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		Need(t, missing("ssh", "PATH", "openssh-client"))
	}
	ca, _ := newSigner(t)
	listed, listedPriv := newSigner(t)
	ctx := ctxT(t)
	s, err := timed(t, "sshd", func() (*SSHD, error) {
		return StartSSHD(ctx, SSHDOptions{
			TrustedUserCAKeys:  []string{string(ssh.MarshalAuthorizedKey(ca.PublicKey()))},
			AuthorizedKeys:     []string{string(ssh.MarshalAuthorizedKey(listed.PublicKey()))},
			RecordCertificates: true,
		})
	})
	Need(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	dumpLogOnFailure(t, s.proc.logPath)

	// The group returns once its parallel logins are done.
	t.Run("logins", func(t *testing.T) { testSSHLogins(t, s, ca, listedPriv) })
	t.Run("x/crypto client trusts HostPublicKey", func(t *testing.T) { testGoClient(t, s, ca) })
	t.Run("accepted certificates are recorded", func(t *testing.T) {
		certs, err := s.Certificates()
		require.NoError(t, err)
		var ids []string
		for _, c := range certs {
			ids = append(ids, c.KeyId)
		}
		assert.Contains(t, ids, "sandbox/ok", "recorded KeyIds: got %v, want sandbox/ok among them", ids)
		assert.NotContains(t, ids, "sandbox/ca", "recorded KeyIds: got %v, want no certificate of an untrusted CA", ids)
	})
	logIfFailed(t, s.proc.logPath)
	t.Run("stop ends open sessions and leaves nothing behind", func(t *testing.T) { testSSHDStop(t, s, ca) })
}

// testSSHLogins runs the real ssh client with keys and certificates that
// sshd must accept or refuse, in parallel.
func testSSHLogins(t *testing.T, s *SSHD, ca ssh.Signer, listedPriv ed25519.PrivateKey) {
	now := time.Now()
	certKey := func(signer ssh.Signer, principal, keyID string, from, until time.Time) string {
		user, priv := newSigner(t)
		return writeClientKey(t, priv, signCert(t, signer, user.PublicKey(), principal, keyID, from, until))
	}
	otherCA, _ := newSigner(t)
	_, strayPriv := newSigner(t)
	tests := []struct {
		name, key, command, want string
		wantExit                 int
	}{
		{name: "certificate from trusted CA logs in", key: certKey(ca, s.User, "sandbox/ok", now.Add(-time.Minute), now.Add(5*time.Minute)), command: "echo hello", want: "hello"},
		{name: "exit status comes back", key: certKey(ca, s.User, "sandbox/exit", now.Add(-time.Minute), now.Add(5*time.Minute)), command: "exit 3", wantExit: 3},
		{name: "key in AuthorizedKeys logs in", key: writeClientKey(t, listedPriv, nil), command: "echo listed", want: "listed"},
		{name: "wrong principal is refused", key: certKey(ca, "someone-else", "sandbox/principal", now.Add(-time.Minute), now.Add(5*time.Minute)), wantExit: 255, want: "Permission denied"},
		{name: "untrusted CA is refused", key: certKey(otherCA, s.User, "sandbox/ca", now.Add(-time.Minute), now.Add(5*time.Minute)), wantExit: 255, want: "Permission denied"},
		{name: "expired certificate is refused", key: certKey(ca, s.User, "sandbox/expired", now.Add(-time.Hour), now.Add(-time.Minute)), wantExit: 255, want: "Permission denied"},
		{name: "unlisted key is refused", key: writeClientKey(t, strayPriv, nil), command: "true", wantExit: 255, want: "Permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			command := tt.command
			if command == "" {
				command = "true"
			}
			out, code := runSSH(t, s, tt.key, command)
			assert.Equal(t, tt.wantExit, code, "ssh exit status: got %d, want %d; output: %s", code, tt.wantExit, out)
			assert.Contains(t, out, tt.want)
		})
	}
}

// testGoClient connects as sallyport's proxy will: x/crypto with a fixed host key.
func testGoClient(t *testing.T, s *SSHD, ca ssh.Signer) {
	sess, err := dialGo(t, s, ca, s.HostPublicKey()).NewSession()
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Output("echo via-go")
	require.NoError(t, err)
	assert.Equal(t, "via-go\n", string(out), "session output: got %q, want %q", out, "via-go\n")

	other, _ := newSigner(t)
	_, err = ssh.Dial("tcp", s.Addr(), goClientConfig(t, s, ca, other.PublicKey()))
	assert.Error(t, err, "dial with a wrong host key: got success, want a host key mismatch")
}

// testSSHDStop stops sshd with a session open: the session's processes,
// which sshd keeps in a session of their own, must go too.
func testSSHDStop(t *testing.T, s *SSHD, ca ssh.Signer) {
	sess, err := dialGo(t, s, ca, s.HostPublicKey()).NewSession()
	require.NoError(t, err)
	require.NoError(t, sess.Start("sleep 300"))
	var tree []procInfo
	require.Eventually(t, func() bool {
		tree = descendants(s.proc.pid())
		return hasCommand(tree, "sleep")
	}, 10*time.Second, 20*time.Millisecond, "sleep 300 never showed up below sshd")
	pgid, addr, dir := s.proc.pid(), s.Addr(), s.Dir
	require.NoError(t, s.Stop())
	assertGone(t, pgid, addr, dir)
	assert.Empty(t, stillRunning(tree), "processes below sshd after Stop: got %v, want none", stillRunning(tree))
}

// goClientConfig logs in as s.User with a fresh certificate from ca,
// trusting hostKey, as sallyport's SSH proxy does towards a target.
func goClientConfig(t *testing.T, s *SSHD, ca ssh.Signer, hostKey ssh.PublicKey) *ssh.ClientConfig {
	t.Helper()
	user, _ := newSigner(t)
	now := time.Now()
	cert := signCert(t, ca, user.PublicKey(), s.User, "sandbox/xcrypto", now.Add(-time.Minute), now.Add(5*time.Minute))
	certSigner, err := ssh.NewCertSigner(cert, user)
	require.NoError(t, err)
	return &ssh.ClientConfig{User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second}
}

// dialGo connects an x/crypto client to s, closed at the end of the test.
func dialGo(t *testing.T, s *SSHD, ca ssh.Signer, hostKey ssh.PublicKey) *ssh.Client {
	t.Helper()
	client, err := ssh.Dial("tcp", s.Addr(), goClientConfig(t, s, ca, hostKey))
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	return client
}

// hasCommand reports whether one of ps runs the named program.
func hasCommand(ps []procInfo, name string) bool {
	for _, pr := range ps {
		comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pr.pid), "comm"))
		if strings.TrimSpace(string(comm)) == name {
			return true
		}
	}
	return false
}

func TestSSHDOptionsValidate(t *testing.T) {
	signer, _ := newSigner(t)
	key := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	tests := []struct {
		name    string
		opts    SSHDOptions
		wantErr string
	}{
		{name: "zero value", opts: SSHDOptions{}},
		{name: "valid keys", opts: SSHDOptions{TrustedUserCAKeys: []string{key}, AuthorizedKeys: []string{key}}},
		{name: "garbage CA key", opts: SSHDOptions{TrustedUserCAKeys: []string{"ssh-ed25519 nonsense"}}, wantErr: "sshd key"},
		{name: "multi-line config", opts: SSHDOptions{Config: []string{"LogLevel DEBUG\nPermitRootLogin yes"}}, wantErr: "one line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tt.wantErr), "Validate: got %q, want it to mention %q", err, tt.wantErr)
		})
	}
}
