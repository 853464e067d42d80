package postgres

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/proxy/sqlredact"
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

// prepared is a statement the client parsed; name is the map's key, kept
// so a Bind can name it without a copy.
type prepared struct {
	name, sql string
	red       *sqlredact.Removed // what was removed from sql; nil for none
}

// portal is a bound statement waiting for Execute.
type portal struct {
	stmt   string
	sql    string
	params []any
	red    *sqlredact.Removed
}

// query is a statement in flight: a simple Query, an Execute, a
// FunctionCall, or the Sync that closes a pipeline. The queue holds them
// by value and reuses its room: a query costs no heap object of its own.
type query struct {
	kind     byte // 'Q', 'E', 'F' or 'S'
	finished bool // its outcome is known and it is recorded
	start    time.Time
	sql      string
	stmt     string
	params   []any
	red      *sqlredact.Removed // what was removed from sql and params
	op       string             // the COPY it started
	bytes    int64              // of CopyData
	outcome  outcome
}

// outcome is a statement's outcome until it is recorded.
type outcome struct {
	known   bool
	out     recorder.Outcome // without Rows: see rows
	rows    int64
	hasRows bool
}

// outcomeSlot holds a recorded Outcome and its row count; they are
// allocated outcomeSlab at a time.
type outcomeSlot struct {
	out  recorder.Outcome
	rows int64
}

// outcomeSlab is how many outcomes one allocation holds.
const outcomeSlab = 16

// audit turns the messages of a session into query events. The client
// side (statements and portals) runs on the client's flow, the outcome
// side on the target's; each scan holds mu, which also guards the queue of
// statements in flight and the completed ones.
type audit struct {
	now func() time.Time

	// Client side only.
	stmts      map[string]prepared
	portals    map[string]portal
	terminated bool   // the client sent Terminate
	lastSQL    string // the previous Query's text, reused when it repeats

	mu      sync.Mutex
	queue   []query // in flight from head on, oldest first
	head    int
	done    []recorder.Event // completed, waiting for their batch
	spare   []recorder.Event // the last batch's room, for the next one
	slab    []outcomeSlot    // room for the outcomes of events to come
	lastTag string           // the previous CommandComplete tag, reused when it repeats
	timer   *time.Timer      // hands over a batch after eventDelay
	armed   bool

	flushMu sync.Mutex // keeps batches in order
	rec     *recorder.Session
	recErr  error // the recorder refused an event: the session must end

	// A session relayed by the pump hands events over off its goroutine.
	hand proxy.Handover
}

func newAudit(now func() time.Time) *audit {
	return &audit{now: now, stmts: map[string]prepared{}, portals: map[string]portal{}}
}

// start hands completed events to rec from now on.
func (a *audit) start(rec *recorder.Session) {
	a.rec = rec
	a.timer = time.AfterFunc(time.Hour, func() { _ = a.flush() })
	a.timer.Stop()
}

// scan feeds p, read from one side, to that side's scanner, whose handler
// is a.client or a.server, and returns how many completed statements wait
// for the recorder. One lock covers every message of the read.
func (a *audit) scan(f *frameScanner, p []byte) (pending int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	err = f.feed(p)
	return len(a.done), err
}

// client records what a client message asks for; called locked (scan).
func (a *audit) client(typ byte, size int, body []byte) error {
	switch typ {
	case 'Q':
		sql, err := readQuery(body)
		if err != nil {
			return err
		}
		text, red := sqlredact.Statement(sqlredact.PostgreSQL, reuse(&a.lastSQL, sql))
		a.push('Q', text, "", nil, red)
	case 'P':
		name, sql, err := readParse(body)
		if err != nil {
			return err
		}
		a.prepare(name, sql)
	case 'B':
		return a.bind(body)
	case 'E':
		name, err := readExecute(body)
		if err != nil {
			return err
		}
		p := a.portals[string(name)]
		a.push('E', p.sql, p.stmt, p.params, p.red)
	case 'C':
		return a.close(body)
	case 'S':
		a.push('S', "", "", nil, nil)
	case 'F':
		return a.functionCall(body)
	case 'd':
		a.copied(size)
	case 'X':
		a.terminated = true
	}
	return nil
}

// prepare keeps a parsed statement, without its passwords; one parsed
// again as it was (the unnamed statement of every query of a driver that
// does not cache) costs no copy.
func (a *audit) prepare(name, sql []byte) {
	if p, ok := a.stmts[string(name)]; ok && p.red == nil && p.sql == string(sql) {
		return
	}
	n := string(name)
	text, red := sqlredact.Statement(sqlredact.PostgreSQL, string(sql))
	a.stmts[n] = prepared{name: n, sql: text, red: red}
}

func (a *audit) bind(body []byte) error {
	m, err := readBind(body)
	if err != nil {
		return err
	}
	st, ok := a.stmts[string(m.stmt)]
	if !ok {
		st = prepared{name: string(m.stmt)}
	}
	params := m.params()
	a.portals[string(m.portal)] = portal{stmt: st.name, sql: st.sql, params: params, red: sqlredact.Bound(sqlredact.PostgreSQL, params, st.red)}
	return nil
}

func (a *audit) close(body []byte) error {
	typ, name, err := readClose(body)
	if err != nil {
		return err
	}
	if typ == 'S' {
		delete(a.stmts, string(name))
	} else {
		delete(a.portals, string(name))
	}
	return nil
}

func (a *audit) functionCall(body []byte) error {
	var m pgproto3.FunctionCall
	if err := m.Decode(body); err != nil {
		return err
	}
	args := params(m.ArgFormatCodes, m.Arguments)
	a.push('F', fmt.Sprintf("-- function call, oid %d", m.Function), "", args, sqlredact.Bound(sqlredact.PostgreSQL, args, nil))
	return nil
}

// params renders a Bind's values as params does; the text values share
// one copy of the body.
func (m *bindMsg) params() []any {
	if m.nparams == 0 {
		return nil
	}
	out := make([]any, m.nparams)
	var text string // the values, copied when the first text one comes
	rest := m.values
	for i := range out {
		v, r, _ := param(rest) // readBind checked them
		off := len(m.values) - len(rest) + 4
		rest = r
		switch {
		case v == nil:
			out[i] = nil
		case formatAt(m.formats, i) == 1:
			out[i] = map[string]string{"base64": base64.StdEncoding.EncodeToString(v)}
		default:
			if text == "" {
				text = string(m.values)
			}
			out[i] = text[off : off+len(v)]
		}
	}
	return out
}

// formatAt is parameter i's format code out of a Bind's raw codes, as
// format reads decoded ones.
func formatAt(codes []byte, i int) uint16 {
	switch n := len(codes) / 2; {
	case n == 1:
		i = 0
	case i >= n:
		return 0
	}
	return binary.BigEndian.Uint16(codes[2*i:])
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

// push queues a statement; called locked.
func (a *audit) push(kind byte, sql, stmt string, params []any, red *sqlredact.Removed) {
	if a.head > 0 && 2*a.head >= len(a.queue) {
		// A pipeline keeps the queue from emptying: move what is in
		// flight to the front rather than grow.
		n := copy(a.queue, a.queue[a.head:])
		clear(a.queue[n:])
		a.queue, a.head = a.queue[:n], 0
	}
	a.queue = append(a.queue, query{kind: kind, start: a.now(), sql: sql, stmt: stmt, params: params, red: red})
}

// pop drops the oldest statement; called locked.
func (a *audit) pop() {
	a.queue[a.head] = query{}
	a.head++
	if a.head == len(a.queue) {
		a.queue, a.head = a.queue[:0], 0
	}
}

// current is the statement the server works on, nil when none; called
// locked.
func (a *audit) current() *query {
	for i := a.head; i < len(a.queue); i++ {
		if q := &a.queue[i]; !q.finished && q.kind != 'S' {
			return q
		}
	}
	return nil
}

// copied counts CopyData bytes of the statement running COPY.
func (a *audit) copied(n int) {
	if q := a.current(); q != nil {
		q.bytes += int64(n)
	}
}

// server reads the outcome of statements out of a server message; called
// locked (scan).
func (a *audit) server(typ byte, size int, body []byte) error {
	switch typ {
	case 'C':
		tag, err := readTag(body)
		if err != nil {
			return err
		}
		a.complete(reuse(&a.lastTag, tag))
	case 'I':
		a.complete("EMPTY")
	case 's':
		a.complete("PORTAL SUSPENDED")
	case 'V':
		a.complete("FUNCTION CALL")
	case 'E':
		code, msg, err := readError(body)
		if err != nil {
			return err
		}
		a.fail(string(code), string(msg))
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

// reuse is b as a string: *last when it holds the same text (a tag such
// as "SELECT 1", a query a client polls with), else a copy kept in *last.
func reuse(last *string, b []byte) string {
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

// complete sets the outcome of the current statement. A simple Query may
// hold several statements; it is recorded at ReadyForQuery with the last tag.
func (a *audit) complete(tag string) {
	q := a.current()
	if q == nil {
		return
	}
	q.outcome = outcome{known: true, out: recorder.Outcome{Tag: tag}}
	q.outcome.rows, q.outcome.hasRows = rowsOf(tag)
	if q.kind != 'Q' {
		a.finish(q)
		a.trim()
	}
}

func (a *audit) fail(code, msg string) {
	q := a.current()
	if q == nil {
		return // an error of Parse/Bind/Describe with no Execute, or a FATAL
	}
	q.outcome = outcome{known: true, out: recorder.Outcome{ErrorCode: code, Error: q.red.Scrub(msg)}}
	if q.kind != 'Q' {
		a.finish(q)
	}
}

func (a *audit) copyStarted(op string) {
	if q := a.current(); q != nil {
		q.op = op
	}
}

// ready ends the Query, FunctionCall or pipeline (up to its Sync) that
// ReadyForQuery answers. Executes of the pipeline that never completed
// were skipped by the server after an error.
func (a *audit) ready() {
	for a.head < len(a.queue) {
		q := &a.queue[a.head]
		kind := q.kind
		if !q.finished && kind != 'S' {
			if !q.outcome.known && kind == 'E' {
				q.outcome = outcome{known: true, out: recorder.Outcome{Error: notExecuted}}
			}
			a.finish(q)
		}
		a.pop()
		if kind != 'E' {
			return
		}
	}
}

// abandon records the statements still in flight when the session ended:
// what was sent belongs in the recording even without its outcome.
func (a *audit) abandon() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := a.head; i < len(a.queue); i++ {
		if q := &a.queue[i]; !q.finished && q.kind != 'S' {
			if !q.outcome.known {
				q.outcome = outcome{known: true, out: recorder.Outcome{Error: noOutcome}}
			}
			a.finish(q)
		}
	}
	a.queue, a.head = nil, 0
}

// finish records q; called locked.
func (a *audit) finish(q *query) {
	q.finished = true
	a.done = append(a.done, recorder.Event{Time: q.start, Type: recorder.EventQuery, Op: q.op, Bytes: q.bytes,
		SQL: q.sql, Params: q.params, Statement: q.stmt, Redacted: q.red != nil,
		DurationMS: float64(a.now().Sub(q.start).Microseconds()) / 1000, Outcome: a.outcomeOf(&q.outcome)})
	if !a.armed && a.timer != nil {
		a.armed = true
		a.timer.Reset(eventDelay)
	}
}

// outcomeOf is o as the recorder takes it, nil when unknown; called locked.
func (a *audit) outcomeOf(o *outcome) *recorder.Outcome {
	if !o.known {
		return nil
	}
	if len(a.slab) == 0 {
		a.slab = make([]outcomeSlot, outcomeSlab)
	}
	s := &a.slab[0]
	a.slab = a.slab[1:]
	s.out = o.out
	if o.hasRows {
		s.rows = o.rows
		s.out.Rows = &s.rows
	}
	return &s.out
}

// trim drops finished Executes from the head of the queue; called locked.
func (a *audit) trim() {
	for a.head < len(a.queue) && a.queue[a.head].finished {
		a.pop()
	}
}

// rowsOf reads the row count out of a command tag ("SELECT 5",
// "INSERT 0 5", "UPDATE 5", "COPY 5"); false when the tag has none.
func rowsOf(tag string) (int64, bool) {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(tag[i+1:], 10, 64)
	return n, err == nil
}

// flush hands the completed events to the recorder, in order; it returns
// the recorder's error once the session cannot be recorded.
func (a *audit) flush() error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	batch := a.take()
	if a.timer != nil {
		a.timer.Stop()
	}
	for i := range batch {
		if a.recErr != nil {
			break
		}
		a.recErr = a.rec.Event(batch[i])
	}
	a.recycle(batch)
	return a.recErr
}

// take is the completed events, for one flush to hand over.
func (a *audit) take() []recorder.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	batch := a.done
	a.done, a.spare, a.armed = a.spare, nil, false
	return batch
}

// recycle keeps a handed-over batch's room for the next batch of a busy
// session; a quiet one lets it go.
func (a *audit) recycle(batch []recorder.Event) {
	if len(batch) < eventBatch/4 || cap(batch) > 2*eventBatch {
		return
	}
	clear(batch)
	a.mu.Lock()
	a.spare = batch[:0]
	a.mu.Unlock()
}
