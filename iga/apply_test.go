package iga_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// The helpers of the apply, export and governance tests are prefixed gw
// so they stay apart from the other test files of package iga_test.

// gwNow is the registry clock of these tests: after the example file's
// certifications (2026-11-15) and before they expire (2027-02-13).
var gwNow = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// gwTargets is what the config of these tests defines; the example file's
// "analytics" target is deliberately missing.
var gwTargets = map[string]iga.Target{
	"web-01": {Name: "web-01", Kind: "ssh", Environment: "prod"},
	"db-01":  {Name: "db-01", Kind: "postgres"},
}

// gwEachDriver runs fn once per storage driver; fresh gives each subtest
// an empty store (SQLite in a temp dir, or a new database on one sandbox
// PostgreSQL started for the driver's run).
func gwEachDriver(t *testing.T, fn func(t *testing.T, fresh func(t *testing.T) *iga.Registry)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func(t *testing.T) *iga.Registry {
			return gwRegistry(gwOpen(t, sqlstore.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "registry.db")}))
		})
	})
	t.Run("postgres", func(t *testing.T) {
		pg := sandbox.PostgresT(t, gwPostgresOptions)
		var n atomic.Int64
		fn(t, func(t *testing.T) *iga.Registry {
			db := fmt.Sprintf("registry_%d", n.Add(1))
			require.NoError(t, pg.CreateDatabase(context.Background(), db), "create database %s", db)
			return gwRegistry(gwOpen(t, sqlstore.Config{Driver: "postgres", DSN: pg.DSN(db)}))
		})
	})
}

// gwPostgresOptions trade durability for speed: these servers live for one
// test, and every subtest creates and migrates a database of its own.
var gwPostgresOptions = sandbox.PostgresOptions{Settings: map[string]string{
	"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
}}

func gwOpen(t testing.TB, c sqlstore.Config) iga.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), c)
	require.NoError(t, err, "open %s registry", c.Driver)
	t.Cleanup(func() { s.Close() })
	return s
}

func gwRegistry(s iga.Store) *iga.Registry {
	return &iga.Registry{
		Store:   s,
		Targets: func(name string) (iga.Target, bool) { t, ok := gwTargets[name]; return t, ok },
		Now:     func() time.Time { return gwNow },
		Logger:  slog.New(slog.DiscardHandler),
	}
}

// gwCtx is a context that ends with the test.
func gwCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// gwApply parses data as the file name and applies it.
func gwApply(t testing.TB, r *iga.Registry, name string, data []byte, opts iga.ApplyOptions) (iga.ApplyResult, error) {
	t.Helper()
	f, err := iga.ParseFile(name, data)
	require.NoError(t, err, "parse %s", name)
	return r.Apply(gwCtx(t), f, opts)
}

// gwApplyExample applies testdata/registries/example.yaml.
func gwApplyExample(t testing.TB, r *iga.Registry) iga.ApplyResult {
	t.Helper()
	res, err := gwApply(t, r, "example.yaml", readRegistry(t, "example.yaml"), iga.ApplyOptions{Actor: "ops@example.com"})
	require.NoError(t, err, "apply example.yaml")
	return res
}

// gwExport is what `sallyport iga export` prints.
func gwExport(t testing.TB, r *iga.Registry) []byte {
	t.Helper()
	doc, err := r.Export(gwCtx(t))
	require.NoError(t, err, "export")
	out, err := iga.MarshalDoc(doc)
	require.NoError(t, err, "marshal export")
	return out
}

// gwSnapshot is everything a user can see of a registry: the export, every
// certification decision and every audit event.
func gwSnapshot(t testing.TB, r *iga.Registry) string {
	t.Helper()
	ctx := gwCtx(t)
	var b strings.Builder
	b.Write(gwExport(t, r))
	ids, err := r.Store.Identities(ctx)
	require.NoError(t, err)
	for _, id := range ids {
		certs, err := r.Store.Certifications(ctx, id.ID)
		require.NoError(t, err)
		fmt.Fprintf(&b, "%s certifications: %d\n", id.ID, len(certs))
	}
	events, err := r.Store.Audit(ctx, iga.AuditFilter{})
	require.NoError(t, err)
	fmt.Fprintf(&b, "audit events: %d\n", len(events))
	return b.String()
}

func gwAudit(t testing.TB, r *iga.Registry, f iga.AuditFilter) []iga.AuditEvent {
	t.Helper()
	events, err := r.Store.Audit(gwCtx(t), f)
	require.NoError(t, err)
	return events
}

var exampleIdentities = []string{"bg-root", "ci-deploy", "legacy-cron", "svc-backup"}

// TestRegistryWrites runs the apply, export and governance tests on each
// storage driver; the PostgreSQL run shares one sandbox server, each
// subtest with a database of its own.
func TestRegistryWrites(t *testing.T) {
	gwEachDriver(t, func(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
		t.Run("apply", func(t *testing.T) { testApply(t, fresh) })
		t.Run("apply refused", func(t *testing.T) { testApplyRefused(t, fresh) })
		t.Run("apply conflicts", func(t *testing.T) { testApplyConflicts(t, fresh) })
		t.Run("tokens after a revoke", func(t *testing.T) { testTokensAfterRevoke(t, fresh) })
		t.Run("certify", func(t *testing.T) { testCertify(t, fresh) })
		t.Run("revoke", func(t *testing.T) { testRevoke(t, fresh) })
		t.Run("offboard", func(t *testing.T) { testOffboard(t, fresh) })
		t.Run("grants", func(t *testing.T) { testGrants(t, fresh) })
	})
}

func testApply(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
	t.Run("example creates everything", func(t *testing.T) {
		r := fresh(t)
		res := gwApplyExample(t, r)
		assert.Equal(t, exampleIdentities, res.Created)
		assert.Empty(t, res.Updated)
		assert.Empty(t, res.Unchanged)
		assert.Equal(t, []string{"alice@example.com", "bob@example.com", "carol@example.com"}, res.PeopleCreated)
		assert.Equal(t, []string{"bg-root", "ci-deploy", "svc-backup"}, res.Certified)

		require.Len(t, res.Warnings, 1, "got warnings %v, want one for the analytics target", res.Warnings)
		assert.Equal(t, "example.yaml:25: identity svc-backup: target analytics is not in the config's targets; the entitlement is kept but admits nothing until the target is added",
			res.Warnings[0].String())

		f, err := iga.ParseFile("example.yaml", readRegistry(t, "example.yaml"))
		require.NoError(t, err)
		got, err := r.Store.Identity(gwCtx(t), "svc-backup")
		require.NoError(t, err)
		want := f.Doc.Identities[0]
		assert.Equal(t, want.Entitlements, got.Entitlements, "the analytics entitlement is kept despite the warning")
		assert.Equal(t, want.Credentials.SSHKeys[0].Key, got.Credentials.SSHKeys[0].Key)
		assert.True(t, want.Credentials.SSHKeys[0].Expires.Equal(got.Credentials.SSHKeys[0].Expires))
		require.NotNil(t, got.Certification)
		assert.Equal(t, "alice@example.com", got.Certification.By)

		events := gwAudit(t, r, iga.AuditFilter{Type: "apply"})
		assert.Len(t, events, 3+4, "one event per person and identity")
		backupEvents := gwAudit(t, r, iga.AuditFilter{Type: "apply", Identity: "svc-backup"})
		require.Len(t, backupEvents, 1)
		assert.Equal(t, "created: kind service-account, state active, owner alice@example.com; certification added: certify by alice@example.com at 2026-11-15 until 2027-02-13",
			backupEvents[0].Detail)
		for _, e := range events {
			assert.Equal(t, "ops@example.com", e.Actor)
		}
	})

	t.Run("applying twice changes nothing", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		before := gwSnapshot(t, r)
		res := gwApplyExample(t, r)
		assert.Equal(t, exampleIdentities, res.Unchanged)
		assert.Empty(t, res.Created)
		assert.Empty(t, res.Updated)
		assert.Empty(t, res.Certified)
		assert.Empty(t, res.PeopleCreated)
		assert.Empty(t, res.PeopleUpdated)
		assert.False(t, res.Changed())
		assert.Equal(t, before, gwSnapshot(t, r), "a second apply wrote something")
	})

	t.Run("export round-trips byte for byte", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		first := gwExport(t, r)

		f, err := iga.ParseFile("example.yaml", readRegistry(t, "example.yaml"))
		require.NoError(t, err)
		canonical, err := iga.MarshalDoc(f.Doc)
		require.NoError(t, err)
		assert.Equal(t, string(canonical), string(first), "the export is the file in canonical form")
		assert.Contains(t, string(first), `{target: web-01, login: cron, actions: [exec], commands: [/usr/bin/uptime, /usr/local/bin/rotate-logs.sh *]}`,
			"the commands are stored and exported, sorted")

		before := gwSnapshot(t, r)
		res, err := gwApply(t, r, "export.yaml", first, iga.ApplyOptions{Prune: true})
		require.NoError(t, err)
		assert.Equal(t, exampleIdentities, res.Unchanged)
		assert.False(t, res.Changed(), "got %+v, want no change", res)
		assert.Equal(t, before, gwSnapshot(t, r))
		assert.Equal(t, string(first), string(gwExport(t, r)), "two exports differ")
	})

	t.Run("certify and revoke survive the round trip", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		r.Now = func() time.Time { return gwNow.Add(1234567891 * time.Nanosecond) } // a clock finer than the file
		_, err := r.Certify(gwCtx(t), "svc-backup", "alice@example.com", 30*24*time.Hour, "after the audit")
		require.NoError(t, err)
		require.NoError(t, r.Revoke(gwCtx(t), "bg-root", "carol@example.com", "holder list under review"))
		first := gwExport(t, r)
		assert.Contains(t, string(first), "certification: {by: alice@example.com, at: '2026-11-28T10:00:01Z', until: '2026-12-28T10:00:01Z', note: after the audit}")
		assert.Contains(t, string(first), "certification: {decision: revoke, by: carol@example.com, at: '2026-11-28T10:00:01Z', note: holder list under review}")

		before := gwSnapshot(t, r)
		res, err := gwApply(t, r, "export.yaml", first, iga.ApplyOptions{})
		require.NoError(t, err)
		assert.False(t, res.Changed(), "got %+v, want no change", res)
		assert.Empty(t, res.Certified)
		assert.Equal(t, before, gwSnapshot(t, r))
	})

	t.Run("changes are written and audited", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		changed := strings.Replace(string(readRegistry(t, "example.yaml")),
			"    state: active\n    owner: alice@example.com\n    environment: prod",
			"    state: suspended\n    owner: alice@example.com\n    environment: prod", 1)
		changed = strings.Replace(changed, "{target: web-01, login: deploy, actions: [exec]}", "{target: web-01, login: deploy, actions: [exec, sftp]}", 1)
		changed = strings.Replace(changed, "{id: carol@example.com, name: Carol Diaz, roles: [admin], status: active}",
			"{id: carol@example.com, name: Carol Diaz, roles: [admin, auditor], status: active}", 1)
		res, err := gwApply(t, r, "example.yaml", []byte(changed), iga.ApplyOptions{Actor: "ops@example.com"})
		require.NoError(t, err)
		assert.Equal(t, []string{"ci-deploy", "svc-backup"}, res.Updated)
		assert.Equal(t, []string{"bg-root", "legacy-cron"}, res.Unchanged)
		assert.Equal(t, []string{"carol@example.com"}, res.PeopleUpdated)

		got, err := r.Store.Identity(gwCtx(t), "svc-backup")
		require.NoError(t, err)
		assert.Equal(t, iga.StateSuspended, got.State)
		ci, err := r.Store.Identity(gwCtx(t), "ci-deploy")
		require.NoError(t, err)
		assert.Equal(t, []iga.Action{iga.ActionExec, iga.ActionSFTP}, ci.Entitlements[0].Actions)

		events := gwAudit(t, r, iga.AuditFilter{Identity: "svc-backup", Type: "apply"})
		require.NotEmpty(t, events)
		assert.Equal(t, "state active→suspended", events[len(events)-1].Detail)
	})

	t.Run("a different certification is appended", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		changed := strings.Replace(string(readRegistry(t, "example.yaml")),
			"at: 2026-11-15, until: 2027-02-13, note: quarterly review", "at: 2026-11-27, until: 2027-02-20, note: re-reviewed", 1)
		res, err := gwApply(t, r, "example.yaml", []byte(changed), iga.ApplyOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"svc-backup"}, res.Certified)
		assert.Equal(t, []string{"svc-backup"}, res.Updated, "a new certification counts as an update")
		certs, err := r.Store.Certifications(gwCtx(t), "svc-backup")
		require.NoError(t, err)
		require.Len(t, certs, 2, "the history keeps the earlier certification")
		assert.Equal(t, "re-reviewed", certs[1].Note)
	})

	t.Run("prune deprovisions identities missing from the file", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		only := []byte(`people:
  - {id: alice@example.com, name: Alice Ng, roles: [owner, auditor], status: active}
identities:
  - {id: svc-backup, kind: service-account, state: active, owner: alice@example.com}
`)
		res, err := gwApply(t, r, "only.yaml", only, iga.ApplyOptions{})
		require.NoError(t, err)
		assert.Empty(t, res.Deprovisioned, "without prune nothing is deprovisioned")
		ci, err := r.Store.Identity(gwCtx(t), "ci-deploy")
		require.NoError(t, err)
		assert.Equal(t, iga.StateSuspended, ci.State)

		res, err = gwApply(t, r, "only.yaml", only, iga.ApplyOptions{Prune: true})
		require.NoError(t, err)
		assert.Equal(t, []string{"bg-root", "ci-deploy", "legacy-cron"}, res.Deprovisioned)
		for _, id := range res.Deprovisioned {
			got, err := r.Store.Identity(gwCtx(t), id)
			require.NoError(t, err)
			assert.Equal(t, iga.StateDeprovisioned, got.State, "state of %s", id)
		}
		events := gwAudit(t, r, iga.AuditFilter{Identity: "legacy-cron"})
		assert.Equal(t, "state proposed→deprovisioned: not in only.yaml (prune)", events[len(events)-1].Detail)

		res, err = gwApply(t, r, "only.yaml", only, iga.ApplyOptions{Prune: true})
		require.NoError(t, err)
		assert.Empty(t, res.Deprovisioned, "already deprovisioned identities are left alone")
		assert.False(t, res.Changed())
	})

	t.Run("a doc built in code is validated like a file", func(t *testing.T) {
		r := fresh(t)
		doc := iga.Doc{
			People:     []iga.Person{{ID: "dan@example.com", Status: iga.PersonInactive}},
			Identities: []iga.Identity{{ID: "svc-seed", Kind: iga.KindAgent, State: iga.StateActive, Owner: "dan@example.com"}},
		}
		f, err := iga.FileFromDoc("seed", doc)
		require.NoError(t, err)
		res, err := r.Apply(gwCtx(t), f, iga.ApplyOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"svc-seed"}, res.Created)
		require.Len(t, res.Warnings, 1)
		assert.Contains(t, res.Warnings[0].String(), "identity svc-seed: owner dan@example.com is inactive; admission denies it owner_inactive")

		doc.Identities[0].Kind = "robot"
		_, err = iga.FileFromDoc("seed", doc)
		assert.ErrorContains(t, err, `unknown kind "robot"`)
		_, err = r.Apply(gwCtx(t), &iga.File{Name: "hand-made", Doc: doc}, iga.ApplyOptions{})
		assert.ErrorContains(t, err, "the file was not parsed", "a File that skipped validation is refused")
	})

	t.Run("people already in the registry may be referenced", func(t *testing.T) {
		r := fresh(t)
		gwApplyExample(t, r)
		res, err := gwApply(t, r, "more.yaml", []byte(`identities:
  - id: svc-new
    kind: workload
    state: active
    owner: bob@example.com
    certification: {by: bob@example.com, at: 2026-11-20, until: 2027-01-20}
`), iga.ApplyOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"svc-new"}, res.Created)
	})
}

func testApplyRefused(t *testing.T, fresh func(t *testing.T) *iga.Registry) {
	cases := []struct {
		name   string
		policy iga.Policy
		file   string
		want   []string
	}{
		{
			name: "unknown owner",
			file: "identities:\n  - id: svc-x\n    kind: agent\n    state: active\n    owner: dave@example.com\n",
			want: []string{"new.yaml:5: identity svc-x: owner dave@example.com is not a person in this file or the registry; add them under people:"},
		},
		{
			name: "unknown holder",
			file: "identities:\n  - id: bg-x\n    kind: break-glass\n    state: active\n    owner: alice@example.com\n    holders:\n      - bob@example.com\n      - erin@example.com\n",
			want: []string{"new.yaml:8: identity bg-x: holder erin@example.com is not a person"},
		},
		{
			name: "unknown certifier",
			file: "identities:\n  - id: svc-x\n    kind: agent\n    state: active\n    owner: alice@example.com\n    certification: {by: mallory@example.com, at: 2026-11-01, until: 2026-12-01}\n",
			want: []string{"new.yaml:6: identity svc-x: certifier mallory@example.com is not a person"},
		},
		{
			name: "certification longer than the maximum",
			file: "identities:\n  - id: svc-x\n    kind: agent\n    state: active\n    owner: alice@example.com\n    certification: {by: alice@example.com, at: 2026-11-01, until: 2027-03-01}\n",
			want: []string{"new.yaml:6: identity svc-x: certification from 2026-11-01 until 2027-03-01 lasts 120d, longer than the maximum of 90d (certification.max_period)"},
		},
		{
			name:   "certification longer than a configured maximum",
			policy: iga.Policy{MaxCertification: 14 * 24 * time.Hour},
			file:   "identities:\n  - id: svc-x\n    kind: agent\n    state: active\n    owner: alice@example.com\n    certification: {by: alice@example.com, at: 2026-11-01, until: 2026-12-01}\n",
			want:   []string{"new.yaml:6: identity svc-x: certification from 2026-11-01 until 2026-12-01 lasts 30d, longer than the maximum of 14d"},
		},
		{
			name: "every problem at once, and valid changes are not applied",
			file: `people:
  - {id: alice@example.com, name: Alice Renamed, status: active}
identities:
  - {id: svc-backup, kind: service-account, state: deprovisioned, owner: alice@example.com}
  - id: svc-x
    kind: agent
    state: active
    owner: dave@example.com
    certification: {by: alice@example.com, at: 2026-01-01, until: 2027-01-01}
  - id: bg-x
    kind: break-glass
    state: active
    owner: alice@example.com
    holders: [erin@example.com]
`,
			want: []string{
				"new.yaml:8: identity svc-x: owner dave@example.com",
				"new.yaml:9: identity svc-x: certification from 2026-01-01 until 2027-01-01 lasts 365d",
				"new.yaml:14: identity bg-x: holder erin@example.com",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := fresh(t)
			gwApplyExample(t, r)
			r.Policy = tc.policy
			before := gwSnapshot(t, r)

			res, err := gwApply(t, r, "new.yaml", []byte(tc.file), iga.ApplyOptions{Prune: true})
			require.Error(t, err, "got %+v, want the file refused", res)
			var fe *iga.FileError
			require.True(t, errors.As(err, &fe), "got %T %v, want *iga.FileError", err, err)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tc.want), "got problems:\n%s", err)
			for i, w := range tc.want {
				assert.True(t, strings.HasPrefix(lines[i], w), "problem %d: got %q, want it to start with %q", i, lines[i], w)
			}
			assert.Equal(t, before, gwSnapshot(t, r), "a refused apply changed the registry")
		})
	}
}

// BenchmarkApply10k applies a file of 10,000 identities to a fresh SQLite
// registry per iteration (ns/op), then applies it again unchanged
// (reapply-ms, the cost of a no-op `iga apply`). Parsing is not timed.
func BenchmarkApply10k(b *testing.B) {
	const n = 10000
	f, err := iga.ParseFile("large.yaml", gwLargeFile(n))
	require.NoError(b, err)
	var reapply time.Duration
	for b.Loop() {
		b.StopTimer()
		r := gwRegistry(gwOpen(b, sqlstore.Config{Driver: "sqlite", Path: filepath.Join(b.TempDir(), "registry.db")}))
		b.StartTimer()
		res, err := r.Apply(context.Background(), f, iga.ApplyOptions{})
		require.NoError(b, err)
		require.Len(b, res.Created, n)

		b.StopTimer()
		start := time.Now()
		res, err = r.Apply(context.Background(), f, iga.ApplyOptions{})
		reapply += time.Since(start)
		require.NoError(b, err)
		require.Len(b, res.Unchanged, n)
		b.StartTimer()
	}
	b.ReportMetric(float64(reapply.Milliseconds())/float64(b.N), "reapply-ms")
}

// BenchmarkParseFile10k parses a registry file of 10,000 identities.
func BenchmarkParseFile10k(b *testing.B) {
	data := gwLargeFile(10000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, err := iga.ParseFile("large.yaml", data)
		require.NoError(b, err)
	}
}

// gwLargeFile is a registry of n certified service accounts over 50 owners.
func gwLargeFile(n int) []byte {
	var b strings.Builder
	b.WriteString("people:\n")
	for i := range 50 {
		fmt.Fprintf(&b, "  - {id: owner%d@example.com, name: Owner %d, roles: [owner], status: active}\n", i, i)
	}
	b.WriteString("identities:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - id: svc-%05d
    kind: service-account
    state: active
    owner: owner%d@example.com
    environment: prod
    credentials:
      ssh_keys:
        - {key: "%s svc-%05d", expires: 2027-11-01}
    entitlements:
      - {target: web-01, login: app, actions: [exec, sftp], from: [10.0.0.0/8]}
    certification: {by: owner%d@example.com, at: 2026-11-15, until: 2027-02-13}
`, i, i%50, testKey, i, i%50)
	}
	return []byte(b.String())
}
