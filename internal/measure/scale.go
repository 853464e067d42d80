package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

const (
	// scaleClientTimeout bounds one client's run of its script.
	scaleClientTimeout = 4 * time.Minute
	// scaleDrainTimeout bounds the wait for every recording to be stored,
	// and the replay of one stored recording.
	scaleDrainTimeout = 2 * time.Minute
)

// scaleQueryRE reads back the session and query numbers of a scale query.
var scaleQueryRE = regexp.MustCompile(`^SELECT (\d+) AS s, (\d+) AS q, amount FROM orders WHERE id = \d+;?$`)

// ScaleLoad is how many database sessions a scale run holds at once, and
// how many queries each runs.
type ScaleLoad struct{ Sessions, Queries int }

// Total is how many queries the whole run makes.
func (l ScaleLoad) Total() int { return l.Sessions * l.Queries }

// Scale is one bastion under a scale run: the PostgreSQL and MySQL
// benchmarks that run hundreds of command-line clients at once and read
// every recording back.
type Scale struct {
	Load ScaleLoad
	// Orders is how many rows the target's orders table holds.
	Orders int
	// Client runs one client through the bastion on script and returns
	// every error it saw; the run starts one per session, all at once.
	Client func(ctx context.Context, script string) []string
	// Opened is a copy of the ids of the sessions opened so far.
	Opened func() []string
	Live   *proxy.Live
	Rec    *recorder.Recorder
	Store  recorder.Store
}

// ScaleRun is what one scale run found.
type ScaleRun struct {
	Load       ScaleLoad
	IDs        []string // sessions opened
	ClientErrs []string
	Recorded   int // scale queries recorded once, in order, with an outcome
	Problems   []string
	Wall       time.Duration // the clients' run
}

// Run runs the clients, waits for their recordings and reads them back.
func (s Scale) Run(tb testing.TB) ScaleRun {
	tb.Helper()
	scripts := s.writeScripts(tb)
	before := len(s.Opened())
	start := time.Now()
	r := ScaleRun{Load: s.Load, ClientErrs: s.runClients(scripts)}
	r.Wall = time.Since(start)
	r.IDs = s.Opened()[before:]
	s.waitStored(tb)
	stored := time.Since(start)
	r.Recorded, r.Problems = s.checkRecordings(r.IDs)
	tb.Logf("%d clients took %s, recordings stored after %s, read back after %s", s.Load.Sessions,
		r.Wall.Round(time.Millisecond), stored.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return r
}

// Report reports the run's counts and the queries/s of the whole run.
func (r ScaleRun) Report(b *testing.B) {
	b.ReportMetric(float64(r.Load.Sessions), "sessions")
	b.ReportMetric(float64(r.Load.Total()), "queries")
	b.ReportMetric(float64(len(r.ClientErrs)), "errors")
	b.ReportMetric(float64(r.Recorded), "recorded-queries")
	b.ReportMetric(float64(r.Load.Total()-r.Recorded), "missing-queries")
	b.ReportMetric(float64(r.Load.Total())/r.Wall.Seconds(), "queries/s")
}

// Check fails tb unless every session opened, no client saw an error and
// every query was recorded once, in order, with its outcome.
func (r ScaleRun) Check(tb testing.TB) {
	tb.Helper()
	if missing := r.Load.Total() - r.Recorded; len(r.ClientErrs) > 0 || missing > 0 || len(r.IDs) != r.Load.Sessions || len(r.Problems) > 0 {
		problems := append(r.ClientErrs[:len(r.ClientErrs):len(r.ClientErrs)], r.Problems...)
		tb.Errorf("%d sessions opened (want %d), %d client errors, %d of %d queries missing from the recordings; first problems:\n%s",
			len(r.IDs), r.Load.Sessions, len(r.ClientErrs), missing, r.Load.Total(),
			strings.Join(problems[:min(10, len(problems))], "\n"))
	}
}

// writeScripts writes one script per session, of queries that name their
// session and their number.
func (s Scale) writeScripts(tb testing.TB) []string {
	dir := tb.TempDir()
	paths := make([]string, s.Load.Sessions)
	for i := range s.Load.Sessions {
		var sb strings.Builder
		for q := range s.Load.Queries {
			fmt.Fprintf(&sb, "SELECT %d AS s, %d AS q, amount FROM orders WHERE id = %d;\n", i, q, (i*s.Load.Queries+q)%s.Orders+1)
		}
		paths[i] = filepath.Join(dir, fmt.Sprintf("session-%03d.sql", i))
		require.NoError(tb, os.WriteFile(paths[i], []byte(sb.String()), 0o600))
	}
	return paths
}

// runClients runs one client per script, all at once, and returns every
// error a client saw, each prefixed with the client's number.
func (s Scale) runClients(scripts []string) []string {
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
			seen := s.Client(ctx, script)
			mu.Lock()
			defer mu.Unlock()
			for _, e := range seen {
				errs = append(errs, fmt.Sprintf("client %d: %s", i, e))
			}
		}()
	}
	wg.Wait()
	return errs
}

// waitStored waits until every session has ended and its recording is
// sealed and stored.
func (s Scale) waitStored(tb testing.TB) {
	tb.Helper()
	require.Eventually(tb, func() bool { return len(s.Live.Snapshot()) == 0 }, scaleDrainTimeout, 50*time.Millisecond,
		"%d sessions still live after every client exited", len(s.Live.Snapshot()))
	ctx, cancel := context.WithTimeout(context.Background(), scaleDrainTimeout)
	defer cancel()
	require.NoError(tb, s.Rec.WaitIdle(ctx), "store every recording")
}

// checkRecordings reads each session's recording from the store and
// counts the scale queries recorded with an outcome, once each and in
// order, in the recording of the session that ran them.
func (s Scale) checkRecordings(ids []string) (recorded int, problems []string) {
	seen := map[[2]int]bool{}
	for _, id := range ids {
		events, err := s.storedEvents(id)
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
			sn, _ := strconv.Atoi(m[1])
			q, _ := strconv.Atoi(m[2])
			switch {
			case session >= 0 && sn != session:
				problems = append(problems, fmt.Sprintf("recording %s holds queries of scripts %d and %d", id, session, sn))
			case seen[[2]int{sn, q}]:
				problems = append(problems, fmt.Sprintf("query %d of script %d recorded twice", q, sn))
			case q != last+1:
				problems = append(problems, fmt.Sprintf("query %d of script %d recorded after query %d", q, sn, last))
			case ev.Outcome == nil:
				problems = append(problems, fmt.Sprintf("query %d of script %d recorded without its outcome", q, sn))
			default:
				seen[[2]int{sn, q}] = true
				recorded++
			}
			session, last = sn, q
		}
	}
	return recorded, problems
}

// storedEvents replays the stored recording of session id once and
// returns its events; a recording without its end event is an error.
func (s Scale) storedEvents(id string) ([]recorder.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scaleDrainTimeout)
	defer cancel()
	started, _ := sessionid.Started(id)
	var buf bytes.Buffer
	err := recorder.Replay(ctx, recorder.SessionSource(s.Store, id, started), &buf, recorder.ReplayOptions{Format: recorder.FormatJSON})
	if err != nil { // a session started a moment before midnight is filed under the next day
		src, ferr := recorder.FindSession(ctx, s.Store, id)
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
