package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

func testAuditFilters(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	at := func(min int) time.Time { return time.Date(2026, 11, 28, 10, min, 0, 0, time.UTC) }
	denied := []iga.Reason{
		{Code: iga.ReasonCertificationExpired, Message: "svc-a was certified until 2026-10-01; ask its owner to recertify"},
		{Code: iga.ReasonSourceNotAllowed, Message: "10.9.9.9 is not in 10.1.0.0/16"},
	}
	events := []iga.AuditEvent{
		{Time: at(1), Type: "apply", Actor: "alice@example.com", Detail: "3 identities"},
		{Time: at(2), Type: "decision", Actor: "sallyport", Identity: "svc-a", Target: "web-01", Action: iga.ActionExec, Source: "10.1.2.3", Allow: true},
		{Time: at(3), Type: "decision", Actor: "sallyport", Identity: "svc-a", Target: "web-01", Action: iga.ActionShell, Source: "10.9.9.9", Reasons: denied},
		{Time: at(4), Type: "certify", Actor: "alice@example.com", Identity: "svc-b", Detail: "until 2027-02-01"},
		{Time: at(5), Type: "decision", Actor: "sallyport", Identity: "svc-b", Target: "analytics", Action: iga.ActionQuery, Allow: true},
	}
	update(t, s, func(ctx context.Context, tx iga.Tx) error {
		for _, e := range events {
			require.NoError(t, tx.AppendAudit(ctx, e))
		}
		return nil
	})
	tests := []struct {
		name   string
		filter iga.AuditFilter
		want   []int // indexes into events, in the order wanted
	}{
		{"everything, oldest first", iga.AuditFilter{}, []int{0, 1, 2, 3, 4}},
		{"by identity", iga.AuditFilter{Identity: "svc-a"}, []int{1, 2}},
		{"by type", iga.AuditFilter{Type: "decision"}, []int{1, 2, 4}},
		{"since is inclusive", iga.AuditFilter{Since: at(3)}, []int{2, 3, 4}},
		{"limit keeps the newest, oldest first", iga.AuditFilter{Limit: 2}, []int{3, 4}},
		{"all filters at once", iga.AuditFilter{Identity: "svc-a", Type: "decision", Since: at(2), Limit: 1}, []int{2}},
		{"limit above the count", iga.AuditFilter{Type: "certify", Limit: 10}, []int{3}},
		{"no match", iga.AuditFilter{Identity: "svc-zzz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Audit(ctxT(t), tt.filter)
			require.NoError(t, err)
			require.Len(t, got, len(tt.want), "got %d events, want %d", len(got), len(tt.want))
			for i, w := range tt.want {
				assert.NotZero(t, got[i].ID, "event %d has no id", i)
				got[i].ID = 0
				assert.Equal(t, events[w], got[i], "event %d", i)
			}
		})
	}
	t.Run("ids increase in append order", func(t *testing.T) {
		got, err := s.Audit(ctxT(t), iga.AuditFilter{})
		require.NoError(t, err)
		for i := 1; i < len(got); i++ {
			assert.Greater(t, got[i].ID, got[i-1].ID, "event %d id", i)
		}
	})
}

func testRecordDecision(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	putIdentities(t, s, fullIdentity("svc-a"))
	t1 := time.Date(2026, 11, 28, 10, 0, 0, 500, time.UTC)
	decisions := []struct {
		name     string
		event    iga.AuditEvent
		wantUsed time.Time
	}{
		{"a denial leaves LastUsed zero",
			iga.AuditEvent{Time: t1, Identity: "svc-a", Reasons: []iga.Reason{{Code: iga.ReasonNoOwner, Message: "no owner"}}}, time.Time{}},
		{"an allow sets LastUsed", iga.AuditEvent{Time: t1, Identity: "svc-a", Allow: true}, t1},
		{"a later allow moves it forward", iga.AuditEvent{Time: t1.Add(time.Hour), Identity: "svc-a", Allow: true}, t1.Add(time.Hour)},
		{"an allow recorded late never moves it back", iga.AuditEvent{Time: t1.Add(time.Minute), Identity: "svc-a", Allow: true}, t1.Add(time.Hour)},
		{"a later denial leaves it", iga.AuditEvent{Time: t1.Add(2 * time.Hour), Identity: "svc-a"}, t1.Add(time.Hour)},
	}
	for i, d := range decisions {
		t.Run(d.name, func(t *testing.T) {
			d.event.Type, d.event.Actor, d.event.Target = "decision", "sallyport", "web-01"
			require.NoError(t, s.RecordDecision(ctx, d.event))
			got, err := s.Identity(ctx, "svc-a")
			require.NoError(t, err)
			assert.Equal(t, d.wantUsed, got.LastUsed, "LastUsed: got %v, want %v", got.LastUsed, d.wantUsed)
			evs, err := s.Audit(ctx, iga.AuditFilter{Type: "decision"})
			require.NoError(t, err)
			require.Len(t, evs, i+1, "got %d audited decisions, want %d", len(evs), i+1)
			last := evs[0] // the one appended last has the highest id; the trail is in time order
			for _, e := range evs {
				if e.ID > last.ID {
					last = e
				}
			}
			last.ID = 0
			assert.Equal(t, d.event, last, "audited decision")
		})
	}
	t.Run("an allow without a time is stamped with now", func(t *testing.T) {
		putIdentities(t, s, fullIdentity("svc-untimed"))
		before := time.Now()
		require.NoError(t, s.RecordDecision(ctx, iga.AuditEvent{Type: "decision", Identity: "svc-untimed", Allow: true}))
		got, err := s.Identity(ctx, "svc-untimed")
		require.NoError(t, err)
		assert.False(t, got.LastUsed.Before(before), "LastUsed: got %v, want at or after %v", got.LastUsed, before)
		evs, err := s.Audit(ctx, iga.AuditFilter{Identity: "svc-untimed"})
		require.NoError(t, err)
		require.Len(t, evs, 1)
		assert.Equal(t, got.LastUsed, evs[0].Time, "audited time and LastUsed differ")
	})
	t.Run("an unknown identity is audited", func(t *testing.T) {
		e := iga.AuditEvent{Time: t1, Type: "decision", Identity: "svc-ghost", Allow: true}
		require.NoError(t, s.RecordDecision(ctx, e))
		evs, err := s.Audit(ctx, iga.AuditFilter{Identity: "svc-ghost"})
		require.NoError(t, err)
		assert.Len(t, evs, 1, "got %d events for the unknown identity, want 1", len(evs))
	})
}

func testIdentitiesByOIDC(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	const gh, sub = "https://token.actions.githubusercontent.com", "repo:acme/backup:ref:refs/heads/main"
	bound := func(id string, bindings ...iga.OIDCBinding) iga.Identity {
		return iga.Identity{ID: id, Kind: iga.KindPipeline, State: iga.StateActive, Credentials: iga.Credentials{OIDC: bindings}}
	}
	putIdentities(t, s,
		bound("zz-deploy", iga.OIDCBinding{Issuer: gh, Subject: sub}),
		bound("backup", iga.OIDCBinding{Issuer: gh, Subject: sub}, iga.OIDCBinding{Issuer: gh, Subject: sub}),
		bound("other", iga.OIDCBinding{Issuer: gh, Subject: "repo:acme/other:ref:refs/heads/main"}),
		bound("gitlab", iga.OIDCBinding{Issuer: "https://gitlab.example.com", Subject: sub}),
	)
	tests := []struct {
		issuer, subject string
		want            []string
	}{
		{gh, sub, []string{"backup", "zz-deploy"}},
		{gh, "repo:acme/other:ref:refs/heads/main", []string{"other"}},
		{"https://gitlab.example.com", sub, []string{"gitlab"}},
		{gh, "repo:acme/backup:ref:refs/heads/evil", nil},
		{"https://evil.example.com", sub, nil},
	}
	for _, tt := range tests {
		t.Run(tt.issuer+" "+tt.subject, func(t *testing.T) {
			got, err := s.IdentitiesByOIDC(ctxT(t), tt.issuer, tt.subject)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func testGrants(t *testing.T, fresh func(*testing.T) Config) {
	s := openT(t, fresh(t))
	ctx := ctxT(t)
	opened := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	grants := []iga.Grant{
		{ID: "g-2", Identity: "bg-root", Target: "web-01", OpenedBy: "bob@example.com", Reason: "disk full on web-01, paging",
			Ticket: "INC-42", OpenedAt: opened, ExpiresAt: opened.Add(30 * time.Minute)},
		{ID: "g-1", Identity: "bg-db", Target: "analytics", OpenedBy: "alice@example.com", Reason: "restore after bad migration",
			OpenedAt: opened.Add(time.Hour), ExpiresAt: opened.Add(2 * time.Hour)},
		{ID: "g-3", Identity: "bg-root", Target: "web-02", OpenedBy: "bob@example.com", Reason: "second host also full",
			OpenedAt: opened.Add(2 * time.Hour), ExpiresAt: opened.Add(3 * time.Hour), ClosedAt: opened.Add(150 * time.Minute)},
	}
	update(t, s, func(ctx context.Context, tx iga.Tx) error {
		for _, g := range grants {
			require.NoError(t, tx.PutGrant(ctx, g))
		}
		return nil
	})
	for _, g := range grants {
		t.Run("round-trip "+g.ID, func(t *testing.T) {
			got, err := s.Grant(ctx, g.ID)
			require.NoError(t, err)
			assert.Equal(t, g, got)
		})
	}
	lists := []struct {
		identity string
		want     []iga.Grant
	}{
		{"", grants},
		{"bg-root", []iga.Grant{grants[0], grants[2]}},
		{"bg-none", nil},
	}
	for _, tt := range lists {
		t.Run("Grants("+tt.identity+") oldest first", func(t *testing.T) {
			got, err := s.Grants(ctx, tt.identity)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("put again closes", func(t *testing.T) {
		closed := grants[0]
		closed.ClosedAt = opened.Add(10 * time.Minute)
		update(t, s, func(ctx context.Context, tx iga.Tx) error { return tx.PutGrant(ctx, closed) })
		got, err := s.Grant(ctx, closed.ID)
		require.NoError(t, err)
		assert.Equal(t, closed, got)
		assert.False(t, got.Open(opened.Add(15*time.Minute)), "closed grant still open")
	})
}

// testConcurrentWriters has two stores, as two processes would, write to
// one database from many goroutines: every write must land, none may
// surface a busy or locked error.
func testConcurrentWriters(t *testing.T, fresh func(*testing.T) Config) {
	c := fresh(t)
	stores := []*Store{openT(t, c), openT(t, c)}
	putIdentities(t, stores[0], fullIdentity("svc-shared"))
	const writers, writes = 4, 25
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*writes)
	for w := range writers {
		s := stores[w%2]
		wg.Go(func() {
			for i := range writes {
				errs <- s.RecordDecision(ctx, iga.AuditEvent{Time: time.Now(), Type: "decision", Identity: "svc-shared", Allow: true})
				errs <- s.Update(ctx, func(tx iga.Tx) error {
					if _, err := tx.Identity(ctx, "svc-shared"); err != nil {
						return err
					}
					return tx.PutIdentity(ctx, fullIdentity(fmt.Sprintf("svc-%d-%d", w, i)))
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "concurrent write")
	}
	evs, err := stores[1].Audit(ctx, iga.AuditFilter{Type: "decision"})
	require.NoError(t, err)
	assert.Len(t, evs, writers*writes, "got %d audited decisions, want %d", len(evs), writers*writes)
	ids, err := stores[0].Identities(ctx)
	require.NoError(t, err)
	assert.Len(t, ids, writers*writes+1, "got %d identities, want %d", len(ids), writers*writes+1)
}

func testReopen(t *testing.T, fresh func(*testing.T) Config) {
	c := fresh(t)
	ctx := ctxT(t)
	first, err := Open(ctx, c)
	require.NoError(t, err)
	putIdentities(t, first, fullIdentity("svc-a"))
	require.NoError(t, first.Close())

	for i := range 2 {
		s := openT(t, c)
		got, err := s.Identity(ctx, "svc-a")
		require.NoError(t, err, "reopen %d", i+1)
		assert.Equal(t, fullIdentity("svc-a"), got, "reopen %d", i+1)
		var applied int
		require.NoError(t, s.queryRow(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&applied))
		ms, err := s.d.migrations()
		require.NoError(t, err)
		assert.Equal(t, len(ms), applied, "reopen %d: got %d recorded migrations, want %d", i+1, applied, len(ms))
	}
}

// testConcurrentOpen starts several processes' worth of stores on one new
// database at once, as replicas starting together would.
func testConcurrentOpen(t *testing.T, fresh func(*testing.T) Config) {
	c := fresh(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(ctxT(t), c) })
	}
	wg.Wait()
	for i, s := range stores {
		require.NoError(t, errs[i], "open %d", i)
		t.Cleanup(func() { s.Close() })
	}
	var applied int
	require.NoError(t, stores[0].queryRow(ctxT(t), "SELECT COUNT(*) FROM schema_migrations").Scan(&applied))
	ms, err := stores[0].d.migrations()
	require.NoError(t, err)
	assert.Equal(t, len(ms), applied, "got %d recorded migrations, want %d", applied, len(ms))
	putIdentities(t, stores[n-1], fullIdentity("svc-a"))
	got, err := stores[0].Identity(ctxT(t), "svc-a")
	require.NoError(t, err)
	assert.Equal(t, fullIdentity("svc-a"), got)
}

func testNewerSchema(t *testing.T, fresh func(*testing.T) Config) {
	c := fresh(t)
	ctx := ctxT(t)
	s, err := Open(ctx, c)
	require.NoError(t, err)
	_, err = s.exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		999, "0999_from_the_future.sql", "2030-01-01T00:00:00.000000000Z")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = Open(ctx, c)
	require.Error(t, err, "opening a database migrated by a newer sallyport: got no error")
	assert.Contains(t, err.Error(), "upgrade sallyport")
}
