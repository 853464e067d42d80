package ssh

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// auditEvents reads the audit trail of one type, waiting up to a few
// seconds for events the bastion writes off the client's path.
func (h *harness) auditEvents(ctx context.Context, typ string, want func([]iga.AuditEvent) bool) []iga.AuditEvent {
	h.t.Helper()
	var events []iga.AuditEvent
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		events, err = h.reg.Store.Audit(ctx, iga.AuditFilter{Type: typ})
		require.NoError(h.t, err)
		if want(events) {
			break
		}
	}
	return events
}

// TestLoginFailuresLookAlike: before a client has proven a credential, an
// unknown identity, a key of another identity, an expired key and a token
// of another identity all read the same, so nobody can list identities or
// keys by trying; each failed connection is one login_failed audit event
// with the real reason, and no token is kept in it.
func TestLoginFailuresLookAlike(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)
	token, err := h.reg.IssueToken(ctx, "svc-exec", "alice@example.com", 15*time.Minute)
	require.NoError(t, err)
	askpass := filepath.Join(h.dir, "askpass")
	require.NoError(t, os.WriteFile(askpass, []byte("#!/bin/sh\necho '"+token+"'\n"), 0o700))
	tokenAs := func(user string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-o", "UserKnownHostsFile="+h.known, "-o", "StrictHostKeyChecking=yes",
			"-o", "User="+user, "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
			"-o", "NumberOfPasswordPrompts=1", "-p", h.port, "127.0.0.1", "echo ran")
		cmd.Env = append(os.Environ(), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
		return cmd
	}
	cases := []struct {
		name, reason string
		cmd          *exec.Cmd
	}{
		{"unknown identity", iga.ReasonUnknownIdentity, h.sshAs(ctx, "svc-ops", "nosuch@web", hostArgs("echo ran")...)},
		{"key of another identity", iga.ReasonCredentialInvalid, h.sshAs(ctx, "svc-exec", "svc-backup-like@web", hostArgs("echo ran")...)},
		{"wrong key for a real identity", iga.ReasonCredentialInvalid, h.sshAs(ctx, "svc-exec", "svc-ops@web", hostArgs("echo ran")...)},
		{"expired key", iga.ReasonCredentialExpired, h.ssh(ctx, "svc-keyexp", hostArgs("echo ran")...)},
		{"token of another identity", iga.ReasonCredentialInvalid, tokenAs("svc-ops@web")},
	}
	var first string
	for _, tc := range cases {
		r := run(t, tc.cmd, "")
		require.Equal(t, 255, r.code, "%s: stderr %q", tc.name, r.stderr)
		line := firstLine(r.stderr, "sallyport:")
		assert.Equal(t, loginRefused, line, "%s: the client's line", tc.name)
		if first == "" {
			first = line
		}
		assert.Equal(t, first, line, "%s reads differently from an unknown identity", tc.name)
		assert.NotContains(t, r.stderr, "SHA256:", "%s: the client learns nothing of the keys", tc.name)
	}
	events := h.auditEvents(ctx, "login_failed", func(e []iga.AuditEvent) bool { return len(e) >= len(cases) })
	require.Len(t, events, len(cases), "one login_failed event per failed connection: %+v", events)
	byIdentity := map[string]iga.AuditEvent{}
	for _, e := range events {
		byIdentity[e.Identity] = e
		assert.False(t, e.Allow)
		assert.Equal(t, "127.0.0.1", e.Source)
		assert.NotContains(t, e.Detail, token, "the token reached the audit trail")
		for _, r := range e.Reasons {
			assert.NotContains(t, r.Message, token, "the token reached the audit trail")
		}
	}
	assert.Equal(t, iga.ReasonUnknownIdentity, byIdentity["nosuch"].Reasons[0].Code)
	assert.Contains(t, byIdentity["nosuch"].Reasons[0].Message, `no identity named "nosuch"`)
	assert.Contains(t, byIdentity["nosuch"].Detail, `asked "publickey SHA256:`)
	assert.Equal(t, iga.ReasonCredentialExpired, byIdentity["svc-keyexp"].Reasons[0].Code)
	assert.Contains(t, byIdentity["svc-ops"].Detail, "protocol ssh")

	t.Run("a client trying a wrong key before the right one has not failed", func(t *testing.T) {
		a := append(h.opts("svc-exec", "svc-exec@web"), "-i", h.keys["svc-ops"], "-p", h.port, "127.0.0.1", "echo ok")
		// -i twice: ssh offers svc-exec's key, then svc-ops's; put the wrong one first.
		a = append([]string{"-i", h.keys["svc-ops"]}, a...)
		r := run(t, exec.CommandContext(ctx, "ssh", a...), "")
		require.Equal(t, "ok\n", r.stdout, "stderr %q", r.stderr)
		time.Sleep(300 * time.Millisecond)
		after, err := h.reg.Store.Audit(ctx, iga.AuditFilter{Type: "login_failed"})
		require.NoError(t, err)
		assert.Len(t, after, len(cases), "a successful login with a second key wrote a failure")
	})
}

func firstLine(s, prefix string) string {
	for _, l := range splitLines(s) {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimRight(l, "\r")
		}
	}
	return ""
}

// TestLoginDecidedAtAuthentication: `ssh -N` as an identity the registry
// refuses is closed by the bastion after FirstChannelTimeout, with a deny
// decision for the login in the audit trail; an admitted identity that
// opens no channel is closed too, unless it may forward (ssh -N -L).
func TestLoginDecidedAtAuthentication(t *testing.T) {
	h := newHarness(t, harnessOptions{tune: func(s *Server) { s.FirstChannelTimeout = time.Second }})
	ctx := testCtx(t, 60*time.Second)
	for _, tc := range []struct{ name, identity string }{
		{"refused identity", "svc-uncert"},
		{"admitted identity without forward", "svc-exec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := run(t, h.ssh(ctx, tc.identity, "-N", "127.0.0.1"), "")
			took := time.Since(start)
			assert.Equal(t, 255, r.code, "stderr %q", r.stderr)
			assert.Less(t, took, 8*time.Second, "the bastion kept the connection open")
			assert.GreaterOrEqual(t, took, 900*time.Millisecond, "closed before the client had time to open a channel")
		})
	}
	events := h.auditEvents(ctx, "decision", func(e []iga.AuditEvent) bool { return len(e) >= 2 })
	var uncert *iga.AuditEvent
	for i, e := range events {
		if e.Identity == "svc-uncert" && e.Action == iga.ActionConnect {
			uncert = &events[i]
		}
	}
	require.NotNil(t, uncert, "no connect decision for svc-uncert in %+v", events)
	assert.False(t, uncert.Allow)
	assert.Equal(t, iga.ReasonNotCertified, uncert.Reasons[0].Code)

	t.Run("a refused login still reads its reason on the channel", func(t *testing.T) {
		r := run(t, h.ssh(ctx, "svc-uncert", hostArgs("echo ran")...), "")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "sallyport: access denied (not_certified)")
		assert.Equal(t, 1, countLines(r.stderr, "sallyport:"), "stderr %q", r.stderr)
	})
	t.Run("ssh -N by an identity that may forward stays", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cmd := h.ssh(cctx, "svc-ops", "-N", "127.0.0.1")
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("ssh -N as svc-ops ended after less than 3s: %v", err)
		case <-time.After(3 * time.Second):
		}
		cancel()
		<-done
	})
}

// TestRefusalsLeaveATrace: remote forwarding, agent forwarding and a
// forward to another host are each refused with a "sallyport:" reason the
// client sees, a deny in the audit trail naming what was asked, and a note
// in the session's recording when there is one.
func TestRefusalsLeaveATrace(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 60*time.Second)

	t.Run("ssh -R with a command", func(t *testing.T) {
		r := run(t, h.ssh(ctx, "svc-ops", append([]string{"-R", "0:localhost:80"}, hostArgs("sleep 0.5; echo ran")...)...), "")
		assert.Equal(t, "ran\n", r.stdout, "stderr %q", r.stderr)
		assert.Contains(t, r.stderr, "sallyport: access denied (not_offered): tcpip-forward")
	})
	t.Run("ssh -N -R", func(t *testing.T) {
		r := run(t, h.ssh(ctx, "svc-ops", "-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:localhost:80", "127.0.0.1"), "")
		assert.Equal(t, 255, r.code)
		assert.Contains(t, r.stderr, "remote port forwarding failed")
	})
	t.Run("agent forwarding", func(t *testing.T) {
		agent := exec.CommandContext(ctx, "ssh-agent", "-D", "-a", filepath.Join(h.dir, "agent.sock"))
		require.NoError(t, agent.Start())
		t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
		time.Sleep(200 * time.Millisecond)
		cmd := h.ssh(ctx, "svc-ops", append([]string{"-A"}, hostArgs("echo agent-less")...)...)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+filepath.Join(h.dir, "agent.sock"))
		r := run(t, cmd, "")
		assert.Equal(t, "agent-less\n", r.stdout, "stderr %q", r.stderr)
		assert.Contains(t, r.stderr, "sallyport: access denied (not_offered): agent forwarding")
	})
	t.Run("forward to another host", func(t *testing.T) {
		r := run(t, h.ssh(ctx, "svc-ops", append([]string{"-W", "192.0.2.10:5432"}, hostArgs()...)...), "")
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "sallyport: access denied (action_not_entitled): forwarding goes only to the target itself")
	})

	refusals := h.auditEvents(ctx, "refusal", func(e []iga.AuditEvent) bool { return len(e) >= 4 })
	var asked []string
	for _, e := range refusals {
		assert.False(t, e.Allow)
		assert.Equal(t, "svc-ops", e.Identity)
		asked = append(asked, e.Detail)
	}
	all := strings.Join(asked, "\n")
	assert.Contains(t, all, `asked "tcpip-forward`)
	assert.Contains(t, all, `asked "auth-agent-req@openssh.com (agent forwarding)"`)
	assert.Contains(t, all, `asked "direct-tcpip 192.0.2.10:5432"`)
	decisions, err := h.reg.Store.Audit(ctx, iga.AuditFilter{Identity: "svc-ops", Type: "decision"})
	require.NoError(t, err)
	sessions := map[string]bool{}
	for _, d := range decisions {
		assert.False(t, d.Action == iga.ActionForward && d.Allow, "the refused forward was audited as allowed: %+v", d)
		sessions[iga.AuditDetailFields(d.Detail)["session"]] = true
	}
	for _, e := range refusals {
		id := iga.AuditDetailFields(e.Detail)["session"]
		assert.True(t, id != "" && sessions[id], "refusal %q names no session its connection's login decision names", e.Detail)
	}

	var notes []string
	for _, src := range h.recordings(ctx) {
		for _, n := range eventsOf(replayJSON(t, ctx, src), "note") {
			if text, _ := n["text"].(string); strings.HasPrefix(text, "refused ") {
				notes = append(notes, text)
			}
		}
	}
	joined := strings.Join(notes, "\n")
	assert.Contains(t, joined, "refused tcpip-forward", "the -R session's recording notes the refusal")
	assert.Contains(t, joined, "refused auth-agent-req@openssh.com", "the -A session's recording notes the refusal")
}
