package search_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/search"
)

// The benchmark index: benchSessions sessions of benchPerSession entries
// each (5,000,000), built once and kept in bin/bench, as building it takes
// minutes. SEARCH_BENCH_SESSIONS makes a smaller one while developing.
const (
	benchSessions   = 100000
	benchPerSession = 50
	// benchRare occurs in one entry in a million; benchCommon in one in four.
	benchRareEvery = 1000000
	// benchSchema names the cached index's schema: change it when step 7
	// changes, so that a stale cache is not used.
	benchSchema = "v2"
)

func benchSize() int {
	if n, err := strconv.Atoi(os.Getenv("SEARCH_BENCH_SESSIONS")); err == nil && n > 0 {
		return n
	}
	return benchSessions
}

// benchIndex opens the benchmark index, building it first when missing.
func benchIndex(b *testing.B) (*sqlstore.Store, *search.Index, string) {
	n := benchSize()
	dir := filepath.Join("..", "bin", "bench")
	require.NoError(b, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, fmt.Sprintf("search-%d-%s.db", n, benchSchema))
	fresh := false
	if _, err := os.Stat(path); err != nil {
		fresh = true
		os.Remove(path + ".building")
	}
	build := path
	if fresh {
		build = path + ".building"
	}
	reg, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: build})
	require.NoError(b, err)
	if fresh {
		start := time.Now()
		db, _ := reg.SearchDB()
		require.NoError(b, fillBench(db, n))
		b.Logf("built %d sessions, %d entries in %s", n, n*benchPerSession, time.Since(start).Round(time.Second))
		reg.Close()
		require.NoError(b, os.Rename(build, path))
		reg, err = sqlstore.Open(context.Background(), sqlstore.Config{Path: path})
		require.NoError(b, err)
	}
	b.Cleanup(func() { reg.Close() })
	db, dialect := reg.SearchDB()
	ix, err := search.New(db, dialect)
	require.NoError(b, err)
	return reg, ix, path
}

// benchWords make the bodies: commands, paths, SQL and output words.
var benchWords = strings.Fields(`select insert update delete from where join payments accounts users orders
ls cat grep tail less systemctl restart nginx postgres backup deploy rsync tar gzip kubectl apply get pods
/etc/hosts /var/log/syslog /srv/app/releases /home/deploy/.ssh error warning ok done started stopped
10.0.0.1 192.168.1.20 api.internal db-01 web-02 cache-03 true false null id name email amount status`)

func benchBody(r *rand.Rand, i int) (string, string) {
	if i%benchRareEvery == 0 {
		return "command", "cat /etc/shadow-rare-" + strconv.Itoa(i)
	}
	var sb strings.Builder
	kind := []string{"command", "output", "query", "output"}[i%4]
	if kind == "query" {
		sb.WriteString("SELECT * FROM payments.accounts WHERE id = $1\n")
	}
	for w := 0; w < 12; w++ {
		sb.WriteString(benchWords[r.IntN(len(benchWords))])
		sb.WriteByte(' ')
	}
	sb.WriteString(strconv.Itoa(r.IntN(1000000)))
	return kind, sb.String()
}

// fillBench inserts n sessions and their entries in bulk, a transaction
// per thousand sessions.
func fillBench(db *sql.DB, n int) error {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for first := 0; first < n; first += 1000 {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for s := first; s < min(first+1000, n); s++ {
			if err := fillSession(tx, r, s, base.Add(time.Duration(s)*time.Minute)); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func fillSession(tx *sql.Tx, r *rand.Rand, s int, start time.Time) error {
	id := fmt.Sprintf("bench%08d", s)
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") }
	_, err := tx.Exec(`INSERT INTO sessions (id, identity_id, owner, target, protocol, login, source, breakglass_grant, state, reason,
		object_dir, started_at, ended_at, bytes, events) VALUES (?, ?, 'ops', ?, ?, 'app', '', '', 'stored', '', '', ?, ?, 0, 50)`,
		id, "svc-"+strconv.Itoa(s%500), "host-"+strconv.Itoa(s%50), []string{"ssh", "postgres", "mysql"}[s%3], stamp(start), stamp(start.Add(time.Minute)))
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE search_sessions SET state = 'done' WHERE session_id = ?`, id); err != nil {
		return err
	}
	q := "INSERT INTO search_entries (session_id, at, kind, body) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", benchPerSession), ", ")
	args := make([]any, 0, 4*benchPerSession)
	for e := 0; e < benchPerSession; e++ {
		kind, body := benchBody(r, s*benchPerSession+e)
		args = append(args, id, stamp(start.Add(time.Duration(e)*time.Second)), kind, body)
	}
	_, err = tx.Exec(q, args...)
	return err
}

// BenchmarkSearch: search p95 over the 5,000,000-entry index for a rare
// term and a common one, limit 50; and the index's size per million
// entries.
func BenchmarkSearch(b *testing.B) {
	_, ix, path := benchIndex(b)
	entries := float64(benchSize() * benchPerSession)
	for _, c := range []struct{ name, text string }{
		{"rare", "/etc/shadow-rare-0"},
		{"common", "payments.accounts"},
		{"common-word", "select"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var took []time.Duration
			hits := 0
			for b.Loop() {
				start := time.Now()
				res, err := ix.Search(context.Background(), search.Query{Text: c.text, Limit: 50})
				took = append(took, time.Since(start))
				require.NoError(b, err)
				hits = len(res.Hits)
			}
			require.NotZero(b, hits, "no hit for %q", c.text)
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64(hits), "hits")
		})
	}
	b.Run("size", func(b *testing.B) {
		info, err := os.Stat(path)
		require.NoError(b, err)
		for b.Loop() {
		}
		b.ReportMetric(float64(info.Size())/(1<<20)/(entries/1e6), "MiB/Mentries")
	})
}

// BenchmarkIndexQueries: how many recorded database queries per second
// the indexer reads from the store and writes to a SQLite registry (one
// session of 20,000 queries, indexed afresh each round).
func BenchmarkIndexQueries(b *testing.B) {
	const queries = 20000
	f := newFixture(b, func(dir string) sqlstore.Config { return sqlstore.Config{Path: filepath.Join(dir, "registry.db")} })
	f.session("s-bench", "svc-pay", "postgres", time.Now().Add(-time.Hour), func(s *recorder.Session) {
		for q := 0; q < queries; q++ {
			require.NoError(b, s.Event(recorder.Event{Type: recorder.EventQuery, SQL: "SELECT * FROM payments.accounts WHERE id = $1",
				Params: []any{strconv.Itoa(q)}, Outcome: &recorder.Outcome{Tag: "SELECT 1"}}))
		}
	})
	db, _ := f.reg.SearchDB()
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		_, err := db.Exec(`DELETE FROM search_entries;
			UPDATE search_sessions SET state = 'pending', cursor = '', bytes = 0, entries = 0, claimed_until = ''`)
		require.NoError(b, err)
		b.StartTimer()
		t0 := time.Now()
		n, err := f.idx.Pass(context.Background())
		took += time.Since(t0)
		require.NoError(b, err)
		require.Equal(b, 1, n)
	}
	b.ReportMetric(float64(b.N*queries)/took.Seconds(), "queries/s")
}
