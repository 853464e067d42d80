package postgres

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

const (
	// eventBatch is how many completed statements are handed to the
	// recorder at once: each hand-over wakes the recorder's flusher, which
	// per statement would cost the relay a context switch per query.
	eventBatch = 64
	// eventDelay is the longest a completed statement waits for its batch;
	// the recorder's own flush interval bounds what a crash loses anyway.
	eventDelay = 25 * time.Millisecond
)

// noOutcome is the outcome of a statement still running when the session
// ended.
const noOutcome = "no outcome: the session ended while it ran"

// notExecuted is the outcome of an Execute the server skipped because an
// earlier message of its pipeline failed.
const notExecuted = "not executed: an earlier message in the pipeline failed"

// portal is a bound statement waiting for Execute.
type portal struct {
	stmt   string
	sql    string
	params []any
}

// query is a statement in flight: a simple Query, an Execute, a
// FunctionCall, or the Sync that closes a pipeline.
type query struct {
	kind     byte // 'Q', 'E', 'F' or 'S'
	ev       recorder.Event
	start    time.Time
	finished bool // its outcome is known and it is recorded
}

// audit turns the messages of a session into query events. The client
// side (statements and portals) runs on the client pump, the outcome side on
// the server pump; the queue of statements in flight is what they share.
type audit struct {
	now func() time.Time

	// Client pump only.
	stmts      map[string]string
	portals    map[string]portal
	terminated bool // the client sent Terminate

	mu    sync.Mutex
	queue []*query         // in flight, oldest first
	done  []recorder.Event // completed, waiting for their batch
	timer *time.Timer      // hands over a batch after eventDelay
	armed bool

	flushMu sync.Mutex // keeps batches in order
	rec     *recorder.Session
	recErr  error // the recorder refused an event: the session must end

	// A session relayed by the pump hands events over off its goroutine.
	hand proxy.Handover
}

func newAudit(now func() time.Time) *audit {
	return &audit{now: now, stmts: map[string]string{}, portals: map[string]portal{}}
}

// start hands completed events to rec from now on.
func (a *audit) start(rec *recorder.Session) {
	a.rec = rec
	a.timer = time.AfterFunc(time.Hour, func() { _ = a.flush() })
	a.timer.Stop()
}

// client records what a client message asks for.
func (a *audit) client(typ byte, size int, body []byte) error {
	switch typ {
	case 'Q':
		var m pgproto3.Query
		if err := m.Decode(body); err != nil {
			return err
		}
		a.push('Q', recorder.Event{SQL: m.String})
	case 'P':
		var m pgproto3.Parse
		if err := m.Decode(body); err != nil {
			return err
		}
		a.stmts[m.Name] = m.Query
	case 'B':
		return a.bind(body)
	case 'E':
		var m pgproto3.Execute
		if err := m.Decode(body); err != nil {
			return err
		}
		p := a.portals[m.Portal]
		a.push('E', recorder.Event{SQL: p.sql, Statement: p.stmt, Params: p.params})
	case 'C':
		return a.close(body)
	case 'S':
		a.push('S', recorder.Event{})
	case 'F':
		return a.functionCall(body)
	case 'd':
		a.copied(size)
	case 'X':
		a.terminated = true
	}
	return nil
}

func (a *audit) bind(body []byte) error {
	var m pgproto3.Bind
	if err := m.Decode(body); err != nil {
		return err
	}
	a.portals[m.DestinationPortal] = portal{stmt: m.PreparedStatement, sql: a.stmts[m.PreparedStatement],
		params: params(m.ParameterFormatCodes, m.Parameters)}
	return nil
}

func (a *audit) close(body []byte) error {
	var m pgproto3.Close
	if err := m.Decode(body); err != nil {
		return err
	}
	if m.ObjectType == 'S' {
		delete(a.stmts, m.Name)
	} else {
		delete(a.portals, m.Name)
	}
	return nil
}

func (a *audit) functionCall(body []byte) error {
	var m pgproto3.FunctionCall
	if err := m.Decode(body); err != nil {
		return err
	}
	a.push('F', recorder.Event{SQL: fmt.Sprintf("-- function call, oid %d", m.Function),
		Params: params(m.ArgFormatCodes, m.Arguments)})
	return nil
}

// params renders bound values for the recording: text as a string, binary
// as {"base64": ...}, NULL as null. It copies: values alias the read buffer.
func params[F int16 | uint16](formats []F, values [][]byte) []any {
	if len(values) == 0 {
		return nil
	}
	out := make([]any, len(values))
	for i, v := range values {
		switch {
		case v == nil:
			out[i] = nil
		case format(formats, i) == 1:
			out[i] = map[string]string{"base64": base64.StdEncoding.EncodeToString(v)}
		default:
			out[i] = string(v)
		}
	}
	return out
}

// format is parameter i's format code: none listed means text, one means
// all alike.
func format[F int16 | uint16](formats []F, i int) F {
	switch {
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

func (a *audit) push(kind byte, ev recorder.Event) {
	q := &query{kind: kind, ev: ev, start: a.now()}
	q.ev.Type = recorder.EventQuery
	a.mu.Lock()
	a.queue = append(a.queue, q)
	a.mu.Unlock()
}

// current is the statement the server works on; called locked.
func (a *audit) current() *query {
	for _, q := range a.queue {
		if !q.finished && q.kind != 'S' {
			return q
		}
	}
	return nil
}

// copied counts CopyData bytes of the statement running COPY.
func (a *audit) copied(n int) {
	a.mu.Lock()
	if q := a.current(); q != nil {
		q.ev.Bytes += int64(n)
	}
	a.mu.Unlock()
}

// server reads the outcome of statements out of a server message.
func (a *audit) server(typ byte, size int, body []byte) error {
	switch typ {
	case 'C':
		var m pgproto3.CommandComplete
		if err := m.Decode(body); err != nil {
			return err
		}
		a.complete(string(m.CommandTag))
	case 'I':
		a.complete("EMPTY")
	case 's':
		a.complete("PORTAL SUSPENDED")
	case 'V':
		a.complete("FUNCTION CALL")
	case 'E':
		var m pgproto3.ErrorResponse
		if err := m.Decode(body); err != nil {
			return err
		}
		a.fail(m.Code, m.Message)
	case 'Z':
		a.ready()
	case 'G':
		a.copyStarted("copy_in")
	case 'H':
		a.copyStarted("copy_out")
	case 'W':
		a.copyStarted("copy_both")
	case 'd':
		a.copied(size)
	}
	return nil
}

// complete sets the outcome of the current statement. A simple Query may
// hold several statements; it is recorded at ReadyForQuery with the last tag.
func (a *audit) complete(tag string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.current()
	if q == nil {
		return
	}
	q.ev.Outcome = &recorder.Outcome{Tag: tag, Rows: rowsOf(tag)}
	if q.kind != 'Q' {
		a.finish(q)
		a.trim()
	}
}

func (a *audit) fail(code, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.current()
	if q == nil {
		return // an error of Parse/Bind/Describe with no Execute, or a FATAL
	}
	q.ev.Outcome = &recorder.Outcome{ErrorCode: code, Error: msg}
	if q.kind != 'Q' {
		a.finish(q)
	}
}

func (a *audit) copyStarted(op string) {
	a.mu.Lock()
	if q := a.current(); q != nil {
		q.ev.Op = op
	}
	a.mu.Unlock()
}

// ready ends the Query, FunctionCall or pipeline (up to its Sync) that
// ReadyForQuery answers. Executes of the pipeline that never completed
// were skipped by the server after an error.
func (a *audit) ready() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.queue) > 0 {
		q := a.queue[0]
		a.queue[0] = nil
		a.queue = a.queue[1:]
		if !q.finished && q.kind != 'S' {
			if q.ev.Outcome == nil && q.kind == 'E' {
				q.ev.Outcome = &recorder.Outcome{Error: notExecuted}
			}
			a.finish(q)
		}
		if q.kind != 'E' {
			return
		}
	}
}

// abandon records the statements still in flight when the session ended:
// what was sent belongs in the recording even without its outcome.
func (a *audit) abandon() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, q := range a.queue {
		if !q.finished && q.kind != 'S' {
			if q.ev.Outcome == nil {
				q.ev.Outcome = &recorder.Outcome{Error: noOutcome}
			}
			a.finish(q)
		}
	}
	a.queue = nil
}

// finish records q; called locked.
func (a *audit) finish(q *query) {
	q.finished = true
	q.ev.Time = q.start
	q.ev.DurationMS = float64(a.now().Sub(q.start).Microseconds()) / 1000
	a.done = append(a.done, q.ev)
	if !a.armed && a.timer != nil {
		a.armed = true
		a.timer.Reset(eventDelay)
	}
}

// trim drops finished Executes from the head of the queue; called locked.
func (a *audit) trim() {
	for len(a.queue) > 0 && a.queue[0].finished {
		a.queue[0] = nil
		a.queue = a.queue[1:]
	}
}

// rowsOf reads the row count out of a command tag ("SELECT 5",
// "INSERT 0 5", "UPDATE 5", "COPY 5"); nil when the tag has none.
func rowsOf(tag string) *int64 {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return nil
	}
	n, err := strconv.ParseInt(tag[i+1:], 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// pending is how many completed statements wait for the recorder.
func (a *audit) pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.done)
}

// due reports whether a full batch waits.
func (a *audit) due() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.done) >= eventBatch
}

// flush hands the completed events to the recorder, in order; it returns
// the recorder's error once the session cannot be recorded.
func (a *audit) flush() error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	batch := a.done
	a.done, a.armed = nil, false
	a.mu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
	}
	for _, ev := range batch {
		if a.recErr != nil {
			break
		}
		a.recErr = a.rec.Event(ev)
	}
	return a.recErr
}
