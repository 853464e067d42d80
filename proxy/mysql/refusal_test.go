package mysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestRefusalsShowTheirCode runs the mariadb client for every refusal
// reason reachable over MySQL and checks that its error carries the code.
func TestRefusalsShowTheirCode(t *testing.T) {
	e := newEnv(t, envOptions{})
	type login struct{ identity, token, database string }
	cases := map[string]login{
		// unknown_identity and credential_expired read credential_invalid
		// before a token is accepted (TestFailedLoginsLookAlike).
		iga.ReasonCredentialInvalid: {identity: okIdentity, token: "not-a-token"},
		iga.ReasonUnknownTarget:     {identity: okIdentity, token: e.token(okIdentity), database: "nosuch"},
	}
	for code, id := range failing() {
		cases[code] = login{identity: id.ID, token: e.token(id.ID)}
	}
	for code, l := range cases {
		t.Run(code, func(t *testing.T) {
			db := targetName
			if l.database != "" {
				db = l.database
			}
			out, err := e.mariadb(t, l.identity, l.token, "", "-D", db, "--ssl", "-e", "SELECT 1")
			require.Error(t, err, "mariadb must fail: %s", out)
			assert.Contains(t, out, "ERROR 1045 (28000): sallyport: access denied (", "mariadb output: %s", out)
			assert.Contains(t, out, code, "got %q, want the reason code %s", out, code)
			assert.NotContains(t, out, l.token, "the token must not be echoed")
		})
	}
	t.Run(iga.ReasonRecordingUnavailable, func(t *testing.T) {
		e.opened.fail.Store(true)
		defer e.opened.fail.Store(false)
		out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "-D", targetName, "--ssl", "-e", "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, out, "access denied (recording_unavailable)", "mariadb output: %s", out)
	})
	t.Run("TLS required", func(t *testing.T) {
		out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "-D", targetName, "--skip-ssl", "-e", "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, out, "TLS required: connect with --ssl", "mariadb output: %s", out)
	})
	t.Run("no database", func(t *testing.T) {
		out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "--ssl", "-e", "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, out, "no database: connect with -u IDENTITY -D TARGET", "mariadb output: %s", out)
	})
	t.Run("go-sql-driver without cleartext passwords", func(t *testing.T) {
		cfg := e.driverConfig(okIdentity, e.token(okIdentity))
		cfg.AllowCleartextPasswords = false
		db := e.dbWith(t, cfg)
		err := db.Ping()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "requires clear text authentication", "go-sql-driver must refuse to send the token unless allowed")
	})
	t.Run("no user is left behind", func(t *testing.T) {
		assert.Equal(t, 0, e.userCount(t), "refused logins must not mint users")
	})
}

// expiredToken mints a token that expired an hour ago, with a registry
// whose clock is two hours behind.
func (e *env) expiredToken(t testing.TB, identity string) string {
	past := *e.reg
	past.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	tok, err := past.IssueToken(context.Background(), identity, "test", time.Hour)
	require.NoError(t, err)
	return tok
}
