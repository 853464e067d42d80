package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
)

// TestPostgresComponent wires the postgres listener from a config file as
// serve does, sweeps a leftover role at start, and runs psql through it.
func TestPostgresComponent(t *testing.T) {
	target := sandbox.PostgresTargetT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leftover := "sp_00000001aaaaaaaaaaaaaaaa" // a session of 1970: long past the janitor's grace
	require.NoError(t, target.Exec(ctx, target.Database, "CREATE ROLE "+leftover+" LOGIN"))

	ap, port := startPostgresComponent(ctx, t, target, "require_tls: true")

	token, err := ap.reg.IssueToken(ctx, "svc-report", "test", 5*time.Minute)
	require.NoError(t, err)
	psql := exec.Command("psql", "-X", "-At", "-c", "SELECT count(*) FROM orders")
	psql.Env = append(os.Environ(), "PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", port), "PGUSER=svc-report",
		"PGDATABASE=analytics", "PGPASSWORD="+token, "PGSSLMODE=require", "PGCONNECT_TIMEOUT=10")
	var out []byte
	require.Eventually(t, func() bool {
		out, err = psql.CombinedOutput()
		if err != nil {
			psql = exec.Command(psql.Path, psql.Args[1:]...)
			psql.Env = append([]string(nil), psql.Env...)
		}
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "psql through serve's postgres listener")
	assert.Equal(t, "1000\n", string(out))

	conn, err := pgx.Connect(ctx, target.AdminDSN())
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, 'sp_')").Scan(&n)
		return err == nil && n == 0
	}, 10*time.Second, 50*time.Millisecond, "the janitor drops the leftover role and the session drops its own")
}

// startPostgresComponent runs serve's recorder, watcher and postgres
// components, as serve wires them from a config file, in front of target
// with pgApplyRegistry's identity, until the test ends. listener holds
// the postgres section's fields after listen (e.g. "require_tls: true").
// It returns the app and the postgres listener's port.
func startPostgresComponent(ctx context.Context, t *testing.T, target *sandbox.PostgresTarget, listener string) (*app, int) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	t.Setenv("PGTEST_ADMIN_DSN", target.AdminDSN())
	cfgText := fmt.Sprintf(`data_dir: %s
postgres: {listen: "127.0.0.1:%d", %s}
web: {listen: "127.0.0.1:%d"}
targets:
  - {name: analytics, kind: postgres, address: %q, database: %s, admin_dsn_env: PGTEST_ADMIN_DSN}
`, dir, port, listener, freePort(t), target.Addr(), target.Database)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sallyport.yaml"), []byte(cfgText), 0o600))
	cfg, err := LoadConfig(filepath.Join(dir, "sallyport.yaml"))
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ap, err := openApp(ctx, cfg, log)
	require.NoError(t, err)
	t.Cleanup(func() { ap.Close() })
	pgApplyRegistry(t, ap)
	d, err := newServeDeps(ctx, ap, log)
	require.NoError(t, err)
	comp, err := d.postgresComponent()
	require.NoError(t, err)
	for _, c := range []*component{d.recorderComponent(), d.watcherComponent(), comp} {
		go c.run(ctx)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		assert.NoError(t, comp.shutdown(sctx))
		assert.NoError(t, d.recorder.Shutdown(sctx))
	})
	return ap, port
}

func pgApplyRegistry(t *testing.T, ap *app) {
	t.Helper()
	now := time.Now().UTC()
	doc := fmt.Sprintf(`people:
  - {id: alice@example.com, name: Alice Ng, roles: [owner], status: active}
identities:
  - id: svc-report
    kind: service-account
    state: active
    owner: alice@example.com
    entitlements:
      - {target: analytics, login: analyst, actions: [query], expires: %s}
    certification: {by: alice@example.com, at: %s, until: %s}
`, now.AddDate(0, 1, 0).Format("2006-01-02"), now.AddDate(0, 0, -1).Format("2006-01-02"), now.AddDate(0, 1, 0).Format("2006-01-02"))
	f, err := iga.ParseFile("registry.yaml", []byte(doc))
	require.NoError(t, err)
	_, err = ap.reg.Apply(context.Background(), f, iga.ApplyOptions{Actor: "test"})
	require.NoError(t, err)
}
