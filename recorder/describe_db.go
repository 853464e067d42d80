package recorder

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxOutcomeSQL is how much of each statement of a multi-statement query
// its outcome shows: the query's whole text comes just before.
const maxOutcomeSQL = 60

// describeQuery is a query on one line: its text (with its length and
// SHA-256 when the recording keeps only a prefix), parameters, each
// statement's outcome, the result's size and the transaction it ran in.
func describeQuery(ev Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "query (%.1f ms): %s", ev.DurationMS, clipText(oneLine(ev.SQL)))
	if c := ev.SQLCut; c != nil {
		fmt.Fprintf(&b, " (%d bytes, sha256 %s, first %s shown)", c.Bytes, c.SHA256, sizeText(int64(len(ev.SQL))))
	}
	if len(ev.Params) > 0 {
		params, _ := json.Marshal(ev.Params)
		fmt.Fprintf(&b, " params=%s", clipText(string(params)))
	}
	switch {
	case len(ev.Outcomes) > 0:
		fmt.Fprintf(&b, " -> %s:", plural(int64(len(ev.Outcomes)), "statement"))
		for i, o := range ev.Outcomes {
			if i > 0 {
				b.WriteByte(';')
			}
			fmt.Fprintf(&b, " %s -> %s", shortSQL(o.SQL), outcomeText(o))
		}
	case ev.Outcome != nil:
		b.WriteString(" -> " + outcomeText(*ev.Outcome))
	}
	if ev.Bytes > 0 {
		fmt.Fprintf(&b, ", %s", plural(ev.Bytes, "byte"))
	}
	if ev.Redacted {
		b.WriteString(" [passwords redacted]")
	}
	switch ev.Tx {
	case TxIn:
		b.WriteString(" [in transaction]")
	case TxFailed:
		b.WriteString(" [in failed transaction]")
	}
	return b.String()
}

// outcomeText is one statement's outcome: its tag and rows, its error, or
// that it never ran; with the result's size.
func outcomeText(o Outcome) string {
	var s string
	switch {
	case o.NotExecuted:
		return "not executed"
	case o.Error != "" || o.ErrorCode != "":
		s = fmt.Sprintf("error %s: %s", o.ErrorCode, o.Error)
	case o.Rows != nil:
		s = fmt.Sprintf("%s (%d rows)", o.Tag, *o.Rows)
	default:
		s = o.Tag
	}
	if o.Bytes > 0 {
		s += ", " + plural(o.Bytes, "result byte")
	}
	return s
}

// shortSQL is a statement of a multi-statement query on one line, cut to
// maxOutcomeSQL characters.
func shortSQL(sql string) string {
	s := oneLine(sql)
	if utf8.RuneCountInString(s) <= maxOutcomeSQL {
		return s
	}
	i := 0
	for n := 0; n < maxOutcomeSQL-1; n++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

// clipSlack lets a text that a reader already cut (lines.go: the cut
// string and its note) through whole.
const clipSlack = 256

// clipText bounds a text the text replay prints: one longer than
// maxShownString keeps its start and says how long it is.
func clipText(s string) string {
	if len(s) <= maxShownString+clipSlack {
		return s
	}
	cut := runeStart(s, maxShownString)
	return s[:cut] + cutNote(int64(len(s)), int64(cut))
}

func describeTransaction(ev Event) string {
	s := "transaction " + cmp(ev.Op, "end")
	switch ev.Op {
	case TxCommit:
		s += " (committed)"
	case TxRollback:
		s += " (rolled back)"
	}
	if ev.Statements > 0 {
		s += ": " + plural(ev.Statements, "statement")
	}
	if ev.Text != "" { // why, when the server decided: "deadlock", "implicit commit by DDL"
		s += " (" + ev.Text + ")"
	}
	return s
}

func describeNotification(ev Event) string {
	n := ev.Notification
	if n == nil {
		return "notification"
	}
	s := "notification on channel " + n.Channel
	if n.PID != 0 {
		s += " from server process " + strconv.FormatUint(uint64(n.PID), 10)
	}
	if n.Payload != "" {
		s += ": " + clipText(n.Payload)
	}
	return s
}

func describeCancel(ev Event) string {
	s := "cancel of the running statement"
	if ev.From != "" {
		s += ", sent by " + ev.From
	}
	return s + describeOutcome(ev.Outcome)
}
