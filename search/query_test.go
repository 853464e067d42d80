package search

import (
	"errors"
	"strings"
	"testing"
)

func TestParseText(t *testing.T) {
	cases := []struct {
		text, fts, ts string
	}{
		{"/etc/shadow", `"etc shadow"*`, `('etc' <-> 'shadow':*)`},
		{"payments.accounts", `"payments accounts"*`, `('payments' <-> 'accounts':*)`},
		{"10.1.2.3", `"10 1 2 3"`, `('10' <-> '1' <-> '2' <-> '3')`},
		{`DROP "table users"`, `"drop"* AND "table users"*`, `('drop':*) & ('table' <-> 'users':*)`},
		{`a AND b OR NOT c`, `"a" AND "and"* AND "b" AND "or" AND "not"* AND "c"`, ``},
		{`it's "quoted`, `"it s" AND "quoted"*`, ``},
		{"Grüße ärger", `"grüße"* AND "ärger"*`, ``},
		{"%admin% * x*", `"admin"* AND "x"`, ``},
		{"NEAR(a b) col:x ^y", `"near a" AND "b" AND "col x" AND "y"`, ``},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			terms, err := parseText(c.text)
			if err != nil {
				t.Fatalf("parse %q: %v", c.text, err)
			}
			if got := ftsMatch(terms, true); got != c.fts {
				t.Errorf("fts5 match: got %s, want %s", got, c.fts)
			}
			if got := tsQuery(terms, true); c.ts != "" && got != c.ts {
				t.Errorf("tsquery: got %s, want %s", got, c.ts)
			}
		})
	}
}

func TestParseTextRefuses(t *testing.T) {
	cases := map[string]string{
		"":                         "empty",
		"   ":                      "empty",
		`"" * % -- ;`:              "no letters or digits",
		strings.Repeat("x", 10240): "at most 1024",
		strings.Repeat("a ", 20):   "at most 16",
		"\xff\xfe":                 "UTF-8",
	}
	for text, want := range cases {
		_, err := parseText(text)
		var qe *QueryError
		if !errors.As(err, &qe) || !errors.Is(err, ErrBadQuery) {
			t.Fatalf("parse %.20q: got %v, want a QueryError", text, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("parse %.20q: got %q, want it to say %q", text, err, want)
		}
	}
}

func TestSnippetMarks(t *testing.T) {
	terms, _ := parseText("/etc/shadow")
	body := strings.Repeat("x", 200) + "\ncat /ETC/shadow\n" + strings.Repeat("y", 300)
	s, marks := snippet(body, terms)
	if len(s) > snippetBefore+snippetAfter+1 || strings.Contains(s, "\n") {
		t.Fatalf("snippet %q is not one short line", s)
	}
	if len(marks) != 1 || s[marks[0][0]:marks[0][1]] != "/ETC/shadow" {
		t.Fatalf("marks %v of %q do not cover the match", marks, s)
	}
}
