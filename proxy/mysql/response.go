package mysql

import (
	"encoding/binary"
	"strconv"

	"github.com/sallyport/sallyport/recorder"
)

// server follows one logical server packet of size bytes (b holds it
// whole, or its first bytes when it is large: only rows are) through the
// response of the command at the head of the queue.
func (a *audit) server(size int, b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue) == 0 {
		return // unsolicited, e.g. the ERR of a killed connection
	}
	c := a.queue[0]
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
			a.finish(c, &recorder.Outcome{Tag: tagCursor})
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
			c.record, c.ev.SQL = true, c.sql
		}
		code, state, msg, _ := parseErr(b)
		a.finish(c, errOutcome(code, state, msg))
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
		a.finish(c, &recorder.Outcome{Error: a.violation})
	default:
		n, _, ok := lenenc(b)
		if !ok || n == 0 {
			a.finish(c, &recorder.Outcome{Error: "unreadable response from the target"})
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
	n := int64(affected)
	a.finish(c, &recorder.Outcome{Tag: tagOK, Rows: &n})
}

func (a *audit) finishOK(c *command, b []byte) {
	if firstByte(b) == hdrOK {
		affected, _, _ := parseOK(b)
		n := int64(affected)
		a.finish(c, &recorder.Outcome{Tag: tagOK, Rows: &n})
		return
	}
	a.finish(c, &recorder.Outcome{Tag: tagOK})
}

// row reads a row, or the EOF/OK/ERR that ends the rows.
func (a *audit) row(c *command, size int, b []byte) {
	switch h := firstByte(b); {
	case h == hdrErr:
		code, state, msg, _ := parseErr(b)
		a.finish(c, errOutcome(code, state, msg))
	case h == hdrEOF && (size < 9 || a.deprecateEOF && size < maxPacketPayload):
		status, _ := parseEOF(b)
		if a.deprecateEOF {
			_, status, _ = parseOK(b)
		}
		if status&statusMoreResults != 0 {
			c.state = stFirst
			return
		}
		rows := c.rows
		a.finish(c, &recorder.Outcome{Tag: tagRows, Rows: &rows})
	default:
		c.rows++
	}
}

// prepared reads the COM_STMT_PREPARE_OK and keeps the statement.
func (a *audit) prepared(c *command, b []byte) {
	if len(b) < 9 || b[0] != hdrOK {
		a.finish(c, &recorder.Outcome{Error: "unreadable response from the target"})
		return
	}
	id := binary.LittleEndian.Uint32(b[1:])
	cols, params := int(binary.LittleEndian.Uint16(b[5:])), int(binary.LittleEndian.Uint16(b[7:]))
	a.stmts[id] = &stmt{sql: c.sql, params: params}
	a.lastStmt = id
	c.ev.Statement = strconv.FormatUint(uint64(id), 10)
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

func errOutcome(code uint16, state, msg string) *recorder.Outcome {
	if state != "" {
		msg = state + ": " + msg
	}
	return &recorder.Outcome{ErrorCode: strconv.Itoa(int(code)), Error: msg}
}

// finish ends the command at the head of the queue, recording it when it
// is a statement; called locked.
func (a *audit) finish(c *command, outcome *recorder.Outcome) {
	a.queue[0] = nil
	a.queue = a.queue[1:]
	if len(a.queue) == 0 {
		a.idle.Broadcast()
	}
	if !c.record {
		return
	}
	c.ev.Type = recorder.EventQuery
	c.ev.Time = c.start
	c.ev.DurationMS = float64(a.now().Sub(c.start).Microseconds()) / 1000
	c.ev.Outcome = outcome
	a.done = append(a.done, c.ev)
}
