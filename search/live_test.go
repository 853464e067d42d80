package search_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/search"
)

// TestLiveSessionIndexedOnce: a live session's uploaded chunks are
// searchable before it ends; what follows is added after, nothing twice;
// another replica's indexer leaves a claimed session alone; a restarted
// indexer carries on from the session's cursor; once retention deleted
// the recording, its content leaves the index.
func TestLiveSessionIndexedOnce(t *testing.T) {
	f := newFixture(t, func(dir string) sqlstore.Config { return sqlstore.Config{Path: filepath.Join(dir, "registry.db")} })
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	meta := recorder.SessionMeta{ID: "s-live", Identity: "svc-etl", Target: "db-01", Protocol: "postgres", Login: "etl", StartedAt: start}
	s, err := f.rec.Open(ctx, meta)
	require.NoError(t, err)
	put := func(state string, ended time.Time) {
		require.NoError(t, f.reg.PutSession(ctx, sqlstore.SessionRecord{ID: meta.ID, Identity: meta.Identity, Owner: "ops",
			Target: meta.Target, Protocol: meta.Protocol, Login: "etl", State: state, Dir: s.Dir(), StartedAt: start, EndedAt: ended}))
	}
	query := func(sql string) {
		require.NoError(t, s.Event(recorder.Event{Type: recorder.EventQuery, SQL: sql, Outcome: &recorder.Outcome{Tag: "SELECT 1"}}))
	}
	put("live", time.Time{})
	query("SELECT 'first-live-marker'")
	require.Eventually(t, func() bool {
		_, err := f.idx.Pass(ctx)
		require.NoError(t, err)
		return len(f.search(search.Query{Text: "first-live-marker"}).Hits) == 1
	}, 10*time.Second, 50*time.Millisecond, "a live session's uploaded query is searchable")

	other := &search.Indexer{Index: f.ix, Store: f.store, Write: f.reg.SearchWrite, Owner: "replica-b"}
	query("SELECT 'second-live-marker'")
	time.Sleep(500 * time.Millisecond) // flushed and uploaded
	n, err := other.Pass(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the session is claimed by the first indexer")
	require.Empty(t, f.search(search.Query{Text: "second-live-marker"}).Hits)

	query("SELECT 'third-marker'")
	status := 0
	require.NoError(t, s.Close(ctx, recorder.End{ExitStatus: &status}))
	require.Eventually(t, func() bool {
		_, err := f.store.Get(ctx, s.Dir()+"manifest.json")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	put("stored", time.Now())
	restarted := &search.Indexer{Index: f.ix, Store: f.store, Write: f.reg.SearchWrite, Owner: "test"}
	_, err = restarted.Pass(ctx)
	require.NoError(t, err)
	for _, text := range []string{"first-live-marker", "second-live-marker", "third-marker"} {
		require.Len(t, f.search(search.Query{Text: text}).Hits, 1, "hits for %s", text)
	}
	n, err = restarted.Pass(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "an ended, indexed session is done")
	require.False(t, f.search(search.Query{Text: "marker"}).Behind.Behind())

	db, _ := f.reg.SearchDB()
	_, err = db.Exec("UPDATE sessions SET state = 'deleted' WHERE id = ?", meta.ID) // as retention does
	require.NoError(t, err)
	require.Empty(t, f.search(search.Query{Text: "third-marker"}).Hits, "a deleted recording's content is not found")
	require.NoError(t, restarted.Adopt(ctx))
	var left int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM search_entries WHERE session_id = ?", meta.ID).Scan(&left))
	require.Zero(t, left, "a deleted recording's entries are purged")
}

// TestAdoptWipedIndex: after the index tables were wiped, the indexer's
// sweep gives every session its state back and the next pass indexes it
// again.
func TestAdoptWipedIndex(t *testing.T) {
	f := newFixture(t, func(dir string) sqlstore.Config { return sqlstore.Config{Path: filepath.Join(dir, "registry.db")} })
	ctx := context.Background()
	f.session("s-wiped", "svc-etl", "postgres", time.Now().Add(-time.Hour), func(s *recorder.Session) {
		require.NoError(t, s.Event(recorder.Event{Type: recorder.EventQuery, SQL: "SELECT 'wiped-marker'"}))
	})
	_, err := f.idx.Pass(ctx)
	require.NoError(t, err)
	require.Len(t, f.search(search.Query{Text: "wiped-marker"}).Hits, 1)
	db, _ := f.reg.SearchDB()
	_, err = db.Exec("DELETE FROM search_entries; DELETE FROM search_sessions")
	require.NoError(t, err)
	require.NoError(t, f.idx.Adopt(ctx))
	f.ix.Now = func() time.Time { return time.Now().Add(time.Minute) } // past the lag's cache
	require.Equal(t, 1, f.search(search.Query{Text: "wiped-marker"}).Behind.Sessions, "the session waits to be indexed again")
	_, err = f.idx.Pass(ctx)
	require.NoError(t, err)
	require.Len(t, f.search(search.Query{Text: "wiped-marker"}).Hits, 1)
}
