package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecordingReindex: with the index deleted, reindex rebuilds the same
// hits from the store; a tampered recording is reported, exits 1, and its
// content leaves the index.
func TestRecordingReindex(t *testing.T) {
	b := newSearchBastion(t, registryDriver{name: "sqlite", block: "registry: {driver: sqlite}"})
	b.record(t)
	for _, c := range searchCases {
		b.wantHit(t, c.text, c.where, c.identity)
	}
	before := b.search(t, "marker", "--limit", "100")
	require.NoError(t, b.serve.Process.Kill()) // serve would index again at once
	_ = b.serve.Wait()

	deleteSearchIndex(t, b.env)
	assert.Empty(t, b.search(t, "marker"), "the index is gone")
	assert.Contains(t, b.ok("sessions", "search", "marker"), "no hits")

	out := b.ok("recording", "reindex")
	assert.Contains(t, out, "reindexed 6 session(s)")
	after := b.search(t, "marker", "--limit", "100")
	assert.ElementsMatch(t, hitKeys(before), hitKeys(after), "reindex rebuilt the same hits")

	setSearchState(t, b.env, "pending") // as if the indexer had not reached them yet
	assert.Contains(t, b.ok("sessions", "search", "marker"), "note: the index is behind: 6 ended session(s) not indexed yet")
	_, errOut, code := b.run("", "sessions", "search", "--json", "marker")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, "note: the index is behind", "--json says so on stderr")

	pg := b.wantHit(t, "pg-param-marker", "query", "svc-report")
	chunks, err := filepath.Glob(filepath.Join(b.dir, "data", "recordings", "*", "*", "*", pg.Session, "*.chunk"))
	require.NoError(t, err)
	require.NotEmpty(t, chunks, "the session's chunks are in the file store")
	data, err := os.ReadFile(chunks[0])
	require.NoError(t, err)
	data[len(data)-2] ^= 0x20
	require.NoError(t, os.WriteFile(chunks[0], data, 0o600))

	out, _, code = b.run("", "recordings", "reindex", "--since", "1h")
	assert.Equal(t, 1, code, "a tampered recording fails reindex: %s", out)
	assert.Contains(t, out, "session "+pg.Session+" not indexed: ")
	assert.Contains(t, out, "tampered")
	assert.Contains(t, out, "reindexed 5 session(s)")
	assert.Empty(t, b.search(t, "pg-param-marker"), "a tampered recording's content is not searchable")
	assert.Len(t, b.search(t, "mysql-query-marker"), 1, "the others still are")
}

// setSearchState sets every session's indexing state in e's registry.
func setSearchState(t *testing.T, e *env, state string) {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ap, err := openApp(context.Background(), cfg, testLogger(t))
	require.NoError(t, err)
	defer ap.Close()
	db, _ := ap.store.SearchDB()
	_, err = db.Exec("UPDATE search_sessions SET state = ?", state)
	require.NoError(t, err)
}

func deleteSearchIndex(t *testing.T, e *env) {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ap, err := openApp(context.Background(), cfg, testLogger(t))
	require.NoError(t, err)
	defer ap.Close()
	db, _ := ap.store.SearchDB()
	_, err = db.Exec("DELETE FROM search_entries; DELETE FROM search_sessions")
	require.NoError(t, err)
}

// hitKeys is what must survive a rebuild of each hit: where it is, and
// what it says.
func hitKeys(hits []searchHit) []string {
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		out = append(out, h.Session+" "+h.Where+" "+h.Time.String()+" "+h.Snippet)
	}
	slices.Sort(out)
	return out
}
