package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	Lag     search.Lag // how far the index lags the recordings
	Problem string     // why the text cannot be searched, for the person who typed it
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
func (s *Server) searchContent(ctx context.Context, p *principal, q sessionQuery, text string, limit int) (*searchView, error) {
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
	cq := q.contentQuery(text, visible)
	cq.Limit = limit
	res, err := s.Search.Search(ctx, cq)
	var bad *search.QueryError
	if errors.As(err, &bad) {
		v.Problem = bad.Reason
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("search session content: %w", err)
	}
	v.More, v.Lag = res.More, res.Behind
	for _, h := range res.Hits {
		v.Hits = append(v.Hits, hitView{Hit: h, Pieces: pieces(h.Snippet, h.Marks), Link: hitLink(h)})
	}
	return v, nil
}

// apiSearch is the search box as JSON: the same parameters as the
// sessions page (q and its filters, plus limit), hits as
// `sallyport sessions search --json` prints them. Text that cannot be
// searched is a 400 saying why.
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request, p *principal) {
	q, err := parseSessionQuery(r.URL.Query())
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	v, err := s.searchContent(r.Context(), p, q, q.Text, limitOf(r.URL.Query()))
	switch {
	case err != nil:
		s.fail(w, r, p, err)
	case s.Search == nil:
		s.fail(w, r, p, fmt.Errorf("%w: %s", errUnavailable, v.Problem))
	case v.Problem != "":
		s.fail(w, r, p, fmt.Errorf("%w: %s", errBadRequest, v.Problem))
	default:
		hits := make([]search.Hit, len(v.Hits))
		for i, h := range v.Hits {
			hits[i] = h.Hit
		}
		writeJSON(w, http.StatusOK, map[string]any{"hits": hits, "more": v.More, "behind": v.Lag})
	}
}

// limitOf reads ?limit=, 0 (the index's default) when absent or not a number.
func limitOf(v url.Values) int {
	n, _ := strconv.Atoi(v.Get("limit"))
	return max(n, 0)
}

// hitLink opens the session page at the hit: ?t= seeks the player and
// marks the event (or, ?in= stdin or output, the exec stretch), #hit
// scrolls to it.
func hitLink(h search.Hit) string {
	return "/sessions/" + url.PathEscape(h.Session) + "?t=" + strconv.FormatFloat(h.Offset, 'f', 3, 64) +
		"&in=" + url.QueryEscape(string(h.Where)) + "#hit"
}

// pieces cuts snippet at the marked byte ranges, which search gives in
// order and not overlapping, ignoring ranges outside it or inside a UTF-8
// sequence.
func pieces(snippet string, marks [][2]int) []snippetPiece {
	var out []snippetPiece
	at := 0
	for _, m := range marks {
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
