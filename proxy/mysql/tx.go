package mysql

import (
	"strings"

	"github.com/sallyport/sallyport/recorder"
)

// statusInTrans is SERVER_STATUS_IN_TRANS: a transaction is open.
const statusInTrans = 0x0001

// codeDeadlock is ER_LOCK_DEADLOCK: the server rolled the whole
// transaction back.
const codeDeadlock = "1213"

// Transaction fates, as a transaction event's op.
const (
	txCommit   = "commit"
	txRollback = "rollback"
)

// txState follows the session's transaction from the status flags of the
// target's OK and EOF packets, which it sends anyway: no round trip.
type txState struct {
	in         bool  // a transaction is open
	statements int64 // statements run in it so far
	// ended are the transaction events of the command being finished,
	// appended after its query event.
	ended []recorder.Event
}

// state is a query event's tx: "in" or "idle".
func (t *txState) state() string {
	if t.in {
		return "in"
	}
	return "idle"
}

// txStep follows the transaction through one statement sql of command cmd
// that ended with status (known: an ERR carries none; errCode is its
// code). Called locked, only when a transaction is or may be open.
func (a *audit) txStep(cmd byte, sql string, status uint16, known bool, errCode string) {
	t := &a.tx
	in := status&statusInTrans != 0
	switch {
	case !known:
		if !t.in {
			return
		}
		t.statements++
		if errCode == codeDeadlock {
			a.txEnd(txRollback, "rolled back by the server: deadlock (error 1213)")
		}
	case in && !t.in:
		t.in, t.statements = true, 0
		if !isBegin(sql) { // autocommit off: the statement opened it
			t.statements = 1
		}
	case in && isBegin(sql):
		a.txEnd(txCommit, "implicit commit by "+verb(sql))
		t.in = true
	case in:
		t.statements++
	case t.in:
		a.txEnd(txFate(cmd, sql))
	}
}

// txFate is how statement sql of command cmd ended the open transaction.
func txFate(cmd byte, sql string) (op, text string) {
	if cmd == comResetConnection {
		return txRollback, "rolled back by COM_RESET_CONNECTION"
	}
	switch v := verb(sql); v {
	case "COMMIT":
		return txCommit, ""
	case "ROLLBACK":
		return txRollback, ""
	case "":
		return txCommit, "ended by a statement that was not recorded whole"
	default:
		if strings.HasPrefix(v, "XA ") {
			return txCommit, "ended by " + v
		}
		return txCommit, "implicit commit by " + v // DDL, LOCK TABLES, SET autocommit=1, …
	}
}

// txEnd records the end of the open transaction; called locked.
func (a *audit) txEnd(op, text string) {
	t := &a.tx
	t.ended = append(t.ended, recorder.Event{Type: recorder.EventTransaction, Time: a.now(), Op: op, Statements: t.statements, Text: text})
	t.in, t.statements = false, 0
}

// flushTx moves the transaction events that ended to the completed
// events; called locked.
func (a *audit) flushTx() {
	if len(a.tx.ended) == 0 {
		return
	}
	a.done = append(a.done, a.tx.ended...)
	clear(a.tx.ended)
	a.tx.ended = a.tx.ended[:0]
}

// isBegin reports whether sql starts a transaction explicitly (BEGIN,
// START TRANSACTION), which commits an open one first. It runs for every
// statement in a transaction, so it compares without allocating.
func isBegin(sql string) bool {
	w, rest := word(sql)
	switch {
	case strings.EqualFold(w, "BEGIN"):
		w2, _ := word(rest)
		return !strings.EqualFold(w2, "NOT") // BEGIN NOT ATOMIC is a compound statement
	case strings.EqualFold(w, "START"):
		w2, _ := word(rest)
		return strings.EqualFold(w2, "TRANSACTION")
	}
	return false
}

// verb is the first word of sql in upper case, two for START and XA
// statements ("START TRANSACTION"); empty when there is none.
func verb(sql string) string {
	w, rest := word(sql)
	w = strings.ToUpper(w)
	if w == "START" || w == "XA" {
		w2, _ := word(rest)
		return w + " " + strings.ToUpper(w2)
	}
	return w
}

// maxVerb bounds a word read by word: keywords are short.
const maxVerb = 32

// word is the first word of s past spaces and comments, and what follows
// it.
func word(s string) (string, string) {
	i := skipSpace(s, 0)
	j := i
	for j < len(s) && j-i < maxVerb && isWordByte(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

// skipSpace skips spaces and comments from i.
func skipSpace(s string, i int) int {
	for i < len(s) {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v':
			i++
		case c == '#' || c == '-' && dashComment(s, i):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*' && (i+2 >= len(s) || s[i+2] != '!'):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return len(s)
			}
			i += 2 + end + 2
		default:
			return i
		}
	}
	return i
}

// dashComment reports whether s[i:] starts a -- comment: MySQL wants a
// space or control character after the dashes.
func dashComment(s string, i int) bool {
	return i+1 < len(s) && s[i+1] == '-' && (i+2 == len(s) || s[i+2] <= ' ')
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// sessionEnded records, at the end of the session, the commands that got
// no complete response and a transaction the server rolls back as the
// connection closes.
func (a *audit) sessionEnded(reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.waiting() > 0 {
		a.finishError(a.queue[a.head], "no complete response: the session ended ("+reason+")")
	}
	if a.tx.in {
		a.txEnd(txRollback, "rolled back by the server: the session ended inside the transaction")
		a.flushTx()
	}
}
