package devoidc_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/web/devoidc"
)

// TestLoginPage checks what a person sees at the development provider: a
// page labelled as demo-only that offers the registry's people, and
// refusals for a callback off this machine or an e-mail it does not offer.
func TestLoginPage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &devoidc.Server{ClientID: "console", Secret: "s3cret",
		People: func(context.Context) ([]devoidc.Person, error) {
			return []devoidc.Person{{Email: "alice@example.com", Name: "Alice Ng"}}, nil
		}}
	go srv.Serve(context.Background(), ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	base := "http://" + ln.Addr().String()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	auth := func(path, redirect, email string) (int, string, string) {
		q := url.Values{"client_id": {"console"}, "response_type": {"code"}, "code_challenge_method": {"S256"},
			"code_challenge": {"abc"}, "redirect_uri": {redirect}, "state": {"st"}}
		if email != "" {
			q.Set("email", email)
		}
		resp, err := noRedirect.Get(base + path + "?" + q.Encode())
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header.Get("Location")
	}
	for _, tc := range []struct {
		name, path, redirect, email string
		want                        int
		wantBody, wantLocation      string
	}{
		{"login page", "/authorize", "http://127.0.0.1:8080/auth/callback", "", http.StatusOK, "development sign-in — demo only", ""},
		{"lists people", "/authorize", "http://localhost:8080/auth/callback", "", http.StatusOK, "alice@example.com", ""},
		{"callback elsewhere", "/authorize", "https://evil.example/cb", "", http.StatusBadRequest, "bad authorization request", ""},
		{"pick", "/login", "http://127.0.0.1:8080/auth/callback", "alice@example.com", http.StatusFound, "", "http://127.0.0.1:8080/auth/callback?code="},
		{"pick someone unlisted", "/login", "http://127.0.0.1:8080/auth/callback", "mallory@example.com", http.StatusForbidden, "not an active person", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, loc := auth(tc.path, tc.redirect, tc.email)
			assert.Equal(t, tc.want, code, body)
			assert.Contains(t, body, tc.wantBody)
			assert.Contains(t, loc, tc.wantLocation)
		})
	}
}
