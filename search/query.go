package search

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Where says what part of a session a hit was found in.
type Where string

// The places an entry comes from.
const (
	WhereCommand Where = "command" // an exec command line, or a command typed in a terminal
	WhereStdin   Where = "stdin"   // text an exec channel read on stdin (the script a pipeline ran)
	WhereOutput  Where = "output"  // terminal or exec output, escape sequences removed
	WhereInput   Where = "input"   // keys typed in a terminal, when record_input is on
	WhereQuery   Where = "query"   // a database query: SQL, bound parameters, outcome
	WhereFile    Where = "file"    // an sftp or scp path, with the file's SHA-256
	WhereForward Where = "forward" // a forward's destination
	WhereNote    Where = "note"    // a note the bastion wrote into the recording
)

// Wheres lists every Where, in the order docs and help show them.
var Wheres = []Where{WhereCommand, WhereStdin, WhereOutput, WhereInput, WhereQuery, WhereFile, WhereForward, WhereNote}

// Query limits.
const (
	// MaxQueryBytes bounds the search text: a search is for a needle, and
	// every term costs the database a posting list.
	MaxQueryBytes = 1024
	// MaxTerms bounds the terms of one search.
	MaxTerms = 16
	// DefaultLimit is the hits a search returns when Query.Limit is zero.
	DefaultLimit = 50
	// MaxLimit caps Query.Limit.
	MaxLimit = 1000
)

// Query is one search. Text is required; every other field narrows the
// hits, its zero value matching everything.
type Query struct {
	// Text is what to find. Words separated by spaces must all occur in
	// one entry; each is matched as typed, case aside: "/etc/shadow" finds
	// "cat /etc/shadow" and "payments.acc" finds "payments.accounts" (a
	// term matches where a word starts, its last word as a prefix). Double
	// quotes make a phrase of several words: "drop table".
	Text string
	// Identity, Target and Protocol keep the sessions of that identity
	// (NHI id), target name and protocol (ssh, postgres, mysql).
	Identity, Target, Protocol string
	// Since and Until keep hits at or after Since and before Until.
	Since, Until time.Time
	// Breakglass keeps the sessions opened under a break-glass grant.
	Breakglass bool
	// Where keeps hits found in these places; empty: everywhere.
	Where []Where
	// Limit is the most hits returned, newest first; zero means
	// DefaultLimit, and it is capped at MaxLimit.
	Limit int
	// Visible restricts the search to the sessions of these identities
	// (an owner sees the NHIs they own); nil means every session, and an
	// empty non-nil slice none.
	Visible []string
}

// QueryError says why a search cannot run: the text is empty, too long,
// or has nothing to look for. Its message is for the person who typed it.
type QueryError struct{ Reason string }

func (e *QueryError) Error() string { return "search: " + e.Reason }

// ErrBadQuery matches every QueryError with errors.Is.
var ErrBadQuery = errors.New("search: bad query")

// Is makes errors.Is(err, ErrBadQuery) true for a QueryError.
func (e *QueryError) Is(target error) bool { return target == ErrBadQuery }

func badQuery(format string, args ...any) error {
	return &QueryError{Reason: fmt.Sprintf(format, args...)}
}

// term is one thing to find: the text as typed (lower-cased) and its words.
type term struct {
	raw   string
	words []string
}

// parseText splits search text into terms: runs of non-space characters,
// or double-quoted phrases. A term without letters or digits is dropped;
// a search left with no term is an error.
func parseText(text string) ([]term, error) {
	if !utf8.ValidString(text) {
		return nil, badQuery("the search text is not valid UTF-8")
	}
	if len(text) > MaxQueryBytes {
		return nil, badQuery("the search text is %d bytes long; at most %d are searched", len(text), MaxQueryBytes)
	}
	if strings.TrimSpace(text) == "" {
		return nil, badQuery("the search text is empty")
	}
	var terms []term
	for _, raw := range splitTerms(oneLine(text)) { // no entry holds a NUL; newlines are spaces
		if t, ok := newTerm(raw); ok {
			terms = append(terms, t)
		}
	}
	if len(terms) == 0 {
		return nil, badQuery("the search text %q has no letters or digits to look for", text)
	}
	if len(terms) > MaxTerms {
		return nil, badQuery("the search text has %d terms; at most %d are searched", len(terms), MaxTerms)
	}
	return terms, nil
}

// splitTerms cuts text at spaces outside double quotes; an unclosed quote
// runs to the end.
func splitTerms(text string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range text {
		switch {
		case r == '"':
			quoted = !quoted
			if !quoted {
				out, cur = flush(out, &cur), strings.Builder{}
			}
		case unicode.IsSpace(r) && !quoted:
			out, cur = flush(out, &cur), strings.Builder{}
		default:
			cur.WriteRune(r)
		}
	}
	return flush(out, &cur)
}

func flush(out []string, cur *strings.Builder) []string {
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, strings.Join(strings.Fields(s), " "))
	}
	return out
}

func newTerm(raw string) (term, bool) {
	words := Words(raw)
	if len(words) == 0 {
		return term{}, false
	}
	return term{raw: strings.ToLower(raw), words: words}, true
}

// Words splits text into what both databases index: runs of letters and
// digits, lower-cased. Everything else separates words.
func Words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
}

// prefixMin is the shortest last word matched as a prefix: a shorter one
// would expand to too many words to be worth it.
const prefixMin = 3

// ftsMatch is the SQLite FTS5 MATCH expression for terms: each term a
// phrase of its words (which hold no quote), its last word a prefix when
// prefix is set.
func ftsMatch(terms []term, prefix bool) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		p := `"` + strings.Join(t.words, " ") + `"`
		if prefix && t.prefixable() {
			p += "*"
		}
		parts[i] = p
	}
	return strings.Join(parts, " AND ")
}

// tsQuery is the PostgreSQL to_tsquery('simple', …) text for terms: words
// quoted as lexemes, joined by <-> in a term and & between terms, the last
// word of each a prefix when prefix is set.
func tsQuery(terms []term, prefix bool) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		ws := make([]string, len(t.words))
		for j, w := range t.words {
			ws[j] = "'" + w + "'"
		}
		if prefix && t.prefixable() {
			ws[len(ws)-1] += ":*"
		}
		parts[i] = "(" + strings.Join(ws, " <-> ") + ")"
	}
	return strings.Join(parts, " & ")
}

// prefixable says the term's last word is long enough to match as a
// prefix.
func (t term) prefixable() bool { return len([]rune(t.words[len(t.words)-1])) >= prefixMin }

// anyPrefixable says a prefix search of terms differs from a whole-word one.
func anyPrefixable(terms []term) bool {
	for _, t := range terms {
		if t.prefixable() {
			return true
		}
	}
	return false
}

// checkable says the database can check raw as a substring, case aside:
// SQLite's lower() folds ASCII only.
func (t term) checkable() bool {
	for i := 0; i < len(t.raw); i++ {
		if t.raw[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
