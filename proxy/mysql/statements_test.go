package mysql

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// exchange sends one command and frames its's response packets for the scanner.
func exchange(t *testing.T, a *audit, cmd []byte, resp ...[]byte) {
	t.Helper()
	require.NoError(t, a.client(cmd))
	s := &packetScanner{handle: a.server}
	var seq byte = 1
	var out []byte
	for _, p := range resp {
		out = appendPacket(out, &seq, p)
	}
	s.feed(out)
	require.False(t, a.inFlight(), "the response ends the command")
}

// ok is an OK packet with affected rows and status.
func ok(affected byte, status uint16) []byte {
	return []byte{hdrOK, affected, 0, byte(status), byte(status >> 8), 0, 0}
}

func eof(status uint16) []byte { return []byte{hdrEOF, 0, 0, byte(status), byte(status >> 8)} }

// TestAuditMultiStatement: each statement of a multi-statement query
// gets its own outcome, in order, as the server ran it.
func TestAuditMultiStatement(t *testing.T) {
	const more = statusAutocommit | statusMoreResults
	rowSet := func(status uint16) [][]byte { return [][]byte{{1}, colDef, eof(2), {1, 'a'}, eof(status)} }
	t.Run("an error stops the rest", func(t *testing.T) {
		a := newAudit(time.Now, false)
		exchange(t, a, []byte("\x03insert into imports (id) values (777); select * from payroll; delete from imports where id=777"),
			ok(1, more), errDenid)
		require.Len(t, a.done, 1)
		ev := a.done[0]
		require.Len(t, ev.Outcomes, 3)
		assert.Equal(t, "insert into imports (id) values (777)", ev.Outcomes[0].SQL)
		assert.Equal(t, "OK", ev.Outcomes[0].Tag)
		assert.Equal(t, int64(1), *ev.Outcomes[0].Rows)
		assert.Equal(t, "1142", ev.Outcomes[1].ErrorCode)
		assert.Equal(t, "select * from payroll", ev.Outcomes[1].SQL)
		assert.True(t, ev.Outcomes[2].NotExecuted, "MySQL stops at the first error")
		assert.Equal(t, "delete from imports where id=777", ev.Outcomes[2].SQL)
		assert.Equal(t, "1142", ev.Outcome.ErrorCode, "the event's outcome is the first error")
		assert.Equal(t, int64(4+7), ev.Outcomes[0].Bytes, "an OK packet and its header")
	})
	t.Run("the first fails", func(t *testing.T) {
		a := newAudit(time.Now, false)
		exchange(t, a, []byte("\x03select * from payroll; select 1"), errDenid)
		ev := a.done[0]
		require.Len(t, ev.Outcomes, 2)
		assert.Equal(t, "1142", ev.Outcomes[0].ErrorCode)
		assert.True(t, ev.Outcomes[1].NotExecuted)
	})
	t.Run("without multi-statements the text is one statement", func(t *testing.T) {
		a := newAudit(time.Now, false)
		a.multiStatements = false
		exchange(t, a, []byte("\x03select * from payroll; select 1"), errDenid)
		assert.Nil(t, a.done[0].Outcomes, "the server read one statement")
	})
	t.Run("a CALL's results are its own", func(t *testing.T) {
		a := newAudit(time.Now, false)
		resp := append(append(rowSet(more), rowSet(more)...), ok(0, more))
		resp = append(resp, rowSet(statusAutocommit)...)
		exchange(t, a, []byte("\x03CALL p(); SELECT c"), resp...)
		ev := a.done[0]
		require.Len(t, ev.Outcomes, 2)
		assert.Equal(t, "CALL p()", ev.Outcomes[0].SQL)
		assert.Equal(t, "OK", ev.Outcomes[0].Tag, "a CALL ends with its OK")
		assert.Equal(t, "SELECT c", ev.Outcomes[1].SQL)
		assert.Equal(t, "ROWS", ev.Outcomes[1].Tag)
		assert.Equal(t, int64(1), *ev.Outcomes[1].Rows)
	})
	t.Run("one CALL lists nothing", func(t *testing.T) {
		a := newAudit(time.Now, false)
		exchange(t, a, []byte("\x03CALL p()"), append(rowSet(more), ok(3, statusAutocommit))...)
		ev := a.done[0]
		assert.Nil(t, ev.Outcomes)
		assert.Equal(t, "OK", ev.Outcome.Tag)
		assert.Equal(t, int64(3), *ev.Outcome.Rows)
		assert.Greater(t, ev.Outcome.Bytes, int64(11), "the bytes of every result")
	})
}

// TestTransactions follows the status flags into the tx of each event and
// the transaction events.
func TestTransactions(t *testing.T) {
	const inTx = statusAutocommit | statusInTrans
	tests := []struct {
		name  string
		steps []string // statements, each answered by an OK with the status after it
		in    []bool   // IN_TRANS after each
		want  []string // op/statements/text of the transaction events, in order
		tx    []string // each query event's tx
	}{
		{"begin insert rollback", []string{"BEGIN", "INSERT", "ROLLBACK"}, []bool{true, true, false}, []string{"rollback 1 "}, []string{"in", "in", "idle"}},
		{"commit", []string{"START TRANSACTION", "INSERT", "INSERT", "COMMIT"}, []bool{true, true, true, false}, []string{"commit 2 "}, []string{"in", "in", "in", "idle"}},
		{"DDL commits", []string{"BEGIN", "INSERT", "CREATE TABLE t (id int)"}, []bool{true, true, false}, []string{"commit 1 implicit commit by CREATE"}, nil},
		{"BEGIN commits the open one", []string{"BEGIN", "INSERT", "begin", "COMMIT"}, []bool{true, true, true, false}, []string{"commit 1 implicit commit by BEGIN", "commit 0 "}, nil},
		{"autocommit off", []string{"SET autocommit=0", "INSERT", "COMMIT"}, []bool{false, true, false}, []string{"commit 1 "}, nil},
		{"autocommit", []string{"INSERT", "SELECT"}, []bool{false, false}, nil, []string{"idle", "idle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAudit(time.Now, false)
			for i, sql := range tt.steps {
				status := uint16(statusAutocommit)
				if tt.in[i] {
					status = inTx
				}
				exchange(t, a, append([]byte{comQuery}, sql...), ok(0, status))
			}
			var got, tx []string
			for _, ev := range a.take(nil) {
				switch ev.Type {
				case recorder.EventTransaction:
					got = append(got, ev.Op+" "+strconv.FormatInt(ev.Statements, 10)+" "+ev.Text)
				case recorder.EventQuery:
					tx = append(tx, ev.Tx)
				}
			}
			assert.Equal(t, tt.want, got)
			if tt.tx != nil {
				assert.Equal(t, tt.tx, tx)
			}
		})
	}
	t.Run("in one query string", func(t *testing.T) {
		a := newAudit(time.Now, false)
		more := uint16(statusMoreResults)
		exchange(t, a, []byte("\x03begin; insert into imports (id) values (1); rollback"), ok(0, inTx|more), ok(1, inTx|more), ok(0, statusAutocommit))
		evs := a.take(nil)
		require.Len(t, evs, 2)
		assert.Equal(t, "idle", evs[0].Tx)
		assert.Equal(t, recorder.EventTransaction, evs[1].Type)
		assert.Equal(t, "rollback", evs[1].Op)
		assert.Equal(t, int64(1), evs[1].Statements)
	})
	t.Run("deadlock", func(t *testing.T) {
		a := newAudit(time.Now, false)
		exchange(t, a, []byte("\x03BEGIN"), ok(0, inTx))
		exchange(t, a, []byte("\x03UPDATE x"), append([]byte{hdrErr, 0xbd, 0x04, '#', '4', '0', '0', '0', '1'}, "Deadlock found"...))
		evs := a.take(nil)
		require.Len(t, evs, 3)
		assert.Equal(t, "rollback", evs[2].Op)
		assert.Contains(t, evs[2].Text, "deadlock")
	})
	t.Run("session ends inside", func(t *testing.T) {
		a := newAudit(time.Now, false)
		exchange(t, a, []byte("\x03BEGIN"), ok(0, inTx))
		require.NoError(t, a.client([]byte("\x03INSERT INTO imports VALUES (1)")))
		a.sessionEnded("client connection lost")
		evs := a.take(nil)
		require.Len(t, evs, 3)
		assert.Contains(t, evs[1].Outcome.Error, "no complete response: the session ended (client connection lost)")
		assert.Equal(t, "rollback", evs[2].Op)
		assert.Equal(t, int64(1), evs[2].Statements)
	})
}

// TestStatementCap: a statement and a parameter longer than the cap are
// recorded as recorder.CutSQL and CutParam say: prefix, size, SHA-256.
func TestStatementCap(t *testing.T) {
	long := "INSERT INTO imports (note) VALUES ('" + strings.Repeat("é", 5000) + "')"
	sum := sha256.Sum256([]byte(long))
	a := newAudit(time.Now, false)
	a.max = 1000
	exchange(t, a, append([]byte{comQuery}, long...), ok(1, statusAutocommit))
	ev := a.done[0]
	require.NotNil(t, ev.SQLCut)
	assert.Equal(t, int64(len(long)), ev.SQLCut.Bytes)
	assert.Equal(t, hex.EncodeToString(sum[:]), ev.SQLCut.SHA256)
	assert.True(t, strings.HasPrefix(long, ev.SQL) && len(ev.SQL) <= 1000 && len(ev.SQL) >= 997, "a prefix of the text: %d bytes", len(ev.SQL))

	// Prepared: the statement's text cut, a long text parameter cut.
	exchange(t, a, append([]byte{comStmtPrepare}, long[:len(long)-len("'"+strings.Repeat("é", 5000)+"')")]+"?)"...),
		[]byte{0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, colDef, eof(2))
	param := strings.Repeat("x", 3000)
	exec := executeBody(3, 0, true, []byte{0xfd, 0}, append([]byte{0xfc, byte(len(param)), byte(len(param) >> 8)}, param...))
	exchange(t, a, append([]byte{comStmtExecute}, exec...), ok(1, statusAutocommit))
	psum := sha256.Sum256([]byte(param))
	assert.Equal(t, []any{map[string]string{"prefix": param[:1000], "bytes": "3000", "sha256": hex.EncodeToString(psum[:])}}, a.done[1].Params)
	assert.Equal(t, recorder.CutParam(param, 1000), a.done[1].Params[0], "the shape recorder.CutParam gives")
}

// TestReadableParams: FLOAT parameters read as the number written, a DATE
// as a date; NaN, which JSON cannot hold, as text.
func TestReadableParams(t *testing.T) {
	f32 := math.Float32bits(0.1)
	values := []byte{byte(f32), byte(f32 >> 8), byte(f32 >> 16), byte(f32 >> 24)}
	nan := math.Float64bits(math.NaN())
	for i := range 8 {
		values = append(values, byte(nan>>(8*i)))
	}
	values = append(values, 4, 0xea, 0x07, 12, 7)
	got, err := decodeExecute(executeBody(1, 0, true, []byte{typeFloat, 0, typeDouble, 0, typeDate, 0}, values), &stmt{params: 3}, 0)
	require.NoError(t, err)
	assert.Equal(t, []any{float32(0.1), "NaN", "2026-12-07"}, got)
	b, err := json.Marshal(got)
	require.NoError(t, err, "a recording must be able to hold them")
	assert.Equal(t, `[0.1,"NaN","2026-12-07"]`, string(b))
}

// TestAuditAllocations: following a statement's outcome, bytes and
// transaction state costs no allocation per statement, in a transaction
// or not (the outcome blocks and the event slice are amortised).
func TestAuditAllocations(t *testing.T) {
	for _, status := range []uint16{statusAutocommit, statusAutocommit | statusInTrans} {
		a := newAudit(time.Now, true)
		a.max = recorder.DefaultMaxStatementBytes
		s := &packetScanner{handle: a.respond}
		var seq byte = 1
		var resp []byte
		for _, p := range [][]byte{{1}, colDef, {1, 'a'}, {hdrEOF, 0, 0, byte(status), byte(status >> 8), 0, 0}} {
			resp = appendPacket(resp, &seq, p)
		}
		cmd := []byte("\x03select c from t where id = 17")
		var spare []recorder.Event
		n := 0
		allocs := testing.AllocsPerRun(1000, func() {
			_ = a.client(cmd)
			a.scan(s, resp)
			if n++; n%64 == 0 {
				spare = a.take(spare)
			}
		})
		assert.Zero(t, allocs, "status %#x: allocations per statement", status)
	}
}
