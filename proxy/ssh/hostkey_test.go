package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
)

// TestTargetHostKeyIsVerified: a target presenting another host key than
// configured, or one with none configured, is refused; never trusted on
// first use.
func TestTargetHostKeyIsVerified(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	other, err := gossh.NewPublicKey(pub)
	require.NoError(t, err)
	tests := []struct {
		name string
		keys []gossh.PublicKey
		want string
	}{
		{"mismatch", []gossh.PublicKey{other}, "which is not its configured host_key"},
		{"none configured", nil, "never trusts a host key on first use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{tune: func(s *Server) {
				orig := s.Targets
				s.Targets = func(name string) (Target, bool) {
					tg, ok := orig(name)
					tg.HostKeys = tt.keys
					return tg, ok
				}
			}})
			ctx := testCtx(t, 30*time.Second)
			r := run(t, h.ssh(ctx, "svc-ops", hostArgs("echo ran")...), "")
			assert.Contains(t, r.stderr, tt.want)
			assert.NotContains(t, r.stdout, "ran")
			assert.Equal(t, 1, r.code)
			certs, err := h.sshd.Certificates()
			require.NoError(t, err)
			assert.Empty(t, certs, "the bastion logged in to a target it could not verify")
		})
	}
}

// TestTargetHostCertificate: a target configured with only a host_ca is
// accepted when its sshd presents a host certificate from that CA, and
// refused, before logging in, when the certificate is from another CA.
func TestTargetHostCertificate(t *testing.T) {
	hostCA, otherCA := newCA(t), newCA(t)
	tests := []struct {
		name    string
		trusted gossh.PublicKey
		ok      bool
	}{
		{"signed by host_ca", hostCA.PublicKey(), true},
		{"signed by another CA", otherCA.PublicKey(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{hostCA: hostCA, tune: func(s *Server) {
				orig := s.Targets
				s.Targets = func(name string) (Target, bool) {
					tg, ok := orig(name)
					tg.HostKeys, tg.HostCA = nil, tt.trusted
					return tg, ok
				}
			}})
			ctx := testCtx(t, 30*time.Second)
			r := run(t, h.ssh(ctx, "svc-ops", hostArgs("echo ran")...), "")
			certs, err := h.sshd.Certificates()
			require.NoError(t, err)
			if tt.ok {
				assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
				assert.Equal(t, "ran\n", r.stdout)
				assert.NotEmpty(t, certs, "sshd saw no certificate from the bastion")
				return
			}
			assert.Contains(t, r.stderr, "which is not its configured host_ca")
			assert.Contains(t, r.stderr, gossh.FingerprintSHA256(hostCA.PublicKey()), "the refusal names the CA that signed")
			assert.NotContains(t, r.stdout, "ran")
			assert.Equal(t, 1, r.code)
			assert.Empty(t, certs, "the bastion logged in to a target it could not verify")
		})
	}
}

func newCA(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err := gossh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return s
}
