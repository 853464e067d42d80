package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/web/oidctest"
)

// TestServeConsoleSearchAndLive: serve gives the console its search box
// (on the registry's index) and its live view (on this replica's recorder,
// audited): the sessions page searches, and watching a session no recorder
// of this replica runs says so instead of failing.
func TestServeConsoleSearchAndLive(t *testing.T) {
	op := oidctest.New(t)
	e := newEnv(t, "")
	port := freePort(t)
	webCfg := fmt.Sprintf(`web: {listen: "127.0.0.1:%d", oidc: {issuer: %q, client_id: %q, client_secret_env: SP_TEST_OIDC_SECRET}}`, port, op.URL, op.ClientID)
	cfgText := strings.Replace(fmt.Sprintf(testConfig, ""), `web: {listen: "127.0.0.1:0"}`, webCfg, 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfgText), 0o600))
	e.ok("iga", "apply", "-f", e.registry)
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ap, err := openApp(context.Background(), cfg, testLogger(t))
	require.NoError(t, err)
	require.NoError(t, ap.store.PutSession(context.Background(), sqlstore.SessionRecord{ID: "s-elsewhere", Identity: "svc-backup",
		Owner: "alice@example.com", Target: "web-01", Protocol: "ssh", Login: "backup", State: "live", StartedAt: time.Now().Add(-time.Minute)}))
	ap.Close()

	cmd := exec.Command(binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), "SP_TEST_OIDC_SECRET="+op.Secret)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 50*time.Millisecond, "serve never became healthy: %s", &logs)

	op.SignInAs("carol@example.com", true)
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	fetch := func(path string) (int, string) {
		resp, err := b.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, page := fetch("/sessions")
	require.Equal(t, http.StatusOK, code, page)
	assert.Contains(t, page, `name="q"`, "the search box")
	code, page = fetch("/sessions?q=" + url.QueryEscape(`"drop table`))
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "hits for", "a search on serve's index")
	code, page = fetch("/sessions/s-elsewhere/live")
	assert.Equal(t, http.StatusConflict, code, "the live view is wired, and this replica does not run the session")
	assert.Contains(t, page, "not running on this replica")
}
