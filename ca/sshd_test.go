package ca

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/deploy/sandbox"
)

// targetSSHD is a real sshd trusting c, as a target trusts the bastion.
func targetSSHD(t *testing.T, c *SSHUserCA) *sandbox.SSHD {
	t.Helper()
	return sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{c.AuthorizedKey()}})
}

// dialWith logs in to sshd with a certificate issued for req.
func dialWith(t *testing.T, c *SSHUserCA, sshd *sandbox.SSHD, req SSHCertRequest) *ssh.Client {
	t.Helper()
	req.SessionID, req.Identity, req.Login = "s1", "svc-backup", sshd.User
	sc, err := c.Issue(req)
	require.NoError(t, err)
	client, err := ssh.Dial("tcp", sshd.Addr(), &ssh.ClientConfig{
		User: sshd.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(sc.Signer)},
		HostKeyCallback: ssh.FixedHostKey(sshd.HostPublicKey()), Timeout: 10 * time.Second,
	})
	require.NoError(t, err, "sshd refused the certificate")
	t.Cleanup(func() { client.Close() })
	return client
}

// TestSSHDEnforcesForceCommand: given a certificate with force-command,
// the target's own sshd runs that command whatever the client asks for —
// another command, a shell, the sftp subsystem — so a client that reached
// the target without the bastion (or through a bastion that admitted the
// wrong thing) still runs only the entitled command.
func TestSSHDEnforcesForceCommand(t *testing.T) {
	c := testCA(t, time.Now())
	c.Now = nil
	sshd := targetSSHD(t, c)
	const forced = `echo forced-$((6*7)) "asked=[$SSH_ORIGINAL_COMMAND]"`
	client := dialWith(t, c, sshd, SSHCertRequest{ForceCommand: forced})
	tests := []struct {
		name  string
		start func(*ssh.Session) error
		want  string
	}{
		{"another command", func(s *ssh.Session) error { return s.Start("id; echo not-forced") }, "forced-42 asked=[id; echo not-forced]\n"},
		{"a shell", func(s *ssh.Session) error { return s.Shell() }, "forced-42 asked=[]\n"},
		{"the sftp subsystem", func(s *ssh.Session) error { return s.RequestSubsystem("sftp") }, "forced-42 asked=[internal-sftp]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := client.NewSession()
			require.NoError(t, err)
			defer s.Close()
			stdout, err := s.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, tt.start(s))
			// Read to the end rather than Wait: x/crypto does not count a
			// subsystem request as started.
			out, err := io.ReadAll(stdout)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(out), "got %q, want the forced command's output", out)
		})
	}
}

// TestSSHDHonoursExtensions: what a target's sshd lets a session do with
// each certificate the bastion issues: a terminal only with permit-pty
// (shell), a forward only with permit-port-forwarding (forward).
func TestSSHDHonoursExtensions(t *testing.T) {
	c := testCA(t, time.Now())
	c.Now = nil
	sshd := targetSSHD(t, c)
	tests := []struct {
		name            string
		req             SSHCertRequest
		pty, forwarding bool
	}{
		{"exec", SSHCertRequest{}, false, false},
		{"one exact command", SSHCertRequest{ForceCommand: "true"}, false, false},
		{"terminal", SSHCertRequest{PTY: true}, true, false},
		{"forward", SSHCertRequest{PortForwarding: true}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := dialWith(t, c, sshd, tt.req)
			s, err := client.NewSession()
			require.NoError(t, err)
			defer s.Close()
			err = s.RequestPty("xterm", 24, 80, ssh.TerminalModes{})
			assert.Equal(t, tt.pty, err == nil, "terminal: got error %v", err)

			// A forward to sshd's own port: the target host itself.
			nc, err := client.Dial("tcp", sshd.Addr())
			assert.Equal(t, tt.forwarding, err == nil, "forward: got error %v", err)
			if err == nil {
				banner := make([]byte, 8)
				_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = nc.Read(banner)
				assert.NoError(t, err)
				assert.True(t, strings.HasPrefix(string(banner), "SSH-2.0"), "forwarded %q, want sshd's banner", banner)
				nc.Close()
			} else {
				var oc *ssh.OpenChannelError
				assert.ErrorAs(t, err, &oc)
			}
		})
	}
}
