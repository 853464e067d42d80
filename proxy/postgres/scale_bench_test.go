package postgres_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/measure"
)

// psqlSessions psql processes run at once through one bastion,
// psqlQueries queries each: issue 9's scale goal. `go test -bench PsqlScale
// -args -psql-sessions 20` measures another load.
var (
	psqlSessions = flag.Int("psql-sessions", 200, "psql processes BenchmarkPsqlScale runs at once")
	psqlQueries  = flag.Int("psql-queries", 1000, "queries each psql of BenchmarkPsqlScale runs")
)

const (
	// scaleConnectionsSpare is max_connections beyond one per session: the
	// issuer's admin pool, the superuser's logins, the reserved slots.
	scaleConnectionsSpare = 50
	// scaleConnectTimeout is psql's login timeout: hundreds of logins at
	// once queue for role creation on the target.
	scaleConnectTimeout = "60"
)

// BenchmarkPsqlScale runs 200 psql processes at once through one bastion,
// each a script of 1,000 distinct queries, then reads every session's
// recording back from the recording store: every query must be there,
// once, in order, with its outcome, and no client may have seen an error.
// It reports the counts and the queries/s of the whole run.
func BenchmarkPsqlScale(b *testing.B) {
	s := newScaleEnv(b, measure.ScaleLoad{Sessions: *psqlSessions, Queries: *psqlQueries})
	for b.Loop() {
		r := s.Run(b)
		r.Report(b)
		r.Check(b)
	}
}

// newScaleEnv is newEnv's plaintext bastion, with the deployed 1 s flush
// interval, in front of a PostgreSQL started with room for every
// session's per-session role at once.
func newScaleEnv(b *testing.B, load measure.ScaleLoad) measure.Scale {
	pg := sandbox.PostgresT(b, sandbox.PostgresOptions{Settings: map[string]string{
		"max_connections": strconv.Itoa(load.Sessions + scaleConnectionsSpare)}})
	target, err := pg.NewTarget(context.Background(), sandbox.PostgresTargetOptions{})
	require.NoError(b, err)
	e := newEnv(b, envOptions{plaintext: true, target: target})
	e.productionRecorder(b)
	token, bin := e.token(okIdentity), clientBinary(b, "psql")
	return measure.Scale{Load: load, Orders: sandbox.TargetSampleOrders,
		Client: func(ctx context.Context, script string) []string { return e.runPsql(ctx, bin, token, script) },
		Opened: e.sessionsOpened, Live: e.live, Rec: e.rec, Store: e.recStore}
}

// runPsql runs psql on script and returns every error it saw: a failed
// exit or an ERROR/FATAL line.
func (e *env) runPsql(ctx context.Context, bin, token, script string) []string {
	cmd := exec.CommandContext(ctx, bin, "-X", "-q", "-At", "-o", os.DevNull, "-f", script)
	cmd.Env = append(e.pgEnv(okIdentity, token, "disable"), "PGCONNECT_TIMEOUT="+scaleConnectTimeout) // the last one counts
	out, err := cmd.CombinedOutput()
	if err != nil {
		return []string{fmt.Sprintf("psql: %v: %s", err, strings.TrimSpace(string(out)))}
	}
	var errs []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "ERROR:") || strings.Contains(l, "FATAL:") {
			errs = append(errs, "psql: "+l)
		}
	}
	return errs
}

// sessionsOpened is a copy of the ids of the sessions opened so far.
func (e *env) sessionsOpened() []string {
	e.opened.mu.Lock()
	defer e.opened.mu.Unlock()
	return append([]string(nil), e.opened.ids...)
}
