package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// execScript is what the exec session's client piped into bash -s; its
// markup must reach the page as text.
const execScript = "echo '<script>alert(1)</script>'\ndf -h /srv\n"

// execStdout is what the script printed.
const execStdout = "<script>alert(1)</script>\nFilesystem  Size  Used Avail Use% Mounted on\n/dev/sda1    50G   20G   30G  40% /srv\n"

// recordExecSession records, with the real recorder, an SSH session that
// ran bash -s without a terminal, and indexes it as s-exec.
func recordExecSession(t *testing.T, c *console) {
	ctx := context.Background()
	cfg := recorder.Config{DataDir: c.dir, FailClosed: true}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	rstore, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: rstore, Key: key, OnState: func(s recorder.StateChange) {
		m := s.Meta
		require.NoError(t, c.store.PutSession(ctx, sqlstore.SessionRecord{ID: m.ID, Identity: m.Identity, Owner: m.Owner,
			Target: m.Target, Protocol: m.Protocol, Login: m.Login, State: string(s.State), Dir: s.Dir,
			StartedAt: m.StartedAt, EndedAt: s.EndedAt, Bytes: s.Bytes, Events: s.Events}))
	}}
	require.NoError(t, rec.Start(ctx))
	s, err := rec.Open(ctx, recorder.SessionMeta{ID: "s-exec", Identity: "svc-backup", Owner: owner, Target: "web-01",
		Protocol: "ssh", Login: "backup", StartedAt: time.Now().Add(-10 * time.Minute)})
	require.NoError(t, err)
	ch := 0
	require.NoError(t, s.Event(recorder.Event{Type: recorder.EventExec, Channel: &ch, Command: "bash -s"}))
	require.NoError(t, s.Data(0, recorder.StreamStdin, []byte(execScript)))
	time.Sleep(60 * time.Millisecond) // the output is a stretch of its own
	require.NoError(t, s.Data(0, recorder.StreamStdout, []byte(execStdout)))
	require.NoError(t, s.Data(0, recorder.StreamStderr, []byte{0x1f, 0x8b, 0x00, 0xff}))
	status := 0
	require.NoError(t, s.EndExec(0, &status, ""))
	require.NoError(t, s.Close(ctx, recorder.End{ExitStatus: &status}))
	require.NoError(t, rec.Shutdown(ctx))
}

// TestExecSessionPage: the page of an exec session shows the command, the
// script and its output as escaped text in order, binary as its length and
// hash, the exit status and each stream's total and SHA-256, with
// downloads of the exact bytes; and no empty player.
func TestExecSessionPage(t *testing.T) {
	c := newConsole(t)
	recordExecSession(t, c)
	aud, _, _ := c.signIn(auditor)

	code, _, page := getBody(t, aud, c.srv.URL+"/sessions/s-exec")
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, page, `id="player"`, "an exec session has no terminal to play")
	assert.NotContains(t, page, "<script>alert(1)</script>", "the script's markup is text, not markup")
	assert.Contains(t, page, "<h3>Channel 0: <code>bash -s</code></h3>")
	script := strings.Index(page, "<pre>echo &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;\ndf -h /srv\n</pre>")
	output := strings.Index(page, "<pre>&lt;script&gt;alert(1)&lt;/script&gt;\nFilesystem")
	require.GreaterOrEqual(t, script, 0, "page lacks the script:\n%s", page)
	require.Greater(t, output, script, "the output follows the script")
	binary := sha256.Sum256([]byte{0x1f, 0x8b, 0x00, 0xff})
	assert.Contains(t, page, "&lt;binary: 4 bytes, sha256 "+hex.EncodeToString(binary[:])+"&gt;")
	assert.Contains(t, page, "exit status 0")
	out := sha256.Sum256([]byte(execStdout))
	assert.Contains(t, page, "<code>"+hex.EncodeToString(out[:])+"</code>", "stdout's SHA-256")
	assert.Contains(t, page, `href="/sessions/s-exec/streams/exec-0.stdout?download=1"`)
	stdin, stdout, stderr := strings.Index(page, "<tr><td>stdin</td><td>44</td>"), strings.Index(page, "<tr><td>stdout</td><td>110</td>"), strings.Index(page, "<tr><td>stderr</td><td>4</td>")
	assert.True(t, 0 < stdin && stdin < stdout && stdout < stderr, "totals of stdin, stdout, stderr in that order")
	assert.Contains(t, page, "<h2>Events</h2>", "an SSH session's events are no query timeline")

	code, h, body := getBody(t, aud, c.srv.URL+"/sessions/s-exec/streams/exec-0.stdout?download=1")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, execStdout, body, "the download is stdout byte for byte")
	assert.Contains(t, h.Get("Content-Disposition"), `filename="s-exec.exec-0.stdout"`)
	code, _, _ = getBody(t, aud, c.srv.URL+"/sessions/s-exec/streams/exec-7.stdout")
	assert.Equal(t, http.StatusNotFound, code)

	var d struct {
		Terminal bool
		Exec     struct {
			Channels []struct {
				Command   string
				Stretches []struct{ Stream, Text string }
				End       struct {
					ExitStatus *int `json:"exit_status"`
				}
			}
		}
	}
	require.Equal(t, http.StatusOK, getJSON(t, aud, c.srv.URL+"/api/v1/sessions/s-exec", &d))
	assert.False(t, d.Terminal)
	require.Len(t, d.Exec.Channels, 1)
	assert.Equal(t, "bash -s", d.Exec.Channels[0].Command)
	require.NotEmpty(t, d.Exec.Channels[0].Stretches)
	assert.Equal(t, execScript, d.Exec.Channels[0].Stretches[0].Text)
	require.NotNil(t, d.Exec.Channels[0].End.ExitStatus)
	assert.Equal(t, 0, *d.Exec.Channels[0].End.ExitStatus)

	_, _, page = getBody(t, aud, c.srv.URL+"/sessions/s-ssh")
	assert.Contains(t, page, `id="player"`, "a terminal session keeps its player")
	assert.NotContains(t, page, "<h2>Commands</h2>")
}
