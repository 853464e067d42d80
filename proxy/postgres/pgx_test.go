package postgres_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/jackc/pgx/v5"
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
		{sql: "SELECT customer FROM orders WHERE id = $1", stmt: "stmtcache_", params: []any{b64(0, 0, 0, 42)}, tag: "SELECT 1"},
		{sql: "SELECT count(*) FROM orders WHERE customer = $1", stmt: "by_customer", params: []any{"customer-5"}, tag: "SELECT 1"},
		{sql: "INSERT INTO imports VALUES ($1, $2)", params: []any{b64(0, 0, 0, 7), "seven"}, tag: "INSERT 0 1"},
		{sql: "SELECT id FROM orders WHERE id = $1::int", params: []any{b64(0, 0, 0, 3)}, tag: "SELECT 1"},
		{sql: "SELECT * FROM payroll WHERE name = $1", params: []any{"ceo"}, code: "42501"},
		{sql: "SELECT 'skipped'", code: "not executed: an earlier message in the pipeline failed"},
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
}
