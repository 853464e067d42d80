package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// sleeping starts SELECT SLEEP(30) through the bastion with go-sql-driver
// and returns the channel its error arrives on.
func (e *env) sleeping(t *testing.T, identity string) (<-chan error, *sql.DB) {
	t.Helper()
	db := e.db(t, identity, e.token(identity))
	require.NoError(t, db.Ping())
	done := make(chan error, 1)
	go func() {
		_, err := db.Exec("SELECT SLEEP(30)")
		done <- err
	}()
	e.waitRunning(t, "SELECT SLEEP(30)")
	return done, db
}

// waitRunning waits until a per-session user runs sql on the target.
func (e *env) waitRunning(t *testing.T, sql string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := e.admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER LIKE 'sp\\_%' AND INFO = ?", sql).Scan(&n)
		return err == nil && n == 1
	}, 10*time.Second, 20*time.Millisecond, "%q never ran on the target", sql)
}

func TestLiveKillEndsSessionWithin1s(t *testing.T) {
	e := newEnv(t, envOptions{})
	done, _ := e.sleeping(t, okIdentity)
	id := e.lastSession(t)
	start := time.Now()
	require.True(t, e.live.Kill(id, "operator says so"))
	select {
	case err := <-done:
		require.Error(t, err, "the killed session's query must fail")
		assert.Less(t, time.Since(start), time.Second, "got the session ended after %s, want within 1 s", time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("the session was not ended within 2 s of Kill")
	}
	e.waitNoUsers(t, 5*time.Second)
	evs := e.events(t, id)
	end := evs[len(evs)-1]
	assert.Contains(t, end.Reason, "operator says so", "the recording says why the session ended")
}

func TestRevocationEndsSessionWithin5s(t *testing.T) {
	e := newEnv(t, envOptions{})
	done, _ := e.sleeping(t, "svc-other")
	start := time.Now()
	require.NoError(t, e.store.Update(context.Background(), func(tx iga.Tx) error {
		id := passing("svc-other")
		id.State = iga.StateSuspended
		return tx.PutIdentity(context.Background(), id)
	}))
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Less(t, time.Since(start), 5*time.Second)
	case <-time.After(6 * time.Second):
		t.Fatal("the session of a suspended identity was not ended within 5 s")
	}
	e.waitNoUsers(t, 5*time.Second)
}

// TestMaxSession: MySQL users have no VALID UNTIL, so the bastion ends a
// session at its maximum duration and tells the client why.
func TestMaxSession(t *testing.T) {
	e := newEnv(t, envOptions{maxSess: time.Second})
	out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "-D", targetName, "--ssl", "-e", "SELECT SLEEP(10)")
	require.Error(t, err, "mariadb: %s", out)
	assert.Contains(t, out, "sallyport: session ended: session reached its maximum duration", "mariadb output: %s", out)
	e.waitNoUsers(t, 5*time.Second)
}

// TestCtrlCCancelsQuery sends SIGINT to the mariadb client running
// SELECT SLEEP(30): the client sends KILL QUERY with the bastion's
// connection id on a second connection, which the bastion maps to the
// target's thread.
// The client's kill connection names no database: it goes to the target
// of the identity's live session.
func TestCtrlCCancelsQuery(t *testing.T) {
	e := newEnv(t, envOptions{})
	for name, login := range map[string][]string{
		"-u IDENTITY -D TARGET": {okIdentity, "-D", targetName},
		"-u IDENTITY@TARGET":    {okIdentity + "@" + targetName},
	} {
		t.Run(name, func(t *testing.T) { e.ctrlC(t, login[0], login[1:]...) })
	}
	e.waitNoUsers(t, 5*time.Second)
}

func (e *env) ctrlC(t *testing.T, user string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := len(e.sessionIDs())
	args = append(args, "--ssl", "-e", "SELECT SLEEP(30); SELECT 'after'")
	cmd := e.mariadbCmd(ctx, t, user, e.token(okIdentity), args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	e.waitRunning(t, "SELECT SLEEP(30)")
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	_ = cmd.Wait()
	assert.Less(t, time.Since(start), 5*time.Second, "Ctrl-C took %s", time.Since(start))
	assert.NotContains(t, out.String(), "sallyport", "mariadb output: %s", out.String())
	assert.Contains(t, out.String(), "Query execution was interrupted", "mariadb output: %s", out.String())
	var kills int
	for _, id := range e.sessionIDs()[before:] {
		for _, ev := range queries(e.events(t, id)) {
			if strings.HasPrefix(ev.SQL, "KILL QUERY ") && ev.Outcome != nil && ev.Outcome.Tag == "OK" {
				kills++
			}
		}
	}
	assert.Equal(t, 1, kills, "the KILL QUERY is recorded in the canceling session")
}

// TestKillOfAnotherIdentityIsRefused: bastion connection ids are not a
// way into someone else's session.
func TestKillOfAnotherIdentityIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	done, _ := e.sleeping(t, okIdentity)
	db := e.db(t, "svc-other", e.token("svc-other"))
	db.SetMaxOpenConns(1)
	require.NoError(t, db.Ping())
	next := e.greetingID(t)
	var refused int
	for id := next - 4; id < next; id++ {
		_, err := db.Exec(fmt.Sprintf("KILL QUERY %d", id))
		if err != nil && strings.Contains(err.Error(), "is not a session of svc-other") {
			refused++
		}
	}
	assert.Equal(t, 1, refused, "the KILL of the other identity's connection must be refused")
	select {
	case err := <-done:
		t.Fatalf("the other identity's query ended: %v", err)
	default:
	}
}

// greetingID connects to the bastion and reads the connection id of its
// greeting: ids are handed out in order.
func (e *env) greetingID(t *testing.T) uint32 {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr.String())
	require.NoError(t, err)
	defer conn.Close()
	buf := make([]byte, 256)
	n, err := io.ReadAtLeast(conn, buf, 40)
	require.NoError(t, err)
	p := buf[4:n]
	end := bytes.IndexByte(p[1:], 0)
	require.Positive(t, end)
	return binary.LittleEndian.Uint32(p[1+end+1:])
}

// sessionIDs are the sessions opened so far.
func (e *env) sessionIDs() []string {
	e.opened.mu.Lock()
	defer e.opened.mu.Unlock()
	return append([]string(nil), e.opened.ids...)
}
