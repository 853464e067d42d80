package web_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/web"
)

// TestSignIn: the authorization-code round trip with PKCE signs in active
// people of the registry and refuses everyone else.
func TestSignIn(t *testing.T) {
	c := newConsole(t)
	for _, tc := range []struct {
		email    string
		want     int
		wantText string
	}{
		{auditor, http.StatusOK, recordedTextSessionID},
		{admin, http.StatusOK, recordedTextSessionID},
		{nobody, http.StatusForbidden, "not an active person in the registry"},
		{inactive, http.StatusForbidden, "not an active person in the registry"},
	} {
		t.Run(tc.email, func(t *testing.T) {
			b, resp, body := c.signIn(tc.email)
			assert.Equal(t, tc.want, resp.StatusCode, "got %d, want %d", resp.StatusCode, tc.want)
			assert.Contains(t, body, tc.wantText)
			me, err := b.Get(c.srv.URL + "/api/v1/me")
			require.NoError(t, err)
			me.Body.Close()
			if tc.want == http.StatusOK {
				assert.Equal(t, http.StatusOK, me.StatusCode)
				cookie := resp.Request.Response.Header.Values("Set-Cookie")
				require.NotEmpty(t, cookie)
				assert.Contains(t, strings.Join(cookie, ";"), "HttpOnly")
				assert.Contains(t, strings.Join(cookie, ";"), "SameSite=Lax")
			} else {
				assert.Equal(t, http.StatusUnauthorized, me.StatusCode, "a refused sign-in leaves no session")
			}
		})
	}
}

const recordedTextSessionID = "s-ssh"

// TestSignInRefusesUnverifiedEmailAndForgedState: an ID token without a
// verified e-mail and a callback whose state was not issued here are refused.
func TestSignInRefusesUnverifiedEmailAndForgedState(t *testing.T) {
	c := newConsole(t)
	c.op.SignInAs(auditor, false)
	b := c.browser()
	resp, err := b.Get(c.srv.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	resp, err = c.browser().Get(c.srv.URL + "/auth/callback?code=x&state=y")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// TestAnonymous: /api/v1 is 401 for anonymous callers, configured or not;
// pages send browsers to sign in or say sign-in is not configured.
func TestAnonymous(t *testing.T) {
	c := newConsole(t)
	bare := httptest.NewServer((&web.Server{}).Handler())
	t.Cleanup(bare.Close)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name, base, method, path string
		want                     int
		wantBody                 string
	}{
		{"api sessions", c.srv.URL, "GET", "/api/v1/sessions", 401, "authentication required"},
		{"api kill", c.srv.URL, "POST", "/api/v1/sessions/s-live/kill", 401, "authentication required"},
		{"api unknown path", c.srv.URL, "GET", "/api/v1/nothing", 401, ""},
		{"api forged bearer", c.srv.URL, "GET", "/api/v1/identities", 401, ""},
		{"page redirects to sign-in", c.srv.URL, "GET", "/sessions", 302, ""},
		{"cast", c.srv.URL, "GET", "/sessions/s-ssh/cast", 302, ""},
		{"unconfigured api", bare.URL, "GET", "/api/v1/sessions", 401, ""},
		{"unconfigured page", bare.URL, "GET", "/", 401, "Sign-in is not configured"},
		{"unconfigured login", bare.URL, "GET", "/auth/login", 401, "Sign-in is not configured"},
		{"health", bare.URL, "GET", "/healthz", 200, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.base+tc.path, nil)
			if tc.name == "api forged bearer" {
				req.Header.Set("Authorization", "Bearer spt_forged")
			}
			resp, err := noRedirect.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode, "got %d, want %d: %s", resp.StatusCode, tc.want, body)
			assert.Contains(t, string(body), tc.wantBody)
		})
	}
}

// TestRoles: auditors read but cannot kill; admins kill; owners see the
// registry and the sessions of the identities they own, no others; every
// POST needs the CSRF token.
func TestRoles(t *testing.T) {
	c := newConsole(t)
	aud, _, _ := c.signIn(auditor)
	adm, _, _ := c.signIn(admin)
	own, _, _ := c.signIn(owner)
	for _, tc := range []struct {
		name   string
		client *http.Client
		path   string
		want   int
	}{
		{"auditor reads sessions", aud, "/api/v1/sessions", 200},
		{"auditor reads a session", aud, "/api/v1/sessions/s-pg", 200},
		{"auditor reads identities", aud, "/api/v1/identities", 200},
		{"owner reads identities", own, "/api/v1/identities", 200},
		{"owner lists their identities' sessions", own, "/api/v1/sessions", 200},
		{"owner replays their identity's session", own, "/sessions/s-ssh/cast", 200},
		{"owner cannot list live sessions", own, "/live", 403},
		{"owner lands on their reviews", own, "/", 200},
		{"unknown session", aud, "/api/v1/sessions/nope", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client.Get(c.srv.URL + tc.path)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode)
		})
	}
	t.Run("auditor cannot kill", func(t *testing.T) {
		resp := c.post(aud, "/sessions/s-live/kill", url.Values{"csrf": {c.csrf(aud)}})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.True(t, killRequested(t, c, "s-live").IsZero())
	})
	t.Run("admin without CSRF token is refused", func(t *testing.T) {
		resp := c.post(adm, "/sessions/s-live/kill", url.Values{"reason": {"x"}})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		resp = c.post(adm, "/sessions/s-live/kill", url.Values{"csrf": {c.csrf(aud)}})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "another session's token")
		assert.True(t, killRequested(t, c, "s-live").IsZero())
	})
	t.Run("admin kills", func(t *testing.T) {
		resp := c.post(adm, "/sessions/s-live/kill", url.Values{"csrf": {c.csrf(adm)}, "reason": {"incident 7"}})
		assert.Equal(t, http.StatusOK, resp.StatusCode) // after the redirect to /live
		assert.Equal(t, "/live", resp.Request.URL.Path)
		assert.False(t, killRequested(t, c, "s-live").IsZero())
		rec, err := c.store.Session(t.Context(), "s-live")
		require.NoError(t, err)
		assert.Contains(t, rec.KillReason, admin)
		assert.Contains(t, rec.KillReason, "incident 7")
	})
	t.Run("killing an ended session is a conflict", func(t *testing.T) {
		resp := c.post(adm, "/api/v1/sessions/s-ssh/kill", url.Values{"csrf": {c.csrf(adm)}})
		assert.Equal(t, http.StatusConflict, resp.StatusCode)
	})
}

func killRequested(t *testing.T, c *console, id string) time.Time {
	rec, err := c.store.Session(t.Context(), id)
	require.NoError(t, err)
	return rec.KillRequested
}

// TestSecurityHeaders: every answer forbids framing and sniffing and
// limits scripts to this origin.
func TestSecurityHeaders(t *testing.T) {
	c := newConsole(t)
	b, _, _ := c.signIn(auditor)
	for _, path := range []string{"/", "/sessions/s-ssh", "/api/v1/sessions", "/healthz", "/static/asciinema-player.min.js", "/auth/signin"} {
		t.Run(path, func(t *testing.T) {
			resp, err := b.Get(c.srv.URL + path)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			csp := resp.Header.Get("Content-Security-Policy")
			assert.Contains(t, csp, "frame-ancestors 'none'")
			assert.Contains(t, csp, "default-src 'self'")
			assert.NotContains(t, csp, " 'unsafe-eval'", "only WebAssembly may be compiled, no eval")
		})
	}
}

// TestClientSecretStaysOutOfLogs: a provider refusing the console's
// credentials fails the sign-in; the log says why without the secret.
func TestClientSecretStaysOutOfLogs(t *testing.T) {
	c := newConsole(t)
	var logs strings.Builder
	ws := &web.Server{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Directory: c.ws.Directory,
		OIDC: web.OIDCConfig{Issuer: c.op.URL, ClientID: c.op.ClientID, ClientSecret: "wrong-secret-9f2c"}}
	srv := httptest.NewServer(ws.Handler())
	t.Cleanup(srv.Close)
	c.op.SignInAs(auditor, true)
	resp, err := c.browser().Get(srv.URL + "/sessions")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, logs.String(), "invalid_client")
	assert.NotContains(t, logs.String(), "wrong-secret-9f2c")
	assert.NotContains(t, string(body), "wrong-secret-9f2c")
}

// TestBearerToken: scripts authenticate with a bearer token the hook maps
// to a person; the person's roles and status still come from the registry.
func TestBearerToken(t *testing.T) {
	c := newConsole(t)
	c.ws.BearerToken = func(_ context.Context, tok string) (string, error) {
		people := map[string]string{"t-alice": auditor, "t-ivan": inactive, "t-olivia": owner}
		if p, ok := people[tok]; ok {
			return p, nil
		}
		return "", errors.New("unknown token")
	}
	for _, tc := range []struct {
		token, path string
		want        int
	}{
		{"t-alice", "/api/v1/sessions", 200},
		{"t-olivia", "/live", 403}, // the live list is for auditors and admins
		{"t-ivan", "/api/v1/sessions", 401},
		{"t-unknown", "/api/v1/sessions", 401},
	} {
		t.Run(tc.token, func(t *testing.T) {
			req, _ := http.NewRequest("GET", c.srv.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode)
		})
	}
	t.Run("a bearer POST needs no CSRF token", func(t *testing.T) {
		req, _ := http.NewRequest("POST", c.srv.URL+"/api/v1/sessions/s-live/kill", nil)
		req.Header.Set("Authorization", "Bearer t-alice")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "an auditor still cannot kill")
	})
}
