package sqlredact

import (
	"slices"
	"strings"
)

// connSecrets is text without the password values of connection strings
// (password=… and sslpassword=…, quoted or not, as libpq reads them) and
// of URLs (scheme://user:password@host), with the values removed. A value
// that is already Marker is left alone, so text redacted once, as a
// literal in a statement quoted in another, is not redacted again.
func connSecrets(text string) (string, []string) {
	spans := append(keyValues(text), urlPasswords(text)...)
	if len(spans) == 0 {
		return text, nil
	}
	slices.SortFunc(spans, func(x, y span) int { return x.start - y.start })
	var b strings.Builder
	var secrets []string
	last := 0
	for _, sp := range spans {
		if sp.start < last {
			continue
		}
		v := text[sp.start:sp.end]
		secrets = append(secrets, v, strings.Trim(v, "'"))
		b.WriteString(text[last:sp.start])
		b.WriteString(Marker)
		last = sp.end
	}
	b.WriteString(text[last:])
	return b.String(), secrets
}

// span is text[start:end].
type span struct{ start, end int }

// keyValues are the values of the keys ending in "password" in text.
func keyValues(text string) []span {
	var out []span
	for from := 0; ; {
		p := indexFold(text[from:], "password", 4)
		if p < 0 {
			return out
		}
		j := skipSpaces(text, from+p+len("password"))
		from += p + 1
		if at(text, j) != '=' {
			continue
		}
		v := skipSpaces(text, j+1)
		if v == len(text) {
			continue
		}
		if e := valueEnd(text, v); !redacted(text[v:e]) {
			out = append(out, span{v, e})
		}
	}
}

// redacted reports whether a bare value is one redacted before: Marker,
// Literal, or Marker closing the literal of a statement quoted in text
// (password=[redacted]').
func redacted(v string) bool {
	rest, ok := strings.CutPrefix(v, Marker)
	return ok && (rest == "" || strings.ContainsRune(`'")`, rune(rest[0]))) || v == Literal
}

// valueEnd is where the value at v ends: its closing quote when quoted
// ('…' with backslash escapes), else the next space.
func valueEnd(text string, v int) int {
	if text[v] == '\'' {
		for i := v + 1; i < len(text); i++ {
			switch text[i] {
			case '\\':
				i++
			case '\'':
				return i + 1
			}
		}
		return len(text)
	}
	e := v
	for e < len(text) && !isSpace(text[e]) {
		e++
	}
	return e
}

// urlPasswords are the passwords of the URLs in text.
func urlPasswords(text string) []span {
	var out []span
	for from := 0; ; {
		p := strings.Index(text[from:], "://")
		if p < 0 {
			return out
		}
		a := from + p + 3
		from = a
		e := a
		for e < len(text) && !isSpace(text[e]) && !strings.ContainsRune("/?#", rune(text[e])) {
			e++
		}
		auth := text[a:e]
		at := strings.LastIndexByte(auth, '@')
		if at < 0 {
			continue
		}
		user := auth[:at]
		c := strings.IndexByte(user, ':')
		if c < 0 || c+1 == len(user) || user[c+1:] == Marker {
			continue
		}
		out = append(out, span{a + c + 1, a + at})
	}
}

func skipSpaces(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
