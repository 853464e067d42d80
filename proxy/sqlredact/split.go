package sqlredact

import "strings"

// Split cuts a query string that may hold several statements (a
// PostgreSQL simple Query, a MySQL COM_QUERY with multi-statements) into
// its statements, in order, as the server runs them: at each semicolon
// outside literals, quoted identifiers and comments. Each statement runs
// from its first token to its last, without the semicolon; empty ones
// (";;", a trailing comment), which the servers skip, are left out.
//
// A compound body keeps its semicolons: PostgreSQL's BEGIN ATOMIC … END
// (CREATE FUNCTION, CREATE PROCEDURE) and a MySQL CREATE … BEGIN … END
// (procedures, functions, triggers, events), followed through nested
// BEGIN/CASE … END. The statements share sql's memory.
func Split(d Dialect, sql string) []string {
	l := lexer{d: d, s: sql}
	var out []string
	start, end := -1, 0
	var b body
	for {
		t, ok := l.next()
		if !ok {
			break
		}
		if t.kind == kPunct && sql[t.start] == ';' && b.depth == 0 {
			if start >= 0 {
				out = append(out, sql[start:end])
			}
			start, b = -1, body{}
			continue
		}
		if start < 0 {
			start = t.start
		}
		end = t.end
		b.see(d, sql, t)
	}
	if start >= 0 {
		out = append(out, sql[start:end])
	}
	return out
}

// body follows the compound body of one statement, whose semicolons do
// not end it.
type body struct {
	words  int    // words of the statement so far
	create bool   // its first word is CREATE
	prev   string // the previous word; "" after another token
	depth  int    // BEGIN/CASE … END nesting inside the body
	inBody bool   // a body started
}

// see takes the statement's next token.
func (b *body) see(d Dialect, sql string, t token) {
	if t.kind != kWord {
		b.prev = ""
		return
	}
	w := sql[t.start:t.end]
	if b.words == 0 {
		b.create = is(w, "CREATE")
	}
	b.words++
	prev := b.prev
	b.prev = w
	switch {
	case d == PostgreSQL && is(w, "ATOMIC") && is(prev, "BEGIN"),
		d == MySQL && is(w, "BEGIN") && b.create:
		b.depth++
		b.inBody = true
	case b.inBody && is(prev, "END") && (is(w, "IF") || is(w, "LOOP") || is(w, "WHILE") || is(w, "REPEAT")):
		b.depth++ // END IF closes an IF, which was not counted: undo the END
	case b.depth == 0:
	case is(w, "CASE") && !is(prev, "END"):
		b.depth++
	case is(w, "END"):
		b.depth--
	}
}

// is reports whether the word w is the keyword kw, in any case.
func is(w, kw string) bool { return len(w) == len(kw) && strings.EqualFold(w, kw) }
