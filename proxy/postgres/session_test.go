package postgres_test

import (
	"bytes"
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/proxy"
)

// TestSessionRole checks the per-session role from inside a session and
// from the admin's side while it runs, and that it is gone after.
func TestSessionRole(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	conn := e.pgx(t, okIdentity, e.token(okIdentity))
	var role string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_user").Scan(&role))
	assert.Regexp(t, `^sp_[0-9a-f]{24}$`, role)

	var limit int
	var validUntil time.Time
	require.NoError(t, e.admin.QueryRow(ctx, "SELECT rolconnlimit, rolvaliduntil FROM pg_roles WHERE rolname = $1", role).
		Scan(&limit, &validUntil))
	assert.Equal(t, 1, limit, "got CONNECTION LIMIT %d, want 1", limit)
	assert.WithinDuration(t, time.Now().Add(time.Minute), validUntil, 10*time.Second, "got VALID UNTIL %v", validUntil)

	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n))
	assert.Equal(t, 1000, n, "the entitled role reads orders")
	_, err := conn.Exec(ctx, "SELECT * FROM payroll")
	assert.ErrorContains(t, err, "permission denied", "nothing beyond the entitled role")
	_, err = conn.Exec(ctx, "CREATE ROLE sneaky")
	assert.ErrorContains(t, err, "permission denied", "no CREATEROLE")

	require.NoError(t, conn.Close(ctx))
	e.waitNoRoles(t, 5*time.Second)
}

// TestCancel presses Ctrl-C in psql during pg_sleep(30).
func TestCancel(t *testing.T) {
	e := newEnv(t, envOptions{})
	cmd, out := e.startPsql(t, okIdentity, "SELECT pg_sleep(30)")
	e.waitActive(t, "pg_sleep")
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	took := time.Since(start)
	require.Error(t, err, "a cancelled psql -c exits non-zero")
	assert.Less(t, took, 2*time.Second, "got cancel after %s, want < 2s", took)
	assert.Contains(t, out.String(), "canceling statement due to user request")
	ev := e.events(t, e.lastSession(t))
	require.NotEmpty(t, ev)
	require.NotNil(t, ev[0].Outcome)
	assert.Equal(t, "57014", ev[0].Outcome.ErrorCode, "the recording shows the cancel")
}

// TestSessionEnds ends live psql sessions by kill and by revocation, with
// the watcher running, and checks the bounds and that the role is dropped.
func TestSessionEnds(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name     string
		identity string
		end      func(t *testing.T, s *proxy.Session)
		within   time.Duration
		want     string
	}{
		{name: "kill", identity: okIdentity, within: time.Second, want: "session killed: by test",
			end: func(t *testing.T, s *proxy.Session) { require.True(t, e.live.Kill(s.ID, "by test")) }},
		{name: "revocation", identity: "svc-other", within: 5 * time.Second, want: "certification_revoked",
			end: func(t *testing.T, s *proxy.Session) {
				require.NoError(t, e.reg.Revoke(context.Background(), "svc-other", "alice@example.com", "no longer needed"))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The previous case's session leaves the live table only after
			// its client has gone; wait, or it would be taken for this one.
			e.waitLive(t, 0)
			cmd, out := e.startPsql(t, tc.identity, "SELECT pg_sleep(30)")
			s := e.waitLive(t, 1)[0]
			require.Equal(t, tc.identity, s.Request.Identity)
			e.waitActive(t, "pg_sleep")
			start := time.Now()
			tc.end(t, s)
			require.Error(t, cmd.Wait())
			took := time.Since(start)
			assert.Less(t, took, tc.within, "got session end after %s, want < %s", took, tc.within)
			assert.Contains(t, out.String(), "FATAL:  sallyport: session ended")
			assert.Contains(t, out.String(), tc.want)
			e.waitNoRoles(t, 5*time.Second)
			evs := e.events(t, s.ID)
			assert.Contains(t, evs[len(evs)-1].Reason, tc.want, "the recording says why the session ended")
			require.Len(t, evs, 2, "the interrupted query and the end")
			assert.Equal(t, "SELECT pg_sleep(30)", evs[0].SQL, "a query cut off by the end is recorded too")
			require.NotNil(t, evs[0].Outcome)
			assert.Contains(t, evs[0].Outcome.Error, "session ended while it ran")
		})
	}
}

// startPsql runs psql -c sql through the bastion in the background.
func (e *env) startPsql(t *testing.T, identity, sql string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(clientBinary(t, "psql"), "-X", "-At", "-c", sql)
	cmd.Env = e.pgEnv(identity, e.token(identity), "require")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &out
}

// waitLive waits for n live sessions and returns them.
func (e *env) waitLive(t *testing.T, n int) []*proxy.Session {
	t.Helper()
	var live []*proxy.Session
	require.Eventually(t, func() bool { live = e.live.Snapshot(); return len(live) == n }, 10*time.Second, 10*time.Millisecond,
		"want %d live sessions", n)
	return live
}

// waitActive waits until a per-session role runs a query containing text,
// looking as the superuser (only it sees other roles' queries).
func (e *env) waitActive(t *testing.T, text string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.target.DSN(e.target.Database))
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE starts_with(usename, 'sp_') AND state = 'active' AND strpos(query, $1) > 0`, text).Scan(&n)
		return err == nil && n > 0
	}, 10*time.Second, 10*time.Millisecond, "no session runs %q", text)
}
