package postgres_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
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
	// scalePsqlTimeout bounds one psql run of its script.
	scalePsqlTimeout = 4 * time.Minute
	// scaleConnectTimeout is psql's login timeout: hundreds of logins at
	// once queue for role creation on the target.
	scaleConnectTimeout = "60"
	// scaleDrainTimeout bounds the wait for every recording to be stored.
	scaleDrainTimeout = 2 * time.Minute
)

// scaleQueryRE reads back the session and query numbers of a scale query.
var scaleQueryRE = regexp.MustCompile(`^SELECT (\d+) AS s, (\d+) AS q, amount FROM orders WHERE id = \d+;?$`)

// scaleLoad is how many psql sessions run at once, and how many queries each.
type scaleLoad struct{ sessions, queries int }

func (l scaleLoad) total() int { return l.sessions * l.queries }

// BenchmarkPsqlScale runs 200 psql processes at once through one bastion,
// each a script of 1,000 distinct queries, then reads every session's
// recording back from the recording store: every query must be there,
// once, with its outcome, and no client may have seen an error. It
// reports the counts and the queries/s of the whole run.
func BenchmarkPsqlScale(b *testing.B) {
	load := scaleLoad{sessions: *psqlSessions, queries: *psqlQueries}
	e := newScaleEnv(b, load)
	token := e.token(okIdentity)
	scripts := writeScaleScripts(b, load)
	for b.Loop() {
		before := len(e.sessionsOpened())
		start := time.Now()
		clientErrs := e.runPsqls(b, token, scripts)
		wall := time.Since(start)
		ids := e.sessionsOpened()[before:]
		e.waitStored(b)
		stored := time.Since(start)
		recorded, problems := e.checkScaleRecordings(b, ids)
		b.Logf("psql runs took %s, recordings stored after %s, read back after %s",
			wall.Round(time.Millisecond), stored.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		missing := load.total() - recorded
		b.ReportMetric(float64(load.sessions), "sessions")
		b.ReportMetric(float64(load.total()), "queries")
		b.ReportMetric(float64(len(clientErrs)), "errors")
		b.ReportMetric(float64(recorded), "recorded-queries")
		b.ReportMetric(float64(missing), "missing-queries")
		b.ReportMetric(float64(load.total())/wall.Seconds(), "queries/s")
		if len(clientErrs) > 0 || missing > 0 || len(ids) != load.sessions {
			b.Errorf("%d sessions opened (want %d), %d client errors, %d of %d queries missing from the recordings; first problems:\n%s",
				len(ids), load.sessions, len(clientErrs), missing, load.total(),
				strings.Join(firstN(append(clientErrs, problems...), 10), "\n"))
		}
	}
}

// newScaleEnv is newEnv's plaintext bastion in front of a PostgreSQL
// started with room for every session's per-session role at once.
func newScaleEnv(b *testing.B, load scaleLoad) *env {
	pg := sandbox.PostgresT(b, sandbox.PostgresOptions{Settings: map[string]string{
		"max_connections": strconv.Itoa(load.sessions + scaleConnectionsSpare)}})
	target, err := pg.NewTarget(context.Background(), sandbox.PostgresTargetOptions{})
	require.NoError(b, err)
	e := &env{t: b, target: target, opened: &openLog{}}
	e.admin, err = pgxpool.New(context.Background(), e.target.AdminDSN())
	require.NoError(b, err)
	b.Cleanup(e.admin.Close)
	e.issuer = &capg.Issuer{DB: e.admin}
	e.newRegistry(b)
	e.newScaleRecorder(b)
	e.live = &proxy.Live{Gate: e.reg, Recheck: 500 * time.Millisecond}
	wctx, stop := context.WithCancel(context.Background())
	b.Cleanup(stop)
	go e.live.Watch(wctx)
	e.serve(b, envOptions{plaintext: true})
	return e
}

// newScaleRecorder is newRecorder with the default flush interval: the
// tests' 100 ms would fsync each of hundreds of spools ten times a second.
func (e *env) newScaleRecorder(b *testing.B) {
	dir := b.TempDir()
	store, err := recorder.NewFileStore(filepath.Join(dir, "store"))
	require.NoError(b, err)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(b, err)
	e.recStore = store
	e.rec = &recorder.Recorder{Config: recorder.Config{DataDir: dir, FlushInterval: time.Second, FailClosed: true},
		Store: store, Key: key, Logger: quietLogger(), Metrics: recorder.NewMetrics()}
	require.NoError(b, e.rec.Start(context.Background()))
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), scaleDrainTimeout)
		defer cancel()
		e.rec.Shutdown(ctx)
	})
}

// writeScaleScripts writes one psql script per session, of queries that
// name their session and their number.
func writeScaleScripts(b *testing.B, load scaleLoad) []string {
	dir := b.TempDir()
	paths := make([]string, load.sessions)
	for s := range load.sessions {
		var sb strings.Builder
		for q := range load.queries {
			fmt.Fprintf(&sb, "SELECT %d AS s, %d AS q, amount FROM orders WHERE id = %d;\n", s, q, (s*load.queries+q)%sandbox.TargetSampleOrders+1)
		}
		paths[s] = filepath.Join(dir, fmt.Sprintf("session-%03d.sql", s))
		require.NoError(b, os.WriteFile(paths[s], []byte(sb.String()), 0o600))
	}
	return paths
}

// runPsqls runs one psql per script, all at once, and returns every error a
// client saw: a failed exit or an ERROR/FATAL line.
func (e *env) runPsqls(b *testing.B, token string, scripts []string) []string {
	bin := clientBinary(b, "psql")
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	for i, script := range scripts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), scalePsqlTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-X", "-q", "-At", "-o", os.DevNull, "-f", script)
			cmd.Env = append(e.pgEnv(okIdentity, token, "disable"), "PGCONNECT_TIMEOUT="+scaleConnectTimeout) // the last one counts
			out, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("psql %d: %v: %s", i, err, strings.TrimSpace(string(out))))
				return
			}
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "ERROR:") || strings.Contains(l, "FATAL:") {
					errs = append(errs, fmt.Sprintf("psql %d: %s", i, l))
				}
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

// checkScaleRecordings reads each session's recording from the store and
// counts the scale queries recorded with an outcome, once each, in the
// recording of the session that ran them.
func (e *env) checkScaleRecordings(b *testing.B, ids []string) (recorded int, problems []string) {
	seen := map[[2]int]bool{}
	for _, id := range ids {
		events, err := e.storedEvents(id)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		session := -1
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
			case ev.Outcome == nil:
				problems = append(problems, fmt.Sprintf("query %d of script %d recorded without its outcome", q, s))
			default:
				seen[[2]int{s, q}] = true
				recorded++
			}
			session = s
		}
	}
	return recorded, problems
}

// waitStored waits until every session has ended and its recording is
// sealed and stored.
func (e *env) waitStored(b *testing.B) {
	require.Eventually(b, func() bool { return len(e.live.Snapshot()) == 0 }, scaleDrainTimeout, 50*time.Millisecond,
		"%d sessions still live after every psql exited", len(e.live.Snapshot()))
	ctx, cancel := context.WithTimeout(context.Background(), scaleDrainTimeout)
	defer cancel()
	require.NoError(b, e.rec.WaitIdle(ctx), "store every recording")
}

// storedEvents replays the stored recording of session id once (the
// helpers' events waits and replays per session, which hundreds of
// sessions make slow) and returns its events.
func (e *env) storedEvents(id string) ([]recorder.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scaleDrainTimeout)
	defer cancel()
	started, _ := sessionid.Started(id)
	var buf bytes.Buffer
	err := recorder.Replay(ctx, recorder.SessionSource(e.recStore, id, started), &buf, recorder.ReplayOptions{Format: recorder.FormatJSON})
	if err != nil { // a session started a moment before midnight is filed under the next day
		src, ferr := recorder.FindSession(ctx, e.recStore, id)
		if ferr != nil {
			return nil, fmt.Errorf("recording of session %s: %w", id, errors.Join(err, ferr))
		}
		buf.Reset()
		if err := recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: recorder.FormatJSON}); err != nil {
			return nil, fmt.Errorf("replay session %s: %w", id, err)
		}
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
