package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/recorder"
)

// TestLostSealerSealsOnce: the recording of a session whose replica was
// lost (its lease ended an hour ago) reached the store without its
// manifest. Within the grace nothing is sealed; past it two survivors run
// a round at once over one registry and exactly one seals it: verify says
// incomplete, signed, with a reason naming the lost replica and when its
// lease ended, and sessions list agrees. Later rounds change nothing.
func TestLostSealerSealsOnce(t *testing.T) {
	e := newEnv(t, "")
	id := recordOnReplica(t, e, "host-a-1")
	ctx := t.Context()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { ap.Close() })
	leaseEnd := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	require.NoError(t, ap.store.RegisterReplica(ctx, sqlstore.Replica{ID: "host-a-1", Host: "host-a",
		Started: leaseEnd.Add(-time.Hour), LeaseUntil: leaseEnd}, false))
	manifest := unsealStored(t, e, id)

	var logs syncbuf.Buffer
	sealer := func(replica string, grace time.Duration) *recorder.LostSealer {
		_, store, key, err := openRecordings(cfg)
		require.NoError(t, err)
		return &recorder.LostSealer{Store: store, Key: key, Registry: lostRegistry{ap.store}, Replica: replica,
			Grace: grace, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	}
	sealer("host-b-1", 2*time.Hour).Round(ctx)
	_, err = ap.store.SealOf(ctx, id)
	assert.ErrorIs(t, err, iga.ErrNotFound, "a replica an hour gone is not lost within a grace of 2h")
	assert.NoFileExists(t, manifest)

	var wg sync.WaitGroup
	for _, r := range []string{"host-b-1", "host-c-1"} {
		wg.Go(func() { sealer(r, time.Minute).Round(ctx) })
	}
	wg.Wait()
	assert.Equal(t, 1, strings.Count(logs.String(), "sealed the recording of a lost replica's session"), "one survivor seals: %s", &logs)
	seal, err := ap.store.SealOf(ctx, id)
	require.NoError(t, err)
	assert.Contains(t, []string{"host-b-1", "host-c-1"}, seal.Sealer)
	sealed, err := os.ReadFile(manifest)
	require.NoError(t, err, "the survivor wrote a manifest")

	out, _, code := e.run("", "verify", "--json", id)
	var v verifyOut
	require.NoError(t, json.Unmarshal([]byte(out), &v), "verify --json: %s", out)
	assert.Equal(t, 1, code, "verify exits 1 for an incomplete recording")
	assert.Equal(t, "incomplete", v.Status)
	want := "replica host-a-1 stopped renewing its lease at " + leaseEnd.Format(time.RFC3339) +
		" while the session was live and did not come back within 1m0s: it was lost; sealed from the recording store"
	assert.Contains(t, v.Reason, want)
	listed := listedSessions(t, e)[id]
	assert.Equal(t, "incomplete", listed.State)
	assert.Contains(t, listed.Reason, want)

	sealer("host-c-1", time.Minute).Round(ctx)
	again, err := os.ReadFile(manifest)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(sealed, again), "a later round leaves the signed manifest as it is")
	assert.Equal(t, 1, strings.Count(logs.String(), "sealed the recording of a lost replica's session"))
}

// recordOnReplica records a short session indexed as run by replica, and
// leaves it in the index as live: what the registry holds of a session
// whose replica died while it ran.
func recordOnReplica(t *testing.T, e *env, replica string) string {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	rec, err := newRecorder(cfg, testLogger(t), newMetrics())
	require.NoError(t, err)
	ctx := context.Background()
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	defer ap.Close()
	var first sqlstore.SessionRecord
	rec.OnState = func(c recorder.StateChange) {
		if first.ID == "" {
			first = sessionRecord(c)
		}
	}
	require.NoError(t, rec.Start(ctx))
	meta := recorderMetaForTest(sessionid.New(time.Now()))
	s, err := rec.Open(ctx, meta)
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	require.NoError(t, s.Output(0, []byte("$ echo hello\r\nhello from the lost replica\r\n")))
	zero := 0
	require.NoError(t, s.Close(ctx, endForTest(&zero)))
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, rec.Shutdown(sctx))
	require.Equal(t, recorder.StateLive, recorder.State(first.State), "the first report is the live session")
	first.Replica = replica
	require.NoError(t, ap.store.PutSession(ctx, first))
	return meta.ID
}

// unsealStored removes the manifest and its signature of session id from
// the file store under e, as if its replica had died before sealing, and
// returns the manifest's path.
func unsealStored(t *testing.T, e *env, id string) string {
	t.Helper()
	var manifest string
	require.NoError(t, filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || filepath.Base(filepath.Dir(p)) != id || strings.Contains(p, "spool") {
			return err
		}
		switch d.Name() {
		case "manifest.json":
			manifest = p
			return os.Remove(p)
		case "manifest.json.sig":
			return os.Remove(p)
		}
		return nil
	}))
	require.NotEmpty(t, manifest, "session %s has a manifest in the store under %s", id, e.dir)
	return manifest
}
