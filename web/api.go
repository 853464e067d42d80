package web

import (
	"html/template"
	"net/http"
	"time"
)

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request, p *principal) {
	out := map[string]any{"id": p.ID, "name": p.Name, "roles": p.Roles}
	if p.nonce != "" {
		out["csrf_token"] = s.codec().csrfToken(p.nonce)
	}
	writeJSON(w, http.StatusOK, out)
}

// apiSessions searches like the console's form (same parameters) and
// answers one page, newest first, with next/prev page query strings.
func (s *Server) apiSessions(w http.ResponseWriter, r *http.Request, p *principal) {
	q, err := parseSessionQuery(r.URL.Query())
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	page, err := s.searchSessions(r, p, q)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	out := make([]apiSession, len(page.Sessions))
	for i, rec := range page.Sessions {
		out[i] = toAPISession(rec)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out, "total": page.Total,
		"next": apiPage(page.Next), "prev": apiPage(page.Prev)})
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request, p *principal) {
	d, err := s.sessionDetail(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"session": toAPISession(d.Session), "cert_serial": d.CertSerial,
		"entitlement": d.Entitlement, "integrity": d.Integrity, "problem": d.Problem, "timeline": d.Timeline,
		"timeline_truncated": d.Truncated, "terminal": d.Terminal, "exec": d.Exec, "exec_problem": d.ExecProblem})
}

func (s *Server) apiKill(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := s.requestKill(r, p); err != nil {
		s.fail(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "kill requested"})
}

func (s *Server) apiIdentities(w http.ResponseWriter, r *http.Request, p *principal) {
	rows, err := s.identityRows(r.Context())
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, rows)
}

func (s *Server) apiReviews(w http.ResponseWriter, r *http.Request, p *principal) {
	v, err := s.reviews(r.Context(), p)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiCompleteReview(w http.ResponseWriter, r *http.Request, p *principal) {
	rv, err := s.completeReview(r, p)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, rv)
}

func (s *Server) apiCampaigns(w http.ResponseWriter, r *http.Request, p *principal) {
	cs, err := s.campaigns(r.Context(), p)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, cs)
}

func (s *Server) apiDecide(w http.ResponseWriter, r *http.Request, p *principal) {
	it, err := s.decide(r, p)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

// apiPage turns a console page link into the same page of the API.
func apiPage(link template.URL) string {
	if link == "" {
		return ""
	}
	return "/api/v1" + string(link)
}
