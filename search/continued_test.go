package search_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/search"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestContinuationIndexed: replica lost-a records a terminal session, the
// store goes down, the rest (a marker first) stays in its spool and it
// dies; a survivor seals what reached the store and the indexer indexes
// it to its sealed end. When lost-a comes back on its spool it stores the
// rest as a signed continuation: the indexer takes the session up again
// and the marker is found, as output, at the second it was printed. A
// tampered continuation is not indexed, by the indexer or by reindex,
// which reports it.
func TestContinuationIndexed(t *testing.T) {
	regs := registries(t)
	fileStore := func(t *testing.T, cfg recorder.Config) recorder.Store {
		s, err := recorder.NewStore(cfg)
		require.NoError(t, err)
		return s
	}
	s3Store := func(t *testing.T, _ recorder.Config) recorder.Store { // the HA shape
		s3 := sandbox.S3T(t)
		s, err := recorder.NewS3Store(recorder.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, Region: s3.Region,
			AccessKey: s3.AccessKey, SecretKey: s3.SecretKey})
		require.NoError(t, err)
		return s
	}
	for _, tc := range []struct {
		name     string
		registry func(dir string) sqlstore.Config
		store    func(*testing.T, recorder.Config) recorder.Store
	}{
		{"sqlite/file", regs["sqlite"], fileStore},
		{"postgres/file", regs["postgres"], fileStore},
		{"sqlite/s3", regs["sqlite"], s3Store},
	} {
		t.Run(tc.name, func(t *testing.T) { testContinuationIndexed(t, newContinued(t, tc.registry, tc.store)) })
	}
}

func testContinuationIndexed(t *testing.T, c *continuedFixture) {
	ctx := t.Context()
	c.pass(t)
	require.Len(t, c.search(t, "uploaded-line-0042"), 1, "the sealed part is indexed")
	require.Empty(t, c.search(t, "contmarker-7"), "the rest is still in lost-a's spool")

	c.comeBack(t)
	c.pass(t)
	require.Empty(t, c.search(t, "contmarker-7"), "a done session is not read again by a pass alone")
	restore := c.tamperContinuation(t)
	require.NoError(t, c.idx.ReopenContinued(ctx))
	c.pass(t)
	assert.Empty(t, c.search(t, "contmarker-7"), "the indexer does not read a tampered continuation")
	assert.Len(t, c.search(t, "uploaded-line-0042"), 1, "the sealed part stays")
	assert.Contains(t, c.logs.String(), "continuation not indexed")
	assert.Contains(t, c.logs.String(), "tampered")

	restore()
	c.setState(t, "done") // back to where it was before the continuation came
	require.NoError(t, c.idx.ReopenContinued(ctx))
	c.pass(t)
	c.wantMarker(t, "the indexer")
	assert.Len(t, c.search(t, "spooled-line-0001"), 1)
	assert.Len(t, c.search(t, "uploaded-line-0042"), 1, "the sealed part is indexed once")
	require.NoError(t, c.idx.ReopenContinued(ctx))
	c.pass(t)
	assert.Len(t, c.search(t, "contmarker-7"), 1, "nothing is indexed twice")

	restore = c.tamperContinuation(t)
	var reported []recorder.Report
	res, err := c.idx.Reindex(ctx, time.Time{}, func(r recorder.Report) { reported = append(reported, r) })
	require.NoError(t, err)
	assert.Equal(t, search.Reindexed{Failed: 1}, res)
	require.Len(t, reported, 1)
	assert.Equal(t, recorder.StatusTampered, reported[0].Status)
	assert.Contains(t, reported[0].String(), "continuation/")
	assert.Empty(t, c.search(t, "contmarker-7"), "reindex keeps a tampered recording out")
	assert.Empty(t, c.search(t, "uploaded-line-0042"))

	restore()
	res, err = c.idx.Reindex(ctx, time.Time{}, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Sessions)
	c.wantMarker(t, "reindex")
}

// wantMarker checks that the marker is found once, as output, at the
// second it was printed (the continuation began 2 s after the session).
func (c *continuedFixture) wantMarker(t *testing.T, by string) {
	t.Helper()
	hits := c.search(t, "contmarker-7")
	require.Len(t, hits, 1, "%s indexed the continuation", by)
	assert.Equal(t, search.WhereOutput, hits[0].Where)
	assert.Equal(t, "s-cont", hits[0].Session)
	assert.InDelta(t, c.markerAt.Sub(c.started).Seconds(), hits[0].Offset, 0.3, "the offset counts from the session's start")
}

// continuedFixture is a session a survivor sealed after its replica was
// lost, with the rest of it in the lost replica's spool.
type continuedFixture struct {
	reg      *sqlstore.Store
	files    recorder.Store // a file store or S3
	key      ed25519.PrivateKey
	ix       *search.Index
	idx      *search.Indexer
	logs     *syncbuf.Buffer
	dir      string // the session's directory in the file store
	spool    string // a copy of lost-a's spool as it died
	back     string // lost-a's data_dir when it comes back
	started  time.Time
	markerAt time.Time
}

// outageStore fails every write while down.
type outageStore struct {
	recorder.Store
	down atomic.Bool
}

func (s *outageStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if s.down.Load() {
		return errors.New("store unreachable")
	}
	return s.Store.Put(ctx, key, r, size)
}

func newContinued(t *testing.T, registry func(dir string) sqlstore.Config, store func(*testing.T, recorder.Config) recorder.Store) *continuedFixture {
	ctx := t.Context()
	tmp := t.TempDir()
	reg, err := sqlstore.Open(ctx, registry(tmp))
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	cfg := recorder.Config{DataDir: filepath.Join(tmp, "lost-a"), FailClosed: true, FlushInterval: 100 * time.Millisecond}
	c := &continuedFixture{reg: reg, back: filepath.Join(tmp, "back"), logs: &syncbuf.Buffer{}}
	c.key, err = recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	c.files = store(t, cfg)
	c.record(t, cfg)
	c.seal(t)
	db, dialect := reg.SearchDB()
	c.ix, err = search.New(db, dialect)
	require.NoError(t, err)
	c.idx = &search.Indexer{Index: c.ix, Store: c.files, Write: reg.SearchWrite, Owner: "test",
		Key: c.key.Public().(ed25519.PublicKey), Logger: slog.New(slog.NewTextHandler(c.logs, nil))}
	return c
}

// record runs the session on lost-a: output that reaches the store, then,
// the store down, output (the marker among it) that stays in the spool.
func (c *continuedFixture) record(t *testing.T, cfg recorder.Config) {
	ctx := t.Context()
	store := &outageStore{Store: c.files}
	lost := &recorder.Recorder{Config: cfg, Store: store, Key: c.key, ChunkSize: 1024, OnState: c.index(t, "lost-a")}
	require.NoError(t, lost.Start(ctx))
	t.Cleanup(func() { lost.Shutdown(context.Background()) })
	t.Cleanup(func() { store.down.Store(false) }) // runs first: lets lost-a shut down
	c.started = time.Now()
	meta := recorder.SessionMeta{ID: "s-cont", Identity: "svc-backup", Target: "web-01", Protocol: "ssh", Login: "app", StartedAt: c.started}
	s, err := lost.Open(ctx, meta)
	require.NoError(t, err)
	c.dir = s.Dir()
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	output := func(format string, n int) {
		for i := range n {
			require.NoError(t, s.Output(0, fmt.Appendf(nil, format+"\r\n", i)))
		}
	}
	output("uploaded-line-%04d", 100)
	time.Sleep(300 * time.Millisecond) // a few flushes: it is all in chunks
	require.NoError(t, lost.WaitIdle(ctx))
	time.Sleep(2 * time.Second) // the continuation starts well into the session
	store.down.Store(true)
	c.markerAt = time.Now()
	require.NoError(t, s.Output(0, []byte("\x1b[1mcontmarker-7\x1b[0m\r\n")))
	output("spooled-line-%04d", 100)
	time.Sleep(500 * time.Millisecond) // several flushes: all of it is in the spool
	c.spool = filepath.Join(t.TempDir(), "spool")
	copyTree(t, cfg.SpoolDir(), c.spool)
}

// seal does what the survivor does: claim, seal from the store, mark
// the session incomplete with the seal's reason.
func (c *continuedFixture) seal(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	lost := sqlstore.LostSession{ID: "s-cont", Replica: "lost-a", Dir: c.dir, StartedAt: c.started}
	won, err := c.reg.ClaimSeal(ctx, sqlstore.SealClaim{Session: lost, Sealer: "survivor", At: now, StaleBefore: now.Add(-time.Minute)})
	require.NoError(t, err)
	require.True(t, won)
	reason := "replica lost-a stopped renewing its lease while the session was live: it was lost"
	res, err := recorder.SealFromStore(ctx, c.files, c.key, "s-cont", c.started, reason)
	require.NoError(t, err)
	require.True(t, res.Sealed, "%+v", res)
	require.NoError(t, c.reg.MarkSealed(ctx, sqlstore.SealDone{Session: "s-cont", Sealer: "survivor", At: now,
		Chunks: len(res.Manifest.Objects) - 1, Reason: res.Manifest.Reason, EndedAt: res.Manifest.EndedAt}))
}

// comeBack starts lost-a again on its spool: it stores the rest as a
// continuation and reports it to the session index.
func (c *continuedFixture) comeBack(t *testing.T) {
	ctx := t.Context()
	cfg := recorder.Config{DataDir: c.back, FailClosed: true, FlushInterval: 100 * time.Millisecond}
	copyTree(t, c.spool, cfg.SpoolDir())
	back := &recorder.Recorder{Config: cfg, Store: c.files, Key: c.key, OnState: c.index(t, "lost-a")}
	require.NoError(t, back.Start(ctx))
	t.Cleanup(func() { back.Shutdown(context.Background()) })
	require.NoError(t, back.WaitIdle(ctx))
	_, err := c.files.Get(ctx, c.dir+"continuation/manifest.json")
	require.NoError(t, err, "lost-a stored a continuation")
	rec, err := c.reg.Session(ctx, "s-cont")
	require.NoError(t, err)
	require.Contains(t, rec.Reason, "signed continuation", "the session index says so")
}

// index keeps the session index as serve does.
func (c *continuedFixture) index(t *testing.T, replica string) func(recorder.StateChange) {
	return func(sc recorder.StateChange) {
		m := sc.Meta
		err := c.reg.PutSession(context.Background(), sqlstore.SessionRecord{ID: m.ID, Identity: m.Identity, Owner: "ops",
			Target: m.Target, Protocol: m.Protocol, Login: m.Login, State: string(sc.State), Reason: sc.Reason, Dir: sc.Dir,
			StartedAt: m.StartedAt, EndedAt: sc.EndedAt, Bytes: sc.Bytes, Events: sc.Events, Replica: replica})
		if err != nil {
			t.Logf("index session %s: %v", m.ID, err)
		}
	}
}

// tamperContinuation flips a byte of the continuation's last chunk in
// the store and returns a func that puts it back.
func (c *continuedFixture) tamperContinuation(t *testing.T) func() {
	ctx := t.Context()
	keys, err := c.files.List(ctx, c.dir+"continuation/")
	require.NoError(t, err)
	var chunks []string
	for _, k := range keys {
		if strings.HasSuffix(k, ".chunk") {
			chunks = append(chunks, k)
		}
	}
	require.NotEmpty(t, chunks, "the continuation's chunks are in the store")
	last := chunks[len(chunks)-1]
	rc, err := c.files.Get(ctx, last)
	require.NoError(t, err)
	orig, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	data := bytes.Clone(orig)
	data[len(data)-2] ^= 0x20
	put := func(b []byte) { require.NoError(t, c.files.Put(ctx, last, bytes.NewReader(b), int64(len(b)))) }
	put(data)
	return func() { put(orig) }
}

func (c *continuedFixture) setState(t *testing.T, state string) {
	db, _ := c.reg.SearchDB()
	_, err := db.Exec("UPDATE search_sessions SET state = '" + state + "'")
	require.NoError(t, err)
}

func (c *continuedFixture) pass(t *testing.T) {
	_, err := c.idx.Pass(t.Context())
	require.NoError(t, err)
}

func (c *continuedFixture) search(t *testing.T, text string) []search.Hit {
	res, err := c.ix.Search(t.Context(), search.Query{Text: text})
	require.NoError(t, err)
	return res.Hits
}

// copyTree copies a spool directory as a crashed process left it.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	}))
}
