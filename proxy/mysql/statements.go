package mysql

import (
	"strings"

	"github.com/sallyport/sallyport/proxy/sqlredact"
	"github.com/sallyport/sallyport/recorder"
)

// severalStatements reports whether c's text may hold several statements
// the target ran one by one: worth splitting when the first one failed.
func (a *audit) severalStatements(c *command) bool {
	return c.cmd == comQuery && (c.parts != nil || a.multiStatements && strings.IndexByte(c.sql, ';') >= 0)
}

// statements gives ev one outcome per statement of c's text: the results
// of a multi-result response in order (a CALL's result sets and its
// closing OK count as one), then the statements that did not run after
// one failed (MySQL stops at the first error). ev.Outcome is the first
// error, or the last outcome. A text that is one statement (a CALL with
// several results) gets no list. Called locked.
func (a *audit) statements(c *command, ev *recorder.Event, last *recorder.Outcome) {
	rs := append(c.results, result{o: last, status: c.status, known: c.known})
	parts := c.parts
	if parts == nil && c.cmd == comQuery && a.multiStatements {
		parts = sqlredact.Split(sqlredact.MySQL, c.sql)
	}
	if len(parts) < 2 {
		o := merge(rs)
		ev.Outcome = &o
		a.txStep(c.cmd, c.sql, rs[len(rs)-1].status, rs[len(rs)-1].known, o.ErrorCode)
		return
	}
	outs := make([]recorder.Outcome, 0, max(len(parts), len(rs)))
	failed := -1
	i := 0
	for _, sql := range parts {
		if i == len(rs) {
			if failed < 0 {
				break // the split found more statements than the target ran: say nothing of them
			}
			outs = append(outs, recorder.Outcome{SQL: sql, NotExecuted: true})
			continue
		}
		n := 1
		if verb(sql) == "CALL" {
			n = callResults(rs[i:])
		}
		o := merge(rs[i : i+n])
		o.SQL = sql
		end := rs[i+n-1]
		if a.tx.in || end.known && end.status&statusInTrans != 0 || o.ErrorCode == codeDeadlock {
			a.txStep(c.cmd, sql, end.status, end.known, o.ErrorCode)
		}
		if o.ErrorCode != "" && failed < 0 {
			failed = len(outs)
		}
		outs = append(outs, o)
		i += n
	}
	for _, r := range rs[i:] { // results the split did not account for
		outs = append(outs, *r.o)
	}
	ev.Outcomes = outs
	pick := outs[len(outs)-1]
	if failed >= 0 {
		pick = outs[failed]
	}
	pick.SQL = "" // the event's sql holds the text
	ev.Outcome = &pick
}

// callResults is how many of rs a CALL produced: its procedure's result
// sets up to its own OK, or up to an error.
func callResults(rs []result) int {
	for i, r := range rs {
		if r.o == nil || r.o.Tag != tagRows {
			return i + 1
		}
	}
	return len(rs)
}

// merge is the outcome of a statement with results rs: the first error,
// or the last result, with the bytes of them all.
func merge(rs []result) recorder.Outcome {
	var out recorder.Outcome
	var bytes int64
	for _, r := range rs {
		if r.o == nil {
			continue
		}
		bytes += r.o.Bytes
		if out.ErrorCode == "" && out.Error == "" {
			out = *r.o
		}
	}
	out.Bytes = bytes
	return out
}
