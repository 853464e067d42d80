package iga_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// gwClock lets a test move the registry's clock.
func gwClock(r *iga.Registry) *time.Time {
	now := gwNow
	r.Now = func() time.Time { return now }
	return &now
}

// gwApplyFile applies data as example.yaml, as a GitOps job re-applying
// its file would.
func gwApplyFile(t *testing.T, r *iga.Registry, data []byte, force bool) iga.ApplyResult {
	t.Helper()
	res, err := gwApply(t, r, "example.yaml", data, iga.ApplyOptions{Actor: "gitops@example.com", Force: force})
	require.NoError(t, err)
	return res
}

func gwIdentity(t *testing.T, r *iga.Registry, id string) iga.Identity {
	t.Helper()
	got, err := r.Store.Identity(gwCtx(t), id)
	require.NoError(t, err)
	return got
}

func gwCertifications(t *testing.T, r *iga.Registry, id string) []iga.Certification {
	t.Helper()
	certs, err := r.Store.Certifications(gwCtx(t), id)
	require.NoError(t, err)
	return certs
}

// gwStaleBackup is the example file with svc-backup's certification left
// out: a file that says state: active and gives no decision at all.
func gwStaleBackup(t *testing.T) []byte {
	t.Helper()
	data := string(readRegistry(t, "example.yaml"))
	const cert = "    certification: {by: alice@example.com, at: 2026-11-15, until: 2027-02-13, note: quarterly review}\n"
	require.Contains(t, data, cert)
	return []byte(strings.Replace(data, cert, "", 1))
}

func testApplyConflicts(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
	// revoked returns a registry where alice, svc-backup's owner, revoked it
	// an hour after the example file was applied.
	revoked := func(t *testing.T) (*iga.Registry, *time.Time) {
		r := fresh(t)
		clock := gwClock(r)
		gwApplyExample(t, r)
		*clock = clock.Add(time.Hour)
		require.NoError(t, r.Revoke(gwCtx(t), "svc-backup", "alice@example.com", "key leaked in a build log"))
		return r, clock
	}

	t.Run("a revoke survives re-applying the same file", func(t *testing.T) {
		r, _ := revoked(t)
		before := gwSnapshot(t, r)
		for range 2 { // the GitOps job runs again: still kept, still reported
			res := gwApplyFile(t, r, readRegistry(t, "example.yaml"), false)
			require.Len(t, res.Conflicts, 1, "got conflicts %v", res.Conflicts)
			c := res.Conflicts[0]
			assert.Equal(t, "svc-backup", c.Identity)
			assert.False(t, c.Forced)
			assert.Equal(t, res.Conflicts, res.Unresolved())
			assert.Equal(t, "example.yaml:26: identity svc-backup: the registry's revocation by alice@example.com at 2026-11-28T11:00:00Z "+
				"is later than the file's certification by alice@example.com at 2026-11-15; kept the registry's decision and state suspended (the file says active). "+
				"To keep it revoked, put the revocation in the file (`sallyport iga export` writes it); to reinstate it, its owner certifies it after "+
				"2026-11-28T11:00:00Z (`sallyport iga certify`, or a certification in the file dated later); --force applies the file as it is", c.String())
			assert.Equal(t, exampleIdentities, res.Unchanged, "nothing else in the file changed")
			assert.Empty(t, res.Certified)
		}
		assert.Equal(t, before, gwSnapshot(t, r), "the stale file wrote something")
		got := gwIdentity(t, r, "svc-backup")
		assert.Equal(t, iga.StateSuspended, got.State)
		assert.Equal(t, iga.DecisionRevoke, got.Certification.Decision)
		d := gwDecide(t, r, "svc-backup", "web-01", iga.ActionExec)
		assert.ElementsMatch(t, []string{iga.ReasonNotActive, iga.ReasonCertificationRevoked}, gwCodes(d))
	})

	t.Run("the rest of a conflicting identity is still applied", func(t *testing.T) {
		r, _ := revoked(t)
		changed := strings.Replace(string(readRegistry(t, "example.yaml")),
			"actions: [shell, exec, sftp], expires: 2027-11-01", "actions: [exec], expires: 2027-11-01", 1)
		res := gwApplyFile(t, r, []byte(changed), false)
		require.Len(t, res.Conflicts, 1)
		assert.Equal(t, []string{"svc-backup"}, res.Updated)
		got := gwIdentity(t, r, "svc-backup")
		for _, e := range got.Entitlements {
			if e.Target == "web-01" {
				assert.Equal(t, []iga.Action{iga.ActionExec}, e.Actions, "taking an action away must not wait for the conflict")
			}
		}
		assert.Equal(t, iga.StateSuspended, got.State)
		assert.Equal(t, iga.DecisionRevoke, got.Certification.Decision)
	})

	t.Run("a stale state: active without a certification keeps the revoke", func(t *testing.T) {
		r, _ := revoked(t)
		res := gwApplyFile(t, r, gwStaleBackup(t), false)
		require.Len(t, res.Conflicts, 1)
		assert.Nil(t, res.Conflicts[0].File)
		assert.Contains(t, res.Conflicts[0].String(), "is later than the file's state active (the file has no certification, so no date)")
		assert.Equal(t, iga.StateSuspended, gwIdentity(t, r, "svc-backup").State)
	})

	t.Run("--force applies the file and audits the override", func(t *testing.T) {
		r, _ := revoked(t)
		res := gwApplyFile(t, r, readRegistry(t, "example.yaml"), true)
		require.Len(t, res.Conflicts, 1)
		assert.True(t, res.Conflicts[0].Forced)
		assert.Empty(t, res.Unresolved())
		assert.Equal(t, []string{"svc-backup"}, res.Certified)
		got := gwIdentity(t, r, "svc-backup")
		assert.Equal(t, iga.StateActive, got.State)
		assert.Equal(t, iga.DecisionCertify, got.Certification.Decision)
		assert.Empty(t, gwDecide(t, r, "svc-backup", "web-01", iga.ActionExec).Reasons, "forced back in, it is admitted")

		events := gwAudit(t, r, iga.AuditFilter{Type: "apply_force"})
		require.Len(t, events, 1)
		assert.Equal(t, "gitops@example.com", events[0].Actor)
		assert.Equal(t, "svc-backup", events[0].Identity)
		assert.Equal(t, "the file's certification by alice@example.com at 2026-11-15 replaced the registry's later revocation by "+
			"alice@example.com at 2026-11-28T11:00:00Z; state suspended→active", events[0].Detail)

		res = gwApplyFile(t, r, readRegistry(t, "example.yaml"), false)
		assert.Empty(t, res.Conflicts, "once applied, the file is the latest decision")
		assert.False(t, res.Changed())
	})

	t.Run("a certification dated after the revoke reinstates without force", func(t *testing.T) {
		r, _ := revoked(t)
		later := strings.Replace(string(readRegistry(t, "example.yaml")),
			"at: 2026-11-15, until: 2027-02-13, note: quarterly review", "at: '2026-11-28T12:00:00Z', until: 2027-02-13, note: key rotated", 1)
		res := gwApplyFile(t, r, []byte(later), false)
		assert.Empty(t, res.Conflicts)
		assert.Equal(t, []string{"svc-backup"}, res.Certified)
		assert.Equal(t, iga.StateActive, gwIdentity(t, r, "svc-backup").State)
	})

	t.Run("a file dated the day of the revoke does not outrank it", func(t *testing.T) {
		r, _ := revoked(t)
		sameDay := strings.Replace(string(readRegistry(t, "example.yaml")),
			"at: 2026-11-15, until: 2027-02-13, note: quarterly review", "at: 2026-11-28, until: 2027-02-13, note: re-reviewed", 1)
		res := gwApplyFile(t, r, []byte(sameDay), false)
		require.Len(t, res.Conflicts, 1, "2026-11-28 means 00:00 UTC, before the 11:00 revoke")
		assert.Equal(t, iga.StateSuspended, gwIdentity(t, r, "svc-backup").State)
	})

	t.Run("an owner's re-certification lets the stale file reactivate", func(t *testing.T) {
		r, clock := revoked(t)
		*clock = clock.Add(time.Hour)
		_, err := r.Certify(gwCtx(t), "svc-backup", "alice@example.com", 30*gwDay, "key rotated")
		require.NoError(t, err)
		res := gwApplyFile(t, r, readRegistry(t, "example.yaml"), false)
		assert.Empty(t, res.Conflicts, "the revoke was superseded by the owner's later decision")
		require.Len(t, res.Warnings, 2, "got %v", res.Warnings)
		assert.Equal(t, "example.yaml:26: identity svc-backup: the registry's certification by alice@example.com at 2026-11-28T12:00:00Z is later than "+
			"the file's certification by alice@example.com at 2026-11-15; kept the registry's; update the file from `sallyport iga export`", res.Warnings[1].String())
		got := gwIdentity(t, r, "svc-backup")
		assert.Equal(t, iga.StateActive, got.State)
		assert.Equal(t, "key rotated", got.Certification.Note, "the older certification in the file did not replace the renewal")
		assert.Len(t, gwCertifications(t, r, "svc-backup"), 3)
	})

	t.Run("a stale file revoke does not undo a later certification", func(t *testing.T) {
		r := fresh(t)
		gwClock(r)
		gwApplyExample(t, r) // ci-deploy: revoked by bob on 2026-11-20
		_, err := r.Certify(gwCtx(t), "ci-deploy", "bob@example.com", 0, "argo migration rolled back")
		require.NoError(t, err)
		res := gwApplyFile(t, r, readRegistry(t, "example.yaml"), false)
		require.Len(t, res.Conflicts, 1)
		assert.Equal(t, "ci-deploy", res.Conflicts[0].Identity)
		assert.Contains(t, res.Conflicts[0].String(), "the registry's certification by bob@example.com at 2026-11-28T10:00:00Z is later than "+
			"the file's revocation by bob@example.com at 2026-11-20; kept the registry's decision. Update the file from `sallyport iga export`")
		assert.Equal(t, iga.DecisionCertify, gwIdentity(t, r, "ci-deploy").Certification.Decision)
	})

	t.Run("applying an export after a revoke changes nothing", func(t *testing.T) {
		r, _ := revoked(t)
		gwApplyFile(t, r, readRegistry(t, "example.yaml"), false)
		before := gwSnapshot(t, r)
		res, err := gwApply(t, r, "export.yaml", gwExport(t, r), iga.ApplyOptions{})
		require.NoError(t, err)
		assert.Empty(t, res.Conflicts)
		for _, w := range res.Warnings {
			assert.NotContains(t, w.String(), "later than", "an export carries the registry's latest decisions")
		}
		assert.False(t, res.Changed())
		assert.Equal(t, before, gwSnapshot(t, r))
	})
}

// testTokensAfterRevoke checks that a revocation ends the tokens minted
// before it for good, whatever re-certifies the identity later.
func testTokensAfterRevoke(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
	recertify := []struct {
		name string
		how  func(t *testing.T, r *iga.Registry)
	}{
		{"by apply --force", func(t *testing.T, r *iga.Registry) {
			require.Len(t, gwApplyFile(t, r, readRegistry(t, "example.yaml"), true).Conflicts, 1)
		}},
		{"by iga certify", func(t *testing.T, r *iga.Registry) {
			_, err := r.Certify(gwCtx(t), "svc-backup", "alice@example.com", 0, "key rotated")
			require.NoError(t, err)
			gwApplyFile(t, r, readRegistry(t, "example.yaml"), false) // state: active again
		}},
	}
	for _, tc := range recertify {
		t.Run(tc.name, func(t *testing.T) {
			r := fresh(t)
			clock := gwClock(r)
			r.Tokens = iga.TokenConfig{SigningKey: admSigningKey(t)}
			gwApplyExample(t, r)
			issue := func() string {
				token, err := r.IssueToken(gwCtx(t), "svc-backup", "admin@example.com", 12*time.Hour)
				require.NoError(t, err)
				return token
			}
			early := issue()
			*clock = clock.Add(time.Minute)
			sameSecond := issue()
			require.NoError(t, r.Revoke(gwCtx(t), "svc-backup", "alice@example.com", "key leaked in a build log"))
			*clock = clock.Add(time.Minute)
			tc.how(t, r)
			*clock = clock.Add(time.Second)
			late := issue()

			for _, tt := range []struct {
				name, token, says string
			}{
				{"minted before the revoke", early, "issued at 2026-11-28T10:00:00Z, before svc-backup was revoked at 2026-11-28T10:01:00Z"},
				{"minted in the second of the revoke", sameSecond, "in the same second as svc-backup was revoked at 2026-11-28T10:01:00Z"},
				{"minted after the re-certification", late, ""},
			} {
				t.Run(tt.name, func(t *testing.T) {
					d, err := r.Decide(gwCtx(t), iga.Request{Identity: "svc-backup", Target: "web-01", Action: iga.ActionExec,
						Credential: &iga.Credential{Token: tt.token}, DryRun: true})
					require.NoError(t, err)
					if tt.says == "" {
						assert.True(t, d.Allow, "got reasons %v, want allow", d.Reasons)
						return
					}
					require.Equal(t, []string{iga.ReasonCredentialInvalid}, gwCodes(d), "got reasons %v", d.Reasons)
					assert.Contains(t, d.Reasons[0].Message, tt.says)
					assert.Contains(t, d.Reasons[0].Message, "ask an administrator for a new one")
				})
			}
		})
	}

	t.Run("the latest revocation counts, not the last one recorded", func(t *testing.T) {
		r := fresh(t)
		clock := gwClock(r)
		r.Tokens = iga.TokenConfig{SigningKey: admSigningKey(t)}
		gwApplyExample(t, r)
		token, err := r.IssueToken(gwCtx(t), "svc-backup", "admin@example.com", 12*time.Hour)
		require.NoError(t, err)
		*clock = clock.Add(time.Minute)
		require.NoError(t, r.Revoke(gwCtx(t), "svc-backup", "alice@example.com", "key leaked"))
		*clock = clock.Add(time.Minute)
		_, err = r.Certify(gwCtx(t), "svc-backup", "alice@example.com", 0, "")
		require.NoError(t, err)
		// An older revoke from a file, forced in, is recorded last.
		older := strings.Replace(string(readRegistry(t, "example.yaml")),
			"{by: alice@example.com, at: 2026-11-15, until: 2027-02-13, note: quarterly review}",
			"{decision: revoke, by: alice@example.com, at: 2026-11-20, note: old ticket}", 1)
		require.Len(t, gwApplyFile(t, r, []byte(older), true).Conflicts, 1)
		_, err = r.Certify(gwCtx(t), "svc-backup", "alice@example.com", 0, "")
		require.NoError(t, err)
		gwApplyFile(t, r, readRegistry(t, "example.yaml"), false)

		assert.Equal(t, gwNow.Add(time.Minute), gwIdentity(t, r, "svc-backup").RevokedAt.UTC())
		err = r.Authenticate(gwCtx(t), "svc-backup", iga.Credential{Token: token})
		require.Error(t, err, "the token predates the 10:01 revoke")
		assert.Contains(t, err.Error(), "revoked at 2026-11-28T10:01:00Z")
	})
}
