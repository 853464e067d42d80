package web

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/when"
)

// sessionsPerPage is how many sessions one page of search results shows.
const sessionsPerPage = 50

// sessionQuery is a session search as the form and the API take it.
type sessionQuery struct {
	Identity, Owner, Target, Protocol string
	From, To                          string // durations back from now, dates or times (when.Parse)
	Breakglass                        bool
	Page                              int    // from 1
	Text                              string // the search box: what happened inside sessions
	from, to                          time.Time
}

func parseSessionQuery(v url.Values) (sessionQuery, error) {
	q := sessionQuery{Identity: strings.TrimSpace(v.Get("identity")), Owner: strings.TrimSpace(v.Get("owner")),
		Target: strings.TrimSpace(v.Get("target")), Protocol: v.Get("protocol"),
		From: v.Get("from"), To: v.Get("to"), Breakglass: v.Get("breakglass") != "", Page: 1, Text: searchText(v)}
	if p, err := strconv.Atoi(v.Get("page")); err == nil && p > 0 {
		q.Page = p
	}
	var err error
	if q.from, err = parseWhen(q.From, false); err != nil {
		return q, err
	}
	q.to, err = parseWhen(q.To, true)
	return q, err
}

// parseWhen reads a from or to value as the CLI's --since and --until
// (when.Parse), dates in UTC: a date as the end of a range keeps that
// whole day.
func parseWhen(s string, end bool) (time.Time, error) {
	t, err := when.Parse(s, end, time.Now().UTC())
	if err != nil {
		return t, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return t, nil
}

func (q sessionQuery) filter() sqlstore.SessionFilter {
	return sqlstore.SessionFilter{Identity: q.Identity, Target: q.Target, Since: q.from}
}

// match applies what the index cannot filter on itself.
func (q sessionQuery) match(r sqlstore.SessionRecord) bool {
	return (q.Owner == "" || r.Owner == q.Owner) && (q.Protocol == "" || r.Protocol == q.Protocol) &&
		(q.to.IsZero() || r.StartedAt.Before(q.to)) && (!q.Breakglass || r.BreakglassGrant != "")
}

// values is q as URL parameters, for paging links.
func (q sessionQuery) values(page int) string {
	v := url.Values{}
	for k, s := range map[string]string{"identity": q.Identity, "owner": q.Owner, "target": q.Target,
		"protocol": q.Protocol, "from": q.From, "to": q.To, "q": q.Text} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Breakglass {
		v.Set("breakglass", "1")
	}
	v.Set("page", strconv.Itoa(page))
	return v.Encode()
}

// sessionPage is one page of search results, newest first.
type sessionPage struct {
	Query      sessionQuery
	Sessions   []sqlstore.SessionRecord
	Total      int
	Prev, Next template.URL // the pages before and after; empty at either end
	Protocols  []string
	// Searchable says the search box is shown; Search is its result when
	// text was given (the session list is not shown then).
	Searchable bool
	Search     *searchView
}

func (s *Server) searchSessions(r *http.Request, p *principal, q sessionQuery) (sessionPage, error) {
	out := sessionPage{Query: q, Protocols: []string{"ssh", "postgres", "mysql"}}
	if s.Sessions == nil {
		return out, nil
	}
	owned, err := s.ownedIdentities(r.Context(), p)
	if err != nil {
		return out, err
	}
	all, err := s.Sessions.Sessions(r.Context(), q.filter())
	if err != nil {
		return out, fmt.Errorf("search sessions: %w", err)
	}
	var hits []sqlstore.SessionRecord
	for _, rec := range slices.Backward(all) {
		if q.match(rec) && (owned == nil || owned[rec.Identity]) {
			hits = append(hits, rec)
		}
	}
	out.Total = len(hits)
	start := min((q.Page-1)*sessionsPerPage, len(hits))
	end := min(start+sessionsPerPage, len(hits))
	out.Sessions = hits[start:end]
	if q.Page > 1 {
		out.Prev = template.URL("/sessions?" + q.values(q.Page-1))
	}
	if end < len(hits) {
		out.Next = template.URL("/sessions?" + q.values(q.Page+1))
	}
	return out, nil
}

func (s *Server) sessionsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	q, err := parseSessionQuery(r.URL.Query())
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	page, err := s.searchSessions(r, p, q)
	if err == nil && q.Text != "" {
		page.Search, err = s.searchContent(r.Context(), p, q, q.Text, 0)
	}
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	page.Searchable = s.Search != nil
	s.render(w, r, p, http.StatusOK, "sessions.html", "Sessions", page)
}

func (s *Server) livePage(w http.ResponseWriter, r *http.Request, p *principal) {
	live, err := s.liveSessions(r)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, p, http.StatusOK, "live.html", "Live sessions", live)
}

func (s *Server) liveSessions(r *http.Request) ([]sqlstore.SessionRecord, error) {
	if s.Sessions == nil {
		return nil, nil
	}
	live, err := s.Sessions.Sessions(r.Context(), sqlstore.SessionFilter{Live: true})
	if err != nil {
		return nil, fmt.Errorf("list live sessions: %w", err)
	}
	return live, nil
}

// kill asks the process running the session to end it; the proxy's
// session watcher does so within seconds.
func (s *Server) kill(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := s.requestKill(r, p); err != nil {
		s.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/live", http.StatusSeeOther)
}

func (s *Server) requestKill(r *http.Request, p *principal) error {
	if s.Sessions == nil {
		return errUnavailable
	}
	id := r.PathValue("id")
	rec, err := s.Sessions.Session(r.Context(), id)
	if err != nil {
		return fmt.Errorf("kill session %s: %w", id, err)
	}
	if !rec.EndedAt.IsZero() {
		return fmt.Errorf("%w: session %s already ended at %s", errConflict, id, rec.EndedAt.UTC().Format(time.RFC3339))
	}
	reason := "ended by " + p.ID + " from the console"
	if note := strings.TrimSpace(r.PostFormValue("reason")); note != "" {
		reason += ": " + note
	}
	if err := s.Sessions.RequestKill(r.Context(), id, reason, s.now()); err != nil {
		return fmt.Errorf("kill session %s: %w", id, err)
	}
	s.logger().Warn("session kill requested", "session", id, "by", p.ID)
	return nil
}
