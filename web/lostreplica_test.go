package web_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// TestConsoleShowsLostReplicaSeal: a recording a survivor sealed from the
// store after its replica was lost shows on the sessions page and its own
// page as incomplete, with the reason naming the replica.
func TestConsoleShowsLostReplicaSeal(t *testing.T) {
	c := newConsole(t)
	ctx := context.Background()
	cfg := recorder.Config{DataDir: c.dir, FailClosed: true}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	rstore, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: rstore, Key: key}
	require.NoError(t, rec.Start(ctx))
	started := time.Now().Add(-10 * time.Minute).UTC()
	s, err := rec.Open(ctx, recorder.SessionMeta{ID: "s-lost", Identity: "svc-backup", Owner: owner, Target: "web-01",
		Protocol: "ssh", Login: "backup", StartedAt: started})
	require.NoError(t, err)
	require.NoError(t, s.Event(recorder.Event{Type: recorder.EventExec, Command: "make deploy"}))
	require.NoError(t, s.Close(ctx, recorder.End{}))
	require.NoError(t, rec.Shutdown(ctx))
	// What reached the store of a replica that died: no manifest.
	dir := filepath.Join(cfg.FileStoreDir(), filepath.FromSlash(recorder.SessionDir("s-lost", started)))
	require.NoError(t, os.Remove(filepath.Join(dir, "manifest.json")))
	require.NoError(t, os.Remove(filepath.Join(dir, "manifest.json.sig")))
	reason := "replica host-a-1 stopped renewing its lease at 2026-12-07T10:00:00Z while the session was live and did not come back within 15s: it was lost"
	res, err := recorder.SealFromStore(ctx, rstore, key, "s-lost", started, reason)
	require.NoError(t, err)
	require.True(t, res.Sealed)
	require.NoError(t, c.store.PutSession(ctx, sqlstore.SessionRecord{ID: "s-lost", Identity: "svc-backup", Owner: owner,
		Target: "web-01", Protocol: "ssh", Login: "backup", State: "incomplete", Reason: res.Manifest.Reason,
		Dir: recorder.SessionDir("s-lost", started), StartedAt: started, EndedAt: res.Manifest.EndedAt}))

	b, resp, body := c.signIn(auditor)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `<small class="reason">`+reason, "the sessions page shows why the recording is incomplete")
	resp, err = b.Get(c.srv.URL + "/sessions/s-lost")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(page), `id="integrity">recording incomplete`, "verified as incomplete, not tampered")
	assert.Contains(t, string(page), `<p id="integrity-reason">`+reason)
}
