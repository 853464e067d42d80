package iga_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

const gwDay = 24 * time.Hour

// gwDecide runs a dry-run admission check, as `sallyport iga check` does.
func gwDecide(t *testing.T, r *iga.Registry, identity, target string, action iga.Action) iga.Decision {
	t.Helper()
	d, err := r.Decide(gwCtx(t), iga.Request{Identity: identity, Target: target, Action: action, DryRun: true})
	require.NoError(t, err)
	return d
}

func gwCodes(d iga.Decision) []string {
	codes := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		codes[i] = r.Code
	}
	return codes
}

func testCertify(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
	t.Run("the owner certifies for the maximum by default", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		c, err := r.Certify(gwCtx(t), "svc-backup", "alice@example.com", 0, "annual review")
		require.NoError(t, err)
		assert.Equal(t, iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com", At: gwNow, Until: gwNow.Add(90 * gwDay), Note: "annual review"}, c)

		got, err := r.Store.Identity(gwCtx(t), "svc-backup")
		require.NoError(t, err)
		require.NotNil(t, got.Certification)
		assert.True(t, got.Certification.Until.Equal(gwNow.Add(90*gwDay)), "got until %v, want %v", got.Certification.Until, gwNow.Add(90*gwDay))
		events := gwAudit(t, r, iga.AuditFilter{Type: "certify"})
		require.Len(t, events, 1)
		assert.Equal(t, "alice@example.com", events[0].Actor)
		assert.Equal(t, "svc-backup", events[0].Identity)
		assert.Equal(t, "certified until 2027-02-26T10:00:00Z (90d): annual review", events[0].Detail)
	})

	t.Run("recertifying an expired identity admits it again", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		r.Now = func() time.Time { return time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC) } // after 2027-02-13
		assert.Contains(t, gwCodes(gwDecide(t, r, "bg-root", "web-01", iga.ActionShell)), iga.ReasonCertificationExpired)
		_, err := r.Certify(gwCtx(t), "bg-root", "alice@example.com", 30*gwDay, "")
		require.NoError(t, err)
		assert.NotContains(t, gwCodes(gwDecide(t, r, "bg-root", "web-01", iga.ActionShell)), iga.ReasonCertificationExpired)
	})

	refusals := []struct {
		name, identity, by string
		period             time.Duration
		policy             iga.Policy
		want               string
		notFound           bool
	}{
		{name: "by someone other than the owner", identity: "svc-backup", by: "bob@example.com",
			want: "certify svc-backup: bob@example.com is not the owner of svc-backup; ask its owner alice@example.com to certify it"},
		{name: "longer than the maximum", identity: "svc-backup", by: "alice@example.com", period: 120 * gwDay,
			want: "certify svc-backup: a certification of 120d is longer than the maximum of 90d (certification.max_period); certify for 90d or less"},
		{name: "longer than a configured maximum", identity: "svc-backup", by: "alice@example.com", period: 31 * gwDay, policy: iga.Policy{MaxCertification: 30 * gwDay},
			want: "certify svc-backup: a certification of 31d is longer than the maximum of 30d"},
		{name: "an identity without owner", identity: "legacy-cron", by: "alice@example.com",
			want: "certify legacy-cron: legacy-cron has no owner; assign one (owner:) in the registry file and apply"},
		{name: "an unknown identity", identity: "svc-nope", by: "alice@example.com", notFound: true,
			want: "certify svc-nope: no identity svc-nope in the registry; list identities with `sallyport iga export`"},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			r := fresh(t)
			gwApplyExample(t, r)
			r.Policy = tc.policy
			before := gwSnapshot(t, r)
			_, err := r.Certify(gwCtx(t), tc.identity, tc.by, tc.period, "")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, tc.notFound, errors.Is(err, iga.ErrNotFound), "errors.Is(err, ErrNotFound)")
			assert.Equal(t, !tc.notFound, errors.Is(err, iga.ErrRefused), "errors.Is(err, ErrRefused)")
			assert.Equal(t, before, gwSnapshot(t, r), "a refused certify changed the registry")
		})
	}

	t.Run("refused: an offboarded owner", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		_, err := r.OffboardPerson(gwCtx(t), "alice@example.com", "hr@example.com", nil)
		require.NoError(t, err)
		_, err = r.Certify(gwCtx(t), "svc-backup", "alice@example.com", 0, "")
		require.ErrorIs(t, err, iga.ErrRefused)
		assert.Equal(t, "certify svc-backup: owner alice@example.com is inactive (offboarded); assign svc-backup a new owner, who then certifies it", err.Error())
	})
}

func testRevoke(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
	t.Run("suspends with a revoke decision", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		require.Empty(t, gwDecide(t, r, "svc-backup", "web-01", iga.ActionExec).Reasons, "svc-backup is admitted before the revoke")

		require.NoError(t, r.Revoke(gwCtx(t), "svc-backup", "carol@example.com", "key found in a public repo"))

		got, err := r.Store.Identity(gwCtx(t), "svc-backup")
		require.NoError(t, err)
		assert.Equal(t, iga.StateSuspended, got.State)
		require.NotNil(t, got.Certification)
		assert.Equal(t, iga.Certification{Decision: iga.DecisionRevoke, By: "carol@example.com", At: gwNow, Note: "key found in a public repo"},
			iga.Certification{Decision: got.Certification.Decision, By: got.Certification.By, At: got.Certification.At.UTC(), Note: got.Certification.Note})
		d := gwDecide(t, r, "svc-backup", "web-01", iga.ActionExec)
		assert.False(t, d.Allow)
		assert.ElementsMatch(t, []string{iga.ReasonNotActive, iga.ReasonCertificationRevoked}, gwCodes(d))

		events := gwAudit(t, r, iga.AuditFilter{Type: "revoke"})
		require.Len(t, events, 1)
		assert.Equal(t, "carol@example.com", events[0].Actor)
		assert.Equal(t, "revoked: key found in a public repo; state active→suspended", events[0].Detail)
	})

	for _, tc := range []struct {
		name, by, reason, want string
	}{
		{"without a reason", "alice@example.com", "  ", "revoke svc-backup: a reason is required"},
		{"by someone not in the registry", "eve@example.com", "because", "revoke svc-backup: revoker eve@example.com is not a person in the registry"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			r := fresh(t)
			gwApplyExample(t, r)
			before := gwSnapshot(t, r)
			err := r.Revoke(gwCtx(t), "svc-backup", tc.by, tc.reason)
			require.ErrorIs(t, err, iga.ErrRefused)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, before, gwSnapshot(t, r))
		})
	}
}

func testOffboard(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
	t.Run("orphans what the leaver owns", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		off, err := r.OffboardPerson(gwCtx(t), "alice@example.com", "hr@example.com", nil)
		require.NoError(t, err)
		orphaned := off.Orphaned
		assert.Equal(t, []string{"bg-root", "svc-backup"}, orphaned)

		p, err := r.Store.Person(gwCtx(t), "alice@example.com")
		require.NoError(t, err)
		assert.Equal(t, iga.PersonInactive, p.Status)
		assert.Equal(t, []string{iga.ReasonOwnerInactive}, gwCodes(gwDecide(t, r, "svc-backup", "web-01", iga.ActionExec)))

		events := gwAudit(t, r, iga.AuditFilter{Type: "offboard"})
		require.Len(t, events, 1)
		assert.Equal(t, "hr@example.com", events[0].Actor)
		assert.Equal(t, "person alice@example.com offboarded; orphaned: bg-root, svc-backup", events[0].Detail)

		again, err := r.OffboardPerson(gwCtx(t), "alice@example.com", "hr@example.com", nil)
		require.NoError(t, err, "offboarding twice is harmless")
		assert.Equal(t, orphaned, again.Orphaned)
		assert.Len(t, gwAudit(t, r, iga.AuditFilter{Type: "offboard"}), 1, "the second offboard changed nothing")
	})

	t.Run("an unknown person", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		_, err := r.OffboardPerson(gwCtx(t), "zed@example.com", "hr@example.com", nil)
		require.ErrorIs(t, err, iga.ErrNotFound)
		assert.Equal(t, "offboard zed@example.com: no person zed@example.com in the registry; people are keyed by e-mail", err.Error())
	})
}

var grantID = regexp.MustCompile(`^bg-[0-9a-f]{8}$`)

func testGrants(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
	t.Run("a holder opens and closes a grant", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		assert.Contains(t, gwCodes(gwDecide(t, r, "bg-root", "web-01", iga.ActionShell)), iga.ReasonBreakglassNoGrant)

		g, err := r.OpenGrant(gwCtx(t), iga.GrantRequest{Identity: "bg-root", Target: "web-01", By: "bob@example.com",
			Reason: "disk full on web-01, backups failing", Ticket: "INC-42"})
		require.NoError(t, err)
		assert.Regexp(t, grantID, g.ID)
		assert.Equal(t, gwNow.Add(30*time.Minute), g.ExpiresAt, "the default grant lasts 30 minutes")
		stored, err := r.Store.Grant(gwCtx(t), g.ID)
		require.NoError(t, err)
		assert.Equal(t, "bob@example.com", stored.OpenedBy)
		assert.Equal(t, "INC-42", stored.Ticket)
		assert.True(t, stored.Open(gwNow))
		assert.True(t, gwDecide(t, r, "bg-root", "web-01", iga.ActionShell).Allow, "an open grant admits the holder")

		events := gwAudit(t, r, iga.AuditFilter{Type: "breakglass_open"})
		require.Len(t, events, 1)
		assert.Equal(t, "bob@example.com", events[0].Actor)
		assert.Equal(t, "web-01", events[0].Target)
		assert.Contains(t, events[0].Detail, "disk full on web-01")

		closed, err := r.CloseGrant(gwCtx(t), g.ID, "bob@example.com")
		require.NoError(t, err)
		assert.Equal(t, gwNow, closed.ClosedAt)
		assert.Contains(t, gwCodes(gwDecide(t, r, "bg-root", "web-01", iga.ActionShell)), iga.ReasonBreakglassGrantExpired)
		assert.Len(t, gwAudit(t, r, iga.AuditFilter{Type: "breakglass_close"}), 1)

		_, err = r.CloseGrant(gwCtx(t), g.ID, "bob@example.com")
		require.ErrorIs(t, err, iga.ErrRefused)
		assert.Contains(t, err.Error(), "was already closed at 2026-11-28T10:00:00Z")
		_, err = r.CloseGrant(gwCtx(t), "bg-00000000", "bob@example.com")
		require.ErrorIs(t, err, iga.ErrNotFound)
	})

	t.Run("a grant as long as the maximum", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		r.Policy.MaxBreakglass = 2 * time.Hour
		g, err := r.OpenGrant(gwCtx(t), iga.GrantRequest{Identity: "bg-root", Target: "web-01", By: "carol@example.com",
			Reason: "restore after ransomware drill", For: 2 * time.Hour})
		require.NoError(t, err)
		assert.Equal(t, gwNow.Add(2*time.Hour), g.ExpiresAt)
	})

	valid := iga.GrantRequest{Identity: "bg-root", Target: "web-01", By: "bob@example.com", Reason: "disk full on web-01"}
	for _, tc := range []struct {
		name string
		edit func(*iga.GrantRequest)
		want string
	}{
		{"by a non-holder", func(g *iga.GrantRequest) { g.By = "alice@example.com" },
			"alice@example.com is not a holder of bg-root; its holders are bob@example.com, carol@example.com"},
		{"with a short reason", func(g *iga.GrantRequest) { g.Reason = "fix it " },
			"the reason has 6 characters; give at least 10 that say what broke"},
		{"for too long", func(g *iga.GrantRequest) { g.For = 2 * time.Hour },
			"a grant of 2h is not allowed: the maximum is 1h (breakglass.max_duration); ask for 1h or less"},
		{"for a negative duration", func(g *iga.GrantRequest) { g.For = -time.Minute },
			"a grant of -1m is not allowed"},
		{"to an unknown target", func(g *iga.GrantRequest) { g.Target = "web-99" },
			`unknown target "web-99"; grants name a target from the config's targets`},
		{"to a target it has no entitlement to", func(g *iga.GrantRequest) { g.Target = "db-01" },
			"bg-root has no entitlement to db-01"},
		{"on a non-break-glass identity", func(g *iga.GrantRequest) { g.Identity = "svc-backup" },
			"svc-backup is a service-account identity, not break-glass"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			r := fresh(t)
			gwApplyExample(t, r)
			before := gwSnapshot(t, r)
			req := valid
			tc.edit(&req)
			_, err := r.OpenGrant(gwCtx(t), req)
			require.ErrorIs(t, err, iga.ErrRefused)
			want := "open break-glass grant on " + req.Identity + ": " + tc.want
			assert.True(t, strings.HasPrefix(err.Error(), want), "got %q, want it to start with %q", err, want)
			grants, err := r.Store.Grants(gwCtx(t), "")
			require.NoError(t, err)
			assert.Empty(t, grants, "a refused grant was stored")
			assert.Equal(t, before, gwSnapshot(t, r))
		})
	}

	t.Run("refused: by an offboarded holder", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		_, err := r.OffboardPerson(gwCtx(t), "bob@example.com", "hr@example.com", nil)
		require.NoError(t, err)
		_, err = r.OpenGrant(gwCtx(t), valid)
		require.ErrorIs(t, err, iga.ErrRefused)
		assert.Equal(t, "open break-glass grant on bg-root: holder bob@example.com is inactive; only active people may act", err.Error())
	})
}
