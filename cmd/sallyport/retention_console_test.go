package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/web/oidctest"
)

// TestConsoleShowsHold: an operator holds a recording with the CLI and the
// console's session page, read by a signed-in auditor from a running
// serve, shows the hold with its reason; after release it no longer does.
// A recording deleted by retention has a page that says so, with no player
// or downloads of objects that are gone.
func TestConsoleShowsHold(t *testing.T) {
	op := oidctest.New(t)
	e := newEnv(t, "recordings: {retention: 400d}")
	port := freePort(t)
	webBlock := fmt.Sprintf(`web: {listen: "127.0.0.1:%d", oidc: {issuer: %q, client_id: %q, client_secret_env: SP_TEST_OIDC_SECRET}}`,
		port, op.URL, op.ClientID)
	cfg := strings.Replace(fmt.Sprintf(testConfig, "recordings: {retention: 400d}"), `web: {listen: "127.0.0.1:0"}`, webBlock, 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	e.ok("iga", "apply", "-f", e.registry)
	held, gone := recordSession(t, e), recordSession(t, e)
	e.ok("recording", "hold", held, "--reason", "subpoena 2026-42")
	n, err := retentionFor(t, e).Sweep(t.Context(), time.Now().AddDate(0, 0, 401))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	cmd := exec.Command(binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), "SP_TEST_OIDC_SECRET="+op.Secret)
	logs := &syncbuf.Buffer{}
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "serve never became healthy: %s", logs)

	op.SignInAs("carol@example.com", true)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	page := func(id string) string {
		resp, err := browser.Get(fmt.Sprintf("http://127.0.0.1:%d/sessions/%s", port, id))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		return string(body)
	}
	body := page(held)
	assert.Contains(t, body, `id="legal-hold"`)
	assert.Contains(t, body, "subpoena 2026-42")
	assert.Contains(t, body, "recording intact", "a held recording still verifies")

	body = page(gone)
	assert.Contains(t, body, "recording deleted by retention on "+time.Now().AddDate(0, 0, 401).UTC().Format(time.DateOnly))
	assert.NotContains(t, body, "Download asciicast")
	assert.NotContains(t, body, `id="player"`)

	e.ok("recording", "release", held, "--reason", "subpoena withdrawn")
	assert.NotContains(t, page(held), `id="legal-hold"`)
}
