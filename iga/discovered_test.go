package iga_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// discoSeed is svc-a (entitled to web-01 as backup) and what discovery
// saw: its key in backup's authorized_keys, an unknown root, a database
// login with a standing password, one whose password was unreadable, and
// one that is gone.
func discoSeed(t *testing.T, s iga.Store) (*iga.Registry, []iga.DiscoveredAccount) {
	pub, line := admKey(t)
	admSeed(t, s, govPeople, []iga.Identity{admPassing("svc-a", line)}, nil)
	ctx, st := context.Background(), s.(*sqlstore.Store)
	at := admNow.Add(-time.Hour)
	web := []iga.DiscoveredAccount{
		{Kind: "ssh", Account: "backup", Login: "backup", Keys: []iga.DiscoveredKey{{Type: pub.Type(), Fingerprint: ssh.FingerprintSHA256(pub)}}},
		{Kind: "ssh", Account: "root", Login: "root", Attributes: []string{"uid 0"}},
	}
	db := []iga.DiscoveredAccount{
		{Kind: "postgres", Account: "etl", Login: "etl", Password: iga.PasswordSet, Attributes: []string{"superuser"}},
		{Kind: "postgres", Account: "reporting", Login: "reporting", Password: iga.PasswordUnknown},
		{Kind: "postgres", Account: "old", Login: "old", Password: iga.PasswordSet},
	}
	_, err := st.RecordDiscovery(ctx, "web-01", web, at)
	require.NoError(t, err)
	_, err = st.RecordDiscovery(ctx, "db", db, at)
	require.NoError(t, err)
	_, err = st.RecordDiscovery(ctx, "db", db[:2], admNow) // old was dropped
	require.NoError(t, err)
	for i := range web {
		web[i].Target = "web-01"
	}
	for i := range db {
		db[i].Target = "db"
	}
	return admRegistry(s, nil), append(web, db[:2]...)
}

func discoFindings(t *testing.T, reg *iga.Registry, s iga.Store) map[string]iga.Finding {
	findings, err := reg.Hygiene(context.Background(), s.(iga.SessionHistory), iga.HygieneOptions{})
	require.NoError(t, err)
	got := map[string]iga.Finding{}
	for _, f := range findings {
		got[f.NHI+" "+f.Kind+" "+f.Identity] = f
	}
	return got
}

// TestDiscoveredFindings: unknown accounts are NHI1 unmanaged_account,
// a standing database password NHI7, a registered key on a target NHI9;
// known and gone accounts raise nothing.
func TestDiscoveredFindings(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		reg, _ := discoSeed(t, s)
		got := discoFindings(t, reg, s)
		for _, tc := range []struct{ key, says string }{
			{"NHI1 unmanaged_account web-01/root", "ssh account root on web-01 is in no identity's entitlements"},
			{"NHI1 unmanaged_account db/etl", "superuser"},
			{"NHI1 unmanaged_account db/reporting", "iga discover --propose"},
			{"NHI7 standing_password db/etl", "password sallyport did not create"},
			{"NHI9 key_installed_on_target svc-a", "authorized_keys of backup on web-01"},
		} {
			f, ok := got[tc.key]
			if assert.Truef(t, ok, "no %s; got %v", tc.key, got) {
				assert.Contains(t, f.Detail, tc.says)
			}
		}
		for _, absent := range []string{"NHI1 unmanaged_account web-01/backup", "NHI7 standing_password db/reporting",
			"NHI1 unmanaged_account db/old", "NHI7 standing_password db/old"} {
			assert.NotContains(t, got, absent)
		}
	})
}

// TestProposeDiscovered: --propose writes unknown accounts as proposed
// identities without owner, once; they are denied, in campaigns, no
// longer unmanaged but unowned, and survive an export and apply.
func TestProposeDiscovered(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		reg, present := discoSeed(t, s)
		ctx := context.Background()
		p, err := reg.Propose(ctx, present, "ops@example.com")
		require.NoError(t, err)
		assert.Equal(t, []string{"discovered.web-01.root", "discovered.db.etl", "discovered.db.reporting"}, p.Created)
		assert.Equal(t, 1, p.Known, "backup is svc-a's")
		again, err := reg.Propose(ctx, present, "ops@example.com")
		require.NoError(t, err)
		assert.Empty(t, again.Created, "proposing twice creates nothing")

		id, err := s.Identity(ctx, "discovered.db.etl")
		require.NoError(t, err)
		assert.Equal(t, iga.StateProposed, id.State)
		assert.Empty(t, id.Owner)
		assert.Equal(t, []iga.Entitlement{{Target: "db", Login: "etl", Actions: []iga.Action{iga.ActionQuery}}}, id.Entitlements)

		d, err := reg.Decide(ctx, iga.Request{Identity: "discovered.db.etl", Target: "db", Action: iga.ActionQuery})
		require.NoError(t, err)
		assert.False(t, d.Allow)
		assert.Contains(t, reasonCodes(d.Reasons), iga.ReasonNotActive)

		rep, err := reg.StartCampaign(ctx, iga.CampaignRequest{Name: "discovered", Scope: "all", Due: 14 * 24 * time.Hour, By: "dave@example.com"})
		require.NoError(t, err)
		assert.Subset(t, rep.Undecided, p.Created, "campaigns put proposed identities in front of someone")

		got := discoFindings(t, reg, s)
		assert.NotContains(t, got, "NHI1 unmanaged_account db/etl", "the registry knows it now")
		assert.Contains(t, got, "NHI1 no_owner discovered.db.etl")
		assert.Contains(t, got, "NHI7 standing_password db/etl", "the password is still there")

		doc, err := reg.Export(ctx)
		require.NoError(t, err)
		f, err := iga.FileFromDoc("export.yaml", doc)
		require.NoError(t, err)
		res, err := reg.Apply(ctx, f, iga.ApplyOptions{Actor: "ops@example.com"})
		require.NoError(t, err)
		assert.False(t, res.Changed(), "applying the export changes nothing: %+v", res)
		back, err := s.Identity(ctx, "discovered.db.etl")
		require.NoError(t, err)
		assert.Equal(t, iga.StateProposed, back.State)
	})
}

func reasonCodes(rs []iga.Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return slices.Clip(out)
}
