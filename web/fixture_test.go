package web_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/web"
	"github.com/sallyport/sallyport/web/oidctest"
)

// People of the test registry.
const (
	auditor  = "alice@example.com"
	admin    = "bob@example.com"
	owner    = "olivia@example.com"
	inactive = "ivan@example.com"
	nobody   = "mallory@example.com"
)

// recordedText is what the recorded SSH session printed.
const recordedText = "backup finished: 42 files"

// console is a console served over real HTTP with a real registry, session
// index and recordings, signed in through an oidctest.Provider.
type console struct {
	t     *testing.T
	op    *oidctest.Provider
	store *sqlstore.Store
	srv   *httptest.Server
	ws    *web.Server
	dir   string // data dir: registry, spool and the file store
}

func newConsole(t *testing.T) *console {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "sqlite", Path: filepath.Join(dir, "registry.db")})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	seedRegistry(t, store)
	seedRefusals(t, store)
	rstore, pub := recordSessions(t, dir, store)
	op := oidctest.New(t)
	reg := &iga.Registry{Store: store, Targets: func(name string) (iga.Target, bool) {
		return iga.Target{Name: name, Kind: "ssh"}, name == "web-01"
	}, Logger: quietLogger()}
	seedGovernance(t, reg)
	ws := &web.Server{Logger: quietLogger(), OIDC: web.OIDCConfig{Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.Secret},
		Directory: store, Sessions: store, Workflows: reg, Recordings: web.StoreRecordings{Store: rstore, Key: pub},
		Hygiene: func(ctx context.Context) ([]iga.Finding, error) { return reg.Hygiene(ctx, store, iga.HygieneOptions{}) }}
	srv := httptest.NewServer(ws.Handler())
	t.Cleanup(srv.Close)
	return &console{t: t, op: op, store: store, srv: srv, ws: ws, dir: dir}
}

func seedRegistry(t *testing.T, store *sqlstore.Store) {
	now := time.Now().UTC().Truncate(time.Second)
	err := store.Update(context.Background(), func(tx iga.Tx) error {
		for _, p := range []iga.Person{
			{ID: auditor, Name: "Alice", Roles: []string{"auditor"}, Status: iga.PersonActive},
			{ID: admin, Name: "Bob", Roles: []string{"admin"}, Status: iga.PersonActive},
			{ID: owner, Name: "Olivia", Roles: []string{"owner"}, Status: iga.PersonActive},
			{ID: inactive, Name: "Ivan", Roles: []string{"auditor", "admin"}, Status: iga.PersonInactive},
		} {
			if err := tx.PutPerson(context.Background(), p); err != nil {
				return err
			}
		}
		for _, id := range []iga.Identity{
			{ID: "svc-backup", Kind: iga.KindServiceAccount, State: iga.StateActive, Owner: owner,
				Entitlements: []iga.Entitlement{{Target: "web-01", Login: "backup", Actions: []iga.Action{iga.ActionShell}}}},
			{ID: "svc-report", Kind: iga.KindServiceAccount, State: iga.StateActive, Owner: owner},
			{ID: "svc-orphan", Kind: iga.KindWorkload, State: iga.StateActive},
			{ID: "svc-ghost", Kind: iga.KindWorkload, State: iga.StateActive, Owner: inactive},
			{ID: "bg-root", Kind: iga.KindBreakGlass, State: iga.StateActive, Owner: owner, Holders: []string{admin},
				Entitlements: []iga.Entitlement{{Target: "web-01", Login: "root", Actions: []iga.Action{iga.ActionShell}}}},
		} {
			if err := tx.PutIdentity(context.Background(), id); err != nil {
				return err
			}
		}
		if err := tx.AddCertification(context.Background(), "svc-backup", iga.Certification{Decision: iga.DecisionCertify, By: owner, At: now, Until: now.Add(80 * 24 * time.Hour)}); err != nil {
			return err
		}
		if err := tx.AddCertification(context.Background(), "bg-root", iga.Certification{Decision: iga.DecisionCertify, By: owner, At: now, Until: now.Add(80 * 24 * time.Hour)}); err != nil {
			return err
		}
		return tx.AddCertification(context.Background(), "svc-report", iga.Certification{Decision: iga.DecisionCertify, By: owner, At: now, Until: now.Add(10 * 24 * time.Hour)})
	})
	require.NoError(t, err)
}

// recordSessions records, with the real recorder, an SSH session that
// printed recordedText and a PostgreSQL session with two queries, and
// indexes both plus one live session.
func recordSessions(t *testing.T, dir string, store *sqlstore.Store) (recorder.Store, ed25519.PublicKey) {
	ctx := context.Background()
	cfg := recorder.Config{DataDir: dir, FailClosed: true}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	require.NoError(t, err)
	rstore, err := recorder.NewStore(cfg)
	require.NoError(t, err)
	rec := &recorder.Recorder{Config: cfg, Store: rstore, Key: key, OnState: func(c recorder.StateChange) {
		m := c.Meta
		require.NoError(t, store.PutSession(ctx, sqlstore.SessionRecord{ID: m.ID, Identity: m.Identity, Owner: m.Owner,
			Target: m.Target, Protocol: m.Protocol, Login: m.Login, BreakglassGrant: m.BreakglassGrant, State: string(c.State),
			Dir: c.Dir, StartedAt: m.StartedAt, EndedAt: c.EndedAt, Bytes: c.Bytes, Events: c.Events}))
	}}
	require.NoError(t, rec.Start(ctx))
	ssh, err := rec.Open(ctx, recorder.SessionMeta{ID: "s-ssh", Identity: "svc-backup", Owner: owner, Target: "web-01",
		Protocol: "ssh", Login: "backup", CertSerial: "4711", StartedAt: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	require.NoError(t, ssh.OpenTerminal(0, 80, 24, "xterm"))
	require.NoError(t, ssh.Output(0, []byte("$ ./backup.sh\r\n")))
	require.NoError(t, ssh.Output(0, []byte(recordedText+"\r\n")))
	status := 0
	require.NoError(t, ssh.Close(ctx, recorder.End{ExitStatus: &status}))
	pg, err := rec.Open(ctx, recorder.SessionMeta{ID: "s-pg", Identity: "svc-report", Owner: owner, Target: "analytics",
		Protocol: "postgres", Login: "reporting", StartedAt: time.Now().Add(-30 * time.Minute)})
	require.NoError(t, err)
	rows := int64(3)
	require.NoError(t, pg.Event(recorder.Event{Type: recorder.EventQuery, SQL: "SELECT name FROM customers WHERE id = $1", Params: []any{"42"}, Outcome: &recorder.Outcome{Tag: "SELECT 3", Rows: &rows}}))
	require.NoError(t, pg.Event(recorder.Event{Type: recorder.EventQuery, SQL: "DROP TABLE audit", Outcome: &recorder.Outcome{ErrorCode: "42501", Error: "permission denied"}}))
	recordStatements(t, pg)
	require.NoError(t, pg.Close(ctx, recorder.End{}))
	require.NoError(t, rec.Shutdown(ctx))
	require.NoError(t, store.PutSession(ctx, sqlstore.SessionRecord{ID: "s-live", Identity: "svc-backup", Owner: owner,
		Target: "web-01", Protocol: "ssh", Login: "backup", State: "live", StartedAt: time.Now().Add(-time.Minute)}))
	return rstore, key.Public().(ed25519.PublicKey)
}

// recordStatements adds to a database session a multi-statement query, a
// transaction that rolled back, a statement kept only in part and a
// notification.
func recordStatements(t *testing.T, s *recorder.Session) {
	one := int64(1)
	sql, cut := recorder.CutSQL("INSERT INTO docs VALUES ('"+strings.Repeat("x", 1000)+"')", 100)
	for _, ev := range []recorder.Event{
		{Type: recorder.EventQuery, SQL: "insert into t values (777); select * from forbidden where a < 1; delete from t", Tx: recorder.TxIdle,
			Outcomes: []recorder.Outcome{{SQL: "insert into t values (777)", Tag: "INSERT 0 1", Rows: &one, Bytes: 12},
				{SQL: "select * from forbidden where a < 1", ErrorCode: "42501", Error: "permission denied for table forbidden"},
				{SQL: "delete from t", NotExecuted: true}}},
		{Type: recorder.EventQuery, SQL: "begin", Tx: recorder.TxIn, Outcome: &recorder.Outcome{Tag: "BEGIN"}},
		{Type: recorder.EventQuery, SQL: "insert into t values (1)", Tx: recorder.TxIn, Outcome: &recorder.Outcome{Tag: "INSERT 0 1", Rows: &one}},
		{Type: recorder.EventQuery, SQL: "select 1/0", Tx: recorder.TxFailed, Outcome: &recorder.Outcome{ErrorCode: "22012", Error: "division by zero"}},
		{Type: recorder.EventQuery, SQL: "rollback", Tx: recorder.TxIdle, Outcome: &recorder.Outcome{Tag: "ROLLBACK"}},
		{Type: recorder.EventTransaction, Op: recorder.TxRollback, Statements: 4},
		{Type: recorder.EventQuery, SQL: sql, SQLCut: cut, Tx: recorder.TxIdle, Outcome: &recorder.Outcome{Tag: "INSERT 0 1", Rows: &one}},
		{Type: recorder.EventNotification, Notification: &recorder.Notification{Channel: "jobs", Payload: "<b>42</b>", PID: 7}},
	} {
		require.NoError(t, s.Event(ev))
	}
}

// browser is an HTTP client with a cookie jar, as a browser without
// JavaScript would be.
func (c *console) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(c.t, err)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// signIn walks the sign-in round trip as email and returns the client and
// the final response.
func (c *console) signIn(email string) (*http.Client, *http.Response, string) {
	c.op.SignInAs(email, true)
	b := c.browser()
	resp, err := b.Get(c.srv.URL + "/sessions")
	require.NoError(c.t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return b, resp, string(body)
}

// csrf reads the session's CSRF token as a script would.
func (c *console) csrf(b *http.Client) string {
	resp, err := b.Get(c.srv.URL + "/api/v1/me")
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&me))
	return me.CSRF
}

func (c *console) post(b *http.Client, path string, form url.Values) *http.Response {
	resp, err := b.Post(c.srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	require.NoError(c.t, err)
	resp.Body.Close()
	return resp
}

// seedGovernance opens and closes a break-glass grant (admin is the
// opener, so the review goes to the owner) and starts a campaign.
func seedGovernance(t *testing.T, reg *iga.Registry) {
	ctx := context.Background()
	g, err := reg.OpenGrant(ctx, iga.GrantRequest{Identity: "bg-root", Target: "web-01", By: admin, Reason: "disk full on web-01, paging", Ticket: "INC-7"})
	require.NoError(t, err)
	require.NoError(t, reg.Store.(*sqlstore.Store).PutSession(ctx, sqlstore.SessionRecord{ID: "s-grant", Identity: "bg-root", Owner: owner,
		Target: "web-01", Protocol: "ssh", Login: "root", BreakglassGrant: g.ID, State: "stored",
		StartedAt: time.Now().Add(-2 * time.Minute), EndedAt: time.Now().Add(-time.Minute)}))
	_, err = reg.CloseGrant(ctx, g.ID, admin)
	require.NoError(t, err)
	_, err = (&iga.Oversight{Registry: reg}).Sweep(ctx)
	require.NoError(t, err)
	_, err = reg.StartCampaign(ctx, iga.CampaignRequest{Name: "Q4 recertification", Scope: "owner:" + owner, Due: 14 * 24 * time.Hour, By: admin})
	require.NoError(t, err)
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// seedRefusals records refused admissions, as the proxies would.
func seedRefusals(t *testing.T, store *sqlstore.Store) {
	for i, code := range []string{iga.ReasonNotCertified, iga.ReasonNotCertified, iga.ReasonSourceNotAllowed} {
		require.NoError(t, store.RecordDecision(context.Background(), iga.AuditEvent{Time: time.Now().Add(-time.Duration(i) * 24 * time.Hour),
			Type: "decision", Actor: "sallyport", Identity: "svc-ghost", Target: "web-01", Action: iga.ActionShell,
			Reasons: []iga.Reason{{Code: code, Message: "refused"}}}))
	}
}
