package mysql_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlainSessions drives sessions without TLS, which the bastion relays
// on its pump rather than with goroutines: prepared statements, a command
// and a row larger than a packet, Ctrl-C (a KILL QUERY the bastion answers
// itself) and a kill.
func TestPlainSessions(t *testing.T) {
	e := newEnv(t, envOptions{plaintext: true})
	ctx := context.Background()

	t.Run("prepared statements and a large result recorded", func(t *testing.T) {
		db := e.dbWith(t, e.plainConfig(okIdentity, e.token(okIdentity)))
		db.SetMaxOpenConns(1)
		var customer string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT customer FROM orders WHERE id = ?", 42).Scan(&customer))
		assert.Equal(t, "customer-42", customer)
		var total int
		rs, err := db.QueryContext(ctx, "SELECT id, REPEAT('x', 10240) FROM orders")
		require.NoError(t, err)
		for rs.Next() {
			var id int
			var s string
			require.NoError(t, rs.Scan(&id, &s))
			total += len(s)
		}
		require.NoError(t, rs.Err())
		assert.Equal(t, 10240*1000, total, "10 MB of rows arrive whole")
		require.NoError(t, db.Close())

		evs := queries(e.events(t, e.lastSession(t)))
		assert.Equal(t, []any{float64(42)}, bySQL(t, evs, "SELECT customer FROM orders WHERE id = ?").Params)
		assert.Equal(t, int64(1000), rows(bySQL(t, evs, "SELECT id, REPEAT('x', 10240) FROM orders")))
	})

	t.Run("a command over two packets", func(t *testing.T) {
		require.NoError(t, e.target.MariaDB.Exec(ctx, "", "SET GLOBAL max_allowed_packet = 64*1024*1024"))
		db := e.dbWith(t, e.plainConfig(okIdentity, e.token(okIdentity)))
		db.SetMaxOpenConns(1)
		big := strings.Repeat("z", 17<<20)
		_, err := db.ExecContext(ctx, "INSERT INTO imports (id, raw) VALUES (8, '"+big+"')")
		require.NoError(t, err, "a 17 MB command goes over two packets")
		var back string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT raw FROM imports WHERE id = 8").Scan(&back))
		assert.Equal(t, big, back, "a 17 MB row comes back whole")
		_, err = db.ExecContext(ctx, "DELETE FROM imports")
		require.NoError(t, err)
		assert.Len(t, e.sessionIDs(), 2, "on the session it started with")
	})

	t.Run("Ctrl-C", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		before := len(e.sessionIDs())
		cmd := e.mariadbCmd(cctx, t, okIdentity, e.token(okIdentity), "-D", targetName, "--skip-ssl", "-e", "SELECT SLEEP(30)")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		e.waitRunning(t, "SELECT SLEEP(30)")
		start := time.Now()
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		_ = cmd.Wait()
		assert.Less(t, time.Since(start), 5*time.Second, "Ctrl-C took %s", time.Since(start))
		assert.Contains(t, out.String(), "Query execution was interrupted", "mariadb output: %s", out.String())
		var kills int
		for _, id := range e.sessionIDs()[before:] {
			for _, ev := range queries(e.events(t, id)) {
				if strings.HasPrefix(ev.SQL, "KILL QUERY ") && ev.Outcome != nil && ev.Outcome.Tag == "OK" {
					kills++
				}
			}
		}
		assert.Equal(t, 1, kills, "the KILL QUERY is answered by the bastion and recorded")
	})

	t.Run("kill", func(t *testing.T) {
		db := e.dbWith(t, e.plainConfig(okIdentity, e.token(okIdentity)))
		require.NoError(t, db.Ping())
		done := make(chan error, 1)
		go func() {
			_, err := db.Exec("SELECT SLEEP(30)")
			done <- err
		}()
		e.waitRunning(t, "SELECT SLEEP(30)")
		id := e.lastSession(t)
		start := time.Now()
		require.True(t, e.live.Kill(id, "operator says so"))
		select {
		case err := <-done:
			require.Error(t, err, "the killed session's query must fail")
			assert.Less(t, time.Since(start), time.Second, "got the session ended after %s", time.Since(start))
		case <-time.After(2 * time.Second):
			t.Fatal("the session was not ended within 2 s of Kill")
		}
		evs := e.events(t, id)
		assert.Contains(t, evs[len(evs)-1].Reason, "operator says so")
		e.waitNoUsers(t, 5*time.Second)
	})
}
