package ssh

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
)

// TestTokenLogins logs in with a sallyport-minted token through the real
// ssh client's keyboard-interactive and password prompts, answered by an
// askpass program so the token never appears in argv.
func TestTokenLogins(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	token, err := h.reg.IssueToken(ctx, "svc-exec", "alice@example.com", 15*time.Minute)
	require.NoError(t, err)
	tokenFile := filepath.Join(h.dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
	askpass := filepath.Join(h.dir, "askpass")
	require.NoError(t, os.WriteFile(askpass, []byte("#!/bin/sh\ncat "+tokenFile+"\n"), 0o700))
	wrong := filepath.Join(h.dir, "askpass-wrong")
	require.NoError(t, os.WriteFile(wrong, []byte("#!/bin/sh\necho not-a-token\n"), 0o700))

	tokenSSH := func(method, program string) *exec.Cmd {
		a := []string{"-F", "/dev/null", "-o", "UserKnownHostsFile=" + h.known, "-o", "StrictHostKeyChecking=yes",
			"-o", "User=svc-exec@web", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=" + method,
			"-o", "NumberOfPasswordPrompts=1", "-p", h.port, "127.0.0.1", "echo token-ok"}
		cmd := exec.CommandContext(ctx, "ssh", a...)
		cmd.Env = append(os.Environ(), "SSH_ASKPASS="+program, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
		return cmd
	}
	for _, method := range []string{"keyboard-interactive", "password"} {
		t.Run(method, func(t *testing.T) {
			r := run(t, tokenSSH(method, askpass), "")
			assert.Equal(t, "token-ok\n", r.stdout, "stderr %q", r.stderr)
			assert.Equal(t, 0, r.code)
			r = run(t, tokenSSH(method, wrong), "")
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.stderr, "sallyport: access denied (credential_invalid)")
		})
	}
	t.Run("no credential at all is refused", func(t *testing.T) {
		_, err := gossh.Dial("tcp", h.addr, &gossh.ClientConfig{User: "svc-exec@web",
			HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		assert.Error(t, err, "logged in with the none method")
	})
}
