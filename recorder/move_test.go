package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// downStore is a store that refuses everything, so sealed sessions stay
// in the spool.
type downStore struct{}

var errStoreDown = errors.New("store down")

func (downStore) Put(context.Context, string, io.Reader, int64) error { return errStoreDown }
func (downStore) Get(context.Context, string) (io.ReadCloser, error)  { return nil, errStoreDown }
func (downStore) List(context.Context, string) ([]string, error)      { return nil, errStoreDown }

// spoolSealed records a short database session while the store is down
// and stops the bastion: the sealed session waits in dataDir's spool.
func spoolSealed(t *testing.T, dataDir string, key []byte, id string) string {
	t.Helper()
	h := newHarness(t, dataDir, downStore{}, key, nil)
	s, err := h.rec.Open(ctxT(t), testMeta(id))
	require.NoError(t, err)
	for _, sql := range []string{"SELECT 1", "SELECT 2", "SELECT 3"} {
		require.NoError(t, s.Event(Event{Type: EventQuery, SQL: sql, Outcome: &Outcome{Tag: "SELECT 1"}}))
	}
	require.NoError(t, s.Close(ctxT(t), End{Reason: "client closed"}))
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.Error(t, h.rec.Shutdown(short), "nothing can be uploaded to a store that is down")
	dir := filepath.Join(h.rec.Config.SpoolDir(), id)
	require.FileExists(t, filepath.Join(dir, manifestObject))
	return dir
}

// TestSealedSessionReachesTheFileStoreFromEveryCrashPoint: a sealed
// session goes to a file store on the spool's filesystem by one directory
// rename. Wherever a crash stops that, or the seal before it, the next
// start stores the session, whole (or incomplete but with every query
// written to disk, when the seal did not happen), with nothing but its
// objects in the store and nothing left in the spool.
func TestSealedSessionReachesTheFileStoreFromEveryCrashPoint(t *testing.T) {
	cases := []struct {
		name   string
		crash  func(t *testing.T, dir, storeDir string) // storeDir: the session's directory in the store
		status Status
		states []State
	}{
		{"sealed, not moved yet", func(t *testing.T, dir, storeDir string) {}, StatusIntact, []State{StateStored}},
		{"chunk log of a session that lived past a flush", func(t *testing.T, dir, storeDir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, logObject), []byte(`{"name":"session.json"}`+"\n"), 0o600))
		}, StatusIntact, []State{StateStored}},
		{"spool of an earlier version (chunks.log)", func(t *testing.T, dir, storeDir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, legacyLogObject), []byte(`{"name":"session.json"}`+"\n"), 0o600))
		}, StatusIntact, []State{StateStored}},
		{"chunks set aside as torn by an earlier recovery", func(t *testing.T, dir, storeDir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, chunkName(2)+tornSuffix), []byte("partial"), 0o600))
		}, StatusIntact, []State{StateStored}},
		{"session.json already in the store", func(t *testing.T, dir, storeDir string) {
			require.NoError(t, os.MkdirAll(storeDir, 0o700))
			body, err := os.ReadFile(filepath.Join(dir, sessionObject))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(storeDir, sessionObject), body, 0o600))
		}, StatusIntact, []State{StateStored}},
		{"empty session directory left in the store", func(t *testing.T, dir, storeDir string) {
			require.NoError(t, os.MkdirAll(storeDir, 0o700))
		}, StatusIntact, []State{StateStored}},
		{"seal cut short before manifest.json was renamed into place", func(t *testing.T, dir, storeDir string) {
			require.NoError(t, os.Rename(filepath.Join(dir, manifestObject), filepath.Join(dir, manifestObject+".tmp")))
		}, StatusIncomplete, []State{StateUploading, StateIncomplete}},
		{"died before the seal, with no chunk log (a session shorter than a flush)", func(t *testing.T, dir, storeDir string) {
			unseal(t, dir)
		}, StatusIncomplete, []State{StateUploading, StateIncomplete}},
		{"died before the seal, the chunk still under its temporary name", func(t *testing.T, dir, storeDir string) {
			unseal(t, dir)
			require.NoError(t, os.Rename(filepath.Join(dir, chunkName(1)), filepath.Join(dir, chunkName(1)+".tmp")))
		}, StatusIncomplete, []State{StateUploading, StateIncomplete}},
		{"died before the seal, the chunk log cut short of the chunk", func(t *testing.T, dir, storeDir string) {
			unseal(t, dir)
			size, sum, err := hashFile(filepath.Join(dir, sessionObject))
			require.NoError(t, err)
			line, err := json.Marshal(logEntry{ManifestObject: ManifestObject{Name: sessionObject, Size: size, SHA256: sum}})
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, logObject), append(line, '\n'), 0o600))
		}, StatusIncomplete, []State{StateUploading, StateIncomplete}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir, key := t.TempDir(), testKey(t)
			dir := spoolSealed(t, dataDir, key, "s-move")
			cfg := Config{DataDir: dataDir}
			storeDir := filepath.Join(cfg.FileStoreDir(), filepath.FromSlash(SessionDir("s-move", testMeta("s-move").StartedAt)))
			tc.crash(t, dir, storeDir)

			store, err := NewFileStore(cfg.FileStoreDir())
			require.NoError(t, err)
			h := newHarness(t, dataDir, store, key, nil)
			h.waitUploaded(t)
			assert.Equal(t, tc.states, h.states.of("s-move"))
			assert.Empty(t, spoolEntries(t, h), "the stored session leaves the spool")
			rep := h.verify(t, "s-move")
			assert.Equal(t, tc.status, rep.Status, "report: %s", rep)
			assert.Empty(t, rep.Problems)
			assert.Equal(t, int64(4), rep.Manifest.Counts.Events, "three queries and the end")
			src, err := FindSession(ctxT(t), h.store, "s-move")
			require.NoError(t, err)
			var text bytes.Buffer
			require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{Format: FormatText}))
			assert.Contains(t, text.String(), "SELECT 3", "the last query is in the recording")

			var want []string
			for _, o := range rep.Manifest.Objects {
				want = append(want, o.Name)
			}
			want = append(want, sigObject, manifestObject)
			ents, err := os.ReadDir(storeDir)
			require.NoError(t, err)
			var got []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			slices.Sort(want)
			assert.Equal(t, want, got, "the store's session directory holds the objects and nothing else")
		})
	}
}

// unseal makes a sealed spool look like one whose bastion died before the
// seal.
func unseal(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.Remove(filepath.Join(dir, manifestObject)))
	require.NoError(t, os.Remove(filepath.Join(dir, sigObject)))
}

// TestStoredSessionsSpoolRemovalCutShort: a crash while an uploaded
// session's spool directory is being deleted leaves it under its retired
// name; the next start deletes it and reports nothing for it.
func TestStoredSessionsSpoolRemovalCutShort(t *testing.T) {
	dataDir, key := t.TempDir(), testKey(t)
	dir := spoolSealed(t, dataDir, key, "s-retired")
	retired := filepath.Join(filepath.Dir(dir), retiredPrefix+"s-retired")
	require.NoError(t, os.Rename(dir, retired))
	require.NoError(t, os.Remove(filepath.Join(retired, manifestObject)), "part of the removal happened")

	store, err := NewFileStore(Config{DataDir: dataDir}.FileStoreDir())
	require.NoError(t, err)
	h := newHarness(t, dataDir, store, key, nil)
	h.waitUploaded(t)
	assert.Empty(t, spoolEntries(t, h))
	assert.Empty(t, h.states.of("s-retired"), "a retired spool is not a session to recover")
	keys, err := store.List(ctxT(t), "")
	require.NoError(t, err)
	assert.Empty(t, keys)
}

// TestChunkLogInTheStoreIsNotAnObject: were a crash to undo the removal of
// the chunk log but not the directory rename that follows it, the log
// would sit in the store's session directory; the store does not list it
// and the recording verifies intact.
func TestChunkLogInTheStoreIsNotAnObject(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-log"))
	require.NoError(t, err)
	require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "SELECT 1"}))
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-log")
	require.NoError(t, err)
	dir := filepath.Join(h.store.(*FileStore).root, filepath.FromSlash(src.dir))
	require.NoError(t, os.WriteFile(filepath.Join(dir, logObject), []byte(`{"name":"session.json"}`+"\n"), 0o600))
	keys, err := h.store.List(ctxT(t), src.dir)
	require.NoError(t, err)
	assert.NotContains(t, keys, src.dir+logObject)
	rep := h.verify(t, "s-log")
	assert.Equal(t, StatusIntact, rep.Status, "report: %s", rep)
}

// TestIdleLiveSessionIsFindable: a live session that has written nothing
// yet is in the store (session.json, verifying as unsealed) from its first
// flush on, not only once it has a chunk or has ended.
func TestIdleLiveSessionIsFindable(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-idle"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background(), End{}) })
	require.Eventually(t, func() bool {
		_, err := FindSession(ctxT(t), h.store, "s-idle")
		return err == nil
	}, 2*time.Second, 5*time.Millisecond, "session.json of an idle live session reaches the store (flush interval 50ms)")
	rep := h.verify(t, "s-idle")
	assert.Equal(t, StatusUnsealed, rep.Status, "report: %s", rep)
}
