package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sallyport/sallyport/iga"
)

// Console roles, as the registry gives them to people.
const (
	RoleAuditor = "auditor"
	RoleOwner   = "owner"
	RoleAdmin   = "admin"
)

// OIDCConfig is the identity provider people sign in with. A zero Issuer
// means sign-in is not configured: the console says so and every API call
// gets 401.
type OIDCConfig struct {
	Issuer   string
	ClientID string
	// ClientSecret authenticates the console at the token endpoint; empty
	// for a public client (PKCE alone). It never appears in logs or errors.
	ClientSecret string
	// RedirectURL is the callback registered at the provider. Empty: the
	// request's own scheme and host with /auth/callback.
	RedirectURL string
}

func (c OIDCConfig) configured() bool { return c.Issuer != "" && c.ClientID != "" }

// principal is who makes a request: an active person of the registry.
type principal struct {
	iga.Person
	// nonce seeds the CSRF token of a browser session; empty for bearer
	// callers, who carry no ambient credential and need none.
	nonce string
}

func (p *principal) has(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	return false
}

var (
	errNotSignedIn = errors.New("not signed in")
	errForbidden   = errors.New("forbidden")
)

// oidcProvider discovers the provider once; a failed discovery is retried
// on the next sign-in.
type oidcProvider struct {
	mu sync.Mutex
	p  *oidc.Provider
}

func (s *Server) provider(ctx context.Context) (*oidc.Provider, error) {
	s.oidc.mu.Lock()
	defer s.oidc.mu.Unlock()
	if s.oidc.p != nil {
		return s.oidc.p, nil
	}
	ctx, cancel := context.WithTimeout(s.oidcContext(ctx), oidcTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, s.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC provider %s: %w", s.OIDC.Issuer, err)
	}
	s.oidc.p = p
	return p, nil
}

func (s *Server) oidcContext(ctx context.Context) context.Context {
	if s.HTTPClient != nil {
		return oidc.ClientContext(ctx, s.HTTPClient)
	}
	return ctx
}

func (s *Server) oauth2Config(r *http.Request, p *oidc.Provider) *oauth2.Config {
	redirect := s.OIDC.RedirectURL
	if redirect == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		redirect = scheme + "://" + r.Host + "/auth/callback"
	}
	return &oauth2.Config{ClientID: s.OIDC.ClientID, ClientSecret: s.OIDC.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
}

// login starts the authorization-code flow with PKCE: state, nonce and
// verifier go into a short-lived signed cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.OIDC.configured() {
		s.renderSignIn(w, r, http.StatusUnauthorized, "")
		return
	}
	p, err := s.provider(r.Context())
	if err != nil {
		s.logger().Warn("sign-in unavailable", "err", err)
		s.renderSignIn(w, r, http.StatusBadGateway, "The identity provider cannot be reached; try again shortly.")
		return
	}
	v := signedValue{Nonce: randomString(), State: randomString(), Verifier: oauth2.GenerateVerifier(),
		Return: safeReturn(r.URL.Query().Get("return")), Expires: s.now().Add(loginLifetime)}
	setCookie(w, r, loginCookie, s.codec().encode(loginCookie, v), "/auth/", loginLifetime)
	url := s.oauth2Config(r, p).AuthCodeURL(v.State, oidc.Nonce(v.Nonce), oauth2.S256ChallengeOption(v.Verifier))
	http.Redirect(w, r, url, http.StatusFound)
}

// callback finishes sign-in: the code is exchanged with the verifier, the
// ID token checked (signature, audience, expiry, nonce), and its e-mail
// must be an active person of the registry.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || !s.OIDC.configured() {
		s.renderSignIn(w, r, http.StatusBadRequest, "The sign-in expired or was not started here; sign in again.")
		return
	}
	clearCookie(w, r, loginCookie, "/auth/")
	lv, err := s.codec().decode(loginCookie, c.Value, s.now())
	if err != nil || r.URL.Query().Get("state") != lv.State {
		s.renderSignIn(w, r, http.StatusBadRequest, "The sign-in expired or was not started here; sign in again.")
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		s.renderSignIn(w, r, http.StatusUnauthorized, "The identity provider refused the sign-in: "+e)
		return
	}
	email, err := s.exchange(r, lv)
	if err != nil {
		s.logger().Warn("sign-in failed", "err", err)
		s.renderSignIn(w, r, http.StatusUnauthorized, "The identity provider's answer could not be verified; sign in again.")
		return
	}
	s.startSession(w, r, email, lv.Return)
}

func (s *Server) exchange(r *http.Request, lv signedValue) (string, error) {
	ctx, cancel := context.WithTimeout(s.oidcContext(r.Context()), oidcTimeout)
	defer cancel()
	p, err := s.provider(ctx)
	if err != nil {
		return "", err
	}
	tok, err := s.oauth2Config(r, p).Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(lv.Verifier))
	if err != nil {
		return "", fmt.Errorf("exchange authorization code: %w", redactOAuth(err))
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return "", errors.New("exchange authorization code: no id_token in the token response")
	}
	return verifyIDToken(ctx, p, s.OIDC.ClientID, raw, lv.Nonce)
}

func verifyIDToken(ctx context.Context, p *oidc.Provider, clientID, raw, nonce string) (string, error) {
	idt, err := p.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("verify ID token: %w", err)
	}
	if idt.Nonce != nonce {
		return "", errors.New("verify ID token: nonce does not match this sign-in")
	}
	var claims struct {
		Email    string `json:"email"`
		Verified *bool  `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return "", fmt.Errorf("read ID token claims: %w", err)
	}
	if claims.Email == "" || (claims.Verified != nil && !*claims.Verified) {
		return "", fmt.Errorf("ID token of %s carries no verified e-mail", idt.Subject)
	}
	return strings.ToLower(claims.Email), nil
}

// redactOAuth keeps the token endpoint's response body (which may echo
// credentials) out of errors.
func redactOAuth(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Errorf("token endpoint refused: %s %s", re.ErrorCode, re.ErrorDescription)
	}
	return err
}

// startSession signs the person in if the registry knows them as active.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, email, ret string) {
	if _, err := s.activePerson(r.Context(), email); err != nil {
		s.logger().Info("sign-in refused", "email", email, "err", err)
		s.renderSignIn(w, r, http.StatusForbidden, email+" is not an active person in the registry; ask an administrator.")
		return
	}
	v := signedValue{Email: email, Nonce: randomString(), Expires: s.now().Add(sessionLifetime)}
	setCookie(w, r, sessionCookie, s.codec().encode(sessionCookie, v), "/", sessionLifetime)
	s.logger().Info("signed in", "email", email)
	http.Redirect(w, r, ret, http.StatusFound)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *principal) {
	clearCookie(w, r, sessionCookie, "/")
	// Not straight to the provider: form-action 'self' stops a form's
	// redirect chain at another origin.
	http.Redirect(w, r, "/auth/signin", http.StatusSeeOther)
}

// safeReturn keeps post-sign-in redirects on this site: a path, never a
// scheme or host, nor what a browser would read as one ("//", "/\\",
// tabs and newlines it strips).
func safeReturn(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(p, "/") ||
		strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\t\r\n") {
		return "/"
	}
	return p
}

// activePerson reads the person behind an e-mail; inactive or unknown
// people are refused. Roles come from the registry on every request.
func (s *Server) activePerson(ctx context.Context, email string) (iga.Person, error) {
	if s.Directory == nil {
		return iga.Person{}, errors.New("no registry configured")
	}
	p, err := s.Directory.Person(ctx, email)
	if err != nil {
		return iga.Person{}, fmt.Errorf("look up %s: %w", email, err)
	}
	if p.Status != iga.PersonActive {
		return iga.Person{}, fmt.Errorf("%s is %s", email, p.Status)
	}
	return p, nil
}

// who authenticates the request: a bearer token (scripts) or the session
// cookie (browsers).
func (s *Server) who(r *http.Request) (*principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || s.BearerToken == nil {
			return nil, errNotSignedIn
		}
		email, err := s.BearerToken(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			return nil, errNotSignedIn
		}
		p, err := s.activePerson(r.Context(), email)
		if err != nil {
			return nil, errNotSignedIn
		}
		return &principal{Person: p}, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || !s.OIDC.configured() {
		return nil, errNotSignedIn
	}
	v, err := s.codec().decode(sessionCookie, c.Value, s.now())
	if err != nil {
		return nil, errNotSignedIn
	}
	p, err := s.activePerson(r.Context(), v.Email)
	if err != nil {
		return nil, errNotSignedIn
	}
	return &principal{Person: p, nonce: v.Nonce}, nil
}
