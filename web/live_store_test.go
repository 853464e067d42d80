package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/web"
)

// TestLiveFromStore: the console of replica A watches a session replica B
// runs by following its recording in the shared store. The page opens the
// stream and says it trails the session; the stream carries the terminal
// output, the events and the end that B's recorder uploads, though A's own
// recorder knows nothing of the session; and watching is audited.
func TestLiveFromStore(t *testing.T) {
	c := newConsole(t)
	s := onReplicaB(t, c)
	aud, _, _ := c.signIn(auditor)

	code, _, page := getBody(t, aud, c.srv.URL+"/sessions/s-on-b")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, `data-stream="/sessions/s-on-b/live"`, "the page opens the stream")
	assert.Contains(t, page, `id="live-from-store">This session runs on replica <code>replica-b</code>. This view follows its recording in the shared store`)
	assert.Contains(t, page, "about 400ms", "the lag: a flush interval and two polls (a record may wait one for the rest of its flush)")
	assert.NotContains(t, page, "Its live view is on that replica's console")

	resp, err := aud.Get(c.srv.URL + "/sessions/s-on-b/live")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := readSSE(resp)
	require.NoError(t, s.Output(0, []byte("rm -rf /var/cache/apt\r\n")))
	var out struct{ Text string }
	require.NoError(t, json.Unmarshal([]byte(next(t, events, "output").data), &out))
	assert.Equal(t, "rm -rf /var/cache/apt\r\n", out.Text)
	one := 1
	require.NoError(t, s.Event(recorder.Event{Type: recorder.EventExec, Channel: &one, Command: "systemctl restart nginx"}))
	var got recorder.Event
	require.NoError(t, json.Unmarshal([]byte(next(t, events, "record").data), &got))
	assert.Equal(t, "systemctl restart nginx", got.Command)
	require.NoError(t, s.Close(context.Background(), recorder.End{Reason: "client closed"}))
	require.NoError(t, json.Unmarshal([]byte(next(t, events, "end").data), &got))
	assert.Equal(t, "client closed", got.Reason)

	audit, err := c.store.Audit(context.Background(), iga.AuditFilter{Type: web.AuditWatch})
	require.NoError(t, err)
	require.Len(t, audit, 1)
	assert.Equal(t, auditor, audit[0].Actor)
	assert.Contains(t, audit[0].Detail, "replica replica-b runs it")
}

// TestLiveFromStoreBrowser: in chromium, the page of a session replica B
// runs, opened on replica A's console, says it follows the recording in
// the store, shows output printed after it opened, and says when the
// session ended.
func TestLiveFromStoreBrowser(t *testing.T) {
	c := newConsole(t)
	s := onReplicaB(t, c)
	ctx := newBrowser(t)
	c.op.SignInAs(admin, true)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions/s-on-b"),
		chromedp.WaitVisible(chromedp.CSS(`#live form.kill button`))))
	require.Equal(t, "live", waitForText(t, ctx, `#live-state`, "live"), "the stream is open")
	assert.Contains(t, waitForText(t, ctx, `#live-from-store`, "replica-b"), "follows its recording in the shared store")
	require.NoError(t, s.Output(0, []byte("STORE-MARK-42\r\n")))
	assert.Contains(t, waitForText(t, ctx, `#live-player`, "STORE-MARK-42"), "STORE-MARK-42", "the output reaches the page")
	require.NoError(t, s.Close(context.Background(), recorder.End{}))
	assert.Contains(t, waitForText(t, ctx, `#live-state`, "ended"), "ended", "the page says the session ended")
}

// onReplicaB gives c's console the store follower as serve wires it, with
// its own recorder as replica A, and starts a session with a terminal on
// replica B, whose recorder uploads to the same store every 200 ms.
func onReplicaB(t *testing.T, c *console) *recorder.Session {
	store := c.ws.Recordings.(web.StoreRecordings).Store
	const flush = 200 * time.Millisecond
	b := &recorder.Recorder{Config: recorder.Config{DataDir: t.TempDir(), FlushInterval: flush, FailClosed: true}, Store: store, Logger: quietLogger()}
	key, err := recorder.LoadOrCreateSigningKey(b.Config.KeyFile())
	require.NoError(t, err)
	b.Key = key
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	c.ws.Live, c.ws.Replica = startRecorder(t, c), "replica-a"
	c.ws.LiveStore = recorder.StoreTail{Store: store, FlushInterval: flush, Options: recorder.TailOptions{Poll: 100 * time.Millisecond}}
	c.ws.Audit = func(ctx context.Context, e iga.AuditEvent) error {
		return c.store.Update(ctx, func(tx iga.Tx) error { return tx.AppendAudit(ctx, e) })
	}
	require.NoError(t, c.store.RegisterReplica(context.Background(), sqlstore.Replica{ID: "replica-b", Host: "bastion-2",
		Started: time.Now().Add(-time.Hour), LeaseUntil: time.Now().Add(time.Hour)}, false))
	s, err := b.Open(context.Background(), recorder.SessionMeta{ID: "s-on-b", Identity: "svc-backup", Owner: owner,
		Target: "web-01", Protocol: "ssh", Login: "backup"})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background(), recorder.End{}) })
	require.NoError(t, c.store.PutSession(context.Background(), sqlstore.SessionRecord{ID: "s-on-b", Identity: "svc-backup", Owner: owner,
		Target: "web-01", Protocol: "ssh", Login: "backup", State: "live", StartedAt: s.Meta().StartedAt, Replica: "replica-b"}))
	require.NoError(t, s.OpenTerminal(0, 100, 30, "xterm"))
	return s
}
