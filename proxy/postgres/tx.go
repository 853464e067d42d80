package postgres

import (
	"slices"
	"strings"

	"github.com/sallyport/sallyport/recorder"
)

// Transaction states, as ReadyForQuery reports them.
const (
	txIdle   = 'I' // not in a transaction block
	txIn     = 'T' // in a transaction block
	txFailed = 'E' // in a failed transaction block: only ROLLBACK helps
)

// txName is a state as Event.Tx spells it.
func txName(s byte) string {
	switch s {
	case txIdle:
		return "idle"
	case txIn:
		return "in"
	case txFailed:
		return "failed"
	}
	return ""
}

// maxUnsealed bounds the events held back until the ReadyForQuery that
// tells their transaction state: a pipeline of more statements without a
// Sync has its events handed over without it (Tx empty), and transactions
// it ends get no event.
const maxUnsealed = 4096

// txTracker follows the session's transaction through the statements of
// each unit (a simple Query, or a pipeline up to its Sync) and the state
// ReadyForQuery reports after it, without a round trip of its own. Inside
// a unit it reads the command tags: BEGIN and START TRANSACTION open a
// transaction, COMMIT and ROLLBACK end it (a COMMIT of a failed
// transaction is answered ROLLBACK, ROLLBACK TO SAVEPOINT is told by its
// text), an error fails it. The unit's last statement is settled with the
// state the server reported.
//
// Several statements sent outside a transaction in one unit run in an
// implicit transaction: committed together at the end of the unit, or
// all rolled back by an error in one of them.
type txTracker struct {
	state    byte  // after the last statement followed
	stmts    int64 // statements of the open transaction so far
	implicit bool  // the current unit runs in an implicit transaction
	imp      int64 // its statements so far
	lost     bool  // the current unit's first events went out unsealed
}

// txEnd is a transaction ended by the unit's event at index at.
type txEnd struct {
	at    int
	op    string
	stmts int64
}

// step follows one executed statement: its command tag, whether it
// failed, its text, and for the unit's last statement the state the
// server reported (0 when unknown). It returns the transaction it ended:
// its op ("commit", "rollback"; "" when none) and statement count.
func (t *txTracker) step(tag string, failed bool, sql string, z byte) (op string, n int64) {
	switch t.state {
	case txIdle:
		op, n = t.idle(tag, failed)
	case txIn:
		op, n = t.in(tag, failed, sql, z)
	default:
		op, n = t.failed(tag, sql, z)
	}
	if z == 0 {
		return op, n
	}
	if op2, n2 := t.settle(z, failed); op2 != "" {
		op, n = op2, n2
	}
	return op, n
}

func (t *txTracker) idle(tag string, failed bool) (string, int64) {
	switch {
	case failed:
		n := t.imp
		t.imp = 0
		if t.implicit && n > 0 {
			return "rollback", n + 1 // the error undid the implicit transaction
		}
	case tag == "BEGIN" || tag == "START TRANSACTION":
		// The statements before it in the unit join the transaction.
		t.state, t.stmts, t.imp = txIn, t.imp, 0
	case tag == "COMMIT" || tag == "ROLLBACK":
		n := t.imp
		t.imp = 0
		if n > 0 {
			return strings.ToLower(tag), n // it ended the implicit transaction
		}
	case t.implicit:
		t.imp++
	}
	return "", 0
}

func (t *txTracker) in(tag string, failed bool, sql string, z byte) (string, int64) {
	switch {
	case failed:
		t.state = txFailed
		t.stmts++
	case tag == "COMMIT":
		return t.end("commit")
	case tag == "ROLLBACK":
		if savepoint(sql, z) {
			t.stmts++
			return "", 0
		}
		return t.end("rollback")
	case tag == "PREPARE TRANSACTION":
		// Its fate is decided by COMMIT PREPARED or ROLLBACK PREPARED,
		// later and maybe elsewhere.
		t.state, t.stmts = txIdle, 0
	default:
		t.stmts++
	}
	return "", 0
}

func (t *txTracker) failed(tag, sql string, z byte) (string, int64) {
	if tag != "ROLLBACK" {
		t.stmts++
		return "", 0
	}
	if savepoint(sql, z) {
		t.state = txIn
		t.stmts++
		return "", 0
	}
	return t.end("rollback")
}

func (t *txTracker) end(op string) (string, int64) {
	n := t.stmts
	t.state, t.stmts = txIdle, 0
	return op, n
}

// settle takes the state the server reported after the unit's last
// statement, which overrides what the tags suggested.
func (t *txTracker) settle(z byte, failed bool) (op string, n int64) {
	if t.state == txIdle && z == txIdle && t.implicit && t.imp > 0 {
		op, n = "commit", t.imp // the implicit transaction's end
	}
	t.implicit, t.imp = false, 0
	switch {
	case z == t.state:
	case z == txIdle && failed:
		return t.end("rollback") // a COMMIT that failed
	case z == txIdle:
		t.state, t.stmts = txIdle, 0 // ended by a statement not recognised: fate unknown
	default:
		if t.state == txIdle {
			t.stmts = 0 // begun anew: COMMIT AND CHAIN, or a statement not recognised
		}
		t.state = z
	}
	return op, n
}

// savepoint reports whether a ROLLBACK, whose text is sql, rolled back to
// a savepoint, leaving the transaction open; without a text, whether the
// server said the transaction is still open.
func savepoint(sql string, z byte) bool {
	words := strings.Fields(sql[:min(len(sql), 64)])
	if len(words) == 0 {
		return z == txIn
	}
	for i, w := range words[1:] {
		switch {
		case strings.EqualFold(w, "TO"):
			return true
		case i == 0 && (strings.EqualFold(w, "WORK") || strings.EqualFold(w, "TRANSACTION")):
		default:
			return false
		}
	}
	return false
}

// statement is one executed statement of an event, as the tracker reads
// it.
type statement struct {
	tag, sql string
	failed   bool
}

// statements are ev's executed statements: each of its Outcomes that ran,
// or its Outcome; none for one not executed or without an outcome.
func statements(ev *recorder.Event, yield func(statement) bool) {
	if len(ev.Outcomes) > 0 {
		for i := range ev.Outcomes {
			o := &ev.Outcomes[i]
			if o.NotExecuted || o.ErrorCode == "" && o.Error != "" { // skipped, or no outcome
				continue
			}
			if !yield(statement{tag: o.Tag, sql: o.SQL, failed: o.ErrorCode != ""}) {
				return
			}
		}
		return
	}
	o := ev.Outcome
	if o == nil || o.ErrorCode == "" && o.Error != "" { // not executed, or no outcome
		return
	}
	yield(statement{tag: o.Tag, sql: ev.SQL, failed: o.ErrorCode != ""})
}

// seal ends the unit that ReadyForQuery reported z after (0: the session
// ended without one): its query events get their transaction state, the
// transactions its statements ended get their events after them, and all
// may be handed over. Called locked.
func (a *audit) seal(z byte) {
	unit := a.done[a.open:]
	if a.tx.lost {
		a.settleLost(unit, z)
		return
	}
	n := 0
	for i := range unit {
		statements(&unit[i], func(statement) bool { n++; return true })
	}
	a.tx.implicit = a.tx.state == txIdle && n > 1
	var ends []txEnd
	k := 0
	for i := range unit {
		ev := &unit[i]
		if ev.Type != recorder.EventQuery {
			continue
		}
		statements(ev, func(s statement) bool {
			k++
			var last byte
			if k == n {
				last = z
			}
			if op, cnt := a.tx.step(s.tag, s.failed, s.sql, last); op != "" {
				ends = append(ends, txEnd{at: i, op: op, stmts: cnt})
			}
			return true
		})
		if a.tx.implicit && k < n {
			ev.Tx = txName(txIn)
		} else {
			ev.Tx = txName(a.tx.state)
		}
	}
	if n == 0 && z != 0 {
		a.tx.state = z
	}
	a.insertEnds(ends)
	a.sealed()
}

// settleLost seals a unit whose first events went out unsealed: its last
// query event gets the state the server reported.
func (a *audit) settleLost(unit []recorder.Event, z byte) {
	if z != 0 {
		for i := len(unit) - 1; i >= 0; i-- {
			if unit[i].Type == recorder.EventQuery {
				unit[i].Tx = txName(z)
				break
			}
		}
		if z != a.tx.state {
			a.tx.state, a.tx.stmts = z, 0
		}
	}
	a.tx.lost = false
	a.sealed()
}

// insertEnds puts a transaction event after each event that ended one.
func (a *audit) insertEnds(ends []txEnd) {
	if len(ends) == 0 {
		return
	}
	now := a.now()
	for j := len(ends) - 1; j >= 0; j-- {
		e := ends[j]
		a.done = slices.Insert(a.done, a.open+e.at+1,
			recorder.Event{Time: now, Type: recorder.EventTransaction, Op: e.op, Statements: e.stmts})
	}
}

// sealed lets every event so far be handed over. Called locked.
func (a *audit) sealed() {
	a.open = len(a.done)
	if !a.inline { // the scan hands them over (handOver)
		a.arm()
	}
}

// arm starts the timer that hands sealed events over after eventDelay,
// unless it runs. Called locked.
func (a *audit) arm() {
	if a.open > 0 && !a.armed && a.timer != nil {
		a.armed = true
		a.timer.Reset(eventDelay)
	}
}

// unsealed holds back an event just finished until its unit is sealed,
// or hands the unit's events over unsealed when too many wait. Called
// locked.
func (a *audit) unsealed() {
	if len(a.done)-a.open >= maxUnsealed {
		a.tx.lost = true
		a.sealed()
	}
}

// commitWord reports whether sql starts a statement that may commit
// (COMMIT, END, PREPARE TRANSACTION, COMMIT PREPARED).
func commitWord(sql string) bool {
	w := strings.Fields(sql[:min(len(sql), 16)])
	return len(w) > 0 && (strings.EqualFold(w[0], "COMMIT") || strings.EqualFold(w[0], "END") || strings.EqualFold(w[0], "PREPARE"))
}
