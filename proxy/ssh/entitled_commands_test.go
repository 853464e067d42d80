package ssh

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

// The harness identities of issue 21: svc-backup-cmd may exec
// "<harness dir>/backup.sh *", svc-backup-one exactly exactOneCommand (and
// sftp).
const exactOneCommand = "/bin/echo exactly-this"

// backupScript writes the script svc-backup-cmd is entitled to run, in the
// harness directory the registry names, and returns its path.
func backupScript(t *testing.T, h *harness) string {
	t.Helper()
	path := filepath.Join(h.dir, "backup.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\necho \"backup ran: $*\"\n"), 0o755))
	return path
}

// targetLog is what the target's sshd logged so far (LogLevel VERBOSE: a
// line per accepted certificate and per started session).
func targetLog(t *testing.T, h *harness) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.sshd.Dir, "sshd.log"))
	require.NoError(t, err)
	return string(b)
}

// targetCerts are the distinct certificates the target's sshd checked,
// oldest first (sshd checks one twice: when the key is offered and when
// its signature arrives).
func targetCerts(t *testing.T, h *harness) []*gossh.Certificate {
	t.Helper()
	cs, err := h.sshd.Certificates()
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []*gossh.Certificate
	seen := map[uint64]bool{}
	for _, c := range cs {
		if !seen[c.Serial] {
			seen[c.Serial] = true
			out = append(out, c)
		}
	}
	return out
}

// reachedTarget counts what arrived at the target: certificates checked,
// logins accepted, sessions started.
func reachedTarget(t *testing.T, h *harness) (certs, logins, sessions int) {
	t.Helper()
	log := targetLog(t, h)
	return len(targetCerts(t, h)), strings.Count(log, "Accepted publickey"), strings.Count(log, "Starting session:")
}

// deniedCommands are the deny decisions of identity for command_not_entitled.
func deniedCommands(t *testing.T, h *harness, ctx context.Context, identity string) []iga.AuditEvent {
	t.Helper()
	events, err := h.reg.Store.Audit(ctx, iga.AuditFilter{Identity: identity, Type: "decision"})
	require.NoError(t, err)
	var out []iga.AuditEvent
	for _, e := range events {
		for _, r := range e.Reasons {
			if !e.Allow && e.Action == iga.ActionExec && r.Code == iga.ReasonCommandNotEntitled {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// TestCommandEntitlementWildcard: an identity entitled to "backup.sh *"
// runs its script with an argument, and nothing else: each other command,
// and each attempt to append shell syntax to the allowed one, is refused
// with command_not_entitled before anything reaches the target.
func TestCommandEntitlementWildcard(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 90*time.Second)
	script := backupScript(t, h)

	r := run(t, h.ssh(ctx, "svc-backup-cmd", hostArgs(script+" nightly")...), "")
	require.Equal(t, 0, r.code, "stderr %q", r.stderr)
	assert.Equal(t, "backup ran: nightly\n", r.stdout)
	_, logins, sessions := reachedTarget(t, h)
	require.Equal(t, 1, logins, "the admitted command logged in to the target once")
	require.Equal(t, 1, sessions, "the admitted command started one session on the target")

	marker := filepath.Join(h.dir, "injected")
	refused := []string{
		"id",
		script,                              // the wildcard needs an argument
		script + " x; id",                   // a second command
		script + " x;touch " + marker,       // without a space
		script + " $(touch " + marker + ")", // command substitution
		script + " `touch " + marker + "`",  // the old form
		script + " x | sh",                  // a pipe
		script + " x && touch " + marker,    // a list
		script + " x > " + marker,           // a redirection
		script + " x\ntouch " + marker,      // a newline
		script + " x\rtouch " + marker,      // a carriage return
		script + " ../../../bin/id",         // out of the directory
		script + " --help",                  // an option where the pattern has an argument
		script + " nightly extra",           // a second argument
		strings.Replace(script, "/backup.sh", "/./backup.sh", 1) + " nightly", // the same file by another name
	}
	certs, logins, sessions := reachedTarget(t, h)
	for _, command := range refused {
		t.Run(strings.ReplaceAll(command, h.dir+"/", ""), func(t *testing.T) {
			r := run(t, h.ssh(ctx, "svc-backup-cmd", hostArgs(command)...), "")
			assert.Equal(t, 1, r.code, "got exit %d, want 1 (stderr %q)", r.code, r.stderr)
			assert.Contains(t, r.stderr, "sallyport: access denied (command_not_entitled): ")
			assert.Contains(t, r.stderr, "backup.sh *", "the refusal names the allowed command")
			assert.Equal(t, 1, countLines(r.stderr, "sallyport:"), "got stderr %q, want one sallyport line", r.stderr)
			assert.Empty(t, r.stdout)
			assert.NoFileExists(t, marker, "the target ran the injected command")
		})
	}
	c, l, s := reachedTarget(t, h)
	assert.Equal(t, [3]int{certs, logins, sessions}, [3]int{c, l, s},
		"refused commands reached the target (certificates, logins, sessions); sshd log:\n%s", targetLog(t, h))

	denied := deniedCommands(t, h, ctx, "svc-backup-cmd")
	require.Len(t, denied, len(refused), "one deny decision per refused command")
	assert.Contains(t, denied[0].Detail, `asked "id"`, "the audit event names the command")
	escaped := false
	for _, e := range denied {
		escaped = escaped || strings.Contains(e.Detail, `x\ntouch`)
	}
	assert.True(t, escaped, "no audit event shows the newline variant, escaped: %+v", denied)
}

// TestCommandEntitlementBadInput: command lines no OpenSSH client sends
// from a shell (NUL, invalid UTF-8, a control character, 250 KB), sent
// with x/crypto: refused or matched exactly as the registry's rules say,
// each with a decision in the audit trail, and the bastion goes on serving.
func TestCommandEntitlementBadInput(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 90*time.Second)
	script := backupScript(t, h)

	tests := []struct {
		name, command string
		admitted      bool
	}{
		{"NUL", script + " x\x00id", false},
		{"invalid UTF-8", script + " \xff\xfe", false},
		{"control character", script + " x\x1b[2Jid", false},
		{"a long argument that matches", script + " " + strings.Repeat("a", 64<<10), true},
		// Past what the registry matches (128 KiB, the most Linux passes as
		// one argument) and as close to the SSH packet limit of 256 KiB as
		// an exec request gets: a 1 MB command line cannot be sent at all
		// (OpenSSH and x/crypto refuse to write such a packet, and the
		// bastion's transport to read one).
		{"250 KB", script + " " + strings.Repeat("a", 250<<10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(deniedCommands(t, h, ctx, "svc-backup-cmd"))
			out, err := h.goSSHRun("svc-backup-cmd", tt.command)
			if tt.admitted {
				require.NoError(t, err, "output %.200q", out)
				assert.True(t, strings.HasPrefix(out, "backup ran: aaaa"), "got %.60q", out)
				return
			}
			require.Error(t, err)
			assert.Contains(t, out, "sallyport: access denied (command_not_entitled): ")
			assert.NotContains(t, out, "backup ran", "the target ran it")
			assert.NotContains(t, out, "\x1b", "a control character reached the client's terminal")
			assert.Less(t, len(out), 4<<10, "the refusal echoes the whole command line back")
			assert.Len(t, deniedCommands(t, h, ctx, "svc-backup-cmd"), before+1, "a deny decision for it")
		})
	}
	out, err := h.goSSHRun("svc-backup-cmd", script+" still-serving")
	require.NoError(t, err, "output %q", out)
	assert.Equal(t, "backup ran: still-serving\n", out)
}

// TestCommandEntitlementExact: an identity entitled to exactly one command
// runs it, and the certificate the target saw forces that command
// (force-command), with no terminal and no forwarding permitted: the target
// would run nothing else even if asked without the bastion.
func TestCommandEntitlementExact(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)

	r := run(t, h.ssh(ctx, "svc-backup-one", hostArgs(exactOneCommand)...), "")
	require.Equal(t, 0, r.code, "stderr %q", r.stderr)
	assert.Equal(t, "exactly-this\n", r.stdout)

	certs := targetCerts(t, h)
	require.Len(t, certs, 1)
	c := certs[0]
	assert.Equal(t, exactOneCommand, c.CriticalOptions["force-command"], "critical options %v", c.CriticalOptions)
	for _, never := range []string{"permit-pty", "permit-port-forwarding", "permit-agent-forwarding", "permit-X11-forwarding", "permit-user-rc"} {
		assert.NotContains(t, c.Extensions, never)
	}
	assert.Contains(t, targetLog(t, h), "Starting session: forced-command (key-option) '"+exactOneCommand+"'",
		"the target's sshd ran the command as the certificate's forced command")

	for _, command := range []string{"/bin/echo other", exactOneCommand + " ", exactOneCommand + "; id", "id"} {
		r := run(t, h.ssh(ctx, "svc-backup-one", hostArgs(command)...), "")
		assert.Equal(t, 1, r.code, "%q: got exit %d, want 1 (stderr %q)", command, r.code, r.stderr)
		assert.Contains(t, r.stderr, "sallyport: access denied (command_not_entitled): ", "%q", command)
		assert.Contains(t, r.stderr, exactOneCommand, "the refusal names the allowed command")
		assert.Empty(t, r.stdout)
	}
	// A terminal is the shell action, which a commands entitlement never has.
	r = run(t, h.ssh(ctx, "svc-backup-one", append([]string{"-tt"}, hostArgs(exactOneCommand)...)...), "")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "sallyport: access denied (action_not_entitled)")
	assert.Len(t, targetCerts(t, h), 1, "a refused command reached the target")

	// Legacy scp is sftp, admitted by its exact grammar and not by
	// commands, and its certificate forces nothing.
	local, remote := filepath.Join(h.dir, "payload"), filepath.Join(h.dir, "copied")
	require.NoError(t, os.WriteFile(local, []byte("payload\n"), 0o600))
	a := append(h.opts("svc-backup-one", "svc-backup-one@web"), "-P", h.port, "-O", local, "127.0.0.1:"+remote)
	r = run(t, exec.CommandContext(ctx, "scp", a...), "")
	require.Equal(t, 0, r.code, "scp -O: %s", r.stderr)
	assert.FileExists(t, remote)
	certs = targetCerts(t, h)
	require.Len(t, certs, 2)
	assert.Empty(t, certs[1].CriticalOptions, "the scp session's certificate")
}

// TestForcedCommandConnectionNotShared: channels of one client connection
// share a target connection per certificate profile; a connection whose
// certificate forces the one command never carries another action. Here
// one client connection runs the forced command, then sftp (which must
// reach the target's sftp server, not the forced command), then the
// command again on the first target connection.
func TestForcedCommandConnectionNotShared(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	client, _, _, err := h.goClient(t, "svc-backup-one", "svc-backup-one@web")
	require.NoError(t, err)
	defer client.Close()

	runForced := func() {
		s, err := client.NewSession()
		require.NoError(t, err)
		defer s.Close()
		out, err := s.CombinedOutput(exactOneCommand)
		require.NoError(t, err, "output %q", out)
		assert.Equal(t, "exactly-this\n", string(out))
	}
	runForced()
	assert.Equal(t, 3, sftpVersion(t, client), "the sftp subsystem answered SSH_FXP_INIT")
	runForced()

	certs := targetCerts(t, h)
	require.Len(t, certs, 2, "one certificate per profile: the forced exec's and sftp's")
	assert.Equal(t, exactOneCommand, certs[0].CriticalOptions["force-command"])
	assert.NotContains(t, certs[1].CriticalOptions, "force-command", "sftp's certificate forces a command")
	assert.Empty(t, certs[1].Extensions, "sftp's certificate permits %v", certs[1].Extensions)
}

// sftpVersion opens the sftp subsystem, sends SSH_FXP_INIT and returns the
// version of the server's SSH_FXP_VERSION.
func sftpVersion(t *testing.T, client *gossh.Client) int {
	t.Helper()
	s, err := client.NewSession()
	require.NoError(t, err)
	defer s.Close()
	in, err := s.StdinPipe()
	require.NoError(t, err)
	out, err := s.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, s.RequestSubsystem("sftp"))
	_, err = in.Write([]byte{0, 0, 0, 5, 1, 0, 0, 0, 3}) // length 5, SSH_FXP_INIT, version 3
	require.NoError(t, err)
	head := make([]byte, 9)
	_, err = io.ReadFull(out, head)
	require.NoError(t, err, "no SSH_FXP_VERSION")
	require.Equal(t, byte(2), head[4], "got packet type %d (%q), want SSH_FXP_VERSION", head[4], head)
	return int(binary.BigEndian.Uint32(head[5:]))
}
