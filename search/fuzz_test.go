package search

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseText: any text either parses into terms whose FTS5 and tsquery
// expressions hold only quoted words, or is refused with a QueryError.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{"/etc/shadow", `"drop table"`, `a" OR "b`, "10.1.2.3", "%*", "NEAR(x y)", "'; DROP TABLE x; --",
		"ünï©ødé", "col:val", "a\x00b", `"""`, "\\\"x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		terms, err := parseText(text)
		if err != nil {
			if _, ok := err.(*QueryError); !ok {
				t.Fatalf("parse %q: error %T %v is not a QueryError", text, err, err)
			}
			return
		}
		for _, tm := range terms {
			for _, w := range tm.words {
				if w == "" || strings.ContainsAny(w, "\"'*:&|!()<>\\ \x00") || !utf8.ValidString(w) {
					t.Fatalf("parse %q: word %q could escape its quotes", text, w)
				}
			}
		}
		m := ftsMatch(terms, true)
		if strings.Count(m, `"`)%2 != 0 {
			t.Fatalf("fts5 match %q has an unbalanced quote", m)
		}
		snippet(text, terms)
	})
}
