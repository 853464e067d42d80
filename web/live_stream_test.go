package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// sseEvent is one Server-Sent Event of the live stream.
type sseEvent struct{ name, data string }

// readSSE sends the stream's events on a channel until it ends.
func readSSE(resp *http.Response) <-chan sseEvent {
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.name != "":
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out
}

func next(t *testing.T, events <-chan sseEvent, name string) sseEvent {
	t.Helper()
	deadline := time.After(time.Second)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "the stream ended before a %s event", name)
			if ev.name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within a second", name)
		}
	}
}

// TestLiveDatabaseSession: the live stream of a running database session
// carries each query within a second of the proxy recording it, and the
// end; it is read-only (no method but GET), and watching is audited.
func TestLiveDatabaseSession(t *testing.T) {
	c := newConsole(t)
	rec := startRecorder(t, c)
	c.ws.Live, c.ws.Audit = rec, func(ctx context.Context, e iga.AuditEvent) error {
		return c.store.Update(ctx, func(tx iga.Tx) error { return tx.AppendAudit(ctx, e) })
	}
	s, err := rec.Open(context.Background(), recorder.SessionMeta{ID: "s-db-live", Identity: "svc-report", Owner: owner,
		Target: "analytics", Protocol: "postgres", Login: "reporting"})
	require.NoError(t, err)
	aud, _, _ := c.signIn(auditor)

	code, _, page := getBody(t, aud, c.srv.URL+"/sessions/s-db-live")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, `data-stream="/sessions/s-db-live/live"`)
	assert.NotContains(t, page, `class="kill"`, "the kill button is for admins")

	resp, err := aud.Get(c.srv.URL + "/sessions/s-db-live/live")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := readSSE(resp)
	sent := time.Now()
	require.NoError(t, s.Event(recorder.Event{Type: recorder.EventQuery, SQL: "DELETE FROM invoices WHERE id = $1", Params: []any{"7"}}))
	var got recorder.Event
	require.NoError(t, json.Unmarshal([]byte(next(t, events, "record").data), &got))
	t.Logf("query recorded to received: %v", time.Since(sent))
	assert.Equal(t, "DELETE FROM invoices WHERE id = $1", got.SQL)
	require.NoError(t, s.Close(context.Background(), recorder.End{}))
	next(t, events, "end")

	s2, err := rec.Open(context.Background(), recorder.SessionMeta{ID: "s-db-live2", Identity: "svc-report", Owner: owner,
		Target: "analytics", Protocol: "postgres", Login: "reporting"})
	require.NoError(t, err)
	defer s2.Close(context.Background(), recorder.End{})
	resp2, err := aud.Get(c.srv.URL + "/sessions/s-db-live2/live")
	require.NoError(t, err)
	defer resp2.Body.Close()
	open := readSSE(resp2)
	require.NoError(t, c.ws.Shutdown(context.Background()))
	select {
	case _, ok := <-open:
		assert.False(t, ok, "nothing more on the stream")
	case <-time.After(time.Second):
		t.Fatal("shutting the console down did not end the live stream of a running session")
	}

	audit, err := c.store.Audit(context.Background(), iga.AuditFilter{Type: "session_watch"})
	require.NoError(t, err)
	require.Len(t, audit, 2, "two watches")
	assert.Equal(t, auditor, audit[0].Actor)
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		req, _ := http.NewRequest(method, c.srv.URL+"/sessions/s-db-live/live", strings.NewReader("id\n"))
		resp, err := aud.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "nothing is sent to a session from the console")
	}
	code, _, _ = getBody(t, aud, c.srv.URL+"/sessions/s-db-live/live")
	assert.Equal(t, http.StatusConflict, code, "an ended session is replayed, not watched")
}

// TestLiveOnAnotherReplica: the page of a session another replica runs
// says which, and that its console has the live view; the stream answers
// so too instead of watching nothing.
func TestLiveOnAnotherReplica(t *testing.T) {
	c := newConsole(t)
	rec := startRecorder(t, c)
	c.ws.Live, c.ws.Replica = rec, "replica-a"
	c.ws.Audit = func(ctx context.Context, e iga.AuditEvent) error { return nil }
	require.NoError(t, c.store.RegisterReplica(context.Background(), sqlstore.Replica{ID: "replica-b", Host: "bastion-2",
		Started: time.Now().Add(-time.Hour), LeaseUntil: time.Now().Add(time.Hour)}, false))
	require.NoError(t, c.store.PutSession(context.Background(), sqlstore.SessionRecord{ID: "s-remote", Identity: "svc-backup", Owner: owner,
		Target: "web-01", Protocol: "ssh", Login: "backup", State: "live", StartedAt: time.Now().Add(-time.Minute), Replica: "replica-b"}))
	adm, _, _ := c.signIn(admin)
	code, _, page := getBody(t, adm, c.srv.URL+"/sessions/s-remote")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "This session runs on replica <code>replica-b</code>. Its live view is on that replica's console")
	assert.Contains(t, page, `action="/sessions/s-remote/kill"`, "the kill switch works from any replica")
	assert.NotContains(t, page, "data-stream=")
	code, _, body := getBody(t, adm, c.srv.URL+"/sessions/s-remote/live")
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "replica-b")
}

// TestLiveViewDatabaseBrowser: in chromium, the page of a running database
// session lists each query as the proxy records it, with its outcome, and
// shows no terminal.
func TestLiveViewDatabaseBrowser(t *testing.T) {
	c := newConsole(t)
	rec := startRecorder(t, c)
	c.ws.Live, c.ws.Audit = rec, func(ctx context.Context, e iga.AuditEvent) error {
		return c.store.Update(ctx, func(tx iga.Tx) error { return tx.AppendAudit(ctx, e) })
	}
	s, err := rec.Open(context.Background(), recorder.SessionMeta{ID: "s-db-watch", Identity: "svc-report", Owner: owner,
		Target: "analytics", Protocol: "postgres", Login: "reporting"})
	require.NoError(t, err)
	defer s.Close(context.Background(), recorder.End{})
	ctx := newBrowser(t)
	c.op.SignInAs(owner, true) // the identity's owner may watch it
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions/s-db-watch"), chromedp.WaitVisible(chromedp.CSS(`#live`))))
	require.Equal(t, "live", waitForText(t, ctx, `#live-state`, "live"))
	require.NoError(t, s.Event(recorder.Event{Type: recorder.EventQuery, SQL: "UPDATE accounts SET frozen = true WHERE id = $1",
		Params: []any{"42"}, Outcome: &recorder.Outcome{ErrorCode: "42501", Error: "permission denied for table accounts"}}))
	got := waitForText(t, ctx, `#live-events`, "UPDATE accounts")
	assert.Contains(t, got, "UPDATE accounts SET frozen = true WHERE id = $1")
	assert.Contains(t, got, "42501 permission denied for table accounts")
	players, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#live-player .ap-player").length`))
	require.NoError(t, err)
	assert.Equal(t, 0, players, "a database session has no terminal")
}
