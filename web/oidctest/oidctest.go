// Package oidctest runs an OpenID provider over real HTTP for the console's
// tests and the end-to-end tests of serve: discovery, JWKS, an authorize
// endpoint that signs in whoever the test names (standing in for the
// provider's own login page), and a token endpoint that checks the client
// secret and the PKCE verifier and issues an RS256-signed ID token. It is
// a test fixture, never a provider for people.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Provider is a running OpenID provider with one confidential client.
type Provider struct {
	// URL is the issuer.
	URL string
	// ClientID and Secret are the one client's credentials.
	ClientID, Secret string

	srv *httptest.Server
	key *rsa.PrivateKey

	mu       sync.Mutex
	email    string // who the next authorization signs in
	verified bool
	codes    map[string]authRequest
}

type authRequest struct {
	nonce, challenge, redirect, email string
	verified                          bool
}

// New starts a provider; it stops when the test ends.
func New(t testing.TB) *Provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &Provider{key: key, ClientID: "sallyport-console", Secret: "op-client-secret", codes: map[string]authRequest{}, verified: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	op.srv = httptest.NewServer(mux)
	op.URL = op.srv.URL
	t.Cleanup(op.srv.Close)
	return op
}

// SignInAs makes the next authorizations sign in email, with
// email_verified as given.
func (op *Provider) SignInAs(email string, verified bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.email, op.verified = email, verified
}

func (op *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	u := op.srv.URL
	json.NewEncoder(w).Encode(map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize",
		"token_endpoint": u + "/token", "jwks_uri": u + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"}})
}

func (op *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

func (op *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != op.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	op.mu.Lock()
	op.codes[code] = authRequest{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), email: op.email, verified: op.verified}
	op.mu.Unlock()
	back, _ := url.Parse(q.Get("redirect_uri"))
	v := back.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (op *Provider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	op.mu.Lock()
	req, found := op.codes[r.PostFormValue("code")]
	delete(op.codes, r.PostFormValue("code"))
	op.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	switch {
	case id != op.ClientID || secret != op.Secret:
		writeTokenError(w, "invalid_client")
		return
	case !found || req.redirect != r.PostFormValue("redirect_uri"):
		writeTokenError(w, "invalid_grant")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge:
		writeTokenError(w, "invalid_grant")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": op.idToken(req)})
}

func (op *Provider) idToken(req authRequest) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: op.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		panic(err)
	}
	now := time.Now()
	claims := map[string]any{"iss": op.srv.URL, "sub": "sub-" + req.email, "aud": op.ClientID, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "nonce": req.nonce, "email": req.email, "email_verified": req.verified}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	return tok
}

func writeTokenError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": code})
}
