package mysql_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// byType are the events of one type.
func byType(evs []recorder.Event, typ string) []recorder.Event {
	var out []recorder.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// superuser is a pool of the sandbox's all-privileges login, straight to
// the server: it reads what the sessions wrote.
func (e *env) superuser(t *testing.T) *sql.DB {
	t.Helper()
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = e.target.User, e.target.Password, "tcp", e.target.Addr(), targetName
	return e.dbWith(t, cfg)
}

// importCount counts the rows of billing.imports matching where.
func (e *env) importCount(t *testing.T, where string) int {
	t.Helper()
	var n int
	require.NoError(t, e.superuser(t).QueryRow("SELECT COUNT(*) FROM imports WHERE "+where).Scan(&n))
	return n
}

// TestMultiStatementOutcomes sends the multi-statement query with
// the mariadb client (between DELIMITER lines it sends the text as one
// COM_QUERY): the insert commits, the select is refused, the delete never
// runs, and the recording says each of these.
func TestMultiStatementOutcomes(t *testing.T) {
	e := newEnv(t, envOptions{})
	const q = "insert into imports (id) values (777); select * from payroll; delete from imports where id=777"
	out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "DELIMITER //\n"+q+"//\n", "-D", targetName, "--ssl")
	require.Error(t, err, "mariadb: %s", out)
	assert.Contains(t, out, "ERROR 1142", "mariadb output: %s", out)
	assert.Equal(t, 1, e.importCount(t, "id = 777"), "row 777 stays: the insert committed, the delete did not run")

	id := e.lastSession(t)
	ev := bySQL(t, e.events(t, id), q)
	require.Len(t, ev.Outcomes, 3, "one outcome per statement: %+v", ev.Outcomes)
	ins, sel, del := ev.Outcomes[0], ev.Outcomes[1], ev.Outcomes[2]
	assert.Equal(t, "insert into imports (id) values (777)", ins.SQL)
	assert.Equal(t, "OK", ins.Tag)
	require.NotNil(t, ins.Rows)
	assert.Equal(t, int64(1), *ins.Rows)
	assert.Equal(t, "select * from payroll", sel.SQL)
	assert.Equal(t, "1142", sel.ErrorCode)
	assert.Equal(t, "delete from imports where id=777", del.SQL)
	assert.True(t, del.NotExecuted, "MariaDB stops at the first error")
	require.NotNil(t, ev.Outcome)
	assert.Equal(t, "1142", ev.Outcome.ErrorCode, "the event's outcome is the first error")
	e.verified(t, id)
}

// TestTransactionEvents: a rolled-back transaction and a committed one, in
// one mariadb session, are recorded with their fate and statement counts,
// and the statements in them with tx "in".
func TestTransactionEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	script := "begin; insert into imports (id) values (501); select 1/0; rollback;\n" +
		"begin; insert into imports (id) values (502); commit;\n" +
		"insert into imports (id) values (503);\n"
	out, err := e.mariadb(t, okIdentity, e.token(okIdentity), script, "-D", targetName, "--ssl")
	require.NoError(t, err, "mariadb: %s", out)
	assert.Equal(t, 0, e.importCount(t, "id = 501"), "rolled back")
	assert.Equal(t, 1, e.importCount(t, "id = 502"), "committed")

	id := e.lastSession(t)
	evs := e.recording(t, id)
	var got []string
	for _, ev := range byType(evs, recorder.EventTransaction) {
		got = append(got, ev.Op+" "+strconv.FormatInt(ev.Statements, 10))
	}
	assert.Equal(t, []string{"rollback 2", "commit 1"}, got, "the insert and the select rolled back; one insert committed")
	assert.Equal(t, "in", bySQL(t, evs, "insert into imports (id) values (501)").Tx)
	assert.Equal(t, "idle", bySQL(t, evs, "rollback").Tx)
	assert.Equal(t, "idle", bySQL(t, evs, "insert into imports (id) values (503)").Tx, "autocommit")
	e.verified(t, id)
}

// TestLargeStatement: a multi-megabyte INSERT, and ones of 20 and 100 MB
// that the client splits across packets (limits raised on both the
// server and the bastion), run as without the bastion and are recorded as
// their size, SHA-256 and first max_statement_bytes.
func TestLargeStatement(t *testing.T) {
	e := newEnv(t, envOptions{maxMsg: 128 << 20})
	require.NoError(t, e.target.MariaDB.Exec(context.Background(), "", "SET GLOBAL max_allowed_packet = 128*1024*1024"))
	cfg := e.driverConfig(okIdentity, e.token(okIdentity))
	cfg.MaxAllowedPacket = 128 << 20
	db := e.dbWith(t, cfg)
	db.SetMaxOpenConns(1)
	sizes := map[int]int{901: 3 << 20, 902: 20 << 20, 903: 100 << 20}
	stmts := map[int]string{}
	for id, n := range sizes {
		stmts[id] = "INSERT INTO imports (id, raw) VALUES (" + strconv.Itoa(id) + ", '" + strings.Repeat("z", n) + "')"
		_, err := db.Exec(stmts[id])
		require.NoError(t, err, "a %d-byte statement", len(stmts[id]))
		var length int
		require.NoError(t, e.superuser(t).QueryRow("SELECT LENGTH(raw) FROM imports WHERE id = ?", id).Scan(&length))
		assert.Equal(t, n, length, "the whole value reached the table")
	}
	require.NoError(t, db.Close())

	id := e.lastSession(t)
	evs := e.events(t, id)
	for rowID, sql := range stmts {
		var ev *recorder.Event
		for i := range evs {
			if evs[i].SQLCut != nil && strings.HasPrefix(evs[i].SQL, "INSERT INTO imports (id, raw) VALUES ("+strconv.Itoa(rowID)) {
				ev = &evs[i]
			}
		}
		require.NotNil(t, ev, "the %d-byte INSERT is recorded cut", len(sql))
		sum := sha256.Sum256([]byte(sql))
		assert.Equal(t, int64(len(sql)), ev.SQLCut.Bytes)
		assert.Equal(t, hex.EncodeToString(sum[:]), ev.SQLCut.SHA256, "the SHA-256 of the statement sent")
		assert.Equal(t, sql[:recorder.DefaultMaxStatementBytes], ev.SQL, "its first max_statement_bytes")
		require.NotNil(t, ev.Outcome)
		assert.Equal(t, "OK", ev.Outcome.Tag)
	}
	e.verified(t, id)
}

// TestKillQueryRecordedInKilledSession: Ctrl-C of the mariadb client's
// SELECT SLEEP(30) sends KILL QUERY on a new connection; the session whose
// query it ended records a cancel event naming the session it came
// through and its client address.
func TestKillQueryRecordedInKilledSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	before := len(e.sessionIDs())
	e.ctrlC(t, okIdentity, "-D", targetName)
	var killed, killer string
	for _, id := range e.sessionIDs()[before:] {
		for _, ev := range e.recording(t, id) {
			switch {
			case ev.Type == recorder.EventQuery && ev.SQL == "SELECT SLEEP(30)":
				killed = id
			case ev.Type == recorder.EventQuery && strings.HasPrefix(ev.SQL, "KILL QUERY "):
				killer = id
			}
		}
	}
	require.NotEmpty(t, killed, "the killed session")
	require.NotEmpty(t, killer, "the killing session")
	evs := e.recording(t, killed)
	cancels := byType(evs, recorder.EventCancel)
	require.Len(t, cancels, 1, "the cancel is in the killed query's session")
	assert.Contains(t, cancels[0].From, "session "+killer+" (127.0.0.1:", "who sent it")
	assert.True(t, strings.HasPrefix(cancels[0].SQL, "KILL QUERY "), "the KILL as sent: %q", cancels[0].SQL)
	sleep := bySQL(t, evs, "SELECT SLEEP(30)")
	require.NotNil(t, sleep.Outcome)
	assert.Equal(t, "1317", sleep.Outcome.ErrorCode, "the query was interrupted")
	e.verified(t, killed)
}

// TestCreateSchemaLogin: mysqlslap --create-schema logs in without a
// database first; with -u IDENTITY@TARGET it runs, with -u IDENTITY alone
// it is told that form.
func TestCreateSchemaLogin(t *testing.T) {
	e := newEnv(t, envOptions{})
	bin := clientBinary(t, "mysqlslap")
	slap := func(user string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", strconv.Itoa(e.addr.Port),
			"-u", user, "--create-schema="+targetName, "--no-drop", "--query="+pointQuery,
			"--concurrency=2", "--number-of-queries=20", "--iterations=1", "--ssl")
		cmd.Env = append(cmd.Environ(), "MYSQL_PWD="+e.token(okIdentity))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := slap(okIdentity + "@" + targetName)
	require.NoError(t, err, "mysqlslap: %s", out)
	assert.Contains(t, out, "Average number of seconds to run all queries", out)

	out, err = slap(okIdentity)
	require.Error(t, err, "mysqlslap: %s", out)
	assert.Contains(t, out, "-u IDENTITY@TARGET", "the error names the form that works: %s", out)

	out, err = e.mariadb(t, okIdentity+"@"+targetName, e.token(okIdentity), "", "--ssl", "-e", "SELECT DATABASE()")
	require.NoError(t, err, "mariadb: %s", out)
	assert.Equal(t, targetName, strings.TrimSpace(out), "without -D the session starts in the target's database")
}

// TestClientVanishesMidResult kills the mariadb client while the bastion
// relays a result it never finishes reading: the session ends, and the
// recording says the statement got no complete response and how much of
// it crossed.
func TestClientVanishesMidResult(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const q = "SELECT REPEAT('x', 100000) FROM orders a, orders b"
	cmd := e.mariadbCmd(ctx, t, okIdentity, e.token(okIdentity), "-D", targetName, "--ssl", "--quick", "-e", q)
	stdout, err := cmd.StdoutPipe() // never read: the client stalls, then the bastion
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer stdout.Close()
	e.waitRunning(t, q)
	time.Sleep(500 * time.Millisecond) // buffers fill
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	e.waitNoUsers(t, 10*time.Second)
	id := e.lastSession(t)
	evs := e.events(t, id)
	ev := bySQL(t, evs, q)
	require.NotNil(t, ev.Outcome)
	assert.Contains(t, ev.Outcome.Error, "no complete response: the session ended (client", "outcome: %+v", ev.Outcome)
	assert.Positive(t, ev.Outcome.Bytes, "what crossed before the client vanished")
	assert.Contains(t, evs[len(evs)-1].Reason, "client", "the end says why")
	e.verified(t, id)
}
