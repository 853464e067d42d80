package search

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Snippet sizes: bytes of context kept before and after the first match.
const (
	snippetBefore = 60
	snippetAfter  = 120
)

// snippet cuts body around the first match of terms, on one line, and
// marks every match in it. Matching is by lower-cased text, so a mark may
// miss a match whose case folds to another length.
func snippet(body string, terms []term) (string, [][2]int) {
	flat := oneLine(body)
	lower := strings.ToLower(flat)
	at := -1
	for _, t := range terms {
		if i := firstOf(lower, t); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	start, end := 0, len(flat)
	if at > snippetBefore {
		start = runeBack(flat, at-snippetBefore)
	}
	if at >= 0 && at+snippetAfter < len(flat) {
		end = runeBack(flat, at+snippetAfter)
	} else if at < 0 && len(flat) > snippetBefore+snippetAfter {
		end = runeBack(flat, snippetBefore+snippetAfter)
	}
	if len(lower) != len(flat) {
		return flat[start:end], nil
	}
	return flat[start:end], markAll(lower[start:end], terms)
}

// firstOf finds a term in lower-cased text: as typed, else its first word.
func firstOf(lower string, t term) int {
	if i := strings.Index(lower, t.raw); i >= 0 {
		return i
	}
	return strings.Index(lower, t.words[0])
}

// markAll marks every match of terms in lower, in order and not
// overlapping, so that callers can cut the snippet at the marks directly.
func markAll(lower string, terms []term) [][2]int {
	var out [][2]int
	for _, t := range terms {
		needle := t.raw
		if !strings.Contains(lower, needle) {
			needle = t.words[0]
		}
		for i := 0; needle != "" && i <= len(lower); {
			j := strings.Index(lower[i:], needle)
			if j < 0 {
				break
			}
			out = append(out, [2]int{i + j, i + j + len(needle)})
			i += j + len(needle)
		}
	}
	return merge(out)
}

// merge sorts marks by start and joins those that overlap.
func merge(marks [][2]int) [][2]int {
	slices.SortFunc(marks, func(a, b [2]int) int { return cmp.Compare(a[0], b[0]) })
	out := marks[:0]
	for _, m := range marks {
		if n := len(out); n > 0 && m[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], m[1])
			continue
		}
		out = append(out, m)
	}
	return out
}

// oneLine turns control characters (newlines, tabs) into spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// runeBack moves i back to the start of the rune it falls in.
func runeBack(s string, i int) int {
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}
