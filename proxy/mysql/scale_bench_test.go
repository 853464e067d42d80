package mysql_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

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
	// scaleClientTimeout bounds one client's run of its script.
	scaleClientTimeout = 4 * time.Minute
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
		Clients: func(scripts []string) []string { return e.runClients(t, token, scripts) },
		Opened:  e.sessionsOpened, Live: e.live, Rec: e.rec, Store: e.recStore}
}

// runClients runs one mariadb client per script, all at once, and returns
// every error a client saw.
func (e *env) runClients(t testing.TB, token string, scripts []string) []string {
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	for i, script := range scripts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), scaleClientTimeout)
			defer cancel()
			in, err := os.Open(script)
			if err == nil {
				defer in.Close()
				cmd := e.mariadbCmd(ctx, t, okIdentity+"@"+targetName, token, "--skip-ssl", "--connect-timeout=60")
				cmd.Stdin = in
				var out []byte
				if out, err = cmd.CombinedOutput(); err != nil {
					err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("mariadb %d: %v", i, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// sessionsOpened is a copy of the ids of the sessions opened so far.
func (e *env) sessionsOpened() []string {
	e.opened.mu.Lock()
	defer e.opened.mu.Unlock()
	return append([]string(nil), e.opened.ids...)
}
