package mysql

import (
	"encoding/binary"
	"strconv"

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
	affected, status, _ := parseOK(b)
	if status&statusMoreResults != 0 {
		return
	}
	a.finishRows(c, tagOK, int64(affected))
}

func (a *audit) finishOK(c *command, b []byte) {
	if firstByte(b) == hdrOK {
		affected, _, _ := parseOK(b)
		a.finishRows(c, tagOK, int64(affected))
		return
	}
	a.finishTag(c, tagOK)
}

// row reads a row, or the EOF/OK/ERR that ends the rows.
func (a *audit) row(c *command, size int, b []byte) {
	switch h := firstByte(b); {
	case h == hdrErr:
		a.finishErr(c, b)
	case h == hdrEOF && (size < 9 || a.deprecateEOF && size < maxPacketPayload):
		status, _ := parseEOF(b)
		if a.deprecateEOF {
			_, status, _ = parseOK(b)
		}
		if status&statusMoreResults != 0 {
			c.state = stFirst
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
	a.stmts[id] = &stmt{sql: c.sql, params: params}
	a.lastStmt = id
	c.statement = strconv.FormatUint(uint64(id), 10)
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
// is a statement; called locked. c is reused afterwards.
func (a *audit) finish(c *command, outcome *recorder.Outcome) {
	a.pop()
	if c.record {
		a.done = append(a.done, recorder.Event{})
		ev := &a.done[len(a.done)-1]
		ev.Type, ev.Time = recorder.EventQuery, c.start
		ev.SQL, ev.Params, ev.Statement = c.sql, c.params, c.statement
		ev.DurationMS = float64(a.now().Sub(c.start).Microseconds()) / 1000
		ev.Outcome = outcome
		c.redacted(ev)
	}
	a.release(c)
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
