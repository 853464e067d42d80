package mysql_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/measure"
)

// mariadbSessions mariadb clients run at once through one bastion,
// mariadbQueries queries each: the MySQL twin of proxy/postgres's
// BenchmarkPsqlScale. `go test -bench MariadbScale -args
// -mariadb-sessions 20` measures another load.
var (
	mariadbSessions = flag.Int("mariadb-sessions", 200, "mariadb clients BenchmarkMariadbScale runs at once")
	mariadbQueries  = flag.Int("mariadb-queries", 1000, "queries each mariadb client of BenchmarkMariadbScale runs")
)

const (
	// scaleConnectionsSpare is max_connections beyond one per session: the
	// issuer's admin pool, the benchmark's own logins.
	scaleConnectionsSpare = 50
)

// BenchmarkMariadbScale runs 200 mariadb clients at once through one
// bastion, each a script of 1,000 distinct queries, then reads every
// session's recording back from the recording store: every query must be
// there, once, in order, with its outcome, and no client may have seen an
// error. It reports the counts and the queries/s of the whole run.
func BenchmarkMariadbScale(b *testing.B) {
	s := newScaleEnv(b, measure.ScaleLoad{Sessions: *mariadbSessions, Queries: *mariadbQueries})
	for b.Loop() {
		r := s.Run(b)
		r.Report(b)
		r.Check(b)
	}
}

// TestMariadbScaleRecordsEveryQuery is BenchmarkMariadbScale's check at a
// size make test affords (20 clients at once, 200 queries each): no query
// is lost, doubled, reordered or recorded without its outcome.
func TestMariadbScaleRecordsEveryQuery(t *testing.T) {
	newScaleEnv(t, measure.ScaleLoad{Sessions: 20, Queries: 200}).Run(t).Check(t)
}

// newScaleEnv is newEnv's plaintext bastion, with the deployed 1 s flush
// interval, in front of a MariaDB started with room for every session's
// per-session user at once.
func newScaleEnv(t testing.TB, load measure.ScaleLoad) measure.Scale {
	m := sandbox.MariaDBT(t, sandbox.MariaDBOptions{Settings: map[string]string{
		"max_connections": strconv.Itoa(load.Sessions + scaleConnectionsSpare)}})
	target, err := m.NewTarget(context.Background(), sandbox.MariaDBTargetOptions{})
	require.NoError(t, err)
	e := newEnv(t, envOptions{plaintext: true, target: target})
	e.deployedRecorder(t)
	token := e.token(okIdentity)
	return measure.Scale{Load: load, Orders: sandbox.MariaDBTargetSampleOrders,
		Client: func(ctx context.Context, script string) []string { return e.runClient(ctx, t, token, script) },
		Opened: e.sessionsOpened, Live: e.live, Rec: e.rec, Store: e.recStore}
}

// runClient runs a mariadb client on script and returns the error it saw.
func (e *env) runClient(ctx context.Context, t testing.TB, token, script string) []string {
	in, err := os.Open(script)
	if err != nil {
		return []string{err.Error()}
	}
	defer in.Close()
	cmd := e.mariadbCmd(ctx, t, okIdentity+"@"+targetName, token, "--skip-ssl", "--connect-timeout=60")
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		return []string{fmt.Sprintf("mariadb: %v: %s", err, bytes.TrimSpace(out))}
	}
	return nil
}

// sessionsOpened is a copy of the ids of the sessions opened so far.
func (e *env) sessionsOpened() []string {
	e.opened.mu.Lock()
	defer e.opened.mu.Unlock()
	return append([]string(nil), e.opened.ids...)
}
