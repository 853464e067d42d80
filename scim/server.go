// Package scim is sallyport's SCIM 2.0 service provider (RFC 7643, RFC
// 7644): the identity provider (Okta, Microsoft Entra ID, …) pushes
// joiners, movers and leavers to it, and it hands each change to the
// registry (iga.SCIM), which applies it in one transaction. It owns the
// protocol only: bearer tokens, routing, the JSON of users and groups,
// filters, PATCH, pagination and SCIM error bodies. cmd/sallyport mounts
// Handler on the web listener under /scim/v2/.
package scim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// Prefix is where Handler expects to be mounted.
const Prefix = "/scim/v2"

const (
	// requestTimeout bounds the registry work behind one request; an IdP
	// retries a request that timed out.
	requestTimeout = 20 * time.Second
	// defaultMaxBody bounds a request body: a user or a group of a few
	// thousand members is far below it.
	defaultMaxBody = 1 << 20
	// defaultCount and maxCount page lists (startIndex/count).
	defaultCount = 100
	maxCount     = 1000
)

// Registry is what Handler needs of the registry; *iga.SCIM implements it.
type Registry interface {
	Users(ctx context.Context) ([]iga.SCIMUser, error)
	User(ctx context.Context, userName string) (iga.SCIMUser, error)
	ChangeUser(ctx context.Context, c iga.UserChange) (iga.SCIMUser, error)
	DeleteUser(ctx context.Context, userName, requestID string) error
	Groups(ctx context.Context) ([]iga.SCIMGroup, error)
	Group(ctx context.Context, id string) (iga.SCIMGroup, error)
	ChangeGroup(ctx context.Context, c iga.GroupChange) (iga.SCIMGroup, error)
	DeleteGroup(ctx context.Context, id, requestID string) error
}

// Handler serves the SCIM API under Prefix.
type Handler struct {
	// Registry receives every change. Required.
	Registry Registry
	// Tokens are the bearer tokens accepted (several during a rotation).
	// Empty: every request is 401.
	Tokens []string
	// MaxBody is the largest request body. Zero: 1 MiB; larger is 413.
	MaxBody int64
	// Logger receives one line per change and every internal error. Nil:
	// slog.Default().
	Logger *slog.Logger

	once sync.Once
	mux  *http.ServeMux
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// ServeHTTP checks the bearer token and serves the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := requestID(r.Header.Get("X-Request-Id"))
	w.Header().Set("X-Request-Id", reqID)
	if !h.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sallyport scim"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Schemas: []string{errorSchema}, Status: "401"})
		return
	}
	max := h.MaxBody
	if max <= 0 {
		max = defaultMaxBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, max)
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	h.routes().ServeHTTP(w, r.WithContext(withRequestID(ctx, reqID)))
}

// authorized compares the presented token with each configured one in
// constant time (over their hashes, so lengths leak nothing either).
func (h *Handler) authorized(header string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, t := range h.Tokens {
		want := sha256.Sum256([]byte(t))
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return match == 1
}

func (h *Handler) routes() *http.ServeMux {
	h.once.Do(func() { h.mux = h.newMux() })
	return h.mux
}

func (h *Handler) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"/Users", h.listUsers)
	mux.HandleFunc("POST "+Prefix+"/Users", h.createUser)
	mux.HandleFunc("GET "+Prefix+"/Users/{id}", h.getUser)
	mux.HandleFunc("PUT "+Prefix+"/Users/{id}", h.replaceUser)
	mux.HandleFunc("PATCH "+Prefix+"/Users/{id}", h.patchUser)
	mux.HandleFunc("DELETE "+Prefix+"/Users/{id}", h.deleteUser)
	mux.HandleFunc("GET "+Prefix+"/Groups", h.listGroups)
	mux.HandleFunc("POST "+Prefix+"/Groups", h.createGroup)
	mux.HandleFunc("GET "+Prefix+"/Groups/{id}", h.getGroup)
	mux.HandleFunc("PUT "+Prefix+"/Groups/{id}", h.replaceGroup)
	mux.HandleFunc("PATCH "+Prefix+"/Groups/{id}", h.patchGroup)
	mux.HandleFunc("DELETE "+Prefix+"/Groups/{id}", h.deleteGroup)
	h.metaRoutes(mux)
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Detail: "no such SCIM endpoint"})
	})
	return mux
}

// requestIDPattern is what an incoming X-Request-Id must look like to be
// kept: it goes into the audit trail verbatim.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestID keeps a well-formed incoming id, else makes one.
func requestID(incoming string) string {
	if requestIDPattern.MatchString(incoming) {
		return incoming
	}
	b := make([]byte, 8)
	rand.Read(b) // never fails (Go 1.24)
	return "scim-" + hex.EncodeToString(b)
}

type requestIDKey struct{}

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the SCIM request id of a request's context.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

const errorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

// Error is a SCIM error: an HTTP status, a scimType (RFC 7644 §3.12) and
// a detail for the IdP's log.
type Error struct {
	Status   int
	SCIMType string
	Detail   string
}

func (e *Error) Error() string { return e.Detail }

func badRequest(scimType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, SCIMType: scimType, Detail: sprintf(format, args...)}
}

type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	SCIMType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// writeError answers err as a SCIM error body.
func writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	writeJSON(w, e.Status, errorBody{Schemas: []string{errorSchema}, Status: itoa(e.Status), SCIMType: e.SCIMType, Detail: e.Detail})
}

// asError is err as the IdP sees it: a *Error as it is, the registry's
// sentinels as 404, 409 and 400, anything else as 500 (logged by fail, not
// shown).
func asError(err error) *Error {
	var e *Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &tooBig):
		return &Error{Status: http.StatusRequestEntityTooLarge, Detail: sprintf("request body is larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, iga.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Detail: err.Error()}
	case errors.Is(err, iga.ErrConflict):
		return &Error{Status: http.StatusConflict, SCIMType: "uniqueness", Detail: err.Error()}
	case errors.Is(err, iga.ErrInvalid), errors.Is(err, iga.ErrRefused):
		return &Error{Status: http.StatusBadRequest, SCIMType: "invalidValue", Detail: err.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error; see the bastion's log"}
}

// fail answers err, logging it with the request id when it is an
// internal error the answer does not show.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Status == http.StatusInternalServerError {
		h.logger().Error("scim request failed", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
