package mysql

import (
	"encoding/binary"
	"strconv"

	"github.com/sallyport/sallyport/proxy/sqlredact"
	"github.com/sallyport/sallyport/recorder"
)

// scan follows the target's bytes p through s under one lock, and
// returns why they must not be forwarded (empty when they may) and how
// many completed events wait for the recorder.
func (a *audit) scan(s *packetScanner, p []byte) (violation string, pending int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s.feed(p)
	return a.violation, len(a.done)
}

// server is respond, locked.
func (a *audit) server(size int, b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.respond(size, b)
}

// respond follows one logical server packet of size bytes (b holds it
// whole, or its first bytes when it is large: only rows are) through the
// response of the command at the head of the queue; called locked.
func (a *audit) respond(size int, b []byte) {
	if a.waiting() == 0 {
		return // unsolicited, e.g. the ERR of a killed connection
	}
	c := a.queue[a.head]
	c.bytes += int64(size) + 4
	if size >= maxPacketPayload { // a header per 16 MB
		c.bytes += int64(size/maxPacketPayload) * 4
	}
	switch c.state {
	case stFirst:
		a.first(c, size, b)
	case stColumns, stParams, stPrepColumns:
		c.left--
		if c.left <= 0 {
			a.endDefinitions(c)
		}
	case stColumnsEOF:
		if status, _ := parseEOF(b); status&statusCursorExists != 0 {
			c.status, c.known = status, true
			a.finishTag(c, tagCursor)
			return
		}
		c.state = stRows
	case stParamsEOF:
		a.prepColumns(c)
	case stPrepColumnsEOF:
		a.finish(c, nil)
	case stRows:
		a.row(c, size, b)
	}
}

// first reads the first packet of a response, or of the next result.
func (a *audit) first(c *command, size int, b []byte) {
	h := firstByte(b)
	switch {
	case h == hdrErr:
		if c.cmd == comStmtPrepare { // a refused prepare is recorded: it shows intent
			c.record = true
		}
		a.finishErr(c, b)
	case c.cmd == comStmtPrepare:
		a.prepared(c, b)
	case c.cmd == comStmtFetch:
		c.state = stRows
		a.row(c, size, b)
	case c.cmd == comFieldList:
		c.state = stRows // column definitions up to EOF, like rows
		a.row(c, size, b)
	case c.cmd != comQuery && c.cmd != comStmtExecute && c.cmd != comProcessInfo:
		a.finishOK(c, b) // one packet: OK, EOF or COM_STATISTICS' text
	case h == hdrOK:
		a.resultOK(c, b)
	case h == hdrLocalInfile:
		// The client may still honour it even though LOCAL_FILES was not
		// negotiated: a target must not read the client's files.
		a.violation = "the target asked for a client file (LOAD DATA LOCAL), which sallyport does not relay"
		a.finishError(c, a.violation)
	default:
		n, _, ok := lenenc(b)
		if !ok || n == 0 {
			a.finishError(c, "unreadable response from the target")
			return
		}
		c.state, c.left, c.rows = stColumns, int(n), 0
	}
}

// resultOK ends a result that is an OK packet; more may follow.
func (a *audit) resultOK(c *command, b []byte) {
	affected, status, ok := parseOK(b)
	c.status, c.known = status, ok
	if status&statusMoreResults != 0 {
		a.more(c, tagOK, int64(affected))
		return
	}
	a.finishRows(c, tagOK, int64(affected))
}

func (a *audit) finishOK(c *command, b []byte) {
	if firstByte(b) == hdrOK {
		affected, status, ok := parseOK(b)
		c.status, c.known = status, ok
		a.finishRows(c, tagOK, int64(affected))
		return
	}
	a.finishTag(c, tagOK)
}

// more ends one result of a multi-result response; the next follows. A
// recorded command keeps each result's outcome, for the event to list.
func (a *audit) more(c *command, tag string, rows int64) {
	if c.record {
		o, n := a.outcomes.next()
		*n = rows
		o.Tag, o.Rows, o.Bytes = tag, n, c.bytes
		c.results = append(c.results, result{o: o, status: c.status, known: c.known})
	}
	c.state, c.bytes, c.status, c.known = stFirst, 0, 0, false
}

// row reads a row, or the EOF/OK/ERR that ends the rows.
func (a *audit) row(c *command, size int, b []byte) {
	switch h := firstByte(b); {
	case h == hdrErr:
		a.finishErr(c, b)
	case h == hdrEOF && (size < 9 || a.deprecateEOF && size < maxPacketPayload):
		status, ok := parseEOF(b)
		if a.deprecateEOF {
			_, status, ok = parseOK(b)
		}
		c.status, c.known = status, ok
		if status&statusMoreResults != 0 {
			a.more(c, tagRows, c.rows)
			return
		}
		a.finishRows(c, tagRows, c.rows)
	default:
		c.rows++
	}
}

// prepared reads the COM_STMT_PREPARE_OK and keeps the statement.
func (a *audit) prepared(c *command, b []byte) {
	if len(b) < 9 || b[0] != hdrOK {
		a.finishError(c, "unreadable response from the target")
		return
	}
	id := binary.LittleEndian.Uint32(b[1:])
	cols, params := int(binary.LittleEndian.Uint16(b[5:])), int(binary.LittleEndian.Uint16(b[7:]))
	st := &stmt{sql: c.sql, cut: c.cut, params: params}
	a.stmts[id] = st
	a.lastStmt = id
	c.statement = strconv.FormatUint(uint64(id), 10)
	if c.cut != nil { // the placeholders in password positions were found in the whole text, not in the prefix kept
		st.name, st.red = c.statement, placeholders(c.red)
	}
	c.cols = cols
	if params > 0 {
		c.state, c.left = stParams, params
		return
	}
	a.prepColumns(c)
}

func (a *audit) prepColumns(c *command) {
	if c.cols > 0 {
		c.state, c.left = stPrepColumns, c.cols
		return
	}
	a.finish(c, nil)
}

// endDefinitions moves past a block of column or parameter definitions.
func (a *audit) endDefinitions(c *command) {
	switch c.state {
	case stColumns:
		c.state = stRows
		if !a.deprecateEOF {
			c.state = stColumnsEOF
		}
	case stParams:
		if !a.deprecateEOF {
			c.state = stParamsEOF
			return
		}
		a.prepColumns(c)
	case stPrepColumns:
		if !a.deprecateEOF {
			c.state = stPrepColumnsEOF
			return
		}
		a.finish(c, nil)
	}
}

func setErr(o *recorder.Outcome, code uint16, state, msg string) {
	if state != "" {
		msg = state + ": " + msg
	}
	o.ErrorCode, o.Error = strconv.Itoa(int(code)), msg
}

// finishRows ends c with a tag and a row count.
func (a *audit) finishRows(c *command, tag string, rows int64) {
	if !c.record {
		a.finish(c, nil)
		return
	}
	o, n := a.outcomes.next()
	*n = rows
	o.Tag, o.Rows = tag, n
	a.finish(c, o)
}

// finishTag ends c with a tag and no row count.
func (a *audit) finishTag(c *command, tag string) {
	if !c.record {
		a.finish(c, nil)
		return
	}
	o, _ := a.outcomes.next()
	o.Tag = tag
	a.finish(c, o)
}

// finishErr ends c with the target's ERR packet b.
func (a *audit) finishErr(c *command, b []byte) {
	if !c.record {
		a.finish(c, nil)
		return
	}
	code, state, msg, _ := parseErr(b)
	o, _ := a.outcomes.next()
	setErr(o, code, state, msg)
	a.finish(c, o)
}

// finishError ends c with an error of the bastion's.
func (a *audit) finishError(c *command, msg string) {
	if !c.record {
		a.finish(c, nil)
		return
	}
	o, _ := a.outcomes.next()
	o.Error = msg
	a.finish(c, o)
}

// finish ends the command at the head of the queue, recording it when it
// is a statement, and follows the transaction state; called locked. c is
// reused afterwards.
func (a *audit) finish(c *command, outcome *recorder.Outcome) {
	a.pop()
	if outcome != nil {
		outcome.Bytes = c.bytes
	}
	switch {
	case c.record:
		a.record(c, outcome)
	case a.tx.in && c.known && c.status&statusInTrans == 0: // COM_RESET_CONNECTION
		a.txEnd(txFate(c.cmd, ""))
		a.flushTx()
	}
	a.release(c)
}

// record appends c's event, and the transaction events its statements
// brought about.
func (a *audit) record(c *command, outcome *recorder.Outcome) {
	a.done = append(a.done, recorder.Event{})
	ev := &a.done[len(a.done)-1]
	ev.Type, ev.Time = recorder.EventQuery, c.start
	ev.SQL, ev.SQLCut, ev.Params, ev.Statement = c.sql, c.cut, c.params, c.statement
	ev.DurationMS = float64(a.now().Sub(c.start).Microseconds()) / 1000
	if c.results != nil || outcome != nil && outcome.ErrorCode != "" && a.severalStatements(c) {
		a.statements(c, ev, outcome)
	} else {
		ev.Outcome = outcome
		if (a.tx.in || c.known && c.status&statusInTrans != 0) && c.cmd != comStmtPrepare {
			a.txStep(c.cmd, c.sql, c.status, c.known, errorCode(outcome))
		}
	}
	ev.Tx = a.tx.state()
	c.redacted(ev)
	a.flushTx()
}

func errorCode(o *recorder.Outcome) string {
	if o == nil {
		return ""
	}
	return o.ErrorCode
}

// outcomeBlock is how many outcomes one allocation makes.
const outcomeBlock = 32

// outcomes hands out the Outcomes of recorded statements, with room for
// their row counts, allocated outcomeBlock at a time: one allocation per
// statement was a good part of the audit's cost.
type outcomes struct {
	block []outcomeRows
}

type outcomeRows struct {
	o    recorder.Outcome
	rows int64
}

func (s *outcomes) next() (*recorder.Outcome, *int64) {
	if len(s.block) == 0 {
		s.block = make([]outcomeRows, outcomeBlock)
	}
	r := &s.block[0]
	s.block = s.block[1:]
	return &r.o, &r.rows
}

// placeholders is what an execute of a statement needs of what was
// removed from its text: the parameters in password positions, not the
// passwords (kept no longer than the prepare).
func placeholders(rm *sqlredact.Removed) *sqlredact.Removed {
	if rm == nil || len(rm.Params) == 0 {
		return nil
	}
	return &sqlredact.Removed{Params: rm.Params}
}
