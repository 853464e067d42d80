package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/web"
)

func getBody(t *testing.T, b *http.Client, u string) (int, http.Header, string) {
	resp, err := b.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

type sessionsAnswer struct {
	Sessions []struct {
		ID, Identity, Protocol string
		Breakglass             string `json:"breakglass_grant"`
	} `json:"sessions"`
	Total int    `json:"total"`
	Next  string `json:"next"`
	Prev  string `json:"prev"`
}

// TestSessionSearch: every search field narrows the list; pages hold 50,
// newest first, and the page links carry the search.
func TestSessionSearch(t *testing.T) {
	c := newConsole(t)
	base := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	for i := range 60 {
		require.NoError(t, c.store.PutSession(t.Context(), sqlstore.SessionRecord{ID: fmt.Sprintf("s-bulk-%02d", i), Identity: "svc-bulk",
			Owner: "carol@example.com", Target: "billing", Protocol: "mysql", Login: "app", State: "stored",
			StartedAt: base.Add(time.Duration(i) * time.Minute), EndedAt: base.Add(time.Duration(i)*time.Minute + time.Second)}))
	}
	require.NoError(t, c.store.PutSession(t.Context(), sqlstore.SessionRecord{ID: "s-bg", Identity: "bg-root", Owner: owner,
		Target: "web-01", Protocol: "ssh", Login: "root", BreakglassGrant: "bg-1", State: "stored", StartedAt: base, EndedAt: base.Add(time.Minute)}))
	aud, _, _ := c.signIn(auditor)
	for _, tc := range []struct {
		query     string
		wantTotal int
		wantFirst string
	}{
		{"", 65, "s-live"},
		{"identity=svc-bulk", 60, "s-bulk-59"},
		{"owner=carol@example.com&page=2", 60, "s-bulk-09"},
		{"target=web-01", 4, "s-live"},
		{"protocol=postgres", 1, "s-pg"},
		{"breakglass=1", 2, "s-grant"},
		{"from=" + time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339), 4, "s-live"},
		{"from=2h", 4, "s-live"}, // a duration back from now, as sessions search --since takes it
		{"to=" + base.Format(time.RFC3339) + "&identity=svc-bulk", 0, ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var a sessionsAnswer
			require.Equal(t, http.StatusOK, getJSON(t, aud, c.srv.URL+"/api/v1/sessions?"+tc.query, &a))
			assert.Equal(t, tc.wantTotal, a.Total)
			if tc.wantFirst != "" {
				require.NotEmpty(t, a.Sessions)
				assert.Equal(t, tc.wantFirst, a.Sessions[0].ID)
			}
			assert.LessOrEqual(t, len(a.Sessions), 50)
		})
	}
	var a sessionsAnswer
	require.Equal(t, http.StatusOK, getJSON(t, aud, c.srv.URL+"/api/v1/sessions?identity=svc-bulk", &a))
	assert.Contains(t, a.Next, "/api/v1/sessions?identity=svc-bulk")
	assert.Contains(t, a.Next, "page=2")
	_, _, page := getBody(t, aud, c.srv.URL+"/sessions?identity=svc-bulk")
	assert.Contains(t, page, `href="/sessions?identity=svc-bulk&amp;page=2"`, "the page links to the next page without JavaScript")
	code, _, _ := getBody(t, aud, c.srv.URL+"/api/v1/sessions?from=yesterday")
	assert.Equal(t, http.StatusBadRequest, code)
}

// TestRecordingDownloads: the cast is one asciicast v2 file streamed from
// the store; the JSON download has the session line and every event.
func TestRecordingDownloads(t *testing.T) {
	c := newConsole(t)
	aud, _, _ := c.signIn(auditor)
	code, h, body := getBody(t, aud, c.srv.URL+"/sessions/s-ssh/cast?download=1")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, h.Get("Content-Disposition"), `filename="s-ssh.cast"`)
	first, _, _ := strings.Cut(body, "\n")
	var header struct{ Version, Width, Height int }
	require.NoError(t, json.Unmarshal([]byte(first), &header))
	assert.Equal(t, 2, header.Version)
	assert.Contains(t, body, recordedText)

	code, _, body = getBody(t, aud, c.srv.URL+"/api/v1/sessions/s-pg/events")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"type":"session"`)
	assert.Contains(t, body, "SELECT name FROM customers")

	code, _, _ = getBody(t, aud, c.srv.URL+"/sessions/s-pg/cast")
	assert.Equal(t, http.StatusNotFound, code, "a database session has no terminal")
	code, _, _ = getBody(t, aud, c.srv.URL+"/sessions/nope/events")
	assert.Equal(t, http.StatusNotFound, code)
}

// TestSessionDetail: metadata, the integrity badge and the query timeline.
func TestSessionDetail(t *testing.T) {
	c := newConsole(t)
	aud, _, _ := c.signIn(auditor)
	var d struct {
		CertSerial  string `json:"cert_serial"`
		Entitlement struct{ Login string }
		Integrity   struct{ Status string }
		Timeline    []struct {
			Type, SQL string
			Params    []any
			Outcome   struct {
				Tag       string
				ErrorCode string `json:"error_code"`
			}
		}
	}
	require.Equal(t, http.StatusOK, getJSON(t, aud, c.srv.URL+"/api/v1/sessions/s-ssh", &d))
	assert.Equal(t, "4711", d.CertSerial)
	assert.Equal(t, "backup", d.Entitlement.Login)
	assert.Equal(t, "intact", d.Integrity.Status)
	require.Equal(t, http.StatusOK, getJSON(t, aud, c.srv.URL+"/api/v1/sessions/s-pg", &d))
	require.Len(t, d.Timeline, 11) // two queries, recordStatements' eight events and the end
	assert.Equal(t, []any{"42"}, d.Timeline[0].Params)
	assert.Equal(t, "SELECT 3", d.Timeline[0].Outcome.Tag)
	assert.Equal(t, "42501", d.Timeline[1].Outcome.ErrorCode)
	_, _, page := getBody(t, aud, c.srv.URL+"/sessions/s-ssh")
	assert.Contains(t, page, `<span class="badge intact" id="integrity">recording intact</span>`)
	assert.Contains(t, page, `data-cast="/sessions/s-ssh/cast"`)
	_, _, page = getBody(t, aud, c.srv.URL+"/sessions/s-pg")
	assert.Contains(t, page, "SELECT 3 (3 rows)")
}

// TestSessionStatements: the query timeline shows each statement of a
// multi-statement query with its outcome, a statement kept only in part
// with its length and SHA-256, and the statements of a transaction that
// rolled back marked so, all escaped.
func TestSessionStatements(t *testing.T) {
	c := newConsole(t)
	aud, _, _ := c.signIn(auditor)
	_, _, page := getBody(t, aud, c.srv.URL+"/sessions/s-pg")
	for _, want := range []string{
		"<div><code>insert into t values (777)</code> → INSERT 0 1 (1 rows), 12 bytes</div>",
		`<div><code>select * from forbidden where a &lt; 1</code> → <span class="err">42501 permission denied for table forbidden</span></div>`,
		`<div><code>delete from t</code> → <span class="err">not executed</span></div>`,
		`<code>insert into t values (1)</code>`,
		`INSERT 0 1 (1 rows) <small>in transaction</small> <span class="err">(rolled back)</span>`,
		`<span class="err">22012 division by zero</span> <small class="err">in failed transaction</small> <span class="err">(rolled back)</span>`,
		`ROLLBACK <span class="err">(rolled back)</span>`,
		`(first 100 of 1028 bytes; sha256 `,
		`<code>jobs</code>: <code>&lt;b&gt;42&lt;/b&gt;</code>`,
	} {
		assert.Contains(t, page, want)
	}
	assert.Equal(t, 4, strings.Count(page, "(rolled back)"), "the transaction's four statements, and no other")
}

// TestRegistryFlags: each risk the registry view flags.
func TestRegistryFlags(t *testing.T) {
	c := newConsole(t)
	own, _, _ := c.signIn(owner)
	var rows []struct {
		ID       string
		Flags    []string
		Findings []struct{ NHI, Kind string } `json:"hygiene"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, own, c.srv.URL+"/api/v1/identities", &rows))
	flags, findings := map[string][]string{}, map[string][]string{}
	for _, r := range rows {
		flags[r.ID] = r.Flags
		for _, f := range r.Findings {
			findings[r.ID] = append(findings[r.ID], f.NHI+" "+f.Kind)
		}
	}
	assert.Contains(t, findings["svc-orphan"], "NHI1 no_owner", "hygiene findings from the registry's report")
	assert.Empty(t, flags["svc-backup"])
	assert.Equal(t, []string{"expiring in 30 days"}, flags["svc-report"])
	assert.Equal(t, []string{"no owner", "not certified"}, flags["svc-orphan"])
	assert.Equal(t, []string{"owner inactive", "not certified"}, flags["svc-ghost"])
	_, _, page := getBody(t, own, c.srv.URL+"/registry")
	assert.Contains(t, page, `<span class="flag">owner inactive</span>`)
}

// TestOverview: live sessions, expiring certifications and the two charts
// drawn on the server.
func TestOverview(t *testing.T) {
	c := newConsole(t)
	aud, _, _ := c.signIn(auditor)
	code, _, page := getBody(t, aud, c.srv.URL+"/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, `<a href="/sessions/s-live">s-live</a>`)
	assert.Contains(t, page, "Certifications expiring within 30 days (1)")
	assert.Equal(t, 2, strings.Count(page, `<svg class="chart"`))
	// Legends name the series; each bar's title has its day and count
	// (the fixture's times are relative to now, so days may differ).
	for _, series := range []string{"ssh", "postgres", "not_certified", "source_not_allowed"} {
		assert.Contains(t, page, `class="legend">`+series+`</text>`)
	}
	assert.Contains(t, page, " source_not_allowed: 1</title>", "refusals by reason")
	assert.Contains(t, page, " postgres: 1</title>", "sessions by protocol")
}

// TestIntegrityBadge: a flipped byte in a stored chunk turns the badge red
// and names the chunk; the player is still offered for what can be read.
func TestIntegrityBadge(t *testing.T) {
	c := newConsole(t)
	var chunk string
	require.NoError(t, filepath.WalkDir(filepath.Join(c.dir, "recordings"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(p, "s-ssh") || !strings.HasSuffix(p, ".chunk") {
			return err
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(strings.SplitN(string(b), "\n", 2)[0], `"stream":"pty-`) {
			chunk = p
		}
		return nil
	}))
	require.NotEmpty(t, chunk, "the SSH session's terminal chunk in the file store")
	b, err := os.ReadFile(chunk)
	require.NoError(t, err)
	// One flipped bit in the (compressed) terminal data, wherever it is.
	b[len(b)-1] ^= 0x01
	require.NoError(t, os.WriteFile(chunk, b, 0o600))
	aud, _, _ := c.signIn(auditor)
	_, _, page := getBody(t, aud, c.srv.URL+"/sessions/s-ssh")
	assert.Contains(t, page, `<span class="badge tampered" id="integrity">recording tampered</span>`)
}

// TestIntegrityPending: a session that ended moments ago, its recording
// still on its way from the spool, is not reported tampered because the
// store lacks it yet.
func TestIntegrityPending(t *testing.T) {
	c := newConsole(t)
	ended := time.Now().Add(-time.Second)
	require.NoError(t, c.store.PutSession(context.Background(), sqlstore.SessionRecord{ID: "s-uploading", Identity: "svc-backup",
		Owner: owner, Target: "web-01", Protocol: "ssh", Login: "backup", State: "uploading",
		StartedAt: ended.Add(-time.Minute), EndedAt: ended}))
	aud, _, _ := c.signIn(auditor)
	_, _, page := getBody(t, aud, c.srv.URL+"/sessions/s-uploading")
	assert.Contains(t, page, `<span class="badge pending" id="integrity">recording pending</span>`)
	assert.NotContains(t, page, "tampered")
}

// gatedRecordings writes the first part of a cast, then waits for the
// test to have read it before writing the rest: a server that buffered the
// recording would deadlock.
type gatedRecordings struct {
	web.Recordings
	gate chan struct{}
}

func (g gatedRecordings) Cast(ctx context.Context, id string, started time.Time, w io.Writer) error {
	if _, err := io.WriteString(w, `{"version": 2, "width": 80, "height": 24}`+"\n"+strings.Repeat(`[0.1, "o", "x"]`+"\n", 20000)); err != nil {
		return err
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := io.WriteString(w, `[0.2, "o", "the end"]`+"\n")
	return err
}

// TestCastStreams: the cast reaches the browser while the store is still
// being read, so a recording of any size is never held whole by the server.
func TestCastStreams(t *testing.T) {
	c := newConsole(t)
	gate := make(chan struct{})
	c.ws.Recordings = gatedRecordings{Recordings: c.ws.Recordings, gate: gate}
	aud, _, _ := c.signIn(auditor)
	resp, err := aud.Get(c.srv.URL + "/sessions/s-ssh/cast")
	require.NoError(t, err)
	defer resp.Body.Close()
	first := make([]byte, 64)
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(t, err, "the first bytes arrive before the recording has been read to the end")
	assert.Contains(t, string(first), `"version": 2`)
	close(gate)
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(rest), "the end\"]\n"))
}
