package ssh

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/recorder"
)

// TestEveryRefusalShowsItsCode runs the real ssh client into every reason
// code reachable over SSH and checks the one line on its stderr.
func TestEveryRefusalShowsItsCode(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 80*time.Second)
	tests := []struct {
		code, identity, user string
		wantExit             int // 1: refused at the channel; 255: at login
	}{
		// Before a credential is proven, every failure reads the same
		// (TestLoginFailuresLookAlike); the reason is in the audit trail.
		{iga.ReasonCredentialInvalid, "svc-ops", "nobody@web", 255},
		{iga.ReasonUnknownTarget, "svc-ops", "svc-ops@nowhere", 1},
		{iga.ReasonUnknownTarget, "svc-ops", "svc-ops", 255},
		{iga.ReasonNotActive, "svc-new", "", 1},
		{iga.ReasonKindNotAdmitted, "joe", "", 1},
		{iga.ReasonNoOwner, "svc-orphan", "", 1},
		{iga.ReasonOwnerInactive, "svc-bobs", "", 1},
		{iga.ReasonNotCertified, "svc-uncert", "", 1},
		{iga.ReasonCertificationExpired, "svc-certexp", "", 1},
		{iga.ReasonCertificationRevoked, "svc-revoked", "", 1},
		{iga.ReasonNoEntitlement, "svc-noent", "", 1},
		{iga.ReasonEntitlementExpired, "svc-entexp", "", 1},
		{iga.ReasonActionNotEntitled, "svc-sftp", "", 1},
		{iga.ReasonCredentialInvalid, "svc-exec", "svc-ops@web", 255},
		{iga.ReasonCredentialInvalid, "svc-keyexp", "", 255},
		{iga.ReasonSourceNotAllowed, "svc-src", "", 1},
		{iga.ReasonEnvironmentMismatch, "svc-env", "", 1},
		{iga.ReasonBreakglassNoGrant, "bg-root", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.code+" "+tt.identity, func(t *testing.T) {
			user := tt.user
			if user == "" {
				user = tt.identity + "@web"
			}
			r := run(t, h.sshAs(ctx, tt.identity, user, hostArgs("echo ran")...), "")
			assert.Contains(t, r.stderr, "sallyport: access denied (", "stderr: %q", r.stderr)
			assert.Contains(t, r.stderr, tt.code, "stderr: %q", r.stderr)
			assert.Equal(t, 1, countLines(r.stderr, "sallyport:"), "got stderr %q, want one sallyport line", r.stderr)
			assert.NotContains(t, r.stdout, "ran")
			assert.Equal(t, tt.wantExit, r.code, "got exit %d, want %d", r.code, tt.wantExit)
		})
	}
	t.Run(iga.ReasonBreakglassGrantExpired, func(t *testing.T) {
		_, err := h.reg.OpenGrant(ctx, iga.GrantRequest{Identity: "bg-root", Target: "web", By: "carol@example.com",
			Reason: "incident 42: disk full on web", For: 30 * time.Minute})
		require.NoError(t, err)
		r := run(t, h.ssh(ctx, "bg-root", hostArgs("echo during-grant")...), "")
		require.Equal(t, "during-grant\n", r.stdout, "stderr %q", r.stderr)
		h.offset.Store(int64(time.Hour))
		defer h.offset.Store(0)
		r = run(t, h.ssh(ctx, "bg-root", hostArgs("echo after-grant")...), "")
		assert.Contains(t, r.stderr, iga.ReasonBreakglassGrantExpired)
		assert.Equal(t, 1, r.code)
	})
}

func countLines(s, prefix string) int {
	n := 0
	for _, l := range splitLines(s) {
		if len(l) >= len(prefix) && l[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, trimCR(s[start:i]))
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func trimCR(s string) string {
	if len(s) > 0 && s[len(s)-1] == '\r' {
		return s[:len(s)-1]
	}
	return s
}

// failingRecorder stands in for a recording store that is down.
type failingRecorder struct{}

func (failingRecorder) Open(context.Context, recorder.SessionMeta) (*recorder.Session, error) {
	return nil, errors.New("spool disk full")
}

func TestRecordingUnavailableRefuses(t *testing.T) {
	h := newHarness(t, harnessOptions{tune: func(s *Server) { s.Recorder = failingRecorder{} }})
	ctx := testCtx(t, 30*time.Second)
	r := run(t, h.ssh(ctx, "svc-ops", hostArgs("echo ran")...), "")
	assert.Contains(t, r.stderr, "sallyport: access denied (recording_unavailable)")
	assert.NotContains(t, r.stdout, "ran")
	assert.Equal(t, 1, r.code)
	certs, err := h.sshd.Certificates()
	require.NoError(t, err)
	assert.Empty(t, certs, "the target was logged in to although the session could not be recorded")
}
