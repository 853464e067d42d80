package mysql_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

func TestMariadbClientQuery(t *testing.T) {
	e := newEnv(t, envOptions{})
	out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "-D", targetName, "--ssl",
		"-e", "SELECT COUNT(*) FROM orders; SELECT CURRENT_USER()")
	require.NoError(t, err, "mariadb: %s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, "mariadb output: %q", out)
	assert.Equal(t, "1000", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "sp_"), "CURRENT_USER(): got %q, want the per-session user sp_…", lines[1])

	evs := e.events(t, e.lastSession(t))
	var sqls []string
	for _, ev := range evs {
		if ev.Type == recorder.EventQuery {
			sqls = append(sqls, ev.SQL)
		}
	}
	assert.Contains(t, sqls, "SELECT COUNT(*) FROM orders")
	e.waitNoUsers(t, 5e9)
}
