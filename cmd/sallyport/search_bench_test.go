package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/internal/syncbuf"
)

// indexingConfig is serve in front of one PostgreSQL target, recording
// with the production defaults, with the search indexer on or off.
const indexingConfig = `data_dir: ./data
registry: {driver: sqlite}
search: {indexing: %t}
web: {listen: "127.0.0.1:0"}
postgres: {listen: "127.0.0.1:%d"}
targets:
  - {name: analytics, kind: postgres, address: %q, database: %s, admin_dsn_env: TEST_PG_ADMIN_DSN}
`

const indexingRegistry = `people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
identities:
  - id: svc-report
    kind: service-account
    state: active
    owner: alice@example.com
    entitlements: [{target: analytics, login: %s, actions: [query]}]
    certification: {by: alice@example.com, at: %s, until: %s}
`

// BenchmarkPgbenchIndexing runs `pgbench -S -c 4 -j 2` through two serve
// processes in front of one target, one indexing what it records and one
// not, interleaved five times, and reports the median tps ratio: what
// indexing live sessions costs the relay (goal ≥ 0.97×).
func BenchmarkPgbenchIndexing(b *testing.B) {
	pgbench := sandbox.PostgresClientT(b, "pgbench")
	target := sandbox.PostgresTargetT(b, sandbox.PostgresTargetOptions{})
	measure.PgbenchInit(b, target)
	on, indexed := indexingServe(b, pgbench, target, true)
	off, _ := indexingServe(b, pgbench, target, false)
	for b.Loop() {
		m := measure.Rounds(5, measure.Contender{Run: on}, measure.Contender{Run: off})
		require.Eventually(b, func() bool { return strings.Count(indexed(), `"where": "query"`) == 50 }, 30*time.Second,
			time.Second, "the indexing serve indexed pgbench's queries")
		b.ReportMetric(m[0].Rate, "indexing_tps")
		b.ReportMetric(m[1].Rate, "no_indexing_tps")
		b.ReportMetric(m[0].Rate/m[1].Rate, "on/off")
	}
}

// indexingServe starts serve with indexing on or off and returns a
// pgbench run through it, for measure.Rounds, and a search of its index
// for pgbench's query.
func indexingServe(b *testing.B, pgbench string, target *sandbox.PostgresTarget, indexing bool) (func() (float64, int), func() string) {
	dir := b.TempDir()
	config, registry := filepath.Join(dir, "sallyport.yaml"), filepath.Join(dir, "registry.yaml")
	pgPort, webPort := measure.FreePort(b), measure.FreePort(b)
	cfg := strings.Replace(fmt.Sprintf(indexingConfig, indexing, pgPort, target.Addr(), target.Database),
		`web: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`web: {listen: "127.0.0.1:%d"}`, webPort), 1)
	require.NoError(b, os.WriteFile(config, []byte(cfg), 0o600))
	now := time.Now().UTC()
	require.NoError(b, os.WriteFile(registry, []byte(fmt.Sprintf(indexingRegistry, target.Role,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))), 0o600))
	env := append(os.Environ(), "TEST_PG_ADMIN_DSN="+target.AdminDSN())
	run := func(args ...string) string {
		cmd := exec.Command(binary, append([]string{"--config", config}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.Output()
		require.NoError(b, err, "sallyport %v", args)
		return strings.TrimSpace(string(out))
	}
	run("iga", "apply", "-f", registry)
	token := run("token", "issue", "svc-report", "--ttl", "30m")
	serve := exec.Command(binary, "--config", config, "serve")
	serve.Dir, serve.Env = dir, env
	logs := &syncbuf.Buffer{}
	serve.Stderr = logs
	require.NoError(b, serve.Start())
	b.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	measure.WaitListening(b, pgPort, "serve's postgres listener", logs)
	client := append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(pgPort), "PGUSER=svc-report",
		"PGPASSWORD="+token, "PGDATABASE=analytics", "PGSSLMODE=require")
	search := func() string { return run("sessions", "search", "pgbench_accounts", "--json") }
	return func() (float64, int) {
		cmd := exec.Command(pgbench, "-n", "-S", "-c", "4", "-j", "2", "-T", "3", "analytics")
		cmd.Env = client
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, "pgbench: %s", out)
		tps, txs, err := measure.PgbenchResult(out)
		require.NoError(b, err, "pgbench output: %s", out)
		return tps, txs
	}, search
}
