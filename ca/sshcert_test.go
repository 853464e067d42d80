package ca

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func testCA(t *testing.T, now time.Time) *SSHUserCA {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return &SSHUserCA{Key: key, TTL: 2 * time.Minute, Now: func() time.Time { return now }}
}

func TestIssueSessionCertificate(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		req     SSHCertRequest
		wantExt []string
	}{
		{"exec gets no extension", SSHCertRequest{SessionID: "s1", Identity: "svc-a", Login: "deploy"}, nil},
		{"shell gets permit-pty", SSHCertRequest{SessionID: "s2", Identity: "svc-a", Login: "deploy", PTY: true}, []string{"permit-pty"}},
		{"forward gets permit-port-forwarding", SSHCertRequest{SessionID: "s3", Identity: "svc-b", Login: "ops", PortForwarding: true},
			[]string{"permit-port-forwarding"}},
		{"one exact command gets no extension", SSHCertRequest{SessionID: "s4", Identity: "svc-c", Login: "backup",
			ForceCommand: "/usr/local/bin/backup.sh nightly"}, nil},
	}
	c := testCA(t, now)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := c.Issue(tt.req)
			require.NoError(t, err)
			cert := sc.Cert
			assert.Equal(t, []string{tt.req.Login}, cert.ValidPrincipals)
			assert.Equal(t, "sallyport/"+tt.req.SessionID+"/"+tt.req.Identity, cert.KeyId)
			assert.Equal(t, uint64(now.Add(-30*time.Second).Unix()), cert.ValidAfter)
			assert.Equal(t, uint64(now.Add(2*time.Minute).Unix()), cert.ValidBefore)
			assert.Equal(t, uint32(ssh.UserCert), cert.CertType)
			var ext []string
			for k := range cert.Extensions {
				ext = append(ext, k)
			}
			assert.ElementsMatch(t, tt.wantExt, ext, "got extensions %v, want %v", ext, tt.wantExt)
			if tt.req.ForceCommand == "" {
				assert.Empty(t, cert.CriticalOptions)
			} else {
				assert.Equal(t, map[string]string{"force-command": tt.req.ForceCommand}, cert.CriticalOptions)
			}
			assert.True(t, bytes.Equal(sc.Signer.PublicKey().Marshal(), cert.Marshal()), "signer does not present the certificate")
			checker := ssh.CertChecker{
				IsUserAuthority: func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), c.PublicKey().Marshal()) },
				Clock:           func() time.Time { return now },
				// x/crypto refuses critical options it is not told of, as sshd does.
				SupportedCriticalOptions: []string{"force-command"},
			}
			perms, err := checker.Authenticate(connMeta(tt.req.Login), cert)
			require.NoError(t, err, "the CA's own checker refuses the certificate")
			assert.Equal(t, tt.req.ForceCommand, perms.CriticalOptions["force-command"])
		})
	}
}

// TestExtensionsPerChannel: what each kind of channel the bastion relays
// gets in its certificate. A certificate is per channel profile, so an
// identity entitled to everything still gets only what the channel needs;
// agent and X11 forwarding and user rc are never in any.
func TestExtensionsPerChannel(t *testing.T) {
	never := []string{"permit-agent-forwarding", "permit-X11-forwarding", "permit-user-rc"}
	tests := []struct {
		name     string
		req      SSHCertRequest
		wantExt  []string
		wantCrit map[string]string
	}{
		{"exec, sftp, legacy scp, a shell without a terminal", SSHCertRequest{}, []string{}, nil},
		{"exec of one exact command", SSHCertRequest{ForceCommand: "/bin/echo exactly-this"}, []string{},
			map[string]string{"force-command": "/bin/echo exactly-this"}},
		{"shell or command in a terminal", SSHCertRequest{PTY: true}, []string{"permit-pty"}, nil},
		{"forward", SSHCertRequest{PortForwarding: true}, []string{"permit-port-forwarding"}, nil},
		{"everything at once", SSHCertRequest{PTY: true, PortForwarding: true, ForceCommand: "true"},
			[]string{"permit-pty", "permit-port-forwarding"}, map[string]string{"force-command": "true"}},
	}
	c := testCA(t, time.Now())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.SessionID, tt.req.Identity, tt.req.Login = "s", "svc", "deploy"
			sc, err := c.Issue(tt.req)
			require.NoError(t, err)
			ext := []string{}
			for k, v := range sc.Cert.Extensions {
				ext = append(ext, k)
				assert.Empty(t, v, "extension %s carries a value", k)
			}
			assert.ElementsMatch(t, tt.wantExt, ext, "got extensions %v, want %v", ext, tt.wantExt)
			for _, k := range never {
				assert.NotContains(t, sc.Cert.Extensions, k)
			}
			assert.Equal(t, tt.wantCrit, sc.Cert.CriticalOptions)
		})
	}
}

func TestIssueRefusesNULInForcedCommand(t *testing.T) {
	c := testCA(t, time.Now())
	_, err := c.Issue(SSHCertRequest{SessionID: "s", Identity: "i", Login: "l", ForceCommand: "/bin/echo a\x00; id"})
	assert.ErrorContains(t, err, "NUL")
}

func TestIssueSerialsDifferAndSourceAddressPinned(t *testing.T) {
	c := testCA(t, time.Now())
	c.SourceAddress = "10.0.0.1/32,192.0.2.7"
	require.NoError(t, c.Validate())
	a, err := c.Issue(SSHCertRequest{SessionID: "a", Identity: "i", Login: "l"})
	require.NoError(t, err)
	b, err := c.Issue(SSHCertRequest{SessionID: "b", Identity: "i", Login: "l"})
	require.NoError(t, err)
	assert.NotEqual(t, a.Cert.Serial, b.Cert.Serial, "two sessions got serial %d", a.Cert.Serial)
	assert.NotEqual(t, a.Cert.Key.Marshal(), b.Cert.Key.Marshal(), "two sessions share a key")
	assert.Equal(t, map[string]string{"source-address": "10.0.0.1/32,192.0.2.7"}, a.Cert.CriticalOptions)
}

func TestSSHUserCAValidate(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	tests := []struct {
		name string
		ca   SSHUserCA
		ok   bool
	}{
		{"defaults", SSHUserCA{Key: key}, true},
		{"no key", SSHUserCA{}, false},
		{"negative ttl", SSHUserCA{Key: key, TTL: -time.Second}, false},
		{"bad source address", SSHUserCA{Key: key, SourceAddress: "10.0.0.1,bastion"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ca.Validate()
			assert.Equal(t, tt.ok, err == nil, "got error %v", err)
		})
	}
	_, err = (&SSHUserCA{Key: key}).Issue(SSHCertRequest{SessionID: "x", Identity: "i"})
	assert.ErrorContains(t, err, "no login")
}

// TestOpenSSHReadsCertificate checks with ssh-keygen, the tool operators
// use, that the certificate is what sshd will see.
func TestOpenSSHReadsCertificate(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ssh-keygen missing: install openssh-client")
		}
		t.Skip("SKIPPED: ssh-keygen missing (install openssh-client)")
	}
	c := testCA(t, time.Now())
	sc, err := c.Issue(SSHCertRequest{SessionID: "0a1b", Identity: "svc-backup", Login: "backup", PTY: true})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "id-cert.pub")
	require.NoError(t, os.WriteFile(path, ssh.MarshalAuthorizedKey(sc.Cert), 0o600))
	out, err := exec.Command(keygen, "-L", "-f", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{`Key ID: "sallyport/0a1b/svc-backup"`, "backup", "permit-pty", "user certificate"} {
		assert.Contains(t, string(out), want)
	}
	for _, never := range []string{"permit-agent-forwarding", "permit-X11-forwarding", "permit-user-rc", "force-command"} {
		assert.NotContains(t, string(out), never)
	}

	sc, err = c.Issue(SSHCertRequest{SessionID: "0a1c", Identity: "svc-backup", Login: "backup", ForceCommand: "/usr/local/bin/backup.sh nightly"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, ssh.MarshalAuthorizedKey(sc.Cert), 0o600))
	out, err = exec.Command(keygen, "-L", "-f", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, `force-command /usr/local/bin/backup.sh nightly\n`, string(out))
	assert.NotContains(t, string(out), "permit-")
}

type connMeta string

func (c connMeta) User() string          { return string(c) }
func (c connMeta) SessionID() []byte     { return nil }
func (c connMeta) ClientVersion() []byte { return nil }
func (c connMeta) ServerVersion() []byte { return nil }
func (c connMeta) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c connMeta) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
