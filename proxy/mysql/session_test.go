package mysql_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// queries are the query events of a recording, in order.
func queries(evs []recorder.Event) []recorder.Event {
	var out []recorder.Event
	for _, ev := range evs {
		if ev.Type == recorder.EventQuery {
			out = append(out, ev)
		}
	}
	return out
}

// bySQL is the first query event whose SQL is sql.
func bySQL(t testing.TB, evs []recorder.Event, sql string) recorder.Event {
	t.Helper()
	for _, ev := range evs {
		if ev.Type == recorder.EventQuery && ev.SQL == sql {
			return ev
		}
	}
	require.Failf(t, "statement not recorded", "no query event with SQL %q in %d events", sql, len(evs))
	return recorder.Event{}
}

func rows(ev recorder.Event) int64 {
	if ev.Outcome == nil || ev.Outcome.Rows == nil {
		return -1
	}
	return *ev.Outcome.Rows
}

func TestMariadbClient(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    []string // output lines
		records map[string]string
	}{
		{
			name: "-e with --ssl", args: []string{"-D", targetName, "--ssl", "-e", "SELECT COUNT(*) FROM orders"},
			want: []string{"1000"}, records: map[string]string{"SELECT COUNT(*) FROM orders": "ROWS 1"},
		},
		{
			name: "user IDENTITY@TARGET", args: []string{"--ssl", "-e", "SELECT DATABASE()"}, want: []string{targetName},
		},
		{
			name: "script with USE and several statements per line",
			args: []string{"-D", targetName, "--ssl"},
			stdin: "USE " + targetName + ";\nINSERT INTO imports (id, note) VALUES (1, 'a'), (2, 'b');\n" +
				"SELECT COUNT(*) FROM imports; DELETE FROM imports;\nSELECT 'done';\n",
			want: []string{"2", "done"},
			records: map[string]string{
				"INSERT INTO imports (id, note) VALUES (1, 'a'), (2, 'b')": "OK 2",
				"DELETE FROM imports":      "OK 2",
				"USE `" + targetName + "`": "OK 0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := okIdentity
			if tt.name == "user IDENTITY@TARGET" {
				user = okIdentity + "@" + targetName
			}
			out, err := e.mariadb(t, user, e.token(okIdentity), tt.stdin, tt.args...)
			require.NoError(t, err, "mariadb: %s", out)
			assert.Equal(t, tt.want, strings.Split(strings.TrimSpace(out), "\n"), "mariadb output")
			evs := e.events(t, e.lastSession(t))
			for sql, want := range tt.records {
				ev := bySQL(t, evs, sql)
				require.NotNil(t, ev.Outcome, "outcome of %q", sql)
				got := fmt.Sprintf("%s %d", ev.Outcome.Tag, rows(ev))
				assert.Equal(t, want, got, "outcome of %q: got %s, want %s", sql, got, want)
			}
		})
	}
	e.waitNoUsers(t, 5*time.Second)
}

// TestOnlyEntitledPrivileges checks what the per-session user may do, and
// that refused statements are recorded with their error code.
func TestOnlyEntitledPrivileges(t *testing.T) {
	e := newEnv(t, envOptions{})
	out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "-D", targetName, "--ssl", "-e", "SELECT * FROM payroll")
	require.Error(t, err, "reading payroll must fail: %s", out)
	assert.Contains(t, out, "ERROR 1142", "mariadb output: %s", out)
	ev := bySQL(t, e.events(t, e.lastSession(t)), "SELECT * FROM payroll")
	require.NotNil(t, ev.Outcome)
	assert.Equal(t, "1142", ev.Outcome.ErrorCode, "recorded error code")
	assert.Contains(t, ev.Outcome.Error, "denied")

	for _, sql := range []string{"CREATE USER 'x'@'%'", "DROP TABLE orders", "SET ROLE NONE; SELECT * FROM payroll"} {
		out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "-D", targetName, "--ssl", "-e", sql)
		assert.Error(t, err, "%s: got %q, want a refusal", sql, out)
	}
}

// TestSessionUserLifetime: the per-session user exists while the session
// runs, is the login the target sees, and is gone right after.
func TestSessionUserLifetime(t *testing.T) {
	e := newEnv(t, envOptions{})
	db := e.db(t, okIdentity, e.token(okIdentity))
	conn, err := db.Conn(context.Background())
	require.NoError(t, err)
	var user string
	require.NoError(t, conn.QueryRowContext(context.Background(), "SELECT CURRENT_USER()").Scan(&user))
	id := e.lastSession(t)
	assert.Equal(t, "sp_"+id+"@127.0.0.1", user, "the target sees the per-session user")
	assert.Equal(t, 1, e.userCount(t), "one per-session user during the session")
	require.NoError(t, conn.Close())
	require.NoError(t, db.Close())
	e.waitNoUsers(t, 5*time.Second)
}

// TestLargeResult relays 10 MB of rows and a row split over several 16 MB
// packets, in both directions.
func TestLargeResult(t *testing.T) {
	e := newEnv(t, envOptions{})
	require.NoError(t, e.target.MariaDB.Exec(context.Background(), "", "SET GLOBAL max_allowed_packet = 64*1024*1024"))
	db := e.db(t, okIdentity, e.token(okIdentity))
	ctx := context.Background()
	var total int64
	rs, err := db.QueryContext(ctx, "SELECT id, REPEAT('x', 10240) FROM orders")
	require.NoError(t, err)
	for rs.Next() {
		var id int
		var s string
		require.NoError(t, rs.Scan(&id, &s))
		total += int64(len(s))
	}
	require.NoError(t, rs.Err())
	assert.Equal(t, int64(10240*1000), total, "got %d bytes of rows, want 10 MB", total)

	big := strings.Repeat("y", 17<<20)
	_, err = db.ExecContext(ctx, "INSERT INTO imports (id, raw) VALUES (?, ?)", 7, []byte(big))
	require.NoError(t, err, "a 17 MB parameter is split over two packets")
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT LENGTH(raw) FROM imports WHERE id = 7").Scan(&n))
	assert.Equal(t, len(big), n)
	var back string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT raw FROM imports WHERE id = 7").Scan(&back))
	assert.Equal(t, len(big), len(back), "a 17 MB row comes back whole")
	_, err = db.ExecContext(ctx, "DELETE FROM imports")
	require.NoError(t, err)
	db.Close()
	evs := e.events(t, e.lastSession(t))
	assert.Equal(t, int64(1000), rows(bySQL(t, evs, "SELECT id, REPEAT('x', 10240) FROM orders")))
	assert.Equal(t, int64(1), rows(bySQL(t, evs, "SELECT raw FROM imports WHERE id = 7")))
	// go-sql-driver sends a parameter this large with COM_STMT_SEND_LONG_DATA;
	// the recording keeps its size, SHA-256 and first max_statement_bytes.
	ins := bySQL(t, evs, "INSERT INTO imports (id, raw) VALUES (?, ?)")
	require.Len(t, ins.Params, 2)
	assert.Equal(t, float64(7), ins.Params[0])
	long, ok := ins.Params[1].(map[string]any)
	require.True(t, ok, "got %T, want the long value's summary", ins.Params[1])
	sum := sha256.Sum256([]byte(big))
	assert.Equal(t, strconv.Itoa(len(big)), long["bytes"])
	assert.Equal(t, hex.EncodeToString(sum[:]), long["sha256"], "the hash of the whole value")
	assert.True(t, long["prefix"] == strings.Repeat("y", recorder.DefaultMaxStatementBytes), "the first max_statement_bytes")
}
