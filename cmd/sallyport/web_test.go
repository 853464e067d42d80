package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/web/oidctest"
)

// TestServeConsole runs serve with web.oidc pointing at a test OpenID
// provider and the client secret in the environment: people of the
// registry sign in and see it, others are refused, anonymous API calls get
// 401, and the secret never reaches the log.
func TestServeConsole(t *testing.T) {
	op := oidctest.New(t)
	e := newEnv(t, "")
	port := freePort(t)
	web := fmt.Sprintf(`web: {listen: "127.0.0.1:%d", oidc: {issuer: %q, client_id: %q, client_secret_env: SP_TEST_OIDC_SECRET}}`, port, op.URL, op.ClientID)
	cfg := strings.Replace(fmt.Sprintf(testConfig, ""), `web: {listen: "127.0.0.1:0"}`, web, 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	e.ok("iga", "apply", "-f", e.registry)
	cmd := exec.Command(binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), "SP_TEST_OIDC_SECRET="+op.Secret)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "serve never became healthy: %s", &logs)

	get(t, base+"/api/v1/sessions", http.StatusUnauthorized)
	get(t, base+"/static/asciinema-player.min.js", http.StatusOK)
	for _, tc := range []struct {
		email    string
		want     int
		wantBody string
	}{
		{"carol@example.com", http.StatusOK, "svc-backup"},
		{"alice@example.com", http.StatusOK, "svc-backup"},
		{"mallory@example.com", http.StatusForbidden, "not an active person"},
	} {
		t.Run(tc.email, func(t *testing.T) {
			op.SignInAs(tc.email, true)
			jar, _ := cookiejar.New(nil)
			b := &http.Client{Jar: jar, Timeout: 10 * time.Second}
			resp, err := b.Get(base + "/registry")
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode, "%s", body)
			assert.Contains(t, string(body), tc.wantBody)
		})
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "serve exits 0 on SIGTERM; logs: %s", &logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop within 15s of SIGTERM")
	}
	assert.Contains(t, logs.String(), "signed in")
	assert.NotContains(t, logs.String(), op.Secret)
}
