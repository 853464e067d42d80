package web_test

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/search"
)

// Markers the searchable sessions hold, each once.
const (
	findShell = "ledger-rebuild-7731"            // terminal output of s-find-ssh, 15 s in
	findQuery = "DROP TABLE payments_archive"    // a query of s-find-pg, 12.5 s in
	findGhost = "DROP TABLE ghost_ledger"        // a query of s-ghost, whose identity olivia does not own
	findXSS   = "<img src=x onerror=alert(7)>ok" // output with markup, which must stay text
)

// recordSearchable records, on a controlled clock, the sessions the search
// tests find things in, indexes them with the real indexer and gives the
// console the index.
func recordSearchable(t *testing.T, c *console) *search.Index {
	ctx := context.Background()
	var mu sync.Mutex
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	clock := start
	at := func(d time.Duration) { mu.Lock(); clock = start.Add(d); mu.Unlock() }
	cfg := recorder.Config{DataDir: c.dir, FailClosed: true}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	rstore, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: rstore, Key: key, Logger: quietLogger(),
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock },
		OnState: func(s recorder.StateChange) {
			m := s.Meta
			require.NoError(t, c.store.PutSession(ctx, sqlstore.SessionRecord{ID: m.ID, Identity: m.Identity, Owner: m.Owner,
				Target: m.Target, Protocol: m.Protocol, Login: m.Login, State: string(s.State), Dir: s.Dir,
				StartedAt: m.StartedAt, EndedAt: s.EndedAt, Bytes: s.Bytes, Events: s.Events}))
		}}
	require.NoError(t, rec.Start(ctx))
	open := func(id, identity, protocol string) *recorder.Session {
		at(0)
		s, err := rec.Open(ctx, recorder.SessionMeta{ID: id, Identity: identity, Owner: owner, Target: "web-01",
			Protocol: protocol, Login: "app", StartedAt: start})
		require.NoError(t, err)
		return s
	}
	ssh := open("s-find-ssh", "svc-backup", "ssh")
	require.NoError(t, ssh.OpenTerminal(0, 80, 24, "xterm"))
	for i, line := range []string{"$ ./maintenance.sh\r\n", "step 1: vacuum ... ok\r\n", findXSS + "\r\n", findShell + " done\r\n",
		"$ pg_dump -t payments analytics | gzip > /backup/payments.sql.gz\r\n", "$ exit\r\n"} {
		at(time.Duration(5*i) * time.Second)
		require.NoError(t, ssh.Output(0, []byte(line)))
	}
	require.NoError(t, ssh.Close(ctx, recorder.End{}))
	pg := open("s-find-pg", "svc-report", "postgres")
	for _, q := range []struct {
		at  time.Duration
		sql string
	}{{0, "SELECT 1"}, {5 * time.Second, "SELECT count(*) FROM payments"}, {12500 * time.Millisecond, findQuery}, {15 * time.Second, "SELECT 2"}} {
		at(q.at)
		require.NoError(t, pg.Event(recorder.Event{Type: recorder.EventQuery, SQL: q.sql, Outcome: &recorder.Outcome{Tag: "OK"}}))
	}
	require.NoError(t, pg.Close(ctx, recorder.End{}))
	ghost := open("s-ghost", "svc-ghost", "postgres")
	require.NoError(t, ghost.Event(recorder.Event{Type: recorder.EventQuery, SQL: findGhost}))
	require.NoError(t, ghost.Close(ctx, recorder.End{}))
	require.NoError(t, rec.Shutdown(ctx))
	return indexAll(t, c, rstore)
}

// indexAll runs the real indexer until nothing is pending and sets the
// console's Search.
func indexAll(t *testing.T, c *console, rstore recorder.Store) *search.Index {
	db, dialect := c.store.SearchDB()
	ix, err := search.New(db, dialect)
	require.NoError(t, err)
	x := &search.Indexer{Index: ix, Store: rstore, Write: c.store.SearchWrite, Owner: "test"}
	for range 20 {
		n, err := x.Pass(context.Background())
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}
	c.ws.Search = ix
	return ix
}

func searchPage(t *testing.T, c *console, b *http.Client, v url.Values) (int, string) {
	code, _, body := getBody(t, b, c.srv.URL+"/sessions?"+v.Encode())
	return code, body
}

// TestContentSearch: the sessions page's search box finds queries and
// terminal output with the match highlighted and markup escaped, links
// each hit to its moment, narrows by the form's filters, and keeps an
// owner to the identities they own.
func TestContentSearch(t *testing.T) {
	c := newConsole(t)
	recordExecSession(t, c)
	ix := recordSearchable(t, c)
	aud, _, _ := c.signIn(auditor)
	own, _, _ := c.signIn(owner)

	code, page := searchPage(t, c, aud, url.Values{"q": {"payments_archive"}})
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "DROP TABLE <mark>payments_archive</mark>", "the match is highlighted")
	assert.Contains(t, page, `href="/sessions/s-find-pg?t=12.500&amp;in=query#hit"`, "the hit links to its moment")
	assert.Contains(t, page, "<td>query</td>")

	_, page = searchPage(t, c, aud, url.Values{"q": {"onerror"}})
	assert.Contains(t, page, "&lt;img src=x <mark>onerror</mark>=alert(7)&gt;ok", "markup in a snippet stays text")
	assert.NotContains(t, page, "<img src=x")

	_, page = searchPage(t, c, aud, url.Values{"q": {"drop table"}})
	assert.Contains(t, page, "s-ghost", "auditors search every session")
	assert.Contains(t, page, "s-find-pg")
	_, page = searchPage(t, c, own, url.Values{"q": {"drop table"}})
	assert.Contains(t, page, "s-find-pg", "the owner's own identity")
	assert.NotContains(t, page, "s-ghost", "an identity the owner does not own")
	assert.NotContains(t, page, "ghost_ledger")

	_, page = searchPage(t, c, aud, url.Values{"q": {"drop table"}, "protocol": {"ssh"}})
	assert.Contains(t, page, "0 hits", "the protocol filter narrows")
	_, page = searchPage(t, c, aud, url.Values{"q": {"drop table"}, "identity": {"svc-ghost"}})
	assert.Contains(t, page, "s-ghost")
	assert.NotContains(t, page, "s-find-pg", "the identity filter narrows")

	code, page = searchPage(t, c, aud, url.Values{"q": {findShell}})
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, `href="/sessions/s-find-ssh?t=15.000&amp;in=output#hit"`)
	assert.Contains(t, page, "<td>output</td>")

	var api struct {
		Hits []search.Hit
		More bool
	}
	require.Equal(t, http.StatusOK, getJSON(t, aud, c.srv.URL+"/api/v1/search?q=drop+table&limit=1", &api))
	require.Len(t, api.Hits, 1, "the limit")
	assert.True(t, api.More)
	require.Equal(t, http.StatusOK, getJSON(t, own, c.srv.URL+"/api/v1/search?q=ghost_ledger", &api))
	assert.Empty(t, api.Hits, "the owner's API search keeps to their identities")
	require.Equal(t, http.StatusOK, getJSON(t, aud, c.srv.URL+"/api/v1/search?q=payments_archive", &api))
	require.Len(t, api.Hits, 1)
	assert.Equal(t, search.Hit{Session: "s-find-pg", Identity: "svc-report", Target: "web-01", Protocol: "postgres",
		Time: api.Hits[0].Time, Offset: 12.5, Where: search.WhereQuery, Snippet: api.Hits[0].Snippet, Marks: api.Hits[0].Marks}, api.Hits[0])

	res, err := ix.Search(context.Background(), search.Query{Text: "df -h /srv", Where: []search.Where{search.WhereStdin}})
	require.NoError(t, err)
	require.Len(t, res.Hits, 1, "the exec session's script")
	_, page = searchPage(t, c, aud, url.Values{"q": {"df -h /srv"}})
	link := "/sessions/s-exec?t=" + strconv.FormatFloat(res.Hits[0].Offset, 'f', 3, 64) + "&amp;in=stdin#hit"
	require.Contains(t, page, `href="`+link+`"`)
	_, _, page = getBody(t, aud, c.srv.URL+strings.ReplaceAll(link, "&amp;", "&"))
	assert.Contains(t, page, `<tr class="stdin hit" id="hit">`, "the script's stretch is marked")
	assert.Equal(t, 1, strings.Count(page, `id="hit"`), "one mark")
}

// TestContentSearchBadInput: whatever is typed in the search box, the page
// answers with hits or says what is wrong with the text, never a 500 nor
// a database error.
func TestContentSearchBadInput(t *testing.T) {
	c := newConsole(t)
	recordSearchable(t, c)
	aud, _, _ := c.signIn(auditor)
	for _, text := range []string{`"`, `"drop`, `DROP OR "`, `*`, `%`, `%%`, `_`, `a*`, `NEAR(a b)`, `a AND NOT b`, `^x`,
		`col:val`, `'; DROP TABLE sessions; --`, `\`, `(`, `)`, `{}`, `-x`, `+x`, `a:b:c`, "ünïcødé 数据库 🔥",
		strings.Repeat("x", 10<<10), strings.Repeat("a ", 5000), "\x00", "\xff\xfe", "   ", ""} {
		name := text
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run(url.PathEscape(name), func(t *testing.T) {
			code, page := searchPage(t, c, aud, url.Values{"q": {text}})
			require.Equal(t, http.StatusOK, code)
			for _, leak := range []string{"internal error", "SQL", "sqlite", "fts5", "syntax error", "tsquery"} {
				assert.False(t, strings.Contains(page, leak), "the page says %q", leak)
			}
			if strings.TrimSpace(text) == "" {
				assert.Contains(t, page, "sessions, newest first", "no text: the session list")
				code, _, body := getBody(t, aud, c.srv.URL+"/api/v1/search?"+url.Values{"q": {text}}.Encode())
				assert.Equal(t, http.StatusBadRequest, code)
				assert.Contains(t, body, "empty")
				return
			}
			ok := strings.Contains(page, `hits for <code>`) || strings.Contains(page, `id="search-problem"`)
			assert.True(t, ok, "neither hits nor a message")

			code, _, body := getBody(t, aud, c.srv.URL+"/api/v1/search?"+url.Values{"q": {text}}.Encode())
			assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, code, "the API: hits, or 400 with the reason")
			for _, leak := range []string{"internal error", "SQL", "sqlite", "fts5", "syntax error", "tsquery"} {
				assert.False(t, strings.Contains(body, leak), "the API says %q", leak)
			}
		})
	}
}

// TestSearchBrowser: in headless chromium, search, click a hit, and the
// session page opens at that moment: the player is at the hit's offset
// (terminal), the event is marked and scrolled to (queries).
func TestSearchBrowser(t *testing.T) {
	c := newConsole(t)
	ix := recordSearchable(t, c)
	res, err := ix.Search(context.Background(), search.Query{Text: findShell})
	require.NoError(t, err)
	require.Len(t, res.Hits, 1)
	ctx := newBrowser(t)
	c.op.SignInAs(auditor, true)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions"),
		chromedp.WaitVisible(chromedp.CSS(`#q`)), chromedp.SendKeys(chromedp.CSS(`#q`), findShell),
		chromedp.Submit(chromedp.CSS(`#q`)), chromedp.WaitVisible(chromedp.CSS(`table.hits`))))
	mark, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`table.hits mark`)))
	require.NoError(t, err)
	assert.Equal(t, findShell, mark)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`table.hits td a`)),
		chromedp.WaitVisible(chromedp.CSS(`#player .ap-player`))))
	var at float64
	require.Eventually(t, func() bool {
		at, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`Promise.resolve(window.sallyportPlayer.getCurrentTime()).then(t => t || 0)`, chromedp.EvalAwaitPromise))
		return err == nil && math.Abs(at-res.Hits[0].Offset) < 0.5
	}, 15*time.Second, 100*time.Millisecond, "the player is at %.2f s, the hit at %.2f s", at, res.Hits[0].Offset)
	assert.Contains(t, waitForText(t, ctx, `#player`, findShell), findShell, "the screen at the hit shows the match")

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/sessions?q=payments_archive"),
		chromedp.WaitVisible(chromedp.CSS(`table.hits`)), chromedp.Click(chromedp.CSS(`table.hits td a`)),
		chromedp.WaitVisible(chromedp.CSS(`tr#hit`))))
	marked, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr.hit`)))
	require.NoError(t, err)
	assert.Contains(t, marked, findQuery, "the hit's event is the marked one")
	inView, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const r = document.getElementById("hit").getBoundingClientRect();
		return r.top >= 0 && r.bottom <= window.innerHeight })()`))
	require.NoError(t, err)
	assert.True(t, inView, "the page scrolled to the hit")
}
