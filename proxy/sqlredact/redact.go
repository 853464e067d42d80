// Package sqlredact removes passwords from SQL before the database
// proxies (proxy/postgres, proxy/mysql) record it: every statement they
// record goes through Redact, every bound text value through Param, and
// the error message of a redacted statement through Scrub.
//
// A password is a literal in a password position, found by a small lexer
// that knows each dialect's quoting and comments, so a password holding
// quotes or keywords goes whole and a statement that only names a
// password column, or mentions one in a comment, is left as it was:
//
//   - after a word ending in PASSWORD: PASSWORD '…', ENCRYPTED PASSWORD,
//     OPTIONS (password '…'), MASTER_PASSWORD = '…', PASSWORD('…'),
//     SET PASSWORD [FOR user] = …, WHERE password = '…';
//   - after BY, AS or USING in an IDENTIFIED clause (IDENTIFIED BY '…',
//     IDENTIFIED WITH plugin AS '…', IDENTIFIED VIA plugin USING '…');
//   - the literal after REPLACE, and a literal right after a password
//     (MySQL joins adjacent literals);
//   - inside any literal: password=… of a connection string, the password
//     of a URL (scheme://user:password@host), and a statement quoted in it
//     (EXECUTE '…', dblink_exec('…')), by the same rules.
//
// A password literal becomes Literal ('[redacted]'), whatever its
// quoting; a password inside a literal's text becomes Marker. A
// placeholder in a password position stays, and Result.Params names it
// so its bound value is replaced with Marker.
package sqlredact

import (
	"slices"
	"strings"
)

// Dialect is whose quoting and comments the lexer follows.
type Dialect uint8

const (
	// PostgreSQL: '…' with '' (and, as a server may be set, \), E'…',
	// $tag$…$tag$, "identifiers", nested /* */ comments, $1 parameters.
	PostgreSQL Dialect = iota
	// MySQL (MariaDB too): '…' and "…" with \ and doubled quotes,
	// `identifiers`, # and -- comments, /*! … */ run as statements,
	// ? parameters.
	MySQL
)

// Marker replaces a password: the whole value of a bound parameter, or
// the password inside a literal's text (password=[redacted]).
const Marker = "[redacted]"

// Literal replaces a password literal, so the statement keeps its shape.
const Literal = "'" + Marker + "'"

// maxDepth bounds how deep statements quoted in literals are read.
const maxDepth = 3

// Result is a statement as it may be recorded.
type Result struct {
	// SQL is the statement without its passwords; the input itself when
	// there were none.
	SQL string
	// Redacted is true when SQL differs from the input.
	Redacted bool
	// Params are the 0-based indexes of the placeholders in password
	// positions, in order: their bound values are passwords.
	Params []int
	// Secrets are the passwords removed, as written and as read, for
	// Scrub. They are not to be kept past the statement's outcome.
	Secrets []string
}

// Redact is sql without the passwords it holds. Text that contains none
// of "password", "identified" and "://" (in any case) is returned as it
// is after one scan, without being lexed.
func Redact(d Dialect, sql string) Result {
	if !mayHold(sql) {
		return Result{SQL: sql}
	}
	r := redactor{d: d, s: sql}
	r.run()
	res := Result{SQL: r.apply(), Secrets: r.secrets}
	res.Redacted = len(r.edits) > 0
	if len(r.params) > 0 {
		slices.Sort(r.params)
		res.Params = slices.Compact(r.params)
	}
	return res
}

// Param is a bound text value as it may be recorded: a connection
// string, URL or statement in it loses its password as a literal's text
// does. It reports whether anything was removed.
func Param(d Dialect, v string) (string, bool) {
	if !mayHold(v) {
		return v, false
	}
	out, _ := redactText(d, v, 1)
	return out, out != v
}

// Values redacts bound values in place, as the proxies record them (a
// string for text): the value of each placeholder that Result.Params
// names in at becomes Marker, and every other string loses its passwords
// as Param says. It returns the values removed at those positions, for
// Scrub, and whether anything changed.
func Values(d Dialect, values []any, at []int) (secrets []string, changed bool) {
	for _, i := range at {
		if i >= len(values) || values[i] == nil {
			continue
		}
		if s, ok := values[i].(string); ok {
			secrets = append(secrets, s)
		}
		values[i], changed = Marker, true
	}
	for i, v := range values {
		if s, ok := v.(string); ok && s != Marker {
			if out, ok := Param(d, s); ok {
				values[i], changed = out, true
			}
		}
	}
	return secrets, changed
}

// mayHold reports whether s contains a word every redaction needs.
func mayHold(s string) bool {
	return indexFold(s, "password", 4) >= 0 || indexFold(s, "identified", 6) >= 0 || strings.Contains(s, "://")
}

// redactor finds the passwords of one text.
type redactor struct {
	d       Dialect
	s       string
	depth   int // how deep in quoted statements s is
	toks    []token
	edits   []edit
	params  []int
	secrets []string
}

// edit replaces s[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// state is where a statement is, as far as passwords go.
type state struct {
	expect bool // the next value is a password
	fn     bool // … and may be a function's result: CONCAT('a', 'b')
	waitEq bool // SET PASSWORD FOR user: the password follows the =
	ident  bool // in an IDENTIFIED clause: BY, AS and USING introduce the password
	after  bool // the token before was a password: REPLACE or an adjacent literal continue it
	depth  int  // in the parentheses of a password's expression: every value is one
}

func (r *redactor) run() {
	r.toks = lex(r.d, r.s)
	var st state
	for i := range r.toks {
		st = r.step(st, i)
	}
}

// step is the state after token i.
func (r *redactor) step(st state, i int) state {
	t := r.toks[i]
	if st.depth > 0 {
		return r.inExpr(st, t)
	}
	after := st.after
	st.after = false
	switch t.kind {
	case kString, kNumber, kParam:
		if st.expect || after && t.kind == kString {
			r.secret(t)
			return state{ident: st.ident, after: true}
		}
		st.expect, st.fn = false, false
		if t.kind == kString {
			r.inside(t)
		}
	case kWord:
		return r.word(st, i, after)
	case kPunct:
		return r.punct(st, r.s[t.start])
	default:
		st.expect, st.fn = false, false
	}
	return st
}

// inExpr is the state after t inside a password's parentheses.
func (r *redactor) inExpr(st state, t token) state {
	switch {
	case t.kind == kPunct && r.s[t.start] == '(':
		st.depth++
	case t.kind == kPunct && r.s[t.start] == ')':
		st.depth--
	case t.kind == kPunct && r.s[t.start] == ';':
		return state{}
	case t.kind == kString || t.kind == kNumber || t.kind == kParam:
		r.secret(t)
	}
	return st
}

func (r *redactor) word(st state, i int, after bool) state {
	t := r.toks[i]
	w := r.s[t.start:t.end]
	next := r.next(i)
	switch {
	case len(w) >= 8 && equalFold(w[len(w)-8:], "password"):
		if r.isWord(next, "for") { // SET PASSWORD FOR 'u'@'h' = …
			st.waitEq, st.expect = true, false
		} else {
			st.expect = true
		}
		st.fn = false
	case equalFold(w, "identified"):
		st.ident, st.expect, st.fn = true, false, false
	case st.ident && (equalFold(w, "by") || equalFold(w, "as") || equalFold(w, "using")),
		after && equalFold(w, "replace"):
		st.expect, st.fn = true, true
	case st.expect && r.d == MySQL && w[0] == '_' && next.kind == kString:
		// a character set introducer: _utf8mb4'…'
	case st.expect && st.fn && r.isPunct(next, '('):
		// a function of the password: CONCAT('a', 'b')
	default:
		st.expect, st.fn = false, false
	}
	return st
}

func (r *redactor) punct(st state, c byte) state {
	switch c {
	case ';':
		return state{}
	case '=':
		if st.waitEq {
			st.waitEq, st.expect = false, true
		}
		st.fn = st.expect
	case '(':
		if st.expect {
			st.expect, st.fn, st.depth = false, false, 1
		}
	case ',':
		st.ident, st.expect, st.fn = false, false, false
	default:
		st.expect, st.fn = false, false
	}
	return st
}

// next is the token after i; a zero token at the end.
func (r *redactor) next(i int) token {
	if i+1 < len(r.toks) {
		return r.toks[i+1]
	}
	return token{kind: kPunct, start: len(r.s), end: len(r.s)}
}

func (r *redactor) isWord(t token, w string) bool {
	return t.kind == kWord && equalFold(r.s[t.start:t.end], w)
}

func (r *redactor) isPunct(t token, c byte) bool {
	return t.kind == kPunct && t.start < len(r.s) && r.s[t.start] == c
}

// secret redacts a value in a password position.
func (r *redactor) secret(t token) {
	if t.kind == kParam {
		r.params = append(r.params, t.param)
		return
	}
	end := t.end
	if t.kind == kString {
		r.keep(content(r.s, t), r.s[t.body:t.close])
		if t.altEnd > end { // the longer reading's text too
			r.keep(r.s[t.body : t.altEnd-1])
			end = t.altEnd
		}
	} else {
		r.keep(r.s[t.start:t.end])
	}
	r.edit(t.start, end, Literal)
}

// inside redacts the passwords in the text of a literal that is not one.
func (r *redactor) inside(t token) {
	if r.depth >= maxDepth {
		return
	}
	c := content(r.s, t)
	if !mayHold(c) {
		return
	}
	out, secrets := redactText(r.d, c, r.depth+1)
	if out == c {
		return
	}
	r.keep(secrets...)
	r.edit(t.start, t.end, literal(r.s, t, out))
}

// keep notes secrets for Scrub.
func (r *redactor) keep(secrets ...string) {
	for _, s := range secrets {
		if s != "" && s != Marker && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
}

// edit replaces s[start:end]; one that overlaps the edit before (a
// literal inside a password's longer reading) joins it.
func (r *redactor) edit(start, end int, text string) {
	if n := len(r.edits); n > 0 && start < r.edits[n-1].end {
		r.edits[n-1].end = max(r.edits[n-1].end, end)
		r.edits[n-1].text = Literal
		return
	}
	r.edits = append(r.edits, edit{start: start, end: end, text: text})
}

// apply is s with the edits made.
func (r *redactor) apply() string {
	if len(r.edits) == 0 {
		return r.s
	}
	var b strings.Builder
	b.Grow(len(r.s))
	last := 0
	for _, e := range r.edits {
		b.WriteString(r.s[last:e.start])
		b.WriteString(e.text)
		last = e.end
	}
	b.WriteString(r.s[last:])
	return b.String()
}

// redactText is the text of a literal (or a bound value) without its
// passwords: as a statement, then as connection strings and URLs.
func redactText(d Dialect, text string, depth int) (string, []string) {
	sub := redactor{d: d, s: text, depth: depth}
	sub.run()
	out, secrets := connSecrets(sub.apply())
	return out, append(sub.secrets, secrets...)
}

// Scrub is msg, an error message about a statement, without the secrets
// Redact removed from it: MySQL quotes the statement near a syntax error,
// PostgreSQL the token. A secret shorter than minScrub letters would
// take ordinary words with it, so a message holding one is replaced
// whole.
func Scrub(msg string, secrets []string) string {
	if len(secrets) == 0 {
		return msg
	}
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		switch {
		case s == "" || !strings.Contains(msg, s):
		case len(s) < minScrub:
			return scrubbed
		default:
			msg = strings.ReplaceAll(msg, s, Marker)
		}
	}
	return msg
}

// minScrub is the shortest secret Scrub replaces within a message.
const minScrub = 4

// scrubbed replaces a message that quoted a short password.
const scrubbed = "[redacted: the message quoted a password]"

// indexFold is the index of the first match of word (lower-case ASCII
// letters) in s in any case, or -1. It looks for word's k-th byte with
// strings.IndexByte, which scans many bytes at once.
func indexFold(s, word string, k int) int {
	best := -1
	for _, c := range [2]byte{word[k], word[k] - 'a' + 'A'} {
		for i := k; i < len(s); {
			j := strings.IndexByte(s[i:], c)
			if j < 0 {
				break
			}
			p := i + j - k
			if best >= 0 && p >= best {
				break
			}
			if p+len(word) <= len(s) && equalFold(s[p:p+len(word)], word) {
				best = p
				break
			}
			i += j + 1
		}
	}
	return best
}

// equalFold compares s with word (lower-case ASCII letters) in any case;
// unlike strings.EqualFold it folds no other letters, as the servers'
// keywords do not.
func equalFold(s, word string) bool {
	if len(s) != len(word) {
		return false
	}
	for i := range len(s) {
		if s[i]|0x20 != word[i] {
			return false
		}
	}
	return true
}
