package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestRefusalsShowTheirCode runs psql for every refusal reason reachable
// over PostgreSQL and checks that psql's error carries the code.
func TestRefusalsShowTheirCode(t *testing.T) {
	e := newEnv(t, envOptions{})
	type login struct{ identity, token, dbname string }
	cases := map[string]login{
		// unknown_identity and credential_expired read credential_invalid
		// before a token is accepted (TestFailedLoginsLookAlike).
		iga.ReasonCredentialInvalid: {identity: okIdentity, token: "not-a-token"},
		iga.ReasonUnknownTarget:     {identity: okIdentity, token: e.token(okIdentity), dbname: "nosuch"},
	}
	for code, id := range failing() {
		cases[code] = login{identity: id.ID, token: e.token(id.ID)}
	}
	for code, l := range cases {
		t.Run(code, func(t *testing.T) {
			args := []string{"-c", "SELECT 1"}
			if l.dbname != "" {
				args = append(args, "-d", l.dbname)
			}
			out, err := e.psql(t, l.identity, l.token, "require", "", args...)
			require.Error(t, err, "psql must fail: %s", out)
			assert.Contains(t, out, "FATAL:  sallyport: access denied (", "psql output: %s", out)
			assert.Contains(t, out, code, "got %q, want the reason code %s", out, code)
			assert.NotContains(t, out, l.token, "the token must not be echoed")
		})
	}
	t.Run(iga.ReasonRecordingUnavailable, func(t *testing.T) {
		e.opened.fail.Store(true)
		defer e.opened.fail.Store(false)
		out, err := e.psql(t, okIdentity, e.token(okIdentity), "require", "", "-c", "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, out, "access denied (recording_unavailable)", "psql output: %s", out)
	})
	t.Run("TLS required", func(t *testing.T) {
		out, err := e.psql(t, okIdentity, e.token(okIdentity), "disable", "", "-c", "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, out, "TLS required: connect with sslmode=require", "psql output: %s", out)
	})
	t.Run("no role is left behind", func(t *testing.T) {
		e.waitNoRoles(t, 5*time.Second) // refused by the registry: none minted; recording failed: minted and dropped
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
