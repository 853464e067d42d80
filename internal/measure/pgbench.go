package measure

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
)

var (
	pgbenchTPS = regexp.MustCompile(`tps = ([0-9.]+) \((?:without initial connection time|including reconnection times)\)`)
	pgbenchTxs = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// PgbenchInit fills target's database with pgbench's tables (scale 1) and
// lets the target's entitled role read them: the PostgreSQL benchmarks'
// load is pgbench -S through the bastion as that role.
func PgbenchInit(tb testing.TB, target *sandbox.PostgresTarget) {
	tb.Helper()
	cmd := exec.Command(sandbox.PostgresClientT(tb, "pgbench"), "-i", "-s", "1", "-q", target.Database)
	cmd.Env = append(os.Environ(), target.Env()...)
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "pgbench -i: %s", out)
	require.NoError(tb, target.Exec(context.Background(), target.Database,
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+target.Role))
}

// PgbenchResult reads the tps and the number of transactions out of
// pgbench's report.
func PgbenchResult(out []byte) (tps float64, txs int, err error) {
	m := pgbenchTPS.FindSubmatch(out)
	if m == nil {
		return 0, 0, errors.New("no tps in pgbench's report")
	}
	if tps, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
		return 0, 0, err
	}
	if m = pgbenchTxs.FindSubmatch(out); m == nil {
		return 0, 0, errors.New("no transaction count in pgbench's report")
	}
	txs, err = strconv.Atoi(string(m[1]))
	return tps, txs, err
}
