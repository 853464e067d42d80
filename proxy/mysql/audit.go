package mysql

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/proxy/sqlredact"
	"github.com/sallyport/sallyport/recorder"
)

// Commands (the first byte of a client packet).
const (
	comQuit             = 0x01
	comInitDB           = 0x02
	comQuery            = 0x03
	comFieldList        = 0x04
	comStatistics       = 0x09
	comProcessInfo      = 0x0a
	comProcessKill      = 0x0c
	comPing             = 0x0e
	comStmtPrepare      = 0x16
	comStmtExecute      = 0x17
	comStmtSendLongData = 0x18
	comStmtClose        = 0x19
	comStmtReset        = 0x1a
	comSetOption        = 0x1b
	comStmtFetch        = 0x1c
	comResetConnection  = 0x1f
)

// relayed are the commands sent on to the target. Others (COM_CHANGE_USER,
// replication, shutdown, …) are refused: a session is one user doing
// queries.
var relayed = [256]bool{comQuit: true, comInitDB: true, comQuery: true, comFieldList: true, comStatistics: true,
	comProcessInfo: true, comProcessKill: true, comPing: true, comStmtPrepare: true, comStmtExecute: true,
	comStmtSendLongData: true, comStmtClose: true, comStmtReset: true, comSetOption: true, comStmtFetch: true,
	comResetConnection: true}

// Tags of recorded outcomes.
const (
	tagOK     = "OK"     // an OK packet; rows is the affected rows
	tagRows   = "ROWS"   // a result set; rows is how many rows it had
	tagCursor = "CURSOR" // a prepared statement opened a cursor; rows come by COM_STMT_FETCH
)

// lastStatement is the statement id MariaDB reads as "the one prepared last".
const lastStatement = 0xffffffff

// respState is where a command's response is.
type respState uint8

const (
	stFirst          respState = iota // the first packet of a (next) result
	stColumns                         // column definitions of a result set
	stColumnsEOF                      // the EOF after them
	stRows                            // rows up to EOF/OK
	stParams                          // parameter definitions of a prepare
	stParamsEOF                       // the EOF after them
	stPrepColumns                     // column definitions of a prepare
	stPrepColumnsEOF                  // the EOF after them
)

// command is a client command waiting for (the rest of) its response.
// The audit reuses them: one is not kept once finished.
type command struct {
	cmd    byte
	record bool
	start  time.Time
	// sql is the recorded text; of a COM_STMT_PREPARE, the statement,
	// recorded only when the target refuses it. cut, when set, says sql
	// is the prefix of a longer text (recordings.max_statement_bytes).
	sql string
	cut *recorder.Cut
	// parts are the statements of a cut multi-statement text, split
	// before it was cut; nil: split sql when they are needed.
	parts     []string
	statement string // the prepared statement's id
	params    []any
	red       *sqlredact.Removed // what was removed from sql and params

	state respState
	left  int   // definitions left in the current block
	cols  int   // prepare: column count, after the parameters
	rows  int64 // rows of the current result set

	bytes  int64  // of the current result, packet headers included
	status uint16 // server status that ended the current result
	known  bool   // status was read (an ERR carries none)
	// results are the results before the current one of a multi-result
	// response (several statements, a CALL); nil for one result.
	results []result
}

// result is one finished result of a multi-result response.
type result struct {
	o      *recorder.Outcome
	status uint16
	known  bool
}

// stmt is a prepared statement as the audit knows it.
type stmt struct {
	sql    string
	cut    *recorder.Cut      // sql is a prefix
	name   string             // its id as recorded; made by the first execute
	red    *sqlredact.Removed // the passwords of sql; made by the first execute
	params int
	types  []byte               // 2 bytes per parameter, from the last execute that sent them
	long   map[uint16]*longData // COM_STMT_SEND_LONG_DATA, until the next execute
}

// audit turns the commands of a session into query events. Commands come
// from the client pump, their responses on the server pump; the queue of
// commands in flight and the prepared statements are what they share.
type audit struct {
	now          func() time.Time
	deprecateEOF bool
	// max is recordings.max_statement_bytes: longer statement texts and
	// parameters are recorded cut (see recorder.CutSQL); 0: no cap.
	max int
	// multiStatements says the target splits a COM_QUERY at semicolons
	// (CLIENT_MULTI_STATEMENTS, or COM_SET_OPTION since).
	multiStatements bool

	mu      sync.Mutex
	idle    *sync.Cond // signalled when the queue empties or the session stops
	stopped bool
	// queue[head:] are the commands waiting for responses, oldest first.
	queue    []*command
	head     int
	free     []*command // finished, for the next commands
	stmts    map[uint32]*stmt
	lastStmt uint32
	// lastSQL is the last statement text seen: a client that sends the
	// same text again (a poller, a prepare per query) gets it without a
	// copy, and without scanning it for passwords again (lastClean and
	// lastRed are its redaction when lastRedOK).
	lastSQL   string
	lastClean string
	lastRed   *sqlredact.Removed
	lastRedOK bool
	outcomes  outcomes
	tx        txState

	// Server pump only: events completed by the current read, handed to the
	// recorder after the bytes went on to the client.
	done []recorder.Event
	// violation is set when the target sent what must not reach the client.
	violation string

	// A session relayed by the pump hands events over off its goroutine.
	hand proxy.Handover
}

// newAudit is the audit of a session: uncapped, multi-statements on, no
// transaction open, until configure says otherwise.
func newAudit(now func() time.Time, deprecateEOF bool) *audit {
	a := &audit{now: now, deprecateEOF: deprecateEOF, stmts: map[uint32]*stmt{}, multiStatements: true}
	a.idle = sync.NewCond(&a.mu)
	return a
}

// configure sets the recording's statement cap, whether the client asked
// for multi-statements, and the server status the login ended with.
func (a *audit) configure(max int, multiStatements bool, status uint16) {
	a.max, a.multiStatements = max, multiStatements
	a.tx.in = status&statusInTrans != 0
}

// client records a command the client sent, before it goes upstream.
func (a *audit) client(p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("empty command packet")
	}
	if p[0] == comQuit {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	body := p[1:]
	switch p[0] {
	case comStmtSendLongData:
		a.longData(body)
		return nil
	case comStmtClose:
		if len(body) >= 4 {
			delete(a.stmts, a.stmtID(le32(body)))
		}
		return nil
	}
	c := a.command(p[0])
	switch p[0] {
	case comQuery:
		c.record = true
		a.statementText(c, body)
	case comInitDB:
		c.record, c.sql = true, "USE "+quoteIdent(string(body))
	case comProcessKill:
		if len(body) >= 4 {
			c.record, c.sql = true, fmt.Sprintf("KILL %d", le32(body))
		}
	case comStmtPrepare:
		a.statementText(c, body)
	case comStmtExecute:
		return a.execute(c, body)
	case comStmtReset:
		if st := a.stmt(body); st != nil {
			st.long = nil
		}
	case comResetConnection:
		clear(a.stmts)
	case comSetOption:
		if len(body) >= 2 { // MYSQL_OPTION_MULTI_STATEMENTS_ON (0) or _OFF (1)
			a.multiStatements = body[0] == 0 && body[1] == 0
		}
	}
	a.push(c)
	return nil
}

// command is a new command sent now; called locked.
func (a *audit) command(cmd byte) *command {
	var c *command
	if n := len(a.free); n > 0 {
		c, a.free = a.free[n-1], a.free[:n-1]
	} else {
		c = new(command)
	}
	c.cmd, c.start = cmd, a.now()
	return c
}

// keepFree bounds the finished commands kept for reuse.
const keepFree = 8

// release takes back a command that is done with.
func (a *audit) release(c *command) {
	*c = command{}
	if len(a.free) < keepFree {
		a.free = append(a.free, c)
	}
}

// push queues c for its response.
func (a *audit) push(c *command) {
	if a.head > 0 && len(a.queue) == cap(a.queue) { // clients that pipeline: reuse the room in front
		n := copy(a.queue, a.queue[a.head:])
		clear(a.queue[n:])
		a.queue, a.head = a.queue[:n], 0
	}
	a.queue = append(a.queue, c)
}

// pop removes the command at the head of the queue.
func (a *audit) pop() {
	a.queue[a.head] = nil
	a.head++
	if a.head == len(a.queue) {
		a.queue, a.head = a.queue[:0], 0
		a.idle.Broadcast()
	}
}

// waiting is how many commands wait for a response.
func (a *audit) waiting() int {
	return len(a.queue) - a.head
}

// maxCachedSQL bounds the statement text kept in lastSQL.
const maxCachedSQL = 4 << 10

// text is statement text b as a string.
func (a *audit) text(b []byte) string {
	if string(b) == a.lastSQL {
		return a.lastSQL
	}
	s := string(b)
	if len(s) <= maxCachedSQL {
		a.lastSQL, a.lastRedOK = s, false
	}
	return s
}

// redacted is statement text b without its passwords, and what was
// removed; a text that repeats the last one is not scanned again.
func (a *audit) redacted(b []byte) (string, *sqlredact.Removed) {
	if a.lastRedOK && string(b) == a.lastSQL {
		return a.lastClean, a.lastRed
	}
	text := a.text(b)
	clean, red := sqlredact.Statement(sqlredact.MySQL, text)
	if len(text) <= maxCachedSQL { // text is lastSQL
		a.lastClean, a.lastRed, a.lastRedOK = clean, red, true
	}
	return clean, red
}

// statementText sets the text c records: body without its passwords, cut
// to the recording's cap. A text over the cap is read where it lies in
// the packet and only its cut is copied: a 100 MB INSERT costs a scan and
// a hash, not copies.
func (a *audit) statementText(c *command, body []byte) {
	if a.max <= 0 || len(body) <= a.max {
		c.sql, c.red = a.redacted(body)
		if a.max > 0 && len(c.sql) > a.max { // redaction made it longer
			c.sql, c.cut = recorder.CutSQL(c.sql, a.max)
		}
		return
	}
	whole := unsafe.String(&body[0], len(body)) // valid during this call only: nothing below keeps it
	sql, red := sqlredact.Statement(sqlredact.MySQL, whole)
	if c.cmd == comQuery && a.multiStatements {
		if parts := sqlredact.Split(sqlredact.MySQL, sql); len(parts) > 1 {
			c.parts = make([]string, len(parts))
			for i, p := range parts {
				p, _ = recorder.CutSQL(p, a.max)
				c.parts[i] = strings.Clone(p)
			}
		}
	}
	prefix, cut := recorder.CutSQL(sql, a.max)
	c.sql, c.cut, c.red = strings.Clone(prefix), cut, cloneRemoved(red)
}

// cloneRemoved is rm with its own copies of the secrets, which may lie in
// a packet's buffer.
func cloneRemoved(rm *sqlredact.Removed) *sqlredact.Removed {
	if rm == nil {
		return nil
	}
	out := &sqlredact.Removed{Params: rm.Params, Secrets: make([]string, len(rm.Secrets))}
	for i, s := range rm.Secrets {
		out.Secrets[i] = strings.Clone(s)
	}
	return out
}

// execute decodes a COM_STMT_EXECUTE with the statement's parameter types.
func (a *audit) execute(c *command, body []byte) error {
	c.record = true
	a.push(c)
	if len(body) < 4 {
		return nil // the target will refuse it; the outcome is recorded
	}
	id := a.stmtID(le32(body))
	st := a.stmts[id]
	if st == nil {
		c.statement = strconv.FormatUint(uint64(id), 10)
		return nil
	}
	if st.name == "" {
		st.name = strconv.FormatUint(uint64(id), 10)
		_, st.red = sqlredact.Statement(sqlredact.MySQL, st.sql) // sql is redacted already: this finds its placeholders in password positions
	}
	c.statement, c.sql, c.cut, c.red = st.name, st.sql, st.cut, st.red
	params, err := decodeExecute(body, st, a.max)
	st.long = nil
	if err != nil {
		c.params = []any{map[string]string{"undecoded": err.Error()}}
		return nil // a malformed execute is the target's to refuse
	}
	c.params, c.red = params, sqlredact.Bound(sqlredact.MySQL, params, st.red)
	cutParams(params, a.max)
	return nil
}

// longData keeps a COM_STMT_SEND_LONG_DATA chunk for the next execute.
func (a *audit) longData(body []byte) {
	st := a.stmt(body)
	if st == nil || len(body) < 6 {
		return
	}
	param := uint16(body[4]) | uint16(body[5])<<8
	if st.long == nil {
		st.long = map[uint16]*longData{}
	}
	if st.long[param] == nil {
		st.long[param] = &longData{max: a.max}
	}
	st.long[param].add(body[6:])
}

func (a *audit) stmt(body []byte) *stmt {
	if len(body) < 4 {
		return nil
	}
	return a.stmts[a.stmtID(le32(body))]
}

func (a *audit) stmtID(id uint32) uint32 {
	if id == lastStatement {
		return a.lastStmt
	}
	return id
}

// inFlight reports whether a command waits for its response.
func (a *audit) inFlight() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting() > 0
}

// waitIdle blocks until no command waits for a response; it reports false
// when the session stopped meanwhile.
func (a *audit) waitIdle() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.waiting() > 0 && !a.stopped {
		a.idle.Wait()
	}
	return !a.stopped
}

// stop releases waitIdle.
func (a *audit) stop() {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.idle.Broadcast()
}

// local records a command the bastion answered itself.
func (a *audit) local(sql string, outcome *recorder.Outcome) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.done = append(a.done, recorder.Event{Type: recorder.EventQuery, Time: now, SQL: sql, Outcome: outcome})
}

// serverViolation is why the target's last bytes must not be forwarded;
// empty when they may.
func (a *audit) serverViolation() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.violation
}

// take returns the completed events, leaving spare (emptied) to collect
// the next ones.
func (a *audit) take(spare []recorder.Event) []recorder.Event {
	clear(spare)
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.done
	a.done = spare[:0]
	return out
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
