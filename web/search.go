package web

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sallyport/sallyport/search"
)

// Searcher searches what happened inside sessions (search.Index): the
// search box of the sessions page and GET /api/v1/search.
type Searcher interface {
	Search(ctx context.Context, q search.Query) (search.Result, error)
}

// searchView is what the sessions page shows of a content search.
type searchView struct {
	Text    string
	Hits    []hitView
	More    bool
	Behind  string // how far the index lags; empty when up to date
	Problem string // why the text cannot be searched, for the person who typed it
}

// hitView is one hit with its snippet cut into plain and matched pieces
// (the template escapes each) and the link that opens the session there.
type hitView struct {
	search.Hit
	Pieces []snippetPiece
	Link   string
}

type snippetPiece struct {
	Text  string
	Match bool
}

// contentQuery is the sessions form as a search of session content: the
// same filters the CLI's `sessions search` takes.
func (q sessionQuery) contentQuery(text string, visible []string) search.Query {
	return search.Query{Text: text, Identity: q.Identity, Target: q.Target, Protocol: q.Protocol,
		Since: q.from, Until: q.to, Breakglass: q.Breakglass, Visible: visible}
}

// searchContent runs the search box's text for p, within what p may see.
// A text the index cannot search comes back as Problem, not an error.
func (s *Server) searchContent(ctx context.Context, p *principal, q sessionQuery, text string) (*searchView, error) {
	v := &searchView{Text: text}
	if s.Search == nil {
		v.Problem = "searching session content is not available on this server"
		return v, nil
	}
	owned, err := s.ownedIdentities(ctx, p)
	if err != nil {
		return nil, err
	}
	var visible []string
	if owned != nil {
		visible = make([]string, 0, len(owned))
		for id := range owned {
			visible = append(visible, id)
		}
		slices.Sort(visible)
	}
	res, err := s.Search.Search(ctx, q.contentQuery(text, visible))
	var bad *search.QueryError
	if errors.As(err, &bad) {
		v.Problem = bad.Reason
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("search session content: %w", err)
	}
	v.More = res.More
	if res.Behind.Behind() {
		v.Behind = res.Behind.String()
	}
	for _, h := range res.Hits {
		v.Hits = append(v.Hits, hitView{Hit: h, Pieces: pieces(h.Snippet, h.Marks), Link: hitLink(h)})
	}
	return v, nil
}

// hitLink opens the session page at the hit: ?t= seeks the player and
// marks the event (or, ?in= stdin or output, the exec stretch), #hit
// scrolls to it.
func hitLink(h search.Hit) string {
	return "/sessions/" + url.PathEscape(h.Session) + "?t=" + strconv.FormatFloat(h.Offset, 'f', 3, 64) +
		"&in=" + url.QueryEscape(string(h.Where)) + "#hit"
}

// pieces cuts snippet at the marked byte ranges, merging overlaps and
// ignoring ranges outside it or inside a UTF-8 sequence.
func pieces(snippet string, marks [][2]int) []snippetPiece {
	ms := slices.Clone(marks)
	sort.Slice(ms, func(i, j int) bool { return ms[i][0] < ms[j][0] })
	var out []snippetPiece
	at := 0
	for _, m := range ms {
		start, end := max(m[0], at), min(m[1], len(snippet))
		if start >= end || !boundary(snippet, start) || !boundary(snippet, end) {
			continue
		}
		if start > at {
			out = append(out, snippetPiece{Text: snippet[at:start]})
		}
		out = append(out, snippetPiece{Text: snippet[start:end], Match: true})
		at = end
	}
	if at < len(snippet) {
		out = append(out, snippetPiece{Text: snippet[at:]})
	}
	return out
}

// boundary reports whether i is where a UTF-8 sequence of s starts (or its end).
func boundary(s string, i int) bool {
	return i == len(s) || (i >= 0 && i < len(s) && (s[i] < 0x80 || s[i] >= 0xC0))
}

// searchText is the search box's text, spaces at either end dropped.
func searchText(v url.Values) string { return strings.TrimSpace(v.Get("q")) }
