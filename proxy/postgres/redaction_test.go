package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/proxy/internal/leaktest"
	"github.com/sallyport/sallyport/recorder"
)

// TestPasswordsAreNotRecorded sends passwords the ways a psql or pgx user
// would — ALTER/CREATE ROLE … PASSWORD, psql's \password, user mappings,
// servers, a connection string, bound parameters — and then finds none of
// them anywhere in the recorder's data directory (spool and store, chunks
// decompressed), the registry's directory or the bastion's log; the
// recording shows each statement with '[redacted]' in the password's place.
func TestPasswordsAreNotRecorded(t *testing.T) {
	var log leaktest.Log
	e := newEnv(t, envOptions{logger: log.Logger()})
	token := e.token(okIdentity)
	p := fmt.Sprintf("pw%d", time.Now().UnixNano())
	secret := func(name string) string { return p + "-" + name }

	script := strings.Join([]string{
		`\set ON_ERROR_STOP off`,
		`ALTER ROLE CURRENT_USER PASSWORD '` + secret("alter") + `';`,
		`CREATE ROLE sallyport_redaction_probe LOGIN PASSWORD '` + secret("create") + `';`,
		`ALTER ROLE CURRENT_USER WITH ENCRYPTED PASSWORD 'it''s ` + secret("quote") + ` -- PASSWORD';`,
		`ALTER ROLE CURRENT_USER PASSWORD $q$` + secret("dollar") + `$q$;`,
		`CREATE USER MAPPING FOR CURRENT_USER SERVER no_such_server OPTIONS (user 'u', password '` + secret("mapping") + `');`,
		`CREATE SERVER no_such FOREIGN DATA WRAPPER no_such_fdw OPTIONS (host 'h', password '` + secret("server") + `');`,
		`SELECT length('host=db password=` + secret("conninfo") + ` dbname=x');`,
		`ALTER ROLE CURRENT_USER PASSWORD '` + secret("syntax") + `' '` + secret("syntax") + `';`,
		`SELECT 'password' AS password;`,
		`\password`, secret("plain"), secret("plain"),
		`SELECT 'done';`,
	}, "\n") + "\n"
	out := psqlNoTTY(t, e, token, script)
	require.Contains(t, out, "done", "psql did not finish the script: %s", out)
	psqlSession := e.lastSession(t)

	conn := e.pgx(t, okIdentity, token)
	ctx := context.Background()
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM (SELECT 'a'::text AS password) t WHERE password = $1",
		secret("param")).Scan(&n))
	require.NoError(t, conn.QueryRow(ctx, "SELECT length($1::text)", "host=db password="+secret("bound-conninfo")).Scan(&n))
	require.NoError(t, conn.Close(ctx))
	pgxSession := e.lastSession(t)

	evs := append(e.events(t, psqlSession), e.events(t, pgxSession)...)
	t.Run("the statements are recorded redacted", func(t *testing.T) {
		for _, want := range []struct{ sql, tag, errorPart string }{
			{sql: "ALTER ROLE CURRENT_USER PASSWORD '[redacted]';", tag: "ALTER ROLE"},
			{sql: "CREATE ROLE sallyport_redaction_probe LOGIN PASSWORD '[redacted]';", errorPart: "permission denied"},
			{sql: "ALTER ROLE CURRENT_USER WITH ENCRYPTED PASSWORD '[redacted]';", tag: "ALTER ROLE"},
			{sql: "ALTER ROLE CURRENT_USER PASSWORD '[redacted]';", tag: "ALTER ROLE"},
			{sql: "CREATE USER MAPPING FOR CURRENT_USER SERVER no_such_server OPTIONS (user 'u', password '[redacted]');", errorPart: "no_such_server"},
			{sql: "CREATE SERVER no_such FOREIGN DATA WRAPPER no_such_fdw OPTIONS (host 'h', password '[redacted]');", errorPart: "no_such_fdw"},
			{sql: "SELECT length('host=db password=[redacted] dbname=x');", tag: "SELECT 1"},
			{sql: "ALTER ROLE CURRENT_USER PASSWORD '[redacted]' '[redacted]';", errorPart: `syntax error at or near "'[redacted]'"`},
			{sql: "SELECT count(*) FROM (SELECT 'a'::text AS password) t WHERE password = $1", tag: "SELECT 1"},
		} {
			ev := findEvent(evs, want.sql)
			if !assert.NotNil(t, ev, "got no event with sql %q", want.sql) {
				continue
			}
			assert.True(t, ev.Redacted, "got redacted false for %q, want true", want.sql)
			require.NotNil(t, ev.Outcome, "%q has no outcome", want.sql)
			if want.tag != "" {
				assert.Equal(t, want.tag, ev.Outcome.Tag, "got tag %q for %q, want %q", ev.Outcome.Tag, want.sql, want.tag)
			} else {
				assert.Contains(t, ev.Outcome.Error, want.errorPart, "error of %q", want.sql)
			}
		}
		ev := findEvent(evs, "SELECT count(*) FROM (SELECT 'a'::text AS password) t WHERE password = $1")
		require.NotNil(t, ev)
		assert.Equal(t, []any{"[redacted]"}, ev.Params, "got params %v, want the bound password redacted", ev.Params)
		ev = findEvent(evs, "SELECT length($1::text)")
		require.NotNil(t, ev)
		assert.Equal(t, []any{"host=db password=[redacted]"}, ev.Params, "got params %v", ev.Params)
		ev = findEvent(evs, "SELECT 'password' AS password;")
		require.NotNil(t, ev, "a statement that only names a password column is recorded as sent")
		assert.False(t, ev.Redacted, "got redacted true for a statement without a password")
	})
	t.Run("psql's \\password is recorded without its verifier", func(t *testing.T) {
		var found bool
		for _, ev := range evs {
			if strings.HasPrefix(ev.SQL, "ALTER USER ") && strings.HasSuffix(ev.SQL, " PASSWORD '[redacted]'") {
				found = true
				assert.True(t, ev.Redacted)
				require.NotNil(t, ev.Outcome)
				assert.Equal(t, "ALTER ROLE", ev.Outcome.Tag, "the password was changed on the server")
			}
		}
		assert.True(t, found, "got no ALTER USER … PASSWORD '[redacted]' event from \\password")
	})
	t.Run("no password anywhere in the data directory or the log", func(t *testing.T) {
		require.NoError(t, e.rec.WaitIdle(context.Background()))
		assert.Contains(t, string(log.Bytes()), "postgres session ended", "the log was captured")
		secrets := []string{"SCRAM-SHA-256$"} // what psql's \password sends
		for _, name := range []string{"alter", "create", "quote", "dollar", "mapping", "server", "conninfo", "syntax",
			"plain", "param", "bound-conninfo"} {
			secrets = append(secrets, secret(name))
		}
		leaks := leaktest.Leaks(t, []string{e.rec.Config.DataDir, filepath.Dir(e.regPath)}, log.Bytes(), secrets)
		assert.Empty(t, leaks, "passwords found")
	})
}

// psqlNoTTY runs a psql script through the bastion in a session of its
// own, so \password reads the new password from stdin, not a terminal.
func psqlNoTTY(t *testing.T, e *env, token, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, clientBinary(t, "psql"), "-X", "-At")
	cmd.Env = e.pgEnv(okIdentity, token, "require")
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "psql: %s", out.String())
	return out.String()
}

// findEvent is the first query event whose SQL is sql; nil when none.
func findEvent(evs []recorder.Event, sql string) *recorder.Event {
	for i := range evs {
		if evs[i].Type == recorder.EventQuery && evs[i].SQL == sql {
			return &evs[i]
		}
	}
	return nil
}
