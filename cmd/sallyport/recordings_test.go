package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/recorder"
)

// recordSession writes a short terminal session through the same recorder
// serve builds from the env's config, and returns its id once it is stored.
func recordSession(t *testing.T, e *env) string {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	rec, err := newRecorder(cfg, testLogger(t), newMetrics())
	require.NoError(t, err)
	ctx := context.Background()
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	defer ap.Close()
	rec.OnState = indexSessions(ap.store, testLogger(t))
	require.NoError(t, rec.Start(ctx))
	meta := recorderMetaForTest(sessionid.New(time.Now()))
	s, err := rec.Open(ctx, meta)
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 80, 24, "xterm"))
	require.NoError(t, s.Output(0, []byte("$ echo hello\r\nhello from the recording\r\n")))
	require.NoError(t, s.Resize(0, 100, 30))
	require.NoError(t, s.Output(0, []byte("$ exit\r\n")))
	zero := 0
	require.NoError(t, s.Close(ctx, endForTest(&zero)))
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, rec.Shutdown(sctx))
	return meta.ID
}

func TestCLIReplayVerifyExport(t *testing.T) {
	e := newEnv(t, "")
	id := recordSession(t, e)

	out := e.ok("replay", id, "--format", "text")
	assert.Contains(t, out, "hello from the recording")
	out = e.ok("replay", id, "--format", "json")
	assert.Contains(t, out, `"identity":"svc-backup"`)

	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(e.ok("sessions", "list", "--json")), &listed))
	require.Len(t, listed, 1)
	assert.Equal(t, id, listed[0]["id"])
	assert.Equal(t, "stored", listed[0]["state"], "the index follows the recording to the store")
	assert.NotNil(t, listed[0]["ended_at"])
	_, errOut, code := e.run("", "sessions", "kill", id)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "already ended")

	out = e.ok("verify", id)
	assert.Contains(t, out, "intact")
	pub := filepath.Join(e.dir, "recording.pub")
	require.NoError(t, os.WriteFile(pub, []byte(e.ok("ca", "export", "--type", "recording")), 0o644))
	e.ok("verify", id, "--pubkey", pub)

	cast := filepath.Join(e.dir, "s.cast")
	e.ok("recording", "export", id, "-o", cast)
	data, err := os.ReadFile(cast)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	assert.Contains(t, lines[0], `"version":2`)
	assert.Contains(t, string(data), "hello from the recording")

	// Flip one byte of a stored chunk: verify must fail and name the chunk.
	chunks, err := filepath.Glob(filepath.Join(e.dir, "data", "recordings", "*", "*", "*", id, "*.chunk"))
	require.NoError(t, err)
	require.NotEmpty(t, chunks, "the session's chunks are in the file store")
	b, err := os.ReadFile(chunks[0])
	require.NoError(t, err)
	b[len(b)-2] ^= 0x20
	require.NoError(t, os.WriteFile(chunks[0], b, 0o600))
	out, _, code = e.run("", "verify", id)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "tampered")
	assert.Contains(t, out, filepath.Base(chunks[0]))

	other := filepath.Join(e.dir, "other.pub")
	otherKey, err := ca.LoadOrCreateKey(filepath.Join(e.dir, "other"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(other, []byte(ca.AuthorizedKey(otherKey)), 0o644))
	out, _, code = e.run("", "verify", id, "--pubkey", other)
	assert.Equal(t, 1, code, "a foreign key never verifies")
	assert.Contains(t, out, "manifest")

	_, errOut, code = e.run("", "replay", id, "--format", "nope")
	assert.Equal(t, 2, code, errOut)
}

func recorderMetaForTest(id string) recorder.SessionMeta {
	return recorder.SessionMeta{ID: id, Identity: "svc-backup", Owner: "alice@example.com", Target: "web-01",
		Protocol: "ssh", Login: "backup", Source: "127.0.0.1:50000", StartedAt: time.Now().UTC()}
}

func endForTest(status *int) recorder.End {
	return recorder.End{ExitStatus: status, Reason: "client closed"}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestCLIReplayNotYetStored: right after a session ends, its recording may
// still be on its way from the spool to the store. replay, verify and
// export then say so and what to do, instead of a bare "object not found".
func TestCLIReplayNotYetStored(t *testing.T) {
	e := newEnv(t, "")
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ctx := context.Background()
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	id := sessionid.New(time.Now())
	require.NoError(t, ap.store.PutSession(ctx, sqlstore.SessionRecord{ID: id, Identity: "svc-backup", Target: "web-01",
		Protocol: "ssh", State: string(recorder.StateUploading), StartedAt: time.Now().UTC(), EndedAt: time.Now().UTC()}))
	ap.Close()

	for _, args := range [][]string{{"replay", id, "--format", "text"}, {"verify", id}, {"recording", "export", id, "-o", filepath.Join(e.dir, "x.cast")}} {
		out, errOut, code := e.run("", args...)
		assert.Equal(t, 1, code, "%s: %s%s", args[0], out, errOut)
		assert.Contains(t, out+errOut, "still uploading", args[0])
		assert.Contains(t, out+errOut, "again in a moment", args[0])
	}
}
