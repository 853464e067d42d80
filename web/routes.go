package web

import (
	"net/http"

	"github.com/sallyport/sallyport/iga/sqlstore"
)

// pageRoutes are the console's pages and forms. Sessions, their recordings
// and live view are open to auditors and admins, and to owners for the
// identities they own (visible.go); the live list needs auditor or admin;
// killing needs admin; reviews and campaigns are open to owners too (each
// sees their own).
func (s *Server) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.page(governance, s.home))
	mux.HandleFunc("GET /sessions", s.page(governance, s.sessionsPage))
	mux.HandleFunc("GET /sessions/{id}", s.page(governance, s.sessionPage))
	mux.HandleFunc("GET /sessions/{id}/cast", s.stream(governance, s.cast, false))
	mux.HandleFunc("GET /sessions/{id}/events", s.stream(governance, s.events, false))
	mux.HandleFunc("GET /sessions/{id}/streams/{name}", s.stream(governance, s.execStream, false))
	mux.HandleFunc("GET /sessions/{id}/live", s.stream(governance, s.liveStream, false))
	mux.HandleFunc("POST /sessions/{id}/kill", s.page(admins, s.kill))
	mux.HandleFunc("GET /live", s.page(readers, s.livePage))
	mux.HandleFunc("GET /registry", s.page(governance, s.registryPage))
	mux.HandleFunc("GET /reviews", s.page(governance, s.reviewsPage))
	mux.HandleFunc("POST /reviews/{id}/complete", s.page(governance, s.completeReviewForm))
	mux.HandleFunc("GET /campaigns", s.page(governance, s.campaignsPage))
	mux.HandleFunc("POST /campaigns/{id}/decide", s.page(governance, s.decideForm))
}

// apiRoutes are /api/v1: the same data and actions as JSON, with the same
// roles. Anything else under /api/v1 is 401 for anonymous callers and 404
// for others.
func (s *Server) apiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/me", s.api(nil, s.apiMe))
	mux.HandleFunc("GET /api/v1/sessions", s.api(governance, s.apiSessions))
	mux.HandleFunc("GET /api/v1/search", s.api(governance, s.apiSearch))
	mux.HandleFunc("GET /api/v1/sessions/{id}", s.api(governance, s.apiSession))
	mux.HandleFunc("GET /api/v1/sessions/{id}/cast", s.stream(governance, s.cast, true))
	mux.HandleFunc("GET /api/v1/sessions/{id}/events", s.stream(governance, s.events, true))
	mux.HandleFunc("GET /api/v1/sessions/{id}/streams/{name}", s.stream(governance, s.execStream, true))
	mux.HandleFunc("POST /api/v1/sessions/{id}/kill", s.api(admins, s.apiKill))
	mux.HandleFunc("GET /api/v1/identities", s.api(governance, s.apiIdentities))
	mux.HandleFunc("GET /api/v1/reviews", s.api(governance, s.apiReviews))
	mux.HandleFunc("POST /api/v1/reviews/{id}/complete", s.api(governance, s.apiCompleteReview))
	mux.HandleFunc("GET /api/v1/campaigns", s.api(governance, s.apiCampaigns))
	mux.HandleFunc("POST /api/v1/campaigns/{id}/decide", s.api(governance, s.apiDecide))
	mux.HandleFunc("/api/v1/", s.api(nil, func(w http.ResponseWriter, r *http.Request, p *principal) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such API endpoint"})
	}))
}

// apiSession is a session as the API lists it (the same keys as
// `sallyport sessions list --json`).
type apiSession struct {
	ID              string `json:"id"`
	Identity        string `json:"identity"`
	Owner           string `json:"owner"`
	Target          string `json:"target"`
	Protocol        string `json:"protocol"`
	Login           string `json:"login"`
	Source          string `json:"source,omitempty"`
	StartedAt       string `json:"started_at"`
	EndedAt         string `json:"ended_at,omitempty"`
	State           string `json:"state"`
	Reason          string `json:"reason,omitempty"`
	BreakglassGrant string `json:"breakglass_grant,omitempty"`
	Bytes           int64  `json:"bytes"`
	Events          int64  `json:"events"`
	KillRequested   string `json:"kill_requested,omitempty"`
}

func toAPISession(r sqlstore.SessionRecord) apiSession {
	a := apiSession{ID: r.ID, Identity: r.Identity, Owner: r.Owner, Target: r.Target, Protocol: r.Protocol,
		Login: r.Login, Source: r.Source, StartedAt: rfc3339(r.StartedAt), EndedAt: rfc3339(r.EndedAt),
		State: r.State, Reason: r.Reason, BreakglassGrant: r.BreakglassGrant, Bytes: r.Bytes, Events: r.Events,
		KillRequested: rfc3339(r.KillRequested)}
	return a
}
