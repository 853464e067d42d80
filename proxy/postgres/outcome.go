package postgres

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/sallyport/sallyport/recorder"
)

// server reads the outcome of statements out of a server message; called
// locked (scan).
func (a *audit) server(typ byte, size int, body []byte) error {
	switch typ {
	case 'D':
		if q := a.current(); q != nil {
			q.result += int64(size) + 5 // the message as sent
		}
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
		if len(body) != 1 {
			return errBadReadyForQuery
		}
		a.ready(body[0])
	case 't':
		return a.described(body)
	case 'A':
		return a.notified(body)
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
// hold several statements; it is recorded at ReadyForQuery, with each
// one's outcome.
func (a *audit) complete(tag string) {
	q := a.current()
	if q == nil {
		return
	}
	o := outcome{known: true, out: recorder.Outcome{Tag: tag, Bytes: q.result}}
	o.rows, o.hasRows = rowsOf(tag)
	q.result = 0
	if q.kind == 'Q' {
		a.another(q, o)
		return
	}
	q.outcome = o
	a.finish(q)
	a.trim()
}

func (a *audit) fail(code, msg string) {
	q := a.current()
	if q == nil {
		return // an error of Parse/Bind/Describe with no Execute, or a FATAL
	}
	o := outcome{known: true, out: recorder.Outcome{ErrorCode: code, Error: q.red.Scrub(msg), Bytes: q.result}}
	q.result = 0
	if q.kind == 'Q' {
		a.another(q, o)
		return
	}
	q.outcome = o
	a.finish(q)
}

// another adds the outcome of one more statement of a simple Query; the
// list starts with the second, so a Query of one statement costs none.
func (a *audit) another(q *query, o outcome) {
	if q.outcome.known {
		if q.outs == nil {
			q.outs = append(make([]recorder.Outcome, 0, 4), listed(q.outcome))
		}
		q.outs = append(q.outs, listed(o))
	}
	q.outcome = o
}

// listed is o as an entry of Event.Outcomes.
func listed(o outcome) recorder.Outcome {
	out := o.out
	if o.hasRows {
		rows := o.rows
		out.Rows = &rows
	}
	return out
}

func (a *audit) copyStarted(op string) {
	if q := a.current(); q != nil {
		q.op = op
	}
}

// ready ends the Query, FunctionCall or pipeline (up to its Sync) that
// ReadyForQuery answers, reporting the transaction state z. Executes of
// the pipeline that never completed were skipped by the server after an
// error.
func (a *audit) ready(z byte) {
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
			break
		}
	}
	a.unitsDone++
	a.seal(z)
}

// abandon records the statements still in flight when the session ended:
// what was sent belongs in the recording even without its outcome. A
// transaction left open is rolled back by the server as the connection
// closes, unless what was in flight may have committed it.
func (a *audit) abandon() {
	a.mu.Lock()
	defer a.mu.Unlock()
	mayCommit := false
	for i := a.head; i < len(a.queue); i++ {
		if q := &a.queue[i]; !q.finished && q.kind != 'S' {
			if !q.outcome.known {
				mayCommit = mayCommit || commitWord(q.sql) || q.kind == 'F'
				q.outcome = outcome{known: true, out: recorder.Outcome{Error: noOutcome}}
			}
			q.ended = true
			a.finish(q)
		}
	}
	a.queue, a.head = nil, 0
	a.seal(0)
	if a.tx.state != txIdle && !mayCommit {
		a.done = append(a.done, recorder.Event{Time: a.now(), Type: recorder.EventTransaction, Op: "rollback", Statements: a.tx.stmts})
		a.sealed()
	}
}

// finish records q, held back until its unit is sealed; called locked.
func (a *audit) finish(q *query) {
	q.finished = true
	a.done = append(a.done, recorder.Event{Time: q.start, Type: recorder.EventQuery, Op: q.op, Bytes: q.bytes,
		SQL: q.sql, SQLCut: q.cut, Params: q.params, Statement: q.stmt, Redacted: q.red != nil,
		DurationMS: float64(a.now().Sub(q.start).Microseconds()) / 1000,
		Outcome:    a.outcomeOf(&q.outcome), Outcomes: outcomesOf(q)})
	a.unsealed()
}

// outcomesOf is the outcome of each statement of a simple Query that held
// several, nil for one: those that ran, then those the server skipped
// after an error (not executed), or, when the session ended, never
// reported.
func outcomesOf(q *query) []recorder.Outcome {
	failed := q.outcome.out.ErrorCode != ""
	if q.outs == nil && (len(q.pieces) < 2 || !failed && !q.ended) {
		return nil
	}
	outs := q.outs
	if outs == nil {
		outs = []recorder.Outcome{listed(q.outcome)}
	}
	for i := range min(len(outs), len(q.pieces)) {
		outs[i].SQL = q.pieces[i]
	}
	rest := q.pieces[min(len(outs), len(q.pieces)):]
	switch {
	case failed:
		for _, p := range rest {
			outs = append(outs, recorder.Outcome{SQL: p, NotExecuted: true})
		}
	case q.ended:
		if outs[len(outs)-1].Error == noOutcome {
			outs = outs[:len(outs)-1] // the running one is below
			rest = q.pieces[len(outs):]
		}
		for _, p := range rest {
			outs = append(outs, recorder.Outcome{SQL: p, Error: noOutcome})
		}
	}
	return outs
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

// notified records a NotificationResponse: a notification on a channel
// the session LISTENs to.
func (a *audit) notified(body []byte) error {
	if len(body) < 4 {
		return errBadNotification
	}
	pid := binary.BigEndian.Uint32(body)
	channel, rest, ok := cbytes(body[4:])
	if !ok {
		return errBadNotification
	}
	payload, _, ok := cbytes(rest)
	if !ok {
		return errBadNotification
	}
	a.note(recorder.Event{Time: a.now(), Type: recorder.EventNotification,
		Notification: &recorder.Notification{Channel: string(channel), Payload: string(payload), PID: pid}})
	return nil
}

// cancelled records a CancelRequest for this session that came through
// the bastion from the address from, with the statement it aimed at.
func (a *audit) cancelled(from string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev := recorder.Event{Time: a.now(), Type: recorder.EventCancel, From: from}
	if q := a.current(); q != nil {
		ev.SQL, ev.SQLCut = q.sql, q.cut
	}
	a.note(ev)
}

// note adds an event of no statement, after those completed before it;
// called locked.
func (a *audit) note(ev recorder.Event) {
	sealed := a.open == len(a.done)
	a.done = append(a.done, ev)
	if sealed {
		a.sealed()
	}
}
