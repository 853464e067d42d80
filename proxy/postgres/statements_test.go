package postgres_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// TestStatementCap sends a 10 MB bytea parameter (pgx) and a 9.7 MB
// INSERT (psql -f): each is recorded as a prefix, its length and SHA-256,
// and the recording replays (text and JSON) and verifies.
func TestStatementCap(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	max := recorder.DefaultMaxStatementBytes

	t.Run("10 MB bytea parameter", func(t *testing.T) {
		data := make([]byte, 10<<20)
		rand.Read(data)
		conn := e.pgx(t, okIdentity, e.token(okIdentity))
		var n int
		require.NoError(t, conn.QueryRow(ctx, "SELECT length($1::bytea)", data).Scan(&n))
		assert.Equal(t, len(data), n, "the server got the whole value")
		require.NoError(t, conn.Close(ctx))

		id := e.lastSession(t)
		ev := queryEvent(t, e.recording(t, id), "SELECT length($1::bytea)")
		require.Len(t, ev.Params, 1)
		sum := sha256.Sum256(data)
		assert.Equal(t, map[string]any{"bytes": strconv.Itoa(len(data)), "sha256": hex.EncodeToString(sum[:]),
			"base64_prefix": base64.StdEncoding.EncodeToString(data[:max])}, ev.Params[0])
		require.NotNil(t, ev.Outcome)
		assert.Equal(t, "SELECT 1", ev.Outcome.Tag)
		e.verified(t, id)
	})

	t.Run("9.7 MB INSERT", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("INSERT INTO big VALUES ")
		rows := 0
		for ; b.Len() < 9_700_000; rows++ {
			if rows > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "(%d, '%s')", rows, strings.Repeat("é", 50))
		}
		b.WriteString(";")
		insert := b.String()
		script := filepath.Join(t.TempDir(), "load.sql")
		require.NoError(t, os.WriteFile(script, []byte("CREATE TEMP TABLE big (id int, note text);\n"+insert+"\nSELECT count(*) FROM big;\n"), 0o600))
		out, err := e.psql(t, okIdentity, e.token(okIdentity), "require", "", "-f", script)
		require.NoError(t, err, "psql: %.500s", out)
		assert.Equal(t, fmt.Sprintf("CREATE TABLE\nINSERT 0 %d\n%d\n", rows, rows), out, "every row was inserted")

		id := e.lastSession(t)
		var ev *recorder.Event
		for _, x := range e.recording(t, id) {
			if x.Type == recorder.EventQuery && strings.HasPrefix(x.SQL, "INSERT INTO big") {
				ev = &x
			}
		}
		require.NotNil(t, ev, "the INSERT is recorded")
		require.NotNil(t, ev.SQLCut, "the INSERT is cut")
		sum := sha256.Sum256([]byte(insert))
		assert.Equal(t, recorder.Cut{Bytes: int64(len(insert)), SHA256: hex.EncodeToString(sum[:])}, *ev.SQLCut)
		assert.LessOrEqual(t, len(ev.SQL), max)
		assert.Greater(t, len(ev.SQL), max-4, "the prefix ends on a character boundary at most 3 bytes short")
		assert.True(t, strings.HasPrefix(insert, ev.SQL), "the SQL is the statement's prefix")
		require.NotNil(t, ev.Outcome)
		assert.Equal(t, fmt.Sprintf("INSERT 0 %d", rows), ev.Outcome.Tag)
		e.verified(t, id)
	})

	t.Run("100 MB statement", func(t *testing.T) {
		sql := "/* " + strings.Repeat("x", 100<<20) + " */ SELECT 42"
		conn := e.pgx(t, okIdentity, e.token(okIdentity))
		res, err := conn.PgConn().Exec(ctx, sql).ReadAll()
		require.NoError(t, err, "a statement over the bastion's message limit runs, as PostgreSQL takes it")
		assert.Equal(t, "42", string(res[0].Rows[0][0]))
		var one int
		require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one), "the session goes on")
		require.NoError(t, conn.Close(ctx))

		id := e.lastSession(t)
		var ev *recorder.Event
		for _, x := range e.recording(t, id) {
			if x.Type == recorder.EventQuery && x.SQLCut != nil {
				ev = &x
			}
		}
		require.NotNil(t, ev, "the statement is recorded, cut")
		sum := sha256.Sum256([]byte(sql))
		assert.Equal(t, recorder.Cut{Bytes: int64(len(sql)), SHA256: hex.EncodeToString(sum[:])}, *ev.SQLCut)
		assert.Equal(t, sql[:max], ev.SQL)
		require.NotNil(t, ev.Outcome)
		assert.Equal(t, "SELECT 1", ev.Outcome.Tag)
		e.verified(t, id)
	})
}

// TestMultiStatementQuery sends several statements in one simple query
// (psql -c): each one's outcome is recorded in order, matching what the
// server did; after an error the rest is not executed and what ran
// before it in the query's implicit transaction is rolled back.
func TestMultiStatementQuery(t *testing.T) {
	e := newEnv(t, envOptions{})
	token := e.token(okIdentity)
	one, zero := int64(1), int64(0)

	t.Run("all run", func(t *testing.T) {
		sql := "select 1; insert into imports values (801, 'multi'); select 2 where false"
		out, err := e.psql(t, okIdentity, token, "require", "", "-c", sql)
		require.NoError(t, err, out)
		evs := e.recording(t, e.lastSession(t))
		ev := queryEvent(t, evs, sql)
		assert.Equal(t, []recorder.Outcome{
			{SQL: "select 1", Tag: "SELECT 1", Rows: &one, Bytes: 12}, // DataRow: 5 + 2 + 4 + 1
			{SQL: "insert into imports values (801, 'multi')", Tag: "INSERT 0 1", Rows: &one},
			{SQL: "select 2 where false", Tag: "SELECT 0", Rows: &zero},
		}, ev.Outcomes)
		require.NotNil(t, ev.Outcome)
		assert.Equal(t, "SELECT 0", ev.Outcome.Tag, "the outcome is the last statement's")
		assert.Equal(t, "idle", ev.Tx)
		assert.Equal(t, []txEvent{{"commit", 3}}, transactions(evs), "the three ran in one implicit transaction")
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM imports WHERE id = 801"), "the insert committed")
	})

	t.Run("error in the middle", func(t *testing.T) {
		sql := "insert into imports values (802, 'a'); select 1/0; insert into imports values (803, 'b')"
		out, err := e.psql(t, okIdentity, token, "require", "", "-c", sql)
		require.Error(t, err)
		assert.Contains(t, out, "division by zero")
		evs := e.recording(t, e.lastSession(t))
		ev := queryEvent(t, evs, sql)
		assert.Equal(t, []recorder.Outcome{
			{SQL: "insert into imports values (802, 'a')", Tag: "INSERT 0 1", Rows: &one},
			{SQL: "select 1/0", ErrorCode: "22012", Error: "division by zero"},
			{SQL: "insert into imports values (803, 'b')", NotExecuted: true},
		}, ev.Outcomes)
		require.NotNil(t, ev.Outcome)
		assert.Equal(t, "22012", ev.Outcome.ErrorCode, "the outcome is the error")
		assert.Equal(t, []txEvent{{"rollback", 2}}, transactions(evs), "the error rolled back the insert before it")
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM imports WHERE id IN (802, 803)"), "neither insert stayed")
		e.verified(t, e.lastSession(t))
	})
}

// TestTransactionFate runs psql scripts whose transactions commit or roll
// back: each statement carries the transaction state after it, and a
// transaction event tells the fate and how many statements it held.
func TestTransactionFate(t *testing.T) {
	e := newEnv(t, envOptions{})
	token := e.token(okIdentity)
	for _, tc := range []struct {
		name, script string
		id           int
		wantTx       []string // of each statement
		wantEnd      []txEvent
		wantRows     int
	}{
		{name: "rollback after an error", id: 811,
			script: "begin;\ninsert into imports values (811, 'x');\nselect 1/0;\nrollback;\n",
			wantTx: []string{"in", "in", "failed", "idle"}, wantEnd: []txEvent{{"rollback", 2}}},
		{name: "commit after an error rolls back", id: 812,
			script: "begin;\ninsert into imports values (812, 'x');\nselect 1/0;\ncommit;\n",
			wantTx: []string{"in", "in", "failed", "idle"}, wantEnd: []txEvent{{"rollback", 2}}},
		{name: "commit", id: 813,
			script: "begin;\ninsert into imports values (813, 'x');\ncommit;\n",
			wantTx: []string{"in", "in", "idle"}, wantEnd: []txEvent{{"commit", 1}}, wantRows: 1},
		{name: "savepoint", id: 814,
			script: "begin;\ninsert into imports values (814, 'x');\nsavepoint s;\nselect 1/0;\nrollback to savepoint s;\ncommit;\n",
			wantTx: []string{"in", "in", "in", "failed", "in", "idle"}, wantEnd: []txEvent{{"commit", 4}}, wantRows: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := e.psql(t, okIdentity, token, "require", tc.script, "-v", "ON_ERROR_STOP=0")
			evs := e.recording(t, e.lastSession(t))
			var tx []string
			for _, ev := range evs {
				if ev.Type == recorder.EventQuery {
					tx = append(tx, ev.Tx)
				}
			}
			assert.Equal(t, tc.wantTx, tx, "transaction state after each statement (psql: %s)", out)
			assert.Equal(t, tc.wantEnd, transactions(evs))
			assert.Equal(t, tc.wantRows, e.count(t, fmt.Sprintf("SELECT count(*) FROM imports WHERE id = %d", tc.id)))
		})
	}
}

// TestPgxBinaryParameters binds parameters pgx sends in binary: they are
// recorded as the text PostgreSQL reads back to the same values.
func TestPgxBinaryParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	conn := e.pgx(t, okIdentity, e.token(okIdentity))
	u := [16]byte{0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00}
	ts := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	var num pgtype.Numeric
	require.NoError(t, num.Scan("123.4500"))
	const sql = "SELECT $1::int4 + 1, $2::uuid, $3::timestamp, $4::timestamptz, $5::float8, $6::bool, $7::int8[], $8::numeric, $9::int8"
	var got int
	var rest [8]any
	require.NoError(t, conn.QueryRow(ctx, sql, 500, u, ts, ts.In(time.FixedZone("CET", 3600)), 0.1, true, []int64{1, -2}, num, int64(-9e15)).
		Scan(&got, &rest[0], &rest[1], &rest[2], &rest[3], &rest[4], &rest[5], &rest[6], &rest[7]))
	assert.Equal(t, 501, got)
	require.NoError(t, conn.Close(ctx))

	ev := queryEvent(t, e.recording(t, e.lastSession(t)), sql)
	assert.Equal(t, []any{"500", "550e8400-e29b-41d4-a716-446655440000", "2026-03-04 05:06:07.123456",
		"2026-03-04 05:06:07.123456Z", "0.1", "true", "{1,-2}", "123.4500", "-9000000000000000"}, ev.Params)
}

// TestListenNotify receives a notification sent from another connection:
// it is recorded in the listening session.
func TestListenNotify(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	conn := e.pgx(t, okIdentity, e.token(okIdentity))
	_, err := conn.Exec(ctx, "LISTEN jobs")
	require.NoError(t, err)
	require.NoError(t, e.target.Exec(ctx, e.target.Database, "SELECT pg_notify('jobs', 'job 42 done')"))
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(wctx)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	var got []recorder.Notification
	for _, ev := range e.recording(t, e.lastSession(t)) {
		if ev.Type == recorder.EventNotification {
			got = append(got, *ev.Notification)
		}
	}
	assert.Equal(t, []recorder.Notification{{Channel: "jobs", Payload: "job 42 done", PID: n.PID}}, got)
}

// TestSessionSource records where a PostgreSQL session came from with its
// port, as SSH sessions do.
func TestSessionSource(t *testing.T) {
	e := newEnv(t, envOptions{})
	conn := e.pgx(t, okIdentity, e.token(okIdentity))
	local := conn.PgConn().Conn().LocalAddr().String()
	require.NoError(t, conn.Close(context.Background()))
	meta := e.meta(t, e.lastSession(t))
	assert.Equal(t, local, meta.Source, "got source %q, want the client's address and port", meta.Source)
}

// TestFaults: a query sent a few bytes at a time, a client that vanishes
// in the middle of a result inside a transaction, a 200 MB COPY: the
// session behaves as without the bastion and the recording says what
// happened, replays and verifies.
func TestFaults(t *testing.T) {
	e := newEnv(t, envOptions{plaintext: true, maxMsg: 1 << 20})
	ctx := context.Background()

	t.Run("messages over the limit that the bastion need not hold", func(t *testing.T) {
		conn := e.pgxDial(t, nil)
		var row string
		require.NoError(t, conn.QueryRow(ctx, "SELECT repeat('x', 3 << 20)").Scan(&row), "a row over the limit")
		assert.Len(t, row, 3<<20)
		sql := "SELECT length('" + strings.Repeat("y", 3<<20) + "')"
		res, err := conn.PgConn().Exec(ctx, sql).ReadAll()
		require.NoError(t, err, "a simple query over the limit")
		assert.Equal(t, strconv.Itoa(3<<20), string(res[0].Rows[0][0]))
		_, err = conn.Exec(ctx, "SELECT length($1::text)", strings.Repeat("z", 3<<20))
		require.Error(t, err, "a Bind over the limit ends the session")
		id := e.lastSession(t)
		evs := e.recording(t, id)
		ev := evs[len(evs)-1]
		assert.Contains(t, ev.Reason, "message too large")
		var cut *recorder.Event
		for _, x := range evs {
			if x.SQLCut != nil {
				cut = &x
			}
		}
		require.NotNil(t, cut, "the long query is recorded, cut")
		assert.Equal(t, int64(len(sql)), cut.SQLCut.Bytes)
		e.verified(t, id)
	})

	t.Run("query in many packets", func(t *testing.T) {
		conn := e.pgxDial(t, func(c net.Conn) net.Conn { return &trickle{Conn: c, n: 7} })
		sql := "SELECT count(*) FROM orders WHERE customer <> '" + strings.Repeat("z", 3000) + "'; SELECT 2"
		res, err := conn.PgConn().Exec(ctx, sql).ReadAll()
		require.NoError(t, err)
		require.Len(t, res, 2)
		assert.Equal(t, "1000", string(res[0].Rows[0][0]))
		require.NoError(t, conn.Close(ctx))
		ev := queryEvent(t, e.recording(t, e.lastSession(t)), sql)
		require.Len(t, ev.Outcomes, 2)
		assert.Equal(t, "SELECT 1", ev.Outcomes[0].Tag)
		assert.Equal(t, "SELECT 2", ev.Outcomes[1].SQL)
	})

	t.Run("client vanishes mid-result", func(t *testing.T) {
		conn := e.pgxDial(t, nil)
		_, err := conn.Exec(ctx, "BEGIN")
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "INSERT INTO imports VALUES (821, 'vanished')")
		require.NoError(t, err)
		rows, err := conn.Query(ctx, "SELECT g, repeat('x', 1000) FROM generate_series(1, 500000) g")
		require.NoError(t, err)
		require.True(t, rows.Next(), "the first rows arrive")
		conn.PgConn().Conn().Close() // gone, without Terminate
		id := e.lastSession(t)
		e.waitNoRoles(t, 10*time.Second)
		evs := e.recording(t, id)
		ev := queryEvent(t, evs, "SELECT g, repeat('x', 1000) FROM generate_series(1, 500000) g")
		require.NotNil(t, ev.Outcome)
		assert.Contains(t, ev.Outcome.Error, "no outcome", "the query was cut off")
		assert.Equal(t, []txEvent{{"rollback", 1}}, transactions(evs), "the open transaction died with the connection")
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM imports WHERE id = 821"), "the insert was rolled back")
		e.verified(t, id)
	})

	t.Run("200 MB COPY out", func(t *testing.T) {
		const rows, width = 200_000, 1000
		out, err := e.psql(t, okIdentity, e.token(okIdentity), "disable", "", "-c",
			fmt.Sprintf(`\copy (SELECT g, repeat('x', %d) FROM generate_series(1, %d) g) TO '/dev/null'`, width, rows))
		require.NoError(t, err, out)
		assert.Equal(t, fmt.Sprintf("COPY %d\n", rows), out)
		want := int64(0)
		for g := 1; g <= rows; g++ {
			want += int64(len(strconv.Itoa(g)) + 1 + width + 1)
		}
		id := e.lastSession(t)
		var ev *recorder.Event
		for _, x := range e.recording(t, id) {
			if x.Op == "copy_out" {
				ev = &x
			}
		}
		require.NotNil(t, ev, "the COPY is recorded")
		assert.Equal(t, want, ev.Bytes, "every byte copied is counted")
		require.NotNil(t, ev.Outcome)
		assert.Equal(t, fmt.Sprintf("COPY %d", rows), ev.Outcome.Tag)
		e.verified(t, id)
	})
}

// txEvent is a transaction event's fate and statement count.
type txEvent struct {
	op    string
	stmts int64
}

func transactions(evs []recorder.Event) []txEvent {
	var out []txEvent
	for _, ev := range evs {
		if ev.Type == recorder.EventTransaction {
			out = append(out, txEvent{ev.Op, ev.Statements})
		}
	}
	return out
}

// queryEvent is the query event whose SQL is sql.
func queryEvent(t *testing.T, evs []recorder.Event, sql string) recorder.Event {
	t.Helper()
	for _, ev := range evs {
		if ev.Type == recorder.EventQuery && ev.SQL == sql {
			return ev
		}
	}
	t.Fatalf("no query event for %.200q", sql)
	return recorder.Event{}
}

// recording returns every event of a finished session's recording, read
// with the JSON replay, whatever their size.
func (e *env) recording(t testing.TB, id string) []recorder.Event {
	t.Helper()
	e.events(t, id) // waits until the recording is sealed
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := recorder.FindSession(ctx, e.recStore, id)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: recorder.FormatJSON}))
	dec := json.NewDecoder(&buf)
	var out []recorder.Event
	for {
		var ev recorder.Event
		if err := dec.Decode(&ev); err == io.EOF {
			return out
		} else {
			require.NoError(t, err)
		}
		if ev.Type != "session" {
			out = append(out, ev)
		}
	}
}

// meta is a finished session's metadata: the JSON replay's first line.
func (e *env) meta(t testing.TB, id string) recorder.SessionMeta {
	t.Helper()
	e.events(t, id)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := recorder.FindSession(ctx, e.recStore, id)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: recorder.FormatJSON}))
	var first struct {
		Session recorder.SessionMeta `json:"session"`
	}
	require.NoError(t, json.NewDecoder(&buf).Decode(&first))
	return first.Session
}

// verified checks that a finished session's recording replays to its end,
// as text and as JSON, and verifies as intact.
func (e *env) verified(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := recorder.FindSession(ctx, e.recStore, id)
	require.NoError(t, err)
	for _, f := range []recorder.Format{recorder.FormatText, recorder.FormatJSON} {
		var buf bytes.Buffer
		require.NoError(t, recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: f}), "%s replay", f)
		tail := buf.Bytes()[max(0, buf.Len()-2000):]
		assert.Contains(t, string(tail), "end", "the %s replay reaches the session's end", f)
	}
	rep, err := recorder.Verify(ctx, src, e.rec.Key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	assert.True(t, rep.OK(), "verify: %+v", rep)
}

// count runs a count query on the target as its superuser.
func (e *env) count(t testing.TB, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.target.DSN(e.target.Database))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&n))
	return n
}

// pgxDial connects through a plaintext bastion with pgx, its connection
// wrapped by wrap (nil: none).
func (e *env) pgxDial(t testing.TB, wrap func(net.Conn) net.Conn) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("")
	require.NoError(t, err)
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = "127.0.0.1", uint16(e.addr.Port), okIdentity, e.token(okIdentity), targetName
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	if wrap != nil {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return wrap(c), nil
		}
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err, "connect through the bastion")
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// trickle writes n bytes at a time, each write its own packet.
type trickle struct {
	net.Conn
	n int
}

func (c *trickle) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		k, err := c.Conn.Write(p[:min(c.n, len(p))])
		done += k
		if err != nil {
			return done, err
		}
		p = p[k:]
	}
	return done, nil
}
