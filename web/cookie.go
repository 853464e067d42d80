package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

const (
	// sessionCookie holds the signed-in person; loginCookie the state of a
	// sign-in in progress (state, nonce, PKCE verifier).
	sessionCookie = "sallyport_session"
	loginCookie   = "sallyport_login"
	// sessionLifetime is how long a sign-in lasts; the person's status and
	// roles are still read from the registry on every request.
	sessionLifetime = 8 * time.Hour
	// loginLifetime bounds the round trip through the identity provider.
	loginLifetime = 10 * time.Minute
)

var errBadCookie = errors.New("cookie is malformed, forged or expired")

// signedValue is what the console keeps in its cookies, signed with the
// session key so a browser cannot change it.
type signedValue struct {
	Email    string    `json:"e,omitempty"`
	Nonce    string    `json:"n"` // session: the CSRF seed; login: the OIDC nonce
	State    string    `json:"s,omitempty"`
	Verifier string    `json:"v,omitempty"` // PKCE code verifier
	Return   string    `json:"r,omitempty"` // where to go after sign-in
	Expires  time.Time `json:"x"`
}

// cookieCodec signs and checks cookie values with an HMAC key.
type cookieCodec struct{ key []byte }

func (c cookieCodec) mac(purpose string, payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)
}

// encode signs v for a cookie named purpose: a value signed for one cookie
// is refused in another.
func (c cookieCodec) encode(purpose string, v signedValue) string {
	payload, _ := json.Marshal(v) // plain strings and a time: cannot fail
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(c.mac(purpose, payload))
}

func (c cookieCodec) decode(purpose, s string, now time.Time) (signedValue, error) {
	var v signedValue
	p, sig, ok := strings.Cut(s, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err1 != nil || err2 != nil || !hmac.Equal(mac, c.mac(purpose, payload)) {
		return v, errBadCookie
	}
	if err := json.Unmarshal(payload, &v); err != nil || !now.Before(v.Expires) {
		return v, errBadCookie
	}
	return v, nil
}

// csrfToken is the token every form of a signed-in session carries.
func (c cookieCodec) csrfToken(sessionNonce string) string {
	return hex.EncodeToString(c.mac("csrf", []byte(sessionNonce)))
}

func (c cookieCodec) checkCSRF(sessionNonce, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(c.csrfToken(sessionNonce)))
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// setCookie writes an HttpOnly, SameSite=Lax cookie, Secure over TLS.
func setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}
