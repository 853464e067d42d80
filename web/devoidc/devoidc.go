// Package devoidc is the development OpenID provider that `sallyport demo`
// runs so people can try the console without a company identity provider:
// its login page lists the registry's active people and signs in whoever
// is picked, with no password. It speaks the parts of OpenID Connect the
// console uses — discovery, JWKS, the authorization code flow with PKCE and
// a confidential client, RS256-signed ID tokens — over real HTTP. The
// console's tests use it through oidctest. `sallyport serve` never starts
// it: anyone who can reach it signs in as anyone listed.
package devoidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

const (
	// readHeaderTimeout bounds how long a client may dribble request
	// headers; the provider's requests are small.
	readHeaderTimeout = 10 * time.Second
	// codeLifetime is how long an authorization code may wait for its
	// exchange; the console exchanges it within a second.
	codeLifetime = time.Minute
	// tokenLifetime is the ID token's validity; the console reads it once,
	// at sign-in.
	tokenLifetime = 5 * time.Minute
)

// Person is someone the login page offers.
type Person struct {
	Email, Name string
}

// Server is the provider, with one confidential client.
type Server struct {
	// Issuer is the URL the provider is reached at. Empty: http:// and the
	// listener's address.
	Issuer string
	// ClientID and Secret are the one client's credentials; Serve refuses
	// to start without them.
	ClientID, Secret string
	// People lists who the login page offers; an e-mail it does not list
	// cannot be signed in. Nil: nobody.
	People func(ctx context.Context) ([]Person, error)
	// Pick, when set, signs in whoever it names without showing the login
	// page, with email_verified as it says: tests stand in for the person
	// who would click. Nil: the login page.
	Pick func() (email string, verified bool)
	// Logger receives request errors. Nil: slog.Default().
	Logger *slog.Logger

	mu     sync.Mutex
	srv    *http.Server
	closed bool // Shutdown ran, perhaps before Serve
	issuer string
	key    *rsa.PrivateKey
	codes  map[string]authRequest
}

type authRequest struct {
	nonce, challenge, redirect, email string
	verified                          bool
	expires                           time.Time
}

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.ClientID == "" || s.Secret == "" {
		return fmt.Errorf("development OpenID provider: client id and secret are required")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("development OpenID provider: generate signing key: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("POST /token", s.token)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.key, s.codes, s.issuer = key, map[string]authRequest{}, s.Issuer
	if s.issuer == "" {
		s.issuer = "http://" + ln.Addr().String()
	}
	s.srv = &http.Server{Handler: pageHeaders(mux), ReadHeaderTimeout: readHeaderTimeout,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn)}
	srv := s.srv
	s.mu.Unlock()
	return srv.Serve(ln)
}

// Shutdown stops accepting and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.closed = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	u := s.issuer
	writeJSON(w, http.StatusOK, map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize",
		"token_endpoint": u + "/token", "jwks_uri": u + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"}, "scopes_supported": []string{"openid", "email", "profile"}})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: "dev", Algorithm: "RS256", Use: "sig"}}})
}

// validRequest checks an authorization request: this client, the code
// flow with S256 PKCE, and a callback on this machine.
func (s *Server) validRequest(q url.Values) bool {
	redirect, err := url.Parse(q.Get("redirect_uri"))
	return err == nil && q.Get("client_id") == s.ClientID && q.Get("response_type") == "code" &&
		q.Get("code_challenge_method") == "S256" && q.Get("code_challenge") != "" && loopback(redirect)
}

// loopback reports whether u is an http(s) URL on this machine: the only
// console a development provider should send codes to.
func loopback(u *url.URL) bool {
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// authorize shows the login page, or signs in whoever Pick names.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !s.validRequest(q) {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	if s.Pick != nil {
		email, verified := s.Pick()
		s.redirectWithCode(w, r, q, email, verified)
		return
	}
	s.renderLogin(w, r, q)
}

// login signs in the person picked on the login page.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	email := q.Get("email")
	q.Del("email")
	if !s.validRequest(q) {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	people, err := s.people(r.Context())
	if err != nil {
		s.logger().Warn("development sign-in: list people", "err", err)
		http.Error(w, "the registry cannot be read", http.StatusInternalServerError)
		return
	}
	for _, p := range people {
		if p.Email == email {
			s.redirectWithCode(w, r, q, email, true)
			return
		}
	}
	http.Error(w, email+" is not an active person in the registry", http.StatusForbidden)
}

func (s *Server) people(ctx context.Context) ([]Person, error) {
	if s.People == nil {
		return nil, nil
	}
	return s.People(ctx)
}

func (s *Server) redirectWithCode(w http.ResponseWriter, r *http.Request, q url.Values, email string, verified bool) {
	code := rand.Text()
	s.mu.Lock()
	s.codes[code] = authRequest{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"),
		email: email, verified: verified, expires: time.Now().Add(codeLifetime)}
	s.mu.Unlock()
	back, _ := url.Parse(q.Get("redirect_uri"))
	v := back.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token exchanges a code: the client's secret, the same redirect URI and
// the PKCE verifier must match what the authorization saw.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	s.mu.Lock()
	req, found := s.codes[r.PostFormValue("code")]
	delete(s.codes, r.PostFormValue("code"))
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	switch {
	case id != s.ClientID || secret != s.Secret:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case !found || time.Now().After(req.expires) || req.redirect != r.PostFormValue("redirect_uri"),
		base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	tok, err := s.idToken(req)
	if err != nil {
		s.logger().Warn("development sign-in: sign ID token", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": tok})
}

func (s *Server) idToken(req authRequest) (string, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.key}, (&jose.SignerOptions{}).WithHeader("kid", "dev").WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims := map[string]any{"iss": s.issuer, "sub": "dev-" + req.email, "aud": s.ClientID, "iat": now.Unix(),
		"exp": now.Add(tokenLifetime).Unix(), "nonce": req.nonce, "email": req.email, "email_verified": req.verified}
	return jwt.Signed(sig).Claims(claims).Serialize()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
