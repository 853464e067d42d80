package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// conformance is the behaviour every driver must show; TestStore runs it
// against each. fresh returns the Config of a new, empty database.
var conformance = []struct {
	name string
	run  func(t *testing.T, fresh func(*testing.T) Config)
}{
	{"identities round-trip every field", testIdentityRoundTrip},
	{"people round-trip and upsert", testPeople},
	{"put identity replaces credentials, keeps history and last use", testPutIdentityReplaces},
	{"certification history keeps every decision, latest wins", testCertifications},
	{"missing records are ErrNotFound", testNotFound},
	{"update rolls back and returns fn's error", testUpdateRollback},
	{"audit filters", testAuditFilters},
	{"record decision audits and marks use", testRecordDecision},
	{"oidc lookup", testIdentitiesByOIDC},
	{"grants", testGrants},
	{"session index and kill requests", testSessions},
	{"key fingerprints: first recorded, others compared", testKeyFingerprints},
	{"replica leases hold their sessions", testReplicaLeases},
	{"sessions of a gone replica read as lost", testLostSessions},
	{"two stores write concurrently", testConcurrentWriters},
	{"reopen keeps data and migrates once", testReopen},
	{"concurrent opens of a new database migrate once", testConcurrentOpen},
	{"newer schema is refused", testNewerSchema},
}

// day is a UTC date, as the registry file writes expiries.
func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

var cest = time.FixedZone("CEST", 2*60*60)

// fullIdentity sets every field the store keeps, slices deliberately out
// of sorted order so that put order must be kept.
func fullIdentity(id string) iga.Identity {
	return iga.Identity{
		ID: id, Kind: iga.KindServiceAccount, State: iga.StateActive,
		Owner: "alice@example.com", Environment: "prod",
		Holders: []string{"zoe@example.com", "bob@example.com"},
		Credentials: iga.Credentials{
			SSHKeys: []iga.SSHKey{
				{Key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIZZZ second-key", Expires: day(2027, 3, 1)},
				{Key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAA first-key"},
			},
			OIDC: []iga.OIDCBinding{
				{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:acme/backup:ref:refs/heads/main"},
				{Issuer: "https://gitlab.example.com", Subject: "project_path:acme/backup"},
			},
		},
		Entitlements: []iga.Entitlement{
			{Target: "web-01", Login: "backup", Actions: []iga.Action{iga.ActionSFTP, iga.ActionExec},
				Expires: day(2027, 1, 1), From: []string{"10.1.0.0/16", "192.168.0.0/24"}},
			{Target: "analytics", Login: "reporting", Actions: []iga.Action{iga.ActionQuery}},
		},
	}
}

func testIdentityRoundTrip(t *testing.T, fresh func(*testing.T) Config) {
	breakGlass := fullIdentity("bg-root")
	breakGlass.Kind, breakGlass.Environment = iga.KindBreakGlass, ""
	farFuture := fullIdentity("svc-forever")
	farFuture.Credentials.SSHKeys[0].Expires = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	nanos := fullIdentity("svc-nanos")
	nanos.Entitlements[0].Expires = time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		put  iga.Identity
	}{
		{"discovered NHI with nothing but an id, kind and state", iga.Identity{ID: "svc-bare", Kind: iga.KindWorkload, State: iga.StateProposed}},
		{"every field set", fullIdentity("svc-backup")},
		{"break-glass with holders", breakGlass},
		{"expiry at the end of year 9999", farFuture},
		{"nanosecond expiry", nanos},
		{"human account", iga.Identity{ID: "alice", Kind: iga.KindHuman, State: iga.StateSuspended, Owner: "alice@example.com"}},
		{"upper-case id", iga.Identity{ID: "SVC-LEGACY", Kind: iga.KindAPIKey, State: iga.StateDeprovisioned}},
	}
	s := openT(t, fresh(t))
	for _, tt := range tests {
		putIdentities(t, s, tt.put)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Identity(ctxT(t), tt.put.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.put, got, "Identity(%q): got the first, want the second", tt.put.ID)
		})
	}
	t.Run("Identities returns all, complete, sorted by id bytes", func(t *testing.T) {
		got, err := s.Identities(ctxT(t))
		require.NoError(t, err)
		want := []iga.Identity{tests[6].put, tests[5].put, breakGlass, tests[1].put, tests[0].put, farFuture, nanos}
		assert.Equal(t, want, got)
	})
	t.Run("a time past year 9999 is refused, nothing stored", func(t *testing.T) {
		bad := fullIdentity("svc-too-late")
		bad.Entitlements[1].Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		err := s.Update(ctxT(t), func(tx iga.Tx) error { return tx.PutIdentity(ctxT(t), bad) })
		require.Error(t, err, "storing an expiry in year 10000: got no error")
		assert.Contains(t, err.Error(), "outside years 0000-9999")
		_, err = s.Identity(ctxT(t), bad.ID)
		assert.ErrorIs(t, err, iga.ErrNotFound, "the refused identity was stored")
	})
	t.Run("times come back in UTC", func(t *testing.T) {
		local := iga.Identity{ID: "svc-local", Kind: iga.KindAgent, State: iga.StateActive,
			Credentials: iga.Credentials{SSHKeys: []iga.SSHKey{{Key: "k", Expires: time.Date(2027, 1, 1, 2, 0, 0, 0, cest)}}}}
		putIdentities(t, s, local)
		got, err := s.Identity(ctxT(t), "svc-local")
		require.NoError(t, err)
		exp := got.Credentials.SSHKeys[0].Expires
		assert.Equal(t, time.UTC, exp.Location(), "got location %v, want UTC", exp.Location())
		assert.True(t, exp.Equal(day(2027, 1, 1)), "got %v, want 2027-01-01T00:00:00Z", exp)
	})
}

func testPeople(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	people := []iga.Person{
		{ID: "zoe@example.com", Name: "Zoë Ångström", Roles: []string{"owner", "auditor", "admin"}, Status: iga.PersonActive},
		{ID: "alice@example.com", Name: "Alice Ng", Roles: []string{"owner"}, Status: iga.PersonActive},
		{ID: "bob@example.com", Name: "Bob", Status: iga.PersonInactive},
	}
	update(t, s, func(ctx context.Context, tx iga.Tx) error {
		for _, p := range people {
			require.NoError(t, tx.PutPerson(ctx, p))
		}
		return nil
	})
	for _, p := range people {
		t.Run("round-trip "+p.ID, func(t *testing.T) {
			got, err := s.Person(ctxT(t), p.ID)
			require.NoError(t, err)
			assert.Equal(t, p, got)
		})
	}
	t.Run("People sorted by id", func(t *testing.T) {
		got, err := s.People(ctxT(t))
		require.NoError(t, err)
		assert.Equal(t, []iga.Person{people[1], people[2], people[0]}, got)
	})
	t.Run("put again replaces", func(t *testing.T) {
		offboarded := iga.Person{ID: "alice@example.com", Name: "Alice Ng-Smith", Status: iga.PersonInactive}
		update(t, s, func(ctx context.Context, tx iga.Tx) error { return tx.PutPerson(ctx, offboarded) })
		got, err := s.Person(ctxT(t), offboarded.ID)
		require.NoError(t, err)
		assert.Equal(t, offboarded, got)
		all, err := s.People(ctxT(t))
		require.NoError(t, err)
		assert.Len(t, all, 3, "got %d people after an upsert, want 3", len(all))
	})
}

func testPutIdentityReplaces(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	putIdentities(t, s, fullIdentity("svc-backup"))
	cert := iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com", At: day(2026, 11, 1), Until: day(2027, 2, 1), Note: "ok"}
	update(t, s, func(ctx context.Context, tx iga.Tx) error { return tx.AddCertification(ctx, "svc-backup", cert) })
	used := time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC)
	require.NoError(t, s.RecordDecision(ctx, iga.AuditEvent{Time: used, Type: "decision", Identity: "svc-backup", Allow: true}))

	moved := iga.Identity{ID: "svc-backup", Kind: iga.KindPipeline, State: iga.StateSuspended, Owner: "bob@example.com",
		Credentials:  iga.Credentials{SSHKeys: []iga.SSHKey{{Key: "ssh-ed25519 AAAAnew"}}},
		Entitlements: []iga.Entitlement{{Target: "db-02", Login: "ro", Actions: []iga.Action{iga.ActionQuery}}}}
	putIdentities(t, s, moved)

	got, err := s.Identity(ctx, "svc-backup")
	require.NoError(t, err)
	want := moved
	want.Certification, want.LastUsed = &cert, used
	assert.Equal(t, want, got, "after a second PutIdentity: got the first, want the second")
	all, err := s.Identities(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 1, "got %d identities after replacing one, want 1", len(all))
}

func testCertifications(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	putIdentities(t, s, fullIdentity("svc-a"), fullIdentity("svc-b"))
	history := []iga.Certification{
		{Decision: iga.DecisionCertify, By: "alice@example.com", At: day(2026, 8, 1), Until: day(2026, 11, 1), Note: "first"},
		{Decision: iga.DecisionCertify, By: "alice@example.com", At: day(2026, 11, 1), Until: day(2027, 2, 1)},
		// Recorded later but dated earlier: the latest is the last appended.
		{Decision: iga.DecisionRevoke, By: "bob@example.com", At: day(2026, 10, 1), Note: "left the team"},
	}
	for i, c := range history {
		update(t, s, func(ctx context.Context, tx iga.Tx) error { return tx.AddCertification(ctx, "svc-a", c) })
		got, err := s.Identity(ctx, "svc-a")
		require.NoError(t, err)
		require.NotNil(t, got.Certification, "after %d certifications: got none", i+1)
		assert.Equal(t, c, *got.Certification, "latest after %d certifications", i+1)
	}
	got, err := s.Certifications(ctx, "svc-a")
	require.NoError(t, err)
	assert.Equal(t, history, got, "history oldest first")

	other, err := s.Identity(ctx, "svc-b")
	require.NoError(t, err)
	assert.Nil(t, other.Certification, "got a certification on a never-certified identity, want nil")
	none, err := s.Certifications(ctx, "svc-b")
	require.NoError(t, err)
	assert.Empty(t, none)

	all, err := s.Identities(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, &history[2], all[0].Certification, "Identities carries the latest certification")
	assert.Nil(t, all[1].Certification)

	err = s.Update(ctx, func(tx iga.Tx) error { return tx.AddCertification(ctx, "svc-missing", history[0]) })
	assert.ErrorIs(t, err, iga.ErrNotFound, "certifying an unknown identity: got %v, want ErrNotFound", err)
}

func testNotFound(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	putIdentities(t, s, fullIdentity("svc-a"))
	lookups := []struct {
		name   string
		lookup func(ctx context.Context, r iga.Reader) error
	}{
		{"person", func(ctx context.Context, r iga.Reader) error {
			_, err := r.Person(ctx, "nobody@example.com")
			return err
		}},
		{"identity", func(ctx context.Context, r iga.Reader) error { _, err := r.Identity(ctx, "svc-missing"); return err }},
		{"grant", func(ctx context.Context, r iga.Reader) error { _, err := r.Grant(ctx, "g-missing"); return err }},
	}
	for _, tt := range lookups {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			err := tt.lookup(ctx, s)
			assert.ErrorIs(t, err, iga.ErrNotFound, "got %v, want ErrNotFound", err)
			err = s.Update(ctx, func(tx iga.Tx) error { return tt.lookup(ctx, tx) })
			assert.ErrorIs(t, err, iga.ErrNotFound, "inside a transaction: got %v, want ErrNotFound", err)
		})
	}
}

func testUpdateRollback(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	errBoom := errors.New("boom")
	var sawOwnWrite bool
	err := s.Update(ctx, func(tx iga.Tx) error {
		require.NoError(t, tx.PutPerson(ctx, iga.Person{ID: "alice@example.com", Status: iga.PersonActive}))
		require.NoError(t, tx.PutIdentity(ctx, fullIdentity("svc-a")))
		require.NoError(t, tx.AddCertification(ctx, "svc-a", iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com"}))
		require.NoError(t, tx.PutGrant(ctx, iga.Grant{ID: "g1", Identity: "svc-a", OpenedAt: day(2026, 1, 1)}))
		require.NoError(t, tx.AppendAudit(ctx, iga.AuditEvent{Time: day(2026, 1, 1), Type: "apply"}))
		got, err := tx.Identity(ctx, "svc-a")
		sawOwnWrite = err == nil && got.Certification != nil
		return errBoom
	})
	assert.Same(t, errBoom, err, "got %v, want fn's error unchanged", err)
	assert.True(t, sawOwnWrite, "reads inside the transaction did not see its own writes")

	_, err = s.Person(ctx, "alice@example.com")
	assert.ErrorIs(t, err, iga.ErrNotFound, "person survived a rolled-back transaction")
	_, err = s.Identity(ctx, "svc-a")
	assert.ErrorIs(t, err, iga.ErrNotFound, "identity survived a rolled-back transaction")
	_, err = s.Grant(ctx, "g1")
	assert.ErrorIs(t, err, iga.ErrNotFound, "grant survived a rolled-back transaction")
	evs, err := s.Audit(ctx, iga.AuditFilter{})
	require.NoError(t, err)
	assert.Empty(t, evs, "audit events survived a rolled-back transaction")

	wrapped := s.Update(ctx, func(iga.Tx) error { return errors.Join(errors.New("apply"), iga.ErrNotFound) })
	assert.ErrorIs(t, wrapped, iga.ErrNotFound, "errors.Is through Update")
}
