package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
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
	// scaleDrainTimeout bounds the wait for every recording to be stored.
	scaleDrainTimeout = 2 * time.Minute
)

// scaleQueryRE reads back the session and query numbers of a scale query.
var scaleQueryRE = regexp.MustCompile(`^SELECT (\d+) AS s, (\d+) AS q, amount FROM orders WHERE id = \d+;?$`)

// scaleLoad is how many mariadb sessions run at once, and how many queries each.
type scaleLoad struct{ sessions, queries int }

func (l scaleLoad) total() int { return l.sessions * l.queries }

// BenchmarkMariadbScale runs 200 mariadb clients at once through one
// bastion, each a script of 1,000 distinct queries, then reads every
// session's recording back from the recording store: every query must be
// there, once, in order, with its outcome, and no client may have seen an
// error. It reports the counts and the queries/s of the whole run.
func BenchmarkMariadbScale(b *testing.B) {
	load := scaleLoad{sessions: *mariadbSessions, queries: *mariadbQueries}
	e := newScaleEnv(b, load)
	for b.Loop() {
		r := e.runScale(b, load)
		b.ReportMetric(float64(load.sessions), "sessions")
		b.ReportMetric(float64(load.total()), "queries")
		b.ReportMetric(float64(len(r.clientErrs)), "errors")
		b.ReportMetric(float64(r.recorded), "recorded-queries")
		b.ReportMetric(float64(load.total()-r.recorded), "missing-queries")
		b.ReportMetric(float64(load.total())/r.wall.Seconds(), "queries/s")
		r.check(b, load)
	}
}

// TestMariadbScaleRecordsEveryQuery is BenchmarkMariadbScale's check at a
// size make test affords (20 clients at once, 200 queries each): no query
// is lost, doubled, reordered or recorded without its outcome.
func TestMariadbScaleRecordsEveryQuery(t *testing.T) {
	load := scaleLoad{sessions: 20, queries: 200}
	e := newScaleEnv(t, load)
	e.runScale(t, load).check(t, load)
}

// scaleRun is what one scale run found.
type scaleRun struct {
	ids        []string // sessions opened
	clientErrs []string
	recorded   int
	problems   []string
	wall       time.Duration
}

func (r scaleRun) check(t testing.TB, load scaleLoad) {
	t.Helper()
	if missing := load.total() - r.recorded; len(r.clientErrs) > 0 || missing > 0 || len(r.ids) != load.sessions || len(r.problems) > 0 {
		t.Errorf("%d sessions opened (want %d), %d client errors, %d of %d queries missing from the recordings; first problems:\n%s",
			len(r.ids), load.sessions, len(r.clientErrs), missing, load.total(),
			strings.Join(firstN(append(r.clientErrs, r.problems...), 10), "\n"))
	}
}

// runScale runs the clients, waits for their recordings and reads them back.
func (e *env) runScale(t testing.TB, load scaleLoad) scaleRun {
	token := e.token(okIdentity)
	scripts := writeScaleScripts(t, load)
	before := len(e.sessionsOpened())
	start := time.Now()
	r := scaleRun{clientErrs: e.runClients(t, token, scripts)}
	r.wall = time.Since(start)
	r.ids = e.sessionsOpened()[before:]
	e.waitStored(t)
	r.recorded, r.problems = e.checkScaleRecordings(r.ids)
	t.Logf("%d clients took %s, recordings stored and read back after %s", load.sessions,
		r.wall.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return r
}

// newScaleEnv is newEnv's plaintext bastion, with the deployed 1 s flush
// interval, in front of a MariaDB started with room for every session's
// per-session user at once.
func newScaleEnv(t testing.TB, load scaleLoad) *env {
	m := sandbox.MariaDBT(t, sandbox.MariaDBOptions{Settings: map[string]string{
		"max_connections": strconv.Itoa(load.sessions + scaleConnectionsSpare)}})
	target, err := m.NewTarget(context.Background(), sandbox.MariaDBTargetOptions{})
	require.NoError(t, err)
	e := &env{t: t, target: target, opened: &openLog{}}
	e.admin, err = sql.Open("mysql", e.target.AdminDSN())
	require.NoError(t, err)
	t.Cleanup(func() { e.admin.Close() })
	e.issuer = &camysql.Issuer{DB: e.admin}
	e.newRegistry(t)
	e.deployedRecorder(t)
	e.live = &proxy.Live{Gate: e.reg, Recheck: 500 * time.Millisecond}
	wctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go e.live.Watch(wctx)
	e.serve(t, envOptions{plaintext: true})
	return e
}

// writeScaleScripts writes one script per session, of queries that name
// their session and their number.
func writeScaleScripts(t testing.TB, load scaleLoad) []string {
	dir := t.TempDir()
	paths := make([]string, load.sessions)
	for s := range load.sessions {
		var sb strings.Builder
		for q := range load.queries {
			fmt.Fprintf(&sb, "SELECT %d AS s, %d AS q, amount FROM orders WHERE id = %d;\n", s, q,
				(s*load.queries+q)%sandbox.MariaDBTargetSampleOrders+1)
		}
		paths[s] = filepath.Join(dir, fmt.Sprintf("session-%03d.sql", s))
		require.NoError(t, os.WriteFile(paths[s], []byte(sb.String()), 0o600))
	}
	return paths
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

// waitStored waits until every session has ended and its recording is
// sealed and stored.
func (e *env) waitStored(t testing.TB) {
	require.Eventually(t, func() bool { return len(e.live.Snapshot()) == 0 }, scaleDrainTimeout, 50*time.Millisecond,
		"%d sessions still live after every client exited", len(e.live.Snapshot()))
	ctx, cancel := context.WithTimeout(context.Background(), scaleDrainTimeout)
	defer cancel()
	require.NoError(t, e.rec.WaitIdle(ctx), "store every recording")
}

// checkScaleRecordings reads each session's recording from the store and
// counts the scale queries recorded with an outcome, once each and in
// order, in the recording of the session that ran them.
func (e *env) checkScaleRecordings(ids []string) (recorded int, problems []string) {
	seen := map[[2]int]bool{}
	for _, id := range ids {
		events, err := e.storedEvents(id)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		session, last := -1, -1
		for _, ev := range events {
			m := scaleQueryRE.FindStringSubmatch(ev.SQL)
			if ev.Type != recorder.EventQuery || m == nil {
				continue
			}
			s, _ := strconv.Atoi(m[1])
			q, _ := strconv.Atoi(m[2])
			switch {
			case session >= 0 && s != session:
				problems = append(problems, fmt.Sprintf("recording %s holds queries of scripts %d and %d", id, session, s))
			case seen[[2]int{s, q}]:
				problems = append(problems, fmt.Sprintf("query %d of script %d recorded twice", q, s))
			case q != last+1:
				problems = append(problems, fmt.Sprintf("query %d of script %d recorded after query %d", q, s, last))
			case ev.Outcome == nil:
				problems = append(problems, fmt.Sprintf("query %d of script %d recorded without its outcome", q, s))
			default:
				seen[[2]int{s, q}] = true
				recorded++
			}
			session, last = s, q
		}
	}
	return recorded, problems
}

// storedEvents replays the stored recording of session id once and
// returns its events; a recording without its end event is an error.
func (e *env) storedEvents(id string) ([]recorder.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scaleDrainTimeout)
	defer cancel()
	src, err := recorder.FindSession(ctx, e.recStore, id)
	if err != nil {
		return nil, fmt.Errorf("recording of session %s: %w", id, err)
	}
	var buf bytes.Buffer
	if err := recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: recorder.FormatJSON}); err != nil {
		return nil, fmt.Errorf("replay session %s: %w", id, err)
	}
	var out []recorder.Event
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var ev recorder.Event
		if err := dec.Decode(&ev); err != nil {
			return nil, fmt.Errorf("replay session %s: %w", id, err)
		}
		out = append(out, ev)
	}
	if len(out) == 0 || out[len(out)-1].Type != recorder.EventEnd {
		return out, fmt.Errorf("recording of session %s is not sealed: no end event", id)
	}
	return out, nil
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }
