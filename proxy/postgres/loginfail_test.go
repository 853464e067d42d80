package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy/internal/registrytest"
)

// credentialRefused is the one line every client hears whose token the
// registry did not accept.
const credentialRefused = "sallyport: access denied (credential_invalid): the token was not accepted for this user; check user=IDENTITY and that the token is current"

// TestFailedLoginsLookAlike: before a token is accepted, an unknown
// identity, a wrong token, an expired one and another identity's token
// get the very same answer, so names cannot be enumerated; each failed
// login is one audit event with the detailed reason, and no token.
func TestFailedLoginsLookAlike(t *testing.T) {
	e := newEnv(t, envOptions{})
	cases := []struct {
		name, identity, token, wantReason, wantMessage string
	}{
		{"unknown identity", "svc-nobody", e.token(okIdentity), iga.ReasonUnknownIdentity, `no identity named "svc-nobody"`},
		{"wrong token", okIdentity, "not-a-token", iga.ReasonCredentialInvalid, "neither a sallyport token nor a JWT"},
		{"expired token", okIdentity, e.expiredToken(t, okIdentity), iga.ReasonCredentialExpired, "expired at"},
		{"token of another identity", okIdentity, e.token("svc-other"), iga.ReasonCredentialInvalid, "issued for another identity"},
	}
	var psqlOut, pgxErr []string
	for _, tc := range cases {
		out, err := e.psql(t, tc.identity, tc.token, "require", "", "-c", "SELECT 1")
		require.Error(t, err, "%s: psql must fail: %s", tc.name, out)
		psqlOut = append(psqlOut, strings.ReplaceAll(out, tc.identity, "IDENTITY"))
		pgxErr = append(pgxErr, e.pgxRefusal(t, tc.identity, tc.token))
	}
	for i, tc := range cases {
		assert.Equal(t, psqlOut[0], psqlOut[i], "psql, %s: got a different answer than for %s", tc.name, cases[0].name)
		assert.Equal(t, "FATAL 28000 "+credentialRefused, pgxErr[i], "pgx, %s", tc.name)
	}
	assert.Contains(t, psqlOut[0], "FATAL:  "+credentialRefused)

	events := e.loginFailures(t, 2*len(cases))
	for i, tc := range cases {
		for _, ev := range events[2*i : 2*i+2] { // psql, then pgx
			assert.Equal(t, tc.identity, ev.Identity, tc.name)
			assert.Equal(t, targetName, ev.Target, tc.name)
			assert.Equal(t, "127.0.0.1", ev.Source, tc.name)
			require.Len(t, ev.Reasons, 1, tc.name)
			assert.Equal(t, tc.wantReason, ev.Reasons[0].Code, tc.name)
			assert.Contains(t, ev.Reasons[0].Message, tc.wantMessage, tc.name)
			assert.Contains(t, ev.Detail, "protocol postgres", tc.name)
			assert.Contains(t, ev.Detail, "password (token)", tc.name)
		}
	}
	e.assertNoTokens(t, cases[0].token, cases[2].token, cases[3].token)

	t.Run("an admitted identity's refusal stays detailed", func(t *testing.T) {
		id := failing()[iga.ReasonNotCertified].ID
		out, err := e.psql(t, id, e.token(id), "require", "", "-c", "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, out, "sallyport: access denied (not_certified): ", "psql output: %s", out)
	})
}

// TestMalformedStartupIsAudited: a startup that names no user or a name
// no registry entry can have is refused before the password, and audited
// with the name made safe to print.
func TestMalformedStartupIsAudited(t *testing.T) {
	e := newEnv(t, envOptions{})
	hostile := "svc\x1b[31m\nreport"
	for _, tc := range []struct {
		name   string
		params []string
		want   string
	}{
		{"no user", []string{"database", targetName}, "sallyport: no user: connect with user=IDENTITY dbname=TARGET"},
		{"control characters", []string{"user", hostile, "database", targetName}, "sallyport: invalid user: an identity name is at most 128 printable characters"},
		{"too long", []string{"user", strings.Repeat("a", 200), "database", targetName}, "sallyport: invalid user"},
		{"hostile dbname", []string{"user", okIdentity, "database", "x\ny"}, "sallyport: invalid dbname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := e.dialRaw(t)
			_, err := conn.Write(startupPacket(196608, tc.params...))
			require.NoError(t, err)
			got, err := io.ReadAll(conn)
			require.NoError(t, err)
			assert.Contains(t, string(got), tc.want)
		})
	}
	events := e.loginFailures(t, 4)
	find := func(what string, match func(iga.AuditEvent) bool) iga.AuditEvent {
		return registrytest.FindAudit(t, events, what, match)
	}
	noUser := find("without a user", func(ev iga.AuditEvent) bool { return ev.Identity == "" })
	assert.Equal(t, iga.ReasonUnknownIdentity, noUser.Reasons[0].Code)
	quoted := find("with the hostile name kept quoted", func(ev iga.AuditEvent) bool { return ev.Identity == `"svc\x1b[31m\nreport"` })
	assert.Equal(t, iga.ReasonUnknownIdentity, quoted.Reasons[0].Code)
	find("with the long name clipped to 128 bytes, quoted", func(ev iga.AuditEvent) bool { return len(ev.Identity) == 130 })
	hostileDB := find("naming the hostile database quoted", func(ev iga.AuditEvent) bool { return ev.Target == `"x\ny"` })
	assert.Equal(t, iga.ReasonUnknownTarget, hostileDB.Reasons[0].Code)
}

// pgxRefusal connects with pgx and returns the server's refusal as
// "SEVERITY CODE message".
func (e *env) pgxRefusal(t *testing.T, identity, token string) string {
	t.Helper()
	cfg, err := pgconn.ParseConfig("host=127.0.0.1 sslmode=require")
	require.NoError(t, err)
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = "127.0.0.1", uint16(e.addr.Port), identity, token, targetName
	cfg.Fallbacks = nil
	conn, err := pgconn.ConnectConfig(context.Background(), cfg)
	if err == nil {
		conn.Close(context.Background())
		t.Fatalf("pgx login as %s: got a connection, want a refusal", identity)
	}
	var pe *pgconn.PgError
	require.True(t, errors.As(err, &pe), "got %v, want a server error", err)
	return pe.Severity + " " + pe.Code + " " + pe.Message
}

// loginFailures waits for n login_failed audit events and returns them.
func (e *env) loginFailures(t *testing.T, n int) []iga.AuditEvent {
	t.Helper()
	var events []iga.AuditEvent
	require.Eventually(t, func() bool {
		var err error
		events, err = e.store.Audit(context.Background(), iga.AuditFilter{Type: "login_failed"})
		require.NoError(t, err)
		return len(events) >= n
	}, 5*time.Second, 20*time.Millisecond, "want %d failed logins in the audit trail", n)
	require.Len(t, events, n, "one audit event per failed login")
	return events
}

// assertNoTokens checks that no audit event holds any of the tokens.
func (e *env) assertNoTokens(t *testing.T, tokens ...string) {
	t.Helper()
	all, err := e.store.Audit(context.Background(), iga.AuditFilter{})
	require.NoError(t, err)
	b, err := json.Marshal(all)
	require.NoError(t, err)
	for _, tok := range tokens {
		require.NotEmpty(t, tok)
		assert.NotContains(t, string(b), tok, "a token reached the audit trail")
	}
}
