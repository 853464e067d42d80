package search_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/search"
	"github.com/stretchr/testify/require"
)

// fixture is a registry on SQLite, a recorder writing to a file store, and
// an index and indexer over both.
type fixture struct {
	t     testing.TB
	reg   *sqlstore.Store
	rec   *recorder.Recorder
	store recorder.Store
	ix    *search.Index
	idx   *search.Indexer
}

// registries are the registry configs the tests run on: SQLite, and a
// database on a sandbox PostgreSQL.
func registries(t testing.TB) map[string]func(dir string) sqlstore.Config {
	return map[string]func(string) sqlstore.Config{
		"sqlite": func(dir string) sqlstore.Config { return sqlstore.Config{Path: filepath.Join(dir, "registry.db")} },
		"postgres": func(string) sqlstore.Config {
			pg := sandbox.PostgresT(t)
			db := fmt.Sprintf("search_%d", time.Now().UnixNano())
			require.NoError(t, pg.CreateDatabase(t.Context(), db))
			return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pg.DSN(db)}
		},
	}
}

func newFixture(t testing.TB, registry func(dir string) sqlstore.Config) *fixture {
	ctx := context.Background()
	dir := t.TempDir()
	reg, err := sqlstore.Open(ctx, registry(dir))
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	cfg := recorder.Config{DataDir: filepath.Join(dir, "rec"), FailClosed: true, RecordInput: true, FlushInterval: 100 * time.Millisecond}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	store, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: store, Key: key}
	require.NoError(t, rec.Start(ctx))
	t.Cleanup(func() { rec.Shutdown(ctx) })
	db, dialect := reg.SearchDB()
	ix, err := search.New(db, dialect)
	require.NoError(t, err)
	idx := &search.Indexer{Index: ix, Store: store, Write: reg.SearchWrite, Owner: "test", LivePoll: 20 * time.Millisecond}
	return &fixture{t: t, reg: reg, rec: rec, store: store, ix: ix, idx: idx}
}

// session records a session with fn, waits for it to be stored and puts
// it in the session index.
func (f *fixture) session(id, identity, protocol string, started time.Time, fn func(s *recorder.Session)) {
	ctx := context.Background()
	meta := recorder.SessionMeta{ID: id, Identity: identity, Target: "web-01", Protocol: protocol, Login: "app", StartedAt: started}
	s, err := f.rec.Open(ctx, meta)
	require.NoError(f.t, err)
	fn(s)
	status := 0
	require.NoError(f.t, s.Close(ctx, recorder.End{ExitStatus: &status}))
	require.Eventually(f.t, func() bool {
		_, err := f.store.Get(ctx, s.Dir()+"manifest.json")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(f.t, f.reg.PutSession(ctx, sqlstore.SessionRecord{ID: id, Identity: identity, Owner: "ops", Target: "web-01",
		Protocol: protocol, Login: "app", State: "stored", Dir: s.Dir(), StartedAt: started, EndedAt: started.Add(time.Minute)}))
}

func (f *fixture) search(q search.Query) search.Result {
	res, err := f.ix.Search(context.Background(), q)
	require.NoError(f.t, err)
	return res
}
