package mysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPreparedStatements runs go-sql-driver prepared statements with every
// common parameter type and checks the values reach the target and the
// recording, decoded.
func TestPreparedStatements(t *testing.T) {
	e := newEnv(t, envOptions{})
	db := e.db(t, okIdentity, e.token(okIdentity))
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 9, 30, 15, 123456000, time.UTC)
	const insert = "INSERT INTO imports (id, note, amount, at, raw) VALUES (?, ?, ?, ?, ?)"
	stmt, err := db.PrepareContext(ctx, insert)
	require.NoError(t, err)
	_, err = stmt.ExecContext(ctx, int64(-42), "héllo 'quoted'", 3.25, at, []byte{0xff, 0x00, 0xfe})
	require.NoError(t, err)
	_, err = stmt.ExecContext(ctx, uint64(7), nil, float32(1.5), nil, []byte("text bytes"))
	require.NoError(t, err, "the same statement executed again")
	require.NoError(t, stmt.Close())

	var note string
	var amount float64
	var when time.Time
	require.NoError(t, db.QueryRowContext(ctx, "SELECT note, amount, at FROM imports WHERE id = ?", -42).Scan(&note, &amount, &when))
	assert.Equal(t, "héllo 'quoted'", note)
	assert.Equal(t, 3.25, amount)
	assert.True(t, at.Equal(when), "got %v, want %v", when, at)
	var ok bool
	require.NoError(t, db.QueryRowContext(ctx, "SELECT ? AND ? > 0", true, uint64(1<<63)).Scan(&ok))
	assert.True(t, ok)
	_, err = db.ExecContext(ctx, "DELETE FROM imports WHERE id = ?", int8(-42))
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "SELECT * FROM payroll WHERE name = ?", "ceo")
	require.Error(t, err)
	require.NoError(t, db.Close())

	evs := queries(e.events(t, e.lastSession(t)))
	var inserts [][]any
	for _, ev := range evs {
		if ev.SQL == insert {
			inserts = append(inserts, ev.Params)
			assert.NotEmpty(t, ev.Statement, "an execute names its statement")
			assert.Equal(t, int64(1), rows(ev), "affected rows of the insert")
		}
	}
	require.Len(t, inserts, 2, "both executions recorded")
	assert.Equal(t, []any{float64(-42), "héllo 'quoted'", 3.25, "2026-11-28 09:30:15.123456", map[string]any{"base64": "/wD+"}}, inserts[0],
		"first execution's parameters")
	assert.Equal(t, []any{float64(7), nil, 1.5, nil, "text bytes"}, inserts[1], "second execution's parameters")
	assert.Equal(t, []any{float64(1), float64(1 << 63)}, bySQL(t, evs, "SELECT ? AND ? > 0").Params,
		"a bool is a TINY 1, a uint64 unsigned")
	assert.Equal(t, int64(1), rows(bySQL(t, evs, "SELECT ? AND ? > 0")), "rows of a prepared SELECT")
	assert.Equal(t, int64(1), rows(bySQL(t, evs, "DELETE FROM imports WHERE id = ?")))
	failed := bySQL(t, evs, "SELECT * FROM payroll WHERE name = ?")
	require.NotNil(t, failed.Outcome)
	assert.Equal(t, "1142", failed.Outcome.ErrorCode, "a prepare refused by the target is recorded with its error")
}
