package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/recorder"
)

// recordExec stores, through the recorder serve builds from the env's
// config, an svc-backup session that ran command, indexed as serve does.
func recordExec(t *testing.T, ap *app, command string) {
	t.Helper()
	ctx := context.Background()
	rec, err := newRecorder(ap.cfg, testLogger(t), newMetrics())
	require.NoError(t, err)
	rec.OnState = indexSessions(ap.store, testLogger(t))
	require.NoError(t, rec.Start(ctx))
	s, err := rec.Open(ctx, recorderMetaForTest(sessionid.New(time.Now())))
	require.NoError(t, err)
	ch := 0
	require.NoError(t, s.Event(recorder.Event{Time: time.Now(), Type: recorder.EventExec, Channel: &ch, Command: command}))
	require.NoError(t, s.Data(0, recorder.StreamStdout, []byte("done\n")))
	zero := 0
	require.NoError(t, s.EndExec(0, &zero, ""))
	require.NoError(t, s.Close(ctx, endForTest(&zero)))
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, rec.Shutdown(sctx))
}

// TestWebSuggestions: the console's suggestion for an identity that may
// exec anything is the command it actually ran, and says the sftp and
// unrestricted exec it holds went unused.
func TestWebSuggestions(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ap, err := openApp(context.Background(), cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { ap.Close() })
	recordExec(t, ap, "/usr/local/bin/backup.sh nightly")

	yaml, unused, err := webSuggestions{ap: ap}.Suggest(t.Context(), "svc-backup")
	require.NoError(t, err)
	assert.Contains(t, yaml, "from 1 session(s)")
	assert.Contains(t, yaml, "- id: svc-backup")
	assert.Contains(t, yaml, "actions: [exec]", "sftp, never used, is left out")
	assert.Contains(t, yaml, "commands: [/usr/local/bin/backup.sh nightly]", "the command it ran becomes its only command")
	assert.NotContains(t, yaml, "not readable", "the stored recording was read")
	assert.Contains(t, unused, "web-01 as backup: exec of any command")
	assert.Contains(t, unused, "web-01 as backup: sftp never used")

	_, _, err = webSuggestions{ap: ap}.Suggest(t.Context(), "svc-nobody")
	assert.ErrorContains(t, err, "svc-nobody")
}
