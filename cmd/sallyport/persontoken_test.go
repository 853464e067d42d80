package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIPersonTokenIssue: token issue takes an identity or --person, not
// both, and mints person tokens only for active people of the registry.
func TestCLIPersonTokenIssue(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	out := e.ok("token", "issue", "--person", "carol@example.com", "--ttl", "15m")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, "token issue prints the token alone")
	assert.True(t, strings.HasPrefix(lines[0], "spt_"), "got %q, want a spt_ token", lines[0])
	e.ok("iga", "offboard", "bob@example.com")

	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"identity and person", []string{"ci-deploy", "--person", "carol@example.com", "--ttl", "15m"}, 2, "IDENTITY or --person EMAIL, not both"},
		{"neither", []string{"--ttl", "15m"}, 2, "IDENTITY or --person EMAIL"},
		{"two identities", []string{"ci-deploy", "svc-backup", "--ttl", "15m"}, 2, "IDENTITY or --person EMAIL"},
		{"no ttl", []string{"--person", "carol@example.com"}, 2, "--ttl"},
		{"unknown person", []string{"--person", "mallory@example.com", "--ttl", "15m"}, 1, "no person mallory@example.com"},
		{"an identity given as a person", []string{"--person", "ci-deploy", "--ttl", "15m"}, 1, "no person ci-deploy"},
		{"offboarded person", []string{"--person", "bob@example.com", "--ttl", "15m"}, 1, "bob@example.com is inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := e.run("", append([]string{"token", "issue"}, tt.args...)...)
			assert.Equal(t, tt.code, code, "stderr %s", errOut)
			assert.Contains(t, errOut, tt.says)
			assert.Empty(t, out, "a refusal printed a token")
		})
	}
}

// TestServePersonToken: a script calls the console's API with a person
// token minted by the CLI and acts as that person; an identity's token, a
// tampered, expired or missing one, and an offboarded person's get 401.
func TestServePersonToken(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	base, srv := servePersonAPI(t, e)
	mint := func(args ...string) string {
		return strings.TrimSpace(e.ok(append([]string{"token", "issue"}, args...)...))
	}
	expired := mint("--person", "carol@example.com", "--ttl", "1s")
	minted := time.Now()
	carol := mint("--person", "carol@example.com", "--ttl", "15m")
	bob := mint("--person", "bob@example.com", "--ttl", "15m")
	identity := mint("ci-deploy", "--ttl", "15m")
	tampered := flipMidPayload(carol)

	var me struct {
		ID    string   `json:"id"`
		Roles []string `json:"roles"`
	}
	require.NoError(t, json.Unmarshal([]byte(bearerGet(t, base+"/api/v1/me", carol, http.StatusOK)), &me))
	assert.Equal(t, "carol@example.com", me.ID)
	assert.Equal(t, []string{"auditor"}, me.Roles)
	bearerGet(t, base+"/api/v1/sessions", carol, http.StatusOK)
	bearerGet(t, base+"/api/v1/me", bob, http.StatusOK)

	time.Sleep(time.Until(minted.Add(2 * time.Second))) // exp has one-second resolution
	e.ok("iga", "offboard", "bob@example.com")
	for _, tc := range []struct{ name, token string }{
		{"an identity's token", identity},
		{"tampered", tampered},
		{"expired", expired},
		{"offboarded person", bob},
		{"no token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bearerGet(t, base+"/api/v1/me", tc.token, http.StatusUnauthorized)
			bearerGet(t, base+"/api/v1/sessions", tc.token, http.StatusUnauthorized)
		})
	}
	bearerGet(t, base+"/api/v1/me", carol, http.StatusOK)
	stopServe(t, srv)
	for _, tok := range []string{carol, bob, identity} {
		assert.NotContains(t, srv.buf.String(), tok[strings.IndexByte(tok, '.'):], "serve logged a token")
	}
}

// flipMidPayload changes one character in the middle of a token's signed
// part, so its signature no longer matches.
func flipMidPayload(token string) string {
	i := strings.IndexByte(token, '.') / 2
	flipped := byte('A')
	if token[i] == 'A' {
		flipped = 'B'
	}
	return token[:i] + string(flipped) + token[i+1:]
}

// servedAPI is a running serve and its log.
type servedAPI struct {
	cmd *exec.Cmd
	buf *syncbuf.Buffer
}

// servePersonAPI starts serve on e with the web listener on a free port
// and returns its base URL once /healthz answers.
func servePersonAPI(t *testing.T, e *env) (string, *servedAPI) {
	t.Helper()
	port := freePort(t)
	data, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(data), `web: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`web: {listen: "127.0.0.1:%d"}`, port), 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	s := &servedAPI{cmd: exec.Command(binary, "--config", e.config, "serve"), buf: &syncbuf.Buffer{}}
	s.cmd.Stderr = s.buf
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "serve never became healthy: %s", s.buf)
	return base, s
}

// stopServe stops serve with SIGTERM, as an init system would, and waits.
func stopServe(t *testing.T, s *servedAPI) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "serve exits 0 on SIGTERM; logs: %s", s.buf)
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop within 15s of SIGTERM")
	}
}

// bearerGet GETs url with token as the bearer token ("": no
// Authorization header), asserts the status and returns the body.
func bearerGet(t *testing.T, url, token string, want int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, want, resp.StatusCode, "GET %s: %s", url, body)
	return string(body)
}
