package postgres_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

func TestPsql(t *testing.T) {
	e := newEnv(t, envOptions{plaintext: true})
	token := e.token(okIdentity)
	script := filepath.Join(t.TempDir(), "report.sql")
	require.NoError(t, os.WriteFile(script, []byte("SELECT count(*) FROM orders WHERE amount > 50;\nSELECT max(id) FROM orders;\n"), 0o600))
	csvIn := filepath.Join(t.TempDir(), "in.csv")
	require.NoError(t, os.WriteFile(csvIn, []byte("1,first\n2,second\n3,third\n"), 0o600))
	csvOut := filepath.Join(t.TempDir(), "out.csv")

	for _, tc := range []struct {
		name, sslmode, stdin string
		args                 []string
		want                 string
		wantSQL              []string
	}{
		{name: "command over TLS", sslmode: "require", args: []string{"-c", "SELECT count(*) FROM orders"},
			want: "1000\n", wantSQL: []string{"SELECT count(*) FROM orders"}},
		{name: "command without TLS", sslmode: "disable", args: []string{"-c", "SELECT current_user LIKE 'sp\\_%'"},
			want: "t\n", wantSQL: []string{"SELECT current_user LIKE 'sp\\_%'"}},
		{name: "file", sslmode: "require", args: []string{"-f", script}, want: "499\n1000\n",
			wantSQL: []string{"SELECT count(*) FROM orders WHERE amount > 50;", "SELECT max(id) FROM orders;"}},
		{name: "scripted stdin", sslmode: "require", stdin: "SELECT 6 * 7;\n\\echo done\nSELECT 'bye';\n",
			want: "42\ndone\nbye\n", wantSQL: []string{"SELECT 6 * 7;", "SELECT 'bye';"}},
		{name: "copy in", sslmode: "require", args: []string{"-c", "\\copy imports FROM '" + csvIn + "' WITH (FORMAT csv)"},
			want: "COPY 3\n", wantSQL: []string{"COPY  imports FROM STDIN WITH (FORMAT csv)"}},
		{name: "copy out", sslmode: "require", args: []string{"-c", "\\copy (SELECT id, customer FROM orders WHERE id <= 2) TO '" + csvOut + "' WITH (FORMAT csv)"},
			want: "COPY 2\n", wantSQL: []string{"COPY  ( SELECT id, customer FROM orders WHERE id <= 2 ) TO STDOUT WITH (FORMAT csv)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.psql(t, okIdentity, token, tc.sslmode, tc.stdin, tc.args...)
			require.NoError(t, err, "psql: %s", out)
			assert.Equal(t, tc.want, out, "got psql output %q, want %q", out, tc.want)
			evs := e.events(t, e.lastSession(t))
			var sqls []string
			for _, ev := range evs {
				if ev.Type == recorder.EventQuery && !strings.HasPrefix(ev.SQL, "SELECT pg_catalog") {
					sqls = append(sqls, ev.SQL)
					assert.NotNil(t, ev.Outcome, "query %q has no outcome", ev.SQL)
				}
			}
			assert.Equal(t, tc.wantSQL, sqls, "recorded statements")
		})
	}
	t.Run("copy out wrote the rows", func(t *testing.T) {
		got, err := os.ReadFile(csvOut)
		require.NoError(t, err)
		assert.Equal(t, "1,customer-1\n2,customer-2\n", string(got))
	})
	t.Run("copy records direction and bytes", func(t *testing.T) {
		_, err := e.psql(t, okIdentity, token, "require", "", "-c", "\\copy imports FROM '"+csvIn+"' WITH (FORMAT csv)")
		require.NoError(t, err)
		evs := e.events(t, e.lastSession(t))
		require.NotEmpty(t, evs)
		ev := evs[0]
		assert.Equal(t, "copy_in", ev.Op, "got op %q, want copy_in", ev.Op)
		assert.Equal(t, int64(len("1,first\n2,second\n3,third\n")), ev.Bytes, "got %d bytes", ev.Bytes)
		require.NotNil(t, ev.Outcome)
		assert.Equal(t, "COPY 3", ev.Outcome.Tag)
	})
	t.Run("roles are gone after the sessions", func(t *testing.T) {
		e.waitNoRoles(t, 5e9)
	})
}
