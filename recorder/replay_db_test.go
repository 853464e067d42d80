package recorder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dbSession records a database session's events and returns its source.
func dbSession(t *testing.T, id string, events func(s *Session, step func())) Source {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) {
		r.Now = clock.Now
		r.Config.MaxStatementBytes = -1 // the test's events go in as they are
	})
	meta := testMeta(id)
	meta.Protocol, meta.Target, meta.Login = "postgres", "db-01", "app"
	s, err := h.rec.Open(ctxT(t), meta)
	require.NoError(t, err)
	events(s, func() { clock.advance(10 * time.Millisecond) })
	require.NoError(t, s.Close(ctxT(t), End{Reason: "client closed"}))
	h.waitUploaded(t)
	require.True(t, h.verify(t, id).OK(), "the recording verifies")
	src, err := FindSession(ctxT(t), h.store, id)
	require.NoError(t, err)
	return src
}

func replayText(t *testing.T, src Source) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &out, ReplayOptions{Format: FormatText}))
	return out.String()
}

// TestReplayHugeEventLine: a 20 MB statement recorded whole (no cap) is
// one 20 MB line; text and JSON replay read it and what comes after it,
// the text replay showing its start and its size, the JSON replay the
// line exactly as recorded.
func TestReplayHugeEventLine(t *testing.T) {
	huge := "INSERT INTO blobs VALUES ('" + strings.Repeat("0123456789abcdef", 20<<20/16) + "')"
	src := dbSession(t, "s-huge", func(s *Session, step func()) {
		require.NoError(t, s.Event(Event{Type: EventQuery, SQL: huge, Outcome: &Outcome{Tag: "INSERT 0 1"}}))
		step()
		require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "SELECT count(*) FROM blobs", Outcome: &Outcome{Tag: "SELECT 1"}}))
	})

	text := replayText(t, src)
	assert.Less(t, len(text), 256<<10, "the text replay shows a bounded part of the statement")
	assert.Contains(t, text, "query (0.0 ms): INSERT INTO blobs VALUES ('0123456789abcdef")
	assert.Contains(t, text, fmt.Sprintf("… (%d bytes, first 64 KiB shown) -> INSERT 0 1\n", len(huge)))
	assert.Contains(t, text, "query (0.0 ms): SELECT count(*) FROM blobs -> SELECT 1\n", "the event after the long line")
	assert.Contains(t, text, "end: client closed")

	var js bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &js, ReplayOptions{Format: FormatJSON}))
	var sqls []string
	sc := bufio.NewScanner(&js)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var ev Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), "every JSON replay line is JSON")
		if ev.Type == EventQuery {
			sqls = append(sqls, ev.SQL)
		}
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, []string{huge, "SELECT count(*) FROM blobs"}, sqls, "the JSON replay has the statement whole, then the next")

	v, err := ReadExec(ctxT(t), src, 1<<20)
	require.NoError(t, err, "the console's exec reader reads past the line")
	assert.Empty(t, v.Channels)
}

// TestReplayStatementOutcomes: the text replay shows each statement of a
// multi-statement query with its outcome, a statement kept only in part
// with its length and SHA-256, and marks the statements of a transaction
// with its fate once the transaction event tells it.
func TestReplayStatementOutcomes(t *testing.T) {
	one, zero := int64(1), int64(0)
	bigSQL := "INSERT INTO docs VALUES ('" + strings.Repeat("x", 100<<10) + "')"
	shown, cut := CutSQL(bigSQL, 64<<10)
	src := dbSession(t, "s-tx", func(s *Session, step func()) {
		q := func(sql, tx string, o Outcome) {
			step()
			require.NoError(t, s.Event(Event{Type: EventQuery, SQL: sql, Tx: tx, DurationMS: 0.5, Outcome: &o}))
		}
		end := func(op string, n int64) {
			require.NoError(t, s.Event(Event{Type: EventTransaction, Op: op, Statements: n}))
		}
		step()
		require.NoError(t, s.Event(Event{Type: EventQuery, DurationMS: 2,
			SQL: "insert into t values (777); select * from forbidden; delete from t where id=777", Tx: TxIdle,
			Outcome: &Outcome{ErrorCode: "1142", Error: "SELECT command denied to user 'app'@'%' for table 'forbidden'"},
			Outcomes: []Outcome{{SQL: "insert into t values (777)", Tag: "INSERT", Rows: &one},
				{SQL: "select * from forbidden", ErrorCode: "1142", Error: "SELECT command denied to user 'app'@'%' for table 'forbidden'"},
				{SQL: "delete from t where id=777", NotExecuted: true}}}))
		q("begin", TxIn, Outcome{Tag: "BEGIN"})
		q("insert into t values (1)", TxIn, Outcome{Tag: "INSERT 0 1", Rows: &one})
		q("select 1/0", TxFailed, Outcome{ErrorCode: "22012", Error: "division by zero"})
		q("rollback", TxIdle, Outcome{Tag: "ROLLBACK"})
		end(TxRollback, 2) // the insert and the select: BEGIN and ROLLBACK are not counted
		require.NoError(t, s.Event(Event{Type: EventTransaction, Op: TxCommit, Text: "implicit commit by DDL"}))
		q("begin", TxIn, Outcome{Tag: "BEGIN"})
		q("update t set n = n + 1", TxIn, Outcome{Tag: "UPDATE 1", Rows: &one})
		step()
		require.NoError(t, s.Event(Event{Type: EventNotification, Notification: &Notification{Channel: "jobs", Payload: "42", PID: 4242}}))
		q("select * from t", TxIn, Outcome{Tag: "SELECT 1", Rows: &one, Bytes: 38})
		q("commit", TxIdle, Outcome{Tag: "COMMIT"})
		end(TxCommit, 2)
		step()
		require.NoError(t, s.Event(Event{Type: EventQuery, SQL: shown, SQLCut: cut, Tx: TxIdle, Outcome: &Outcome{Tag: "INSERT 0 1", Rows: &one}}))
		q("select pg_sleep(60)", TxIdle, Outcome{ErrorCode: "57014", Error: "canceling statement due to user request", Rows: &zero})
		require.NoError(t, s.Event(Event{Type: EventCancel, From: "session s-other (127.0.0.1:50123)"}))
		q("begin", TxIn, Outcome{Tag: "BEGIN"})
		q("delete from t", TxIn, Outcome{Tag: "DELETE 5", Rows: &one})
	})
	got := replayText(t, src)
	for _, want := range []string{
		" -> 3 statements: insert into t values (777) -> INSERT (1 rows); select * from forbidden -> error 1142: SELECT command denied to user 'app'@'%' for table 'forbidden'; delete from t where id=777 -> not executed\n",
		"query (0.5 ms): insert into t values (1) -> INSERT 0 1 (1 rows) [in transaction] (rolled back)\n",
		"query (0.5 ms): select 1/0 -> error 22012: division by zero [in failed transaction] (rolled back)\n",
		"query (0.5 ms): rollback -> ROLLBACK (rolled back)\n",
		"transaction rollback (rolled back): 2 statements\n",
		"transaction commit (committed) (implicit commit by DDL)\n",
		"query (0.5 ms): update t set n = n + 1 -> UPDATE 1 (1 rows) [in transaction] (committed)\n",
		"notification on channel jobs from server process 4242: 42\n",
		"select * from t -> SELECT 1 (1 rows), 38 result bytes [in transaction] (committed)\n",
		fmt.Sprintf("(%d bytes, sha256 %s, first 64 KiB shown) -> INSERT 0 1 (1 rows)\n", len(bigSQL), sum(bigSQL)),
		"cancel of the running statement, sent by session s-other (127.0.0.1:50123)\n",
		"query (0.5 ms): delete from t -> DELETE 5 (1 rows) [in transaction] (transaction still open at the end)\n",
	} {
		assert.Contains(t, got, want)
	}
	// The notification came between the statements: it keeps its place.
	assert.Less(t, strings.Index(got, "update t set"), strings.Index(got, "notification on channel"))
	assert.Less(t, strings.Index(got, "notification on channel"), strings.Index(got, "select * from t ->"))
	// The golden file has it all but the long statement.
	var kept []string
	for _, l := range strings.SplitAfter(got, "\n") {
		if !strings.Contains(l, "INSERT INTO docs") {
			kept = append(kept, l)
		}
	}
	checkGolden(t, "replay_database.txt", strings.Join(kept, ""))
}

// TestReplayLongTransaction: a transaction longer than the text replay
// holds is shown as it comes, unmarked, with a line saying why; its
// transaction event still tells its fate.
func TestReplayLongTransaction(t *testing.T) {
	src := dbSession(t, "s-longtx", func(s *Session, step func()) {
		for i := range maxTxLines + 5 {
			require.NoError(t, s.Event(Event{Type: EventQuery, SQL: fmt.Sprintf("insert into t values (%d)", i), Tx: TxIn,
				Outcome: &Outcome{Tag: "INSERT 0 1"}}))
		}
		require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "rollback", Tx: TxIdle, Outcome: &Outcome{Tag: "ROLLBACK"}}))
		require.NoError(t, s.Event(Event{Type: EventTransaction, Op: TxRollback, Statements: maxTxLines + 5}))
		require.NoError(t, s.Event(Event{Type: EventQuery, SQL: "insert into t values (-1)", Tx: TxIn, Outcome: &Outcome{Tag: "INSERT 0 1"}}))
		require.NoError(t, s.Event(Event{Type: EventTransaction, Op: TxCommit, Statements: 1}))
	})
	got := replayText(t, src)
	assert.Contains(t, got, "insert into t values (0) -> INSERT 0 1 [in transaction]\n", "past the bound: unmarked")
	assert.Contains(t, got, "insert into t values (1004) -> INSERT 0 1 [in transaction]\n")
	assert.Contains(t, got, "# (this transaction holds more than 1000 statements or 4 MiB: its statements are shown unmarked; the transaction event says whether they were committed)\n")
	assert.Contains(t, got, "transaction rollback (rolled back): 1005 statements\n")
	assert.NotContains(t, got, "(0) -> INSERT 0 1 [in transaction] (rolled back)")
	assert.Contains(t, got, "insert into t values (-1) -> INSERT 0 1 [in transaction] (committed)\n", "the next transaction is marked again")
}
