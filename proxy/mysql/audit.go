package mysql

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sallyport/sallyport/proxy"
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
type command struct {
	cmd    byte
	record bool
	ev     recorder.Event
	start  time.Time
	sql    string // COM_STMT_PREPARE: the statement

	state respState
	left  int   // definitions left in the current block
	cols  int   // prepare: column count, after the parameters
	rows  int64 // rows of the current result set
}

// stmt is a prepared statement as the audit knows it.
type stmt struct {
	sql    string
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

	mu       sync.Mutex
	idle     *sync.Cond // signalled when the queue empties or the session stops
	stopped  bool
	queue    []*command
	stmts    map[uint32]*stmt
	lastStmt uint32

	// Server pump only: events completed by the current read, handed to the
	// recorder after the bytes went on to the client.
	done []recorder.Event
	// violation is set when the target sent what must not reach the client.
	violation string

	// A session relayed by the pump hands events over off its goroutine.
	hand proxy.Handover
}

func newAudit(now func() time.Time, deprecateEOF bool) *audit {
	a := &audit{now: now, deprecateEOF: deprecateEOF, stmts: map[uint32]*stmt{}}
	a.idle = sync.NewCond(&a.mu)
	return a
}

// client records a command the client sent, before it goes upstream.
func (a *audit) client(p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("empty command packet")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &command{cmd: p[0], start: a.now()}
	body := p[1:]
	switch p[0] {
	case comQuit:
		return nil
	case comQuery:
		c.record, c.ev.SQL = true, sqlText(body)
	case comInitDB:
		c.record, c.ev.SQL = true, "USE "+quoteIdent(string(body))
	case comProcessKill:
		if len(body) >= 4 {
			c.record, c.ev.SQL = true, fmt.Sprintf("KILL %d", le32(body))
		}
	case comStmtPrepare:
		c.sql = sqlText(body)
	case comStmtExecute:
		return a.execute(c, body)
	case comStmtSendLongData:
		a.longData(body)
		return nil
	case comStmtClose:
		if len(body) >= 4 {
			delete(a.stmts, a.stmtID(le32(body)))
		}
		return nil
	case comStmtReset:
		if st := a.stmt(body); st != nil {
			st.long = nil
		}
	case comResetConnection:
		clear(a.stmts)
	}
	a.queue = append(a.queue, c)
	return nil
}

// execute decodes a COM_STMT_EXECUTE with the statement's parameter types.
func (a *audit) execute(c *command, body []byte) error {
	c.record = true
	a.queue = append(a.queue, c)
	if len(body) < 4 {
		return nil // the target will refuse it; the outcome is recorded
	}
	id := a.stmtID(le32(body))
	c.ev.Statement = strconv.FormatUint(uint64(id), 10)
	st := a.stmts[id]
	if st == nil {
		return nil
	}
	c.ev.SQL = st.sql
	params, err := decodeExecute(body, st)
	st.long = nil
	if err != nil {
		c.ev.Params = []any{map[string]string{"undecoded": err.Error()}}
		return nil // a malformed execute is the target's to refuse
	}
	c.ev.Params = params
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
		st.long[param] = &longData{}
	}
	st.long[param].add(body[6:])
}

// longData is a parameter sent in chunks: its first bytes and its size
// (the audit does not hold a large value in memory).
type longData struct {
	head []byte
	size int
}

func (l *longData) add(chunk []byte) {
	l.size += len(chunk)
	if room := maxRecordedValue - len(l.head); room > 0 {
		l.head = append(l.head, chunk[:min(room, len(chunk))]...)
	}
}

// value is how the parameter is recorded.
func (l *longData) value() any {
	if l.size <= maxRecordedValue {
		return text(l.head)
	}
	return map[string]any{"bytes": l.size, "prefix": text(l.head[:recordedPrefix])}
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
	return len(a.queue) > 0
}

// waitIdle blocks until no command waits for a response; it reports false
// when the session stopped meanwhile.
func (a *audit) waitIdle() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.queue) > 0 && !a.stopped {
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

// pending is how many completed events wait for the recorder.
func (a *audit) pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.done)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
