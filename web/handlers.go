package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// handler is a route that needs a signed-in person.
type handler func(w http.ResponseWriter, r *http.Request, p *principal)

// Role sets that routes require (any one of them).
var (
	readers    = []string{RoleAuditor, RoleAdmin}
	governance = []string{RoleAuditor, RoleAdmin, RoleOwner}
	admins     = []string{RoleAdmin}
)

// page guards a console route: anonymous browsers go to sign-in, people
// without one of roles (nil: any signed-in person) get 403, and every POST
// must carry the session's CSRF token. The handler gets pageTimeout.
func (s *Server) page(roles []string, h handler) http.HandlerFunc {
	return s.guard(roles, h, false, pageTimeout)
}

// api guards an /api/v1 route the same way, answering in JSON.
func (s *Server) api(roles []string, h handler) http.HandlerFunc {
	return s.guard(roles, h, true, pageTimeout)
}

// stream guards a recording download, which bounds its own time: a page's
// deadline would cut a long recording short.
func (s *Server) stream(roles []string, h handler, api bool) http.HandlerFunc {
	return s.guard(roles, h, api, 0)
}

func (s *Server) guard(roles []string, h handler, api bool, timeout time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.who(r)
		switch {
		case err != nil:
			s.anonymous(w, r, api)
		case roles != nil && !p.has(roles...):
			s.fail(w, r, p, errForbidden)
		case r.Method == http.MethodPost && p.nonce != "" && !s.codec().checkCSRF(p.nonce, csrfOf(r)):
			s.fail(w, r, p, errCSRF)
		case timeout == 0:
			h(w, r, p)
		default:
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			h(w, r.WithContext(ctx), p)
		}
	}
}

var errCSRF = errors.New("the form's CSRF token is missing or wrong; reload the page and try again")

// csrfOf reads the token from the form or, for scripts using the browser
// session, the X-CSRF-Token header.
func csrfOf(r *http.Request) string {
	if t := r.Header.Get("X-CSRF-Token"); t != "" {
		return t
	}
	return r.PostFormValue("csrf")
}

func (s *Server) anonymous(w http.ResponseWriter, r *http.Request, api bool) {
	if api {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sallyport"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "authentication required: sign in to the console or send an API token"})
		return
	}
	if !s.OIDC.configured() || r.Method != http.MethodGet {
		s.renderSignIn(w, r, http.StatusUnauthorized, "")
		return
	}
	http.Redirect(w, r, "/auth/login?return="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
}

// status maps an error to the HTTP status and the message a person may see.
func status(err error) (int, string) {
	switch {
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, "your roles in the registry do not allow this"
	case errors.Is(err, errCSRF):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, iga.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, iga.ErrRefused):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, errConflict):
		return http.StatusConflict, err.Error()
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable, err.Error()
	}
	return http.StatusInternalServerError, "internal error; the server log has details"
}

var (
	errBadRequest  = errors.New("bad request")
	errUnavailable = errors.New("not available on this server")
	errConflict    = errors.New("conflict")
)

// fail answers with err's status: JSON under /api/, a page otherwise.
// Internal errors are logged, never shown.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, p *principal, err error) {
	code, msg := status(err)
	if code == http.StatusInternalServerError {
		s.logger().Error("console request failed", "path", r.URL.Path, "err", err)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	s.render(w, r, p, code, "error.html", "Error", msg)
}
