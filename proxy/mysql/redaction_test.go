package mysql_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/proxy/internal/leaktest"
	"github.com/sallyport/sallyport/recorder"
)

// TestPasswordsAreNotRecorded sends passwords the ways a mariadb or
// go-sql-driver user would — SET PASSWORD, IDENTIFIED BY/VIA, GRANT …
// IDENTIFIED BY, CHANGE MASTER … MASTER_PASSWORD, a bound parameter — and
// then finds none of them anywhere in the recorder's data directory
// (spool and store, chunks decompressed), the registry's directory or the
// bastion's log; the recording shows each statement with '[redacted]' in
// the password's place.
func TestPasswordsAreNotRecorded(t *testing.T) {
	var log leaktest.Log
	e := newEnv(t, envOptions{logger: log.Logger()})
	token := e.token(okIdentity)
	p := fmt.Sprintf("pw%d", time.Now().UnixNano())
	secret := func(name string) string { return p + "-" + name }

	script := strings.Join([]string{
		`SET PASSWORD = PASSWORD('` + secret("set") + `');`,
		`SET PASSWORD FOR 'nobody'@'%' = '` + secret("set-for") + `';`,
		`ALTER USER CURRENT_USER() IDENTIFIED BY '` + secret("alter") + `';`,
		`CREATE USER 'probe'@'%' IDENTIFIED BY 'it''s ` + secret("create") + ` \' -- IDENTIFIED';`,
		`CREATE USER 'probe'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD("` + secret("via") + `");`,
		`GRANT SELECT ON *.* TO 'probe'@'%' IDENTIFIED BY '` + secret("grant") + `';`,
		`CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='` + secret("master") + `';`,
		`CREATE USERR probe IDENTIFIED BY '` + secret("syntax") + `';`,
		`SELECT 'password' AS password;`,
		`SELECT 'done';`,
	}, "\n") + "\n"
	out, err := e.mariadb(t, okIdentity, token, script, "-D", targetName, "--ssl", "--force")
	require.Contains(t, out, "done", "mariadb did not finish the script (%v): %s", err, out)
	clientSession := e.lastSession(t)

	db := e.db(t, okIdentity, token)
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM (SELECT 'a' AS password) t WHERE password = ?", secret("param")).Scan(&n))
	require.NoError(t, db.Close())
	driverSession := e.lastSession(t)

	evs := append(e.events(t, clientSession), e.events(t, driverSession)...)
	t.Run("the statements are recorded redacted", func(t *testing.T) {
		for _, want := range []struct{ sql, tag, errorPart string }{
			{sql: "SET PASSWORD = PASSWORD('[redacted]')", tag: "OK"},
			{sql: "SET PASSWORD FOR 'nobody'@'%' = '[redacted]'"},
			{sql: "ALTER USER CURRENT_USER() IDENTIFIED BY '[redacted]'"},
			{sql: "CREATE USER 'probe'@'%' IDENTIFIED BY '[redacted]'"},
			{sql: "CREATE USER 'probe'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('[redacted]')"},
			{sql: "GRANT SELECT ON *.* TO 'probe'@'%' IDENTIFIED BY '[redacted]'"},
			{sql: "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='[redacted]'"},
			{sql: "CREATE USERR probe IDENTIFIED BY '[redacted]'", errorPart: "near 'USERR probe IDENTIFIED BY '[redacted]''"},
			{sql: "SELECT COUNT(*) FROM (SELECT 'a' AS password) t WHERE password = ?", tag: "ROWS"},
		} {
			ev := findEvent(evs, want.sql)
			if !assert.NotNil(t, ev, "got no event with sql %q", want.sql) {
				continue
			}
			assert.True(t, ev.Redacted, "got redacted false for %q, want true", want.sql)
			require.NotNil(t, ev.Outcome, "%q has no outcome", want.sql)
			if want.tag != "" {
				assert.Equal(t, want.tag, ev.Outcome.Tag, "got tag %q (error %q) for %q, want %q", ev.Outcome.Tag, ev.Outcome.Error, want.sql, want.tag)
			}
			assert.Contains(t, ev.Outcome.Error, want.errorPart, "error of %q", want.sql)
		}
		ev := findEvent(evs, "SELECT COUNT(*) FROM (SELECT 'a' AS password) t WHERE password = ?")
		require.NotNil(t, ev)
		assert.Equal(t, []any{"[redacted]"}, ev.Params, "got params %v, want the bound password redacted", ev.Params)
		ev = findEvent(evs, "SELECT 'password' AS password")
		require.NotNil(t, ev, "a statement that only names a password column is recorded as sent")
		assert.False(t, ev.Redacted, "got redacted true for a statement without a password")
	})
	t.Run("no password anywhere in the data directory or the log", func(t *testing.T) {
		require.NoError(t, e.rec.WaitIdle(context.Background()))
		assert.Contains(t, string(log.Bytes()), "mysql session ended", "the log was captured")
		var secrets []string
		for _, name := range []string{"set", "set-for", "alter", "create", "via", "grant", "master", "syntax", "param"} {
			secrets = append(secrets, secret(name))
		}
		leaks := leaktest.Leaks(t, []string{e.rec.Config.DataDir, filepath.Dir(e.regPath)}, log.Bytes(), secrets)
		assert.Empty(t, leaks, "passwords found")
	})
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
