package mysql_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy/internal/registrytest"
)

// credentialRefused is the one line every client hears whose token the
// registry did not accept.
const credentialRefused = "sallyport: access denied (credential_invalid): the token was not accepted for this user; check -u IDENTITY and that the token is current"

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
	var clientOut, driverErr []string
	for _, tc := range cases {
		out, err := e.mariadb(t, tc.identity, tc.token, "", "-D", targetName, "--ssl", "-e", "SELECT 1")
		require.Error(t, err, "%s: mariadb must fail: %s", tc.name, out)
		clientOut = append(clientOut, out)
		driverErr = append(driverErr, e.driverRefusal(t, tc.identity, tc.token))
	}
	for i, tc := range cases {
		assert.Equal(t, clientOut[0], clientOut[i], "mariadb, %s: got a different answer than for %s", tc.name, cases[0].name)
		assert.Equal(t, "1045 28000 "+credentialRefused, driverErr[i], "go-sql-driver, %s", tc.name)
	}
	assert.Equal(t, "ERROR 1045 (28000): "+credentialRefused+"\n", clientOut[0])

	events := e.loginFailures(t, 2*len(cases))
	for i, tc := range cases {
		for _, ev := range events[2*i : 2*i+2] { // mariadb, then go-sql-driver
			assert.Equal(t, tc.identity, ev.Identity, tc.name)
			assert.Equal(t, targetName, ev.Target, tc.name)
			assert.Equal(t, "127.0.0.1", ev.Source, tc.name)
			require.Len(t, ev.Reasons, 1, tc.name)
			assert.Equal(t, tc.wantReason, ev.Reasons[0].Code, tc.name)
			assert.Contains(t, ev.Reasons[0].Message, tc.wantMessage, tc.name)
			assert.Contains(t, ev.Detail, "protocol mysql", tc.name)
			assert.Contains(t, ev.Detail, "password (token)", tc.name)
		}
	}
	e.assertNoTokens(t, cases[0].token, cases[2].token, cases[3].token)

	t.Run("an admitted identity's refusal stays detailed", func(t *testing.T) {
		id := failing()[iga.ReasonNotCertified].ID
		out, err := e.mariadb(t, id, e.token(id), "", "-D", targetName, "--ssl", "-e", "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, out, "sallyport: access denied (not_certified): ", "mariadb output: %s", out)
	})
}

// TestLiveSessionsAreNotDisclosed: a login without a database goes where
// the identity's live session is, but only once its token is accepted; a
// client without one cannot tell an identity with a live session from one
// without.
func TestLiveSessionsAreNotDisclosed(t *testing.T) {
	e := newEnv(t, envOptions{})
	live, err := e.db(t, okIdentity, e.token(okIdentity)).Conn(context.Background())
	require.NoError(t, err)
	defer live.Close()
	busy, err := e.mariadb(t, okIdentity, "not-a-token", "", "--ssl", "-e", "SELECT 1")
	require.Error(t, err)
	idle, err := e.mariadb(t, "svc-other", "not-a-token", "", "--ssl", "-e", "SELECT 1")
	require.Error(t, err)
	assert.Equal(t, "ERROR 1045 (28000): "+credentialRefused+"\n", busy, "identity with a live session")
	assert.Equal(t, busy, idle, "identity without one")
	out, err := e.mariadb(t, "svc-other", e.token("svc-other"), "", "--ssl", "-e", "SELECT 1")
	require.Error(t, err)
	assert.Contains(t, out, "sallyport: no database: connect with -u IDENTITY -D TARGET", "with a valid token, the client is told")
	out, err = e.mariadb(t, okIdentity, e.token(okIdentity), "", "--ssl", "-e", "SELECT DATABASE()")
	require.NoError(t, err, out)
	assert.Equal(t, targetName+"\n", out, "a valid token without a database goes to the live session's target")
	e.loginFailures(t, 2)
}

// TestMalformedLoginIsAudited: a login that names no user or a name no
// registry entry can have is refused before the token, and audited with
// the name made safe to print.
func TestMalformedLoginIsAudited(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct{ name, user, database, want string }{
		{"no user", "", targetName, "sallyport: no user: connect with -u IDENTITY -D TARGET"},
		{"control characters", "svc\x1b[31m\nreport", targetName, "sallyport: invalid user: an identity name is at most 128 printable characters"},
		{"too long", strings.Repeat("a", 200), targetName, "sallyport: invalid user"},
		{"hostile database", okIdentity, "x\ny", "sallyport: invalid database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.raw(t)
			_, p := c.sendLogin(tc.user, tc.database, "tok")
			require.Equal(t, byte(0xff), p[0], "got %q, want ERR", p)
			assert.Equal(t, uint16(1045), binary.LittleEndian.Uint16(p[1:]))
			assert.Contains(t, string(p), tc.want)
		})
	}
	events := e.loginFailures(t, 4)
	find := func(what string, match func(iga.AuditEvent) bool) iga.AuditEvent {
		return registrytest.FindAudit(t, events, what, match)
	}
	noUser := find("without a user", func(ev iga.AuditEvent) bool { return ev.Identity == "" })
	assert.Equal(t, iga.ReasonUnknownIdentity, noUser.Reasons[0].Code)
	find("with the hostile name kept quoted", func(ev iga.AuditEvent) bool { return ev.Identity == `"svc\x1b[31m\nreport"` })
	find("with the long name clipped to 128 bytes, quoted", func(ev iga.AuditEvent) bool { return len(ev.Identity) == 130 })
	hostileDB := find("naming the hostile database quoted", func(ev iga.AuditEvent) bool { return ev.Target == `"x\ny"` })
	assert.Equal(t, iga.ReasonUnknownTarget, hostileDB.Reasons[0].Code)
}

// sendLogin sends a HandshakeResponse41 in clear and returns the answer.
func (c *rawClient) sendLogin(user, database, token string) (byte, []byte) {
	const caps = 1<<9 | 1<<15 | 1<<19 | 1<<3 | 1<<21
	b := binary.LittleEndian.AppendUint32(nil, caps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, 45)
	b = append(b, make([]byte, 23)...)
	b = append(append(b, user...), 0)
	b = append(append(b, byte(len(token))), token...)
	b = append(append(b, database...), 0)
	b = append(b, "mysql_clear_password\x00"...)
	c.write(1, b)
	return c.read()
}

// driverRefusal logs in with go-sql-driver and returns the refusal as
// "number SQLSTATE message".
func (e *env) driverRefusal(t *testing.T, identity, token string) string {
	t.Helper()
	err := e.db(t, identity, token).Ping()
	require.Error(t, err, "go-sql-driver login as %s", identity)
	var me *gomysql.MySQLError
	require.True(t, errors.As(err, &me), "got %v, want a server error", err)
	return fmt.Sprintf("%d %s %s", me.Number, string(me.SQLState[:]), me.Message)
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
