package sqlredact

import "strings"

// kind is what a token is.
type kind uint8

const (
	kWord   kind = iota // a keyword or an unquoted identifier
	kIdent              // a quoted identifier: "x" (PostgreSQL), `x` (MySQL)
	kString             // a string literal, however quoted
	kNumber             // a numeric literal
	kParam              // a placeholder: $1 (PostgreSQL), ? (MySQL)
	kPunct              // one byte of anything else
)

// token is one lexeme of a statement: s[start:end].
type token struct {
	kind       kind
	start, end int
	// Strings only. body is where the content starts (after any prefix
	// and the opening quote), close where the closing delimiter starts
	// (end when there is none). altEnd is where the literal would end
	// under the other backslash rule (PostgreSQL with
	// standard_conforming_strings off, MySQL with NO_BACKSLASH_ESCAPES):
	// a secret is redacted up to the later of the two, since the lexer
	// cannot know the session's setting.
	body, close, altEnd int
	quote               byte // ', " or $ (dollar-quoted)
	esc                 bool // backslash escapes the next byte
	// param is a placeholder's 0-based index.
	param int
}

// lexer cuts a statement into tokens, skipping spaces and comments.
type lexer struct {
	d      Dialect
	s      string
	i      int
	inExec int // MySQL: inside /*! … */, whose content the server runs
	params int // MySQL: ? seen so far
}

// lex is s's tokens.
func lex(d Dialect, s string) []token {
	l := lexer{d: d, s: s}
	var out []token
	for {
		t, ok := l.next()
		if !ok {
			return out
		}
		out = append(out, t)
	}
}

func (l *lexer) next() (token, bool) {
	for l.i < len(l.s) {
		if l.skip() {
			continue
		}
		return l.token(), true
	}
	return token{}, false
}

// skip passes a space, a comment or a MySQL executable comment's
// delimiters; false when a token starts at l.i.
func (l *lexer) skip() bool {
	s, i := l.s, l.i
	switch c := s[i]; {
	case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
		l.i++
	case c == '-' && at(s, i+1) == '-' && (l.d == PostgreSQL || i+2 == len(s) || at(s, i+2) <= ' '):
		l.toLineEnd()
	case c == '#' && l.d == MySQL:
		l.toLineEnd()
	case c == '/' && at(s, i+1) == '*':
		if l.d == MySQL && (at(s, i+2) == '!' || at(s, i+2) == 'M' && at(s, i+3) == '!') {
			l.i = strings.IndexByte(s[i:], '!') + i + 1
			for l.i < len(s) && isDigit(s[l.i]) {
				l.i++
			}
			l.inExec++
			return true
		}
		l.blockComment()
	case c == '*' && at(s, i+1) == '/' && l.inExec > 0:
		l.i += 2
		l.inExec--
	default:
		return false
	}
	return true
}

func (l *lexer) toLineEnd() {
	if j := strings.IndexByte(l.s[l.i:], '\n'); j >= 0 {
		l.i += j + 1
	} else {
		l.i = len(l.s)
	}
}

// blockComment passes /* … */; PostgreSQL's nest, MySQL's do not.
func (l *lexer) blockComment() {
	s, depth := l.s, 0
	for i := l.i; i < len(s)-1; i++ {
		switch {
		case s[i] == '/' && s[i+1] == '*' && (depth == 0 || l.d == PostgreSQL):
			depth++
			i++
		case s[i] == '*' && s[i+1] == '/':
			depth--
			i++
			if depth == 0 {
				l.i = i + 1
				return
			}
		}
	}
	l.i = len(s)
}

// token reads the token at l.i.
func (l *lexer) token() token {
	s, i := l.s, l.i
	c := s[i]
	switch {
	case c == '\'':
		return l.quoted(i, i, '\'', l.d == MySQL)
	case c == '"' && l.d == MySQL:
		return l.quoted(i, i, '"', true)
	case c == '"' || c == '`' && l.d == MySQL:
		return l.ident(c)
	case c == '$' && l.d == PostgreSQL:
		return l.dollar()
	case c == '?' && l.d == MySQL:
		l.i++
		l.params++
		return token{kind: kParam, start: i, end: l.i, param: l.params - 1}
	case isPrefix(l.d, s, i):
		q := strings.IndexByte(s[i:min(i+3, len(s))], '\'') + i
		return l.quoted(i, q, '\'', l.d == MySQL || c|0x20 == 'e')
	case isDigit(c) || c == '.' && isDigit(at(s, i+1)):
		for l.i++; l.i < len(s) && (isWord(s[l.i]) || s[l.i] == '.'); l.i++ {
		}
		return token{kind: kNumber, start: i, end: l.i}
	case isWord(c):
		for l.i++; l.i < len(s) && (isWord(s[l.i]) || s[l.i] == '$'); l.i++ {
		}
		return token{kind: kWord, start: i, end: l.i}
	}
	l.i++
	return token{kind: kPunct, start: i, end: l.i}
}

// isPrefix reports whether a string literal with a prefix starts at i:
// N'…', X'…', B'…' in both dialects, E'…' and U&'…' in PostgreSQL.
func isPrefix(d Dialect, s string, i int) bool {
	switch s[i] | 0x20 {
	case 'n', 'x', 'b':
		return at(s, i+1) == '\''
	case 'e':
		return d == PostgreSQL && at(s, i+1) == '\''
	case 'u':
		return d == PostgreSQL && at(s, i+1) == '&' && at(s, i+2) == '\''
	}
	return false
}

// quoted reads a literal whose opening quote is at q (start is its
// prefix, if any): a doubled quote stands for one, and with esc a
// backslash escapes the next byte.
func (l *lexer) quoted(start, q int, quote byte, esc bool) token {
	close := closing(l.s, q+1, quote, esc)
	alt := closing(l.s, q+1, quote, !esc)
	if l.d == PostgreSQL && esc { // E'…' escapes whatever the settings
		alt = close
	}
	t := token{kind: kString, start: start, body: q + 1, close: close, quote: quote, esc: esc}
	t.end, t.altEnd = min(close+1, len(l.s)), min(alt+1, len(l.s))
	l.i = t.end
	return t
}

// closing is where the literal whose content starts at i is closed, or
// len(s) when it is not.
func closing(s string, i int, quote byte, esc bool) int {
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if esc {
				i++
			}
		case quote:
			if at(s, i+1) != quote {
				return i
			}
			i++
		}
	}
	return len(s)
}

// ident reads a quoted identifier.
func (l *lexer) ident(quote byte) token {
	start := l.i
	l.i = min(closing(l.s, start+1, quote, false)+1, len(l.s))
	return token{kind: kIdent, start: start, end: l.i}
}

// dollar reads $1 (a parameter), $tag$…$tag$ (a string) or a lone $.
func (l *lexer) dollar() token {
	s, start := l.s, l.i
	j := start + 1
	if isDigit(at(s, j)) {
		n := 0
		for ; j < len(s) && isDigit(s[j]); j++ {
			n = min(n*10+int(s[j]-'0'), 1<<20)
		}
		l.i = j
		return token{kind: kParam, start: start, end: j, param: n - 1}
	}
	for j < len(s) && isWord(s[j]) {
		j++
	}
	if at(s, j) != '$' {
		l.i++
		return token{kind: kPunct, start: start, end: l.i}
	}
	tag := s[start : j+1]
	body := j + 1
	close := len(s)
	if k := strings.Index(s[body:], tag); k >= 0 {
		close = body + k
	}
	end := min(close+len(tag), len(s))
	l.i = end
	return token{kind: kString, start: start, end: end, body: body, close: close, altEnd: end, quote: '$'}
}

// content is a string literal's text as the server reads it.
func content(s string, t token) string {
	raw := s[t.body:t.close]
	if t.quote == '$' || !strings.ContainsRune(raw, rune(t.quote)) && (!t.esc || !strings.Contains(raw, `\`)) {
		return raw
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\\' && t.esc && i+1 < len(raw):
			i++
			b.WriteByte(unescape(raw[i]))
		case c == t.quote && i+1 < len(raw):
			i++
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case '0':
		return 0
	}
	return c
}

// literal writes text back as a literal quoted as t is.
func literal(s string, t token, text string) string {
	if t.quote == '$' {
		tag := s[t.start:t.body]
		return tag + text + tag
	}
	var b strings.Builder
	b.WriteString(s[t.start:t.body])
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == t.quote:
			b.WriteByte(c)
		case c == '\\' && t.esc:
			b.WriteByte(c)
		}
		b.WriteByte(text[i])
	}
	b.WriteByte(t.quote)
	return b.String()
}

// at is s[i], or 0 past its end.
func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isWord reports whether c belongs in an unquoted word: letters, digits,
// _ and every byte of a multi-byte character.
func isWord(c byte) bool {
	return 'a' <= c|0x20 && c|0x20 <= 'z' || isDigit(c) || c == '_' || c >= 0x80
}
