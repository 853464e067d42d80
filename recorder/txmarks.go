package recorder

import "strconv"

// A statement's transaction fate is known only later, from the
// transaction event that ends it. The text replay holds the lines of an
// open transaction, within a bound, and prints them with their fate when
// it is known: "(committed)", "(rolled back)", or "(transaction still open
// at the end)". A transaction past the bound is printed as it comes,
// unmarked, with a line saying so; its transaction event tells its fate.
const (
	maxTxLines = 1000
	maxTxBytes = 4 << 20
)

// txHold is the text replay's open transaction.
type txHold struct {
	lines []txLine
	size  int
	open  bool // a transaction is open
	over  bool // it passed the bound: its lines go out unmarked
	ended bool // the statement that ended it came; its transaction event should be next
}

type txLine struct {
	text  string
	query bool // gets the fate mark
}

// eventLine prints an event's line, or holds it while its transaction
// is open.
func (p *textPlayer) eventLine(ev Event, text string) {
	t := &p.tx
	switch {
	case ev.Type == EventTransaction:
		p.releaseTx(txMark(ev.Op))
		p.tx = txHold{lines: t.lines[:0]}
	case t.ended: // no transaction event followed: its fate is not recorded
		p.releaseTx("")
		p.tx = txHold{lines: t.lines[:0]}
		p.eventLine(ev, text)
		return
	case ev.Type == EventEnd:
		p.releaseTx(" (transaction still open at the end)")
		p.tx = txHold{lines: t.lines[:0]}
	case t.open && !t.over:
		p.hold(ev, text)
		return
	case !t.open && ev.Type == EventQuery && (ev.Tx == TxIn || ev.Tx == TxFailed):
		t.open = true
		p.hold(ev, text)
		return
	}
	p.w.WriteString(text)
}

// hold keeps a line of the open transaction, or, past the bound, prints
// what it holds unmarked.
func (p *textPlayer) hold(ev Event, text string) {
	t := &p.tx
	t.lines = append(t.lines, txLine{text: text, query: ev.Type == EventQuery})
	t.size += len(text)
	t.ended = ev.Type == EventQuery && ev.Tx == TxIdle
	if len(t.lines) <= maxTxLines && t.size <= maxTxBytes {
		return
	}
	p.releaseTx("")
	t.over, t.ended = true, false
	p.w.WriteString("# (this transaction holds more than " + strconv.Itoa(maxTxLines) + " statements or " +
		sizeText(maxTxBytes) + ": its statements are shown unmarked; the transaction event says whether they were committed)\n")
}

// releaseTx prints the held lines, each statement with mark.
func (p *textPlayer) releaseTx(mark string) {
	t := &p.tx
	for _, l := range t.lines {
		if l.query && mark != "" {
			p.w.WriteString(l.text[:len(l.text)-1] + mark + "\n")
			continue
		}
		p.w.WriteString(l.text)
	}
	clear(t.lines)
	t.lines, t.size = t.lines[:0], 0
}

// txMark is the mark a transaction event's op gives its statements.
func txMark(op string) string {
	switch op {
	case TxCommit:
		return " (committed)"
	case TxRollback:
		return " (rolled back)"
	}
	return " (transaction " + cmp(op, "ended") + ")"
}
