package iga_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// govCampaignIdentities: two of alice's, one of bob's (on db, certified
// for long), one unowned, one deprovisioned and a human account.
func govCampaignIdentities(t *testing.T) []iga.Identity {
	_, line := admKey(t)
	a, b, c := admPassing("svc-a", line), admPassing("svc-b", line), admPassing("svc-c", line)
	c.Owner, c.Certification.By = "bob@example.com", "bob@example.com"
	c.Entitlements[0].Target = "db"
	c.Certification.Until = admNow.AddDate(0, 3, 0)
	b.Certification.Until = admNow.AddDate(0, 0, 10)
	d := admPassing("svc-d", line)
	d.Owner, d.Certification = "", nil
	gone := admPassing("svc-gone", line)
	gone.State = iga.StateDeprovisioned
	human := admPassing("person", line)
	human.Kind = iga.KindHuman
	return []iga.Identity{a, b, c, d, gone, human}
}

func govCampaignRegistry(t *testing.T, s iga.Store) (*iga.Registry, *govClock) {
	t.Helper()
	admSeed(t, s, govPeople, govCampaignIdentities(t), nil)
	clock := &govClock{t: admNow}
	reg := admRegistry(s, nil)
	reg.Now = clock.Now
	return reg, clock
}

// TestCampaignScopes: one item per live, non-human identity in scope,
// reviewed by its owner.
func TestCampaignScopes(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		reg, _ := govCampaignRegistry(t, s)
		for _, tc := range []struct {
			scope   string
			want    []string
			wantErr string
		}{
			{"all", []string{"svc-a", "svc-b", "svc-c", "svc-d"}, ""},
			{"owner:alice@example.com", []string{"svc-a", "svc-b"}, ""},
			{"target:db", []string{"svc-c"}, ""},
			{"expiring:30d", []string{"svc-b", "svc-d"}, ""},
			{"owner:nobody@example.com", nil, "no identity is in scope"},
			{"color:red", nil, "want all, owner:PERSON"},
			{"expiring:soon", nil, "want e.g. 90s, 15m, 1h or 90d"},
			{"expiring:0d", nil, "more than zero"},
		} {
			t.Run(tc.scope, func(t *testing.T) {
				rep, err := reg.StartCampaign(context.Background(), iga.CampaignRequest{Name: "Q4", Scope: tc.scope, Due: 14 * 24 * time.Hour, By: "dave@example.com"})
				if tc.wantErr != "" {
					require.ErrorIs(t, err, iga.ErrRefused)
					assert.ErrorContains(t, err, tc.wantErr)
					return
				}
				require.NoError(t, err)
				assert.Equalf(t, tc.want, rep.Undecided, "got items %v, want %v", rep.Undecided, tc.want)
				for _, it := range rep.Items {
					id, err := s.Identity(context.Background(), it.Identity)
					require.NoError(t, err)
					assert.Equal(t, id.Owner, it.Reviewer, "the reviewer of %s is its owner", it.Identity)
				}
				assert.Equal(t, admNow.Add(14*24*time.Hour), rep.Campaign.DueAt)
			})
		}
	})
}

// TestCampaignFlow: certify and revoke by the owner take effect on
// admission and on a live session, a non-owner is refused, and close
// reports what stayed undecided.
func TestCampaignFlow(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		ctx := context.Background()
		reg, clock := govCampaignRegistry(t, s)
		rep, err := reg.StartCampaign(ctx, iga.CampaignRequest{Name: "Q4", Due: 14 * 24 * time.Hour})
		require.NoError(t, err)
		cp := rep.Campaign.ID
		req := iga.Request{Identity: "svc-b", Target: "web-01", Action: iga.ActionExec}
		d, err := reg.Decide(ctx, req)
		require.NoError(t, err)
		require.True(t, d.Allow, "got reasons %v, want allow", d.Reasons)
		sess := govWatch(t, reg, req, d)

		for _, tc := range []struct {
			name, identity, by, decision, wantErr string
		}{
			{"non-owner refused", "svc-c", "alice@example.com", iga.DecisionCertify, "its owner bob@example.com decides it"},
			{"auditor is no reviewer", "svc-a", "dave@example.com", iga.DecisionRevoke, "not the reviewer"},
			{"unowned cannot be decided", "svc-d", "alice@example.com", iga.DecisionCertify, "has no owner"},
			{"not in the campaign", "svc-gone", "alice@example.com", iga.DecisionCertify, "is not in campaign"},
			{"bad decision", "svc-a", "alice@example.com", "approve", `decision "approve"`},
			{"owner certifies", "svc-a", "alice@example.com", iga.DecisionCertify, ""},
			{"owner revokes", "svc-b", "alice@example.com", iga.DecisionRevoke, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := reg.DecideCampaignItem(ctx, iga.CampaignDecision{Campaign: cp, Identity: tc.identity, By: tc.by,
					Decision: tc.decision, Note: "Q4 review"})
				if tc.wantErr != "" {
					require.Error(t, err)
					assert.Truef(t, errors.Is(err, iga.ErrRefused) || errors.Is(err, iga.ErrNotFound), "got %v, want a refusal", err)
					assert.ErrorContains(t, err, tc.wantErr)
					return
				}
				require.NoError(t, err)
			})
		}

		a, err := s.Identity(ctx, "svc-a")
		require.NoError(t, err)
		assert.Equal(t, admNow.Add(90*24*time.Hour), a.Certification.Until, "certified for certification.max_period")
		assert.Equal(t, "alice@example.com", a.Certification.By)
		govEnded(t, sess, iga.ReasonCertificationRevoked)
		b, err := s.Identity(ctx, "svc-b")
		require.NoError(t, err)
		assert.Equal(t, iga.StateSuspended, b.State, "revoke suspends")

		clock.Add(15 * 24 * time.Hour)
		rep, err = reg.CloseCampaign(ctx, cp, "dave@example.com")
		require.NoError(t, err)
		assert.Equal(t, []string{"svc-a"}, rep.Certified)
		assert.Equal(t, []string{"svc-b"}, rep.Revoked)
		assert.Equal(t, []string{"svc-c", "svc-d"}, rep.Undecided)
		assert.True(t, rep.Overdue, "closed past the deadline with items undecided")
		assert.Contains(t, rep.Summary(), "svc-c, svc-d: they keep their current state")
		c, err := s.Identity(ctx, "svc-c")
		require.NoError(t, err)
		assert.Equal(t, iga.StateActive, c.State, "an undecided item keeps its state")

		_, err = reg.DecideCampaignItem(ctx, iga.CampaignDecision{Campaign: cp, Identity: "svc-c", By: "bob@example.com", Decision: iga.DecisionCertify})
		assert.ErrorContains(t, err, "was closed", "a decision after close")
		_, err = reg.CloseCampaign(ctx, cp, "")
		assert.ErrorContains(t, err, "already closed")
	})
}
