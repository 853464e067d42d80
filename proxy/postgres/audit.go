package postgres

import (
	"encoding/binary"
	"fmt"
	"slices"
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
	cut       *recorder.Cut      // sql is a prefix of the statement: this long
	red       *sqlredact.Removed // what was removed from sql; nil for none
	oids      []uint32           // its parameters' types, when known
}

// portal is a bound statement waiting for Execute.
type portal struct {
	stmt   string
	sql    string
	cut    *recorder.Cut
	params []any
	red    *sqlredact.Removed
}

// describe is a Describe of a prepared statement waiting for its
// ParameterDescription: before the unit'th ReadyForQuery.
type describe struct {
	name string
	unit int64
}

// query is a statement in flight: a simple Query, an Execute, a
// FunctionCall, or the Sync that closes a pipeline. The queue holds them
// by value and reuses its room: a query costs no heap object of its own.
type query struct {
	kind     byte // 'Q', 'E', 'F' or 'S'
	finished bool // its outcome is known and it is recorded
	start    time.Time
	sql      string
	cut      *recorder.Cut // sql is a prefix of the statement: this long
	stmt     string
	params   []any
	red      *sqlredact.Removed // what was removed from sql and params
	op       string             // the COPY it started
	bytes    int64              // of CopyData
	result   int64              // bytes of DataRow of the statement running
	outcome  outcome            // the last one
	ended    bool               // the session ended before its outcome
	// A Query holding several statements: their texts, and once a second
	// one completed, the outcome of each so far.
	pieces []string
	outs   []recorder.Outcome
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

	// max is the statement cap (recorder.CutSQL); 0: none.
	max int

	// Client side only.
	portals    map[string]portal
	terminated bool               // the client sent Terminate
	lastSQL    string             // the previous Query's text, reused when it repeats
	lastClean  string             // lastSQL without its passwords
	lastRed    *sqlredact.Removed // what lastClean lacks; nil: nothing
	units      int64              // messages sent that ReadyForQuery answers
	long       longQuery          // a Query too long to hold, passing

	mu sync.Mutex
	// Both sides: the target's ParameterDescription adds the types.
	stmts     map[string]prepared
	describes []describe // in order
	unitsDone int64      // ReadyForQuery messages seen
	tx        txTracker
	queue     []query // in flight from head on, oldest first
	head      int
	// done holds completed events; the first open of them are sealed
	// (their unit's transaction state is known) and wait for their batch.
	done    []recorder.Event
	open    int
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
	// inline: relayed by the pump, whose goroutine hands sealed events to
	// the recorder itself after each read (handOver).
	inline bool
}

func newAudit(now func() time.Time) *audit {
	return &audit{now: now, stmts: map[string]prepared{}, portals: map[string]portal{}, tx: txTracker{state: txIdle}}
}

// start hands completed events to rec from now on, statements cut to its
// cap.
func (a *audit) start(rec *recorder.Session) {
	a.rec = rec
	a.max = rec.MaxStatementBytes()
	a.timer = time.AfterFunc(time.Hour, func() { _ = a.flush() })
	a.timer.Stop()
}

// scan feeds p, read from one side, to that side's scanner, whose handler
// is a.client or a.server, and returns how many completed events may go
// to the recorder. One lock covers every message of the read.
func (a *audit) scan(f *frameScanner, p []byte) (pending int, err error) {
	a.mu.Lock()
	err = f.feed(p)
	pending = a.open
	a.mu.Unlock()
	if pending > 0 && err == nil && a.inline {
		pending = a.handOver()
	}
	return pending, err
}

// handOver gives the sealed events to the recorder on the caller's
// goroutine (a pump's), as they come: waking another goroutine to do it
// costs more than the encoding (a hand-over goroutine per 8 statements
// cost pgbench -S 7 us more CPU per query, per 64 about 1 us). It never
// waits: while a flush runs, or when the recorder's buffer is full, the
// events wait for a flush (the pump's hand-over, or the timer). It returns
// how many wait.
func (a *audit) handOver() int {
	if !a.flushMu.TryLock() {
		return a.waiting()
	}
	defer a.flushMu.Unlock()
	batch := a.take()
	i := 0
	if a.recErr == nil {
		i, a.recErr = a.rec.TryEvents(batch)
	}
	switch {
	case a.recErr != nil:
		return maxPendingEvents // the flush that follows reports it
	case i < len(batch):
		return a.putBack(batch[i:])
	}
	a.recycle(batch)
	return 0
}

// waiting is how many sealed events wait; it arms the timer for them.
func (a *audit) waiting() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.arm()
	return a.open
}

// putBack returns events the recorder had no room for to the front of
// the sealed ones, in order, and arms the timer for them.
func (a *audit) putBack(rest []recorder.Event) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = append(slices.Clip(rest), a.done...)
	a.open += len(rest)
	a.arm()
	return a.open
}

// client records what a client message asks for; called locked (scan).
func (a *audit) client(typ byte, size int, body []byte) error {
	switch typ {
	case 'Q':
		sql, err := readQuery(body)
		if err != nil {
			return err
		}
		a.units++
		a.query(sql)
	case 'P':
		name, sql, oids, err := readParse(body)
		if err != nil {
			return err
		}
		a.prepare(name, sql, oids)
	case 'B':
		return a.bind(body)
	case 'D':
		return a.describe(body)
	case 'E':
		name, err := readExecute(body)
		if err != nil {
			return err
		}
		p := a.portals[string(name)]
		a.push(query{kind: 'E', sql: p.sql, cut: p.cut, stmt: p.stmt, params: p.params, red: p.red})
	case 'C':
		return a.close(body)
	case 'S':
		a.units++
		a.push(query{kind: 'S'})
	case 'F':
		a.units++
		return a.functionCall(body)
	case 'd':
		a.copied(size)
	case 'X':
		a.terminated = true
	}
	return nil
}

// query queues a simple Query: its text without passwords, cut to the
// cap, and when it holds several statements, each one's text. A text
// longer than the cap is read where it lies and only its prefix copied;
// one sent again as it was costs no copy.
func (a *audit) query(sql []byte) {
	long := a.max > 0 && len(sql) > a.max
	var text string
	var red *sqlredact.Removed
	if long {
		text, red = sqlredact.Statement(sqlredact.PostgreSQL, view(sql))
	} else {
		text, red = a.redactQuery(sql)
	}
	q := query{kind: 'Q', red: red}
	if several(text) {
		q.pieces = a.split(text, long)
	}
	q.sql, q.cut = a.cutSQL(text, long)
	if long {
		q.red = detach(red)
	}
	a.push(q)
}

// redactQuery is a Query's text without its passwords; a text that
// repeats the previous one (a client that polls) is not scanned again.
func (a *audit) redactQuery(sql []byte) (string, *sqlredact.Removed) {
	if string(sql) != a.lastSQL { // the zero audit's "" is its own redaction
		a.lastSQL = string(sql)
		a.lastClean, a.lastRed = sqlredact.Statement(sqlredact.PostgreSQL, a.lastSQL)
	}
	return a.lastClean, a.lastRed
}

// several reports whether a query text may hold more than one statement:
// it has a semicolon before its end.
func several(text string) bool {
	i := strings.IndexByte(text, ';')
	if i < 0 {
		return false
	}
	for i++; i < len(text); i++ {
		switch text[i] {
		case ';', ' ', '\t', '\r', '\n':
		default:
			return true
		}
	}
	return false
}

// split is the statements of a query text, each cut to the cap; nil for
// one. With viewed, text views a message body: the pieces are copied.
func (a *audit) split(text string, viewed bool) []string {
	pieces := sqlredact.Split(sqlredact.PostgreSQL, text)
	if len(pieces) < 2 {
		return nil
	}
	for i, p := range pieces {
		pieces[i], _ = a.cutSQL(p, viewed)
	}
	return pieces
}

// cutSQL is text cut to the cap, and how long it was when cut. A prefix
// cut from a text that views a body (viewed), or from a long one whose
// memory should not stay, is copied.
func (a *audit) cutSQL(text string, viewed bool) (string, *recorder.Cut) {
	cut, c := recorder.CutSQL(text, a.max)
	if c != nil || viewed {
		cut = strings.Clone(cut)
	}
	return cut, c
}

// prepare keeps a parsed statement, without its passwords, cut to the cap;
// one parsed again as it was (the unnamed statement of every query of a
// driver that does not cache) costs no copy, and keeps the types the
// target described for it when the Parse names none.
func (a *audit) prepare(name, sql, rawOIDs []byte) {
	if p, ok := a.stmts[string(name)]; ok && p.red == nil && p.cut == nil && p.sql == string(sql) &&
		(len(rawOIDs) == 0 || sameOIDs(p.oids, rawOIDs)) {
		return
	}
	n := string(name)
	long := a.max > 0 && len(sql) > a.max
	var text string
	if long {
		text = view(sql)
	} else {
		text = string(sql)
	}
	text, red := sqlredact.Statement(sqlredact.PostgreSQL, text)
	p := prepared{name: n, red: red, oids: readOIDs(rawOIDs)}
	p.sql, p.cut = a.cutSQL(text, long)
	if long {
		p.red = detach(red)
	}
	a.stmts[n] = p
}

// readOIDs decodes a Parse's or ParameterDescription's type OIDs, 4 bytes
// each; nil for none.
func readOIDs(raw []byte) []uint32 {
	if len(raw) < 4 {
		return nil
	}
	oids := make([]uint32, len(raw)/4)
	for i := range oids {
		oids[i] = binary.BigEndian.Uint32(raw[4*i:])
	}
	return oids
}

func sameOIDs(oids []uint32, raw []byte) bool {
	if len(oids) != len(raw)/4 {
		return false
	}
	for i, o := range oids {
		if binary.BigEndian.Uint32(raw[4*i:]) != o {
			return false
		}
	}
	return true
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
	params, viewed := m.params(st.oids, a.max)
	red := sqlredact.Bound(sqlredact.PostgreSQL, params, st.red)
	if viewed {
		cutParams(params, a.max)
		red = detach(red)
	}
	a.portals[string(m.portal)] = portal{stmt: st.name, sql: st.sql, cut: st.cut, params: params, red: red}
	return nil
}

// describe notes a Describe of a prepared statement: the target answers
// it with the parameters' types, which binary values are decoded with.
func (a *audit) describe(body []byte) error {
	typ, name, err := readClose(body) // the same shape
	if err != nil {
		return errBadDescribe
	}
	if typ == 'S' {
		a.describes = append(a.describes, describe{name: string(name), unit: a.units})
	}
	return nil
}

// described takes a ParameterDescription: the types of the statement
// described first.
func (a *audit) described(body []byte) error {
	if len(body) < 2 || len(body)-2 < 4*int(binary.BigEndian.Uint16(body)) {
		return errBadParameterDescription
	}
	for len(a.describes) > 0 && a.describes[0].unit < a.unitsDone {
		a.describes = a.describes[1:] // answered by an error, skipped
	}
	if len(a.describes) == 0 {
		return nil
	}
	name := a.describes[0].name
	a.describes = a.describes[1:]
	if st, ok := a.stmts[name]; ok {
		st.oids = readOIDs(body[2 : 2+4*int(binary.BigEndian.Uint16(body))])
		a.stmts[name] = st
	}
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
	red := sqlredact.Bound(sqlredact.PostgreSQL, args, nil)
	cutParams(args, a.max)
	a.push(query{kind: 'F', sql: fmt.Sprintf("-- function call, oid %d", m.Function), params: args, red: red})
	return nil
}

// push queues a statement; called locked.
func (a *audit) push(q query) {
	if a.head > 0 && 2*a.head >= len(a.queue) {
		// A pipeline keeps the queue from emptying: move what is in
		// flight to the front rather than grow.
		n := copy(a.queue, a.queue[a.head:])
		clear(a.queue[n:])
		a.queue, a.head = a.queue[:n], 0
	}
	q.start = a.now()
	a.queue = append(a.queue, q)
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

// take is the sealed events, for one flush to hand over; the others stay.
func (a *audit) take() []recorder.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	batch, rest := a.done[:a.open], a.done[a.open:]
	a.done = append(a.spare, rest...)
	clear(rest)
	a.spare, a.open, a.armed = nil, 0, false
	return batch
}

// recycle keeps a handed-over batch's room for the next batch of a busy
// session; a quiet one lets it go.
func (a *audit) recycle(batch []recorder.Event) {
	if cap(batch) > 2*eventBatch || len(batch) < eventBatch/4 && cap(batch) > eventBatch/4 {
		return // a quiet session's large room goes (inline batches are small)
	}
	clear(batch)
	a.mu.Lock()
	a.spare = batch[:0]
	a.mu.Unlock()
}
