package postgres_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// TestPlainSessions drives sessions without TLS, which the bastion relays
// on its pump rather than with goroutines: the extended protocol, COPY,
// a result far larger than a socket buffer, cancel and kill.
func TestPlainSessions(t *testing.T) {
	e := newEnv(t, envOptions{plaintext: true})
	ctx := context.Background()

	t.Run("extended protocol and pipeline recorded", func(t *testing.T) {
		conn := e.plainPgx(t, okIdentity)
		var customer string
		require.NoError(t, conn.QueryRow(ctx, "SELECT customer FROM orders WHERE id = $1", 42).Scan(&customer))
		assert.Equal(t, "customer-42", customer)
		batch := &pgx.Batch{}
		batch.Queue("SELECT id FROM orders WHERE id = $1::int", int32(3))
		batch.Queue("SELECT * FROM payroll WHERE name = $1", "ceo")
		batch.Queue("SELECT 'skipped'")
		br := conn.SendBatch(ctx, batch)
		_, err := br.Exec()
		require.NoError(t, err)
		_, err = br.Exec()
		require.ErrorContains(t, err, "permission denied")
		require.Error(t, br.Close())
		require.NoError(t, conn.Close(ctx))

		evs := queries(e.events(t, e.lastSession(t)))
		require.Len(t, evs, 4, "got %+v", evs)
		assert.Equal(t, "SELECT customer FROM orders WHERE id = $1", evs[0].SQL)
		assert.Len(t, evs[0].Params, 1, "the bound parameter is recorded")
		assert.Equal(t, "SELECT 1", evs[1].Outcome.Tag)
		assert.Equal(t, "42501", evs[2].Outcome.ErrorCode)
		assert.Contains(t, evs[3].Outcome.Error, "not executed")
	})

	t.Run("large result and copy", func(t *testing.T) {
		csvOut := filepath.Join(t.TempDir(), "out.csv")
		out, err := e.psql(t, okIdentity, e.token(okIdentity), "disable", "",
			"-c", "SELECT sum(length(repeat('x', g))) FROM generate_series(1, 3000) g",
			"-c", "SELECT repeat('y', 2000) FROM generate_series(1, 5000)",
			"-c", "\\copy (SELECT id FROM orders) TO '"+csvOut+"' WITH (FORMAT csv)")
		require.NoError(t, err, out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Equal(t, 5002, len(lines), "the sum, 5,000 rows and the COPY tag")
		assert.Equal(t, "4501500", lines[0])
		assert.Equal(t, strings.Repeat("y", 2000), lines[5000])
		assert.Equal(t, "COPY 1000", lines[5001])
		raw, err := os.ReadFile(csvOut)
		require.NoError(t, err)
		assert.Equal(t, 1000, strings.Count(string(raw), "\n"), "COPY OUT delivered every row")

		evs := queries(e.events(t, e.lastSession(t)))
		require.Len(t, evs, 3)
		assert.Equal(t, "SELECT 5000", evs[1].Outcome.Tag)
		assert.Equal(t, "copy_out", evs[2].Op)
		assert.Positive(t, evs[2].Bytes, "COPY bytes are counted")
	})

	t.Run("cancel", func(t *testing.T) {
		cmd, out := e.startPlainPsql(t, okIdentity, "SELECT pg_sleep(30)")
		e.waitActive(t, "pg_sleep")
		start := time.Now()
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		require.Error(t, cmd.Wait())
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Contains(t, out.String(), "canceling statement due to user request")
	})

	t.Run("kill", func(t *testing.T) {
		cmd, out := e.startPlainPsql(t, okIdentity, "SELECT pg_sleep(30)")
		e.waitActive(t, "pg_sleep")
		live := e.waitLive(t, 1) // once the cancelled session is gone
		start := time.Now()
		require.True(t, e.live.Kill(live[0].ID, "by test"))
		require.Error(t, cmd.Wait())
		took := time.Since(start)
		assert.Less(t, took, time.Second, "got session end after %s", took)
		assert.Contains(t, out.String(), "FATAL:  sallyport: session ended: session killed: by test")
		evs := e.events(t, live[0].ID)
		require.Len(t, evs, 2, "the interrupted query and the end")
		assert.Contains(t, evs[0].Outcome.Error, "session ended while it ran")
		assert.Contains(t, evs[1].Reason, "by test")
		e.waitNoRoles(t, 5*time.Second)
	})
}

// plainPgx connects through the bastion with pgx, without TLS.
func (e *env) plainPgx(t *testing.T, identity string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("")
	require.NoError(t, err)
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = "127.0.0.1", uint16(e.addr.Port), identity, e.token(identity), targetName
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err, "connect through the bastion")
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// startPlainPsql runs psql -c sql without TLS in the background.
func (e *env) startPlainPsql(t *testing.T, identity, sql string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(clientBinary(t, "psql"), "-X", "-At", "-c", sql)
	cmd.Env = e.pgEnv(identity, e.token(identity), "disable")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &out
}

// queries keeps the query events.
func queries(evs []recorder.Event) []recorder.Event {
	var out []recorder.Event
	for _, ev := range evs {
		if ev.Type == recorder.EventQuery {
			out = append(out, ev)
		}
	}
	return out
}
