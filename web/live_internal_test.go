package web

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzLiveText: however a stream's bytes are cut into writes, the live
// view's text is valid UTF-8, and for valid input it is the input exactly
// (a character cut between writes is held back, not replaced).
func FuzzLiveText(f *testing.F) {
	for _, seed := range []string{"plain", "héllo wörld", "日本語のテキスト", "emoji 🔥 ok", "\x1b[31mred\x1b[0m", "\xff\xfe bad", ""} {
		f.Add([]byte(seed), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if len(data) > 0 {
			cut = ((cut % len(data)) + len(data)) % len(data)
		} else {
			cut = 0
		}
		var e sseEncoder
		got := e.text("o0", data[:cut]) + e.text("o0", data[cut:])
		if !utf8.ValidString(got) {
			t.Fatalf("text %q is not valid UTF-8", got)
		}
		if utf8.Valid(data) && got != string(data) {
			t.Fatalf("got %q, want %q", got, data)
		}
	})
}

// FuzzSnippetPieces: the pieces of a snippet always put it back together,
// whatever the match ranges (out of order, overlapping, out of range,
// inside a character), and a marked piece is never empty.
func FuzzSnippetPieces(f *testing.F) {
	f.Add("DROP TABLE payments_archive", 11, 19, 0, 4)
	f.Add("café payments", 3, 5, 100, -4)
	f.Add("", 0, 1, 2, 3)
	f.Fuzz(func(t *testing.T, snippet string, a, b, c, d int) {
		ps := pieces(snippet, [][2]int{{a, b}, {c, d}, {b, a}})
		var sb strings.Builder
		for _, p := range ps {
			if p.Match && p.Text == "" {
				t.Fatalf("an empty mark in %q", snippet)
			}
			sb.WriteString(p.Text)
		}
		if sb.String() != snippet {
			t.Fatalf("pieces make %q, want %q", sb.String(), snippet)
		}
	})
}
