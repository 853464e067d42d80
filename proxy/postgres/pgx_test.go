package postgres_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// TestPgxExtendedProtocol drives the extended protocol with pgx: named and
// unnamed statements, binary parameters, a pipeline (batch) with a failing
// statement; the recording holds each execution with its SQL and parameters.
func TestPgxExtendedProtocol(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	conn := e.pgx(t, okIdentity, e.token(okIdentity))

	var customer string
	require.NoError(t, conn.QueryRow(ctx, "SELECT customer FROM orders WHERE id = $1", 42).Scan(&customer),
		"unnamed statement, binary int parameter")
	assert.Equal(t, "customer-42", customer)

	_, err := conn.Prepare(ctx, "by_customer", "SELECT count(*) FROM orders WHERE customer = $1")
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "by_customer", "customer-5").Scan(&n), "named statement")
	assert.Equal(t, 11, n)

	batch := &pgx.Batch{}
	batch.Queue("INSERT INTO imports VALUES ($1, $2)", 7, "seven")
	batch.Queue("SELECT id FROM orders WHERE id = $1::int", int32(3))
	batch.Queue("SELECT * FROM payroll WHERE name = $1", "ceo")
	batch.Queue("SELECT 'skipped'")
	br := conn.SendBatch(ctx, batch)
	_, err = br.Exec()
	require.NoError(t, err)
	_, err = br.Exec()
	require.NoError(t, err)
	_, err = br.Exec()
	require.ErrorContains(t, err, "permission denied", "the entitled role may not read payroll")
	require.Error(t, br.Close())

	// The simple protocol with a bytea in a text param, via pgconn.
	res := conn.PgConn().ExecParams(ctx, "SELECT length($1::bytea)", [][]byte{{0xde, 0xad}}, nil, []int16{1}, nil).Read()
	require.NoError(t, res.Err)
	require.NoError(t, conn.Close(ctx))

	evs := e.events(t, e.lastSession(t))
	type rec struct {
		sql, stmt string
		params    []any
		tag, code string
	}
	var got []rec
	for _, ev := range evs {
		if ev.Type != recorder.EventQuery {
			continue
		}
		r := rec{sql: ev.SQL, stmt: ev.Statement, params: ev.Params}
		if ev.Outcome != nil {
			r.tag, r.code = ev.Outcome.Tag, ev.Outcome.ErrorCode
			if r.code == "" && ev.Outcome.Error != "" {
				r.code = ev.Outcome.Error
			}
		}
		got = append(got, r)
	}
	b64 := func(b ...byte) any { return map[string]any{"base64": base64.StdEncoding.EncodeToString(b)} }
	want := []rec{
		{sql: "SELECT customer FROM orders WHERE id = $1", stmt: "stmtcache_", params: []any{"42"}, tag: "SELECT 1"},
		{sql: "SELECT count(*) FROM orders WHERE customer = $1", stmt: "by_customer", params: []any{"customer-5"}, tag: "SELECT 1"},
		{sql: "INSERT INTO imports VALUES ($1, $2)", params: []any{"7", "seven"}, tag: "INSERT 0 1"},
		{sql: "SELECT id FROM orders WHERE id = $1::int", params: []any{"3"}, tag: "SELECT 1"},
		{sql: "SELECT * FROM payroll WHERE name = $1", params: []any{"ceo"}, code: "42501"},
		{sql: "SELECT 'skipped'", code: "not executed: an earlier message in the pipeline failed"},
		// Bound in binary with no type given or described: the bytes as they are.
		{sql: "SELECT length($1::bytea)", params: []any{b64(0xde, 0xad)}, tag: "SELECT 1"},
	}
	require.Len(t, got, len(want), "got events %+v", got)
	for i := range want {
		w, g := want[i], got[i]
		assert.Equal(t, w.sql, g.sql, "event %d sql", i)
		if w.stmt == "stmtcache_" {
			assert.Contains(t, g.stmt, "stmtcache_", "event %d: pgx's cached statement name", i)
		} else if w.stmt != "" {
			assert.Equal(t, w.stmt, g.stmt, "event %d statement", i)
		}
		assert.Equal(t, w.params, g.params, "event %d params", i)
		assert.Equal(t, w.tag, g.tag, "event %d tag", i)
		assert.Equal(t, w.code, g.code, "event %d error", i)
	}
	assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM imports WHERE id = 7"),
		"the batch ran in one implicit transaction, which the error rolled back")
	assert.Equal(t, []txEvent{{"rollback", 3}}, transactions(e.recording(t, e.lastSession(t))),
		"the recording says the batch's statements were rolled back")
}

// TestPgxCancel cancels the context of a pgx query running pg_sleep(30):
// pgconn sends a CancelRequest (over TLS, as pgx does for a TLS session)
// to the bastion, which forwards it to the target's backend. The query
// ends with query_canceled within 2 s, the connection stays usable, and the
// recording shows the cancelled statement.
func TestPgxCancel(t *testing.T) {
	e := newEnv(t, envOptions{})
	conn := e.pgxCancelling(t, okIdentity, e.token(okIdentity))
	took, err := e.sleepCancelled(t, conn)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "got %v, want the server's query_canceled error", err)
	assert.Equal(t, "57014", pgErr.Code, "got SQLSTATE %s (%s), want 57014 query_canceled", pgErr.Code, pgErr.Message)
	assert.Less(t, took, 2*time.Second, "got the cancel after %s, want < 2s", took)

	var one int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT 1").Scan(&one), "the session survives a cancel")
	require.NoError(t, conn.Close(context.Background()))

	var sleep, cancel *recorder.Event
	for _, ev := range e.recording(t, e.lastSession(t)) {
		switch {
		case ev.Type == recorder.EventQuery && ev.SQL == "SELECT pg_sleep(30)":
			sleep = &ev
		case ev.Type == recorder.EventCancel:
			require.Nil(t, sleep, "the cancel is recorded before the statement it ended")
			cancel = &ev
		}
	}
	require.NotNil(t, sleep, "the cancelled statement is recorded")
	require.NotNil(t, sleep.Outcome)
	assert.Equal(t, "57014", sleep.Outcome.ErrorCode, "recorded outcome %+v", sleep.Outcome)
	require.NotNil(t, cancel, "the cancel request is recorded in the session it cancelled")
	assert.Equal(t, "SELECT pg_sleep(30)", cancel.SQL, "the cancel names the statement it aimed at")
	host, port, err := net.SplitHostPort(cancel.From)
	require.NoError(t, err, "from %q", cancel.From)
	assert.Equal(t, "127.0.0.1", host, "the cancel came from the client's address")
	assert.NotEqual(t, "0", port)
}

// pgxCancelling connects through the bastion with pgx set to answer a
// cancelled context with a CancelRequest (pgx's default closes the
// connection instead); the fallback deadline is past the test's bound.
func (e *env) pgxCancelling(t testing.TB, identity, token string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("")
	require.NoError(t, err)
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = "127.0.0.1", uint16(e.addr.Port), identity, token, targetName
	cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	cfg.Fallbacks = nil
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 10 * time.Second}
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err, "connect through the bastion")
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// sleepCancelled runs pg_sleep(30) on conn, cancels its context once the
// query runs, and returns how long the query took to end after that.
func (e *env) sleepCancelled(t *testing.T, conn *pgx.Conn) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(30)")
		done <- err
	}()
	e.waitActive(t, "pg_sleep") // a cancel before the query starts would cancel nothing
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(15 * time.Second):
		t.Fatal("pg_sleep(30) still runs 15 s after its context was cancelled")
		return 0, nil
	}
}
