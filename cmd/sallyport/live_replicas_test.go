package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/web/oidctest"
)

// TestLiveAcrossReplicas: an SSH exec session runs through replica A; its
// owner, whose browser the balancer sent to replica B, watches it on B's
// console. B follows the recording A uploads to the shared bucket: the
// page opens the live stream and says so, the command's output printed
// after the page opened arrives, then the end, and the watch is audited.
func TestLiveAcrossReplicas(t *testing.T) {
	c := newReplicaCluster(t)
	a, b := c.start(t), c.start(t)
	a.ok("iga", "apply", "-f", c.registry)
	op := oidctest.New(t)
	base := withConsole(t, b, op)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	before := map[string]bool{}
	for _, s := range b.sessions() {
		before[s.ID] = true
	}
	// The command prints its marker once the test says the stream is open
	// (a file the target's sshd user can see): a watcher that joins is
	// shown what comes after it joined, and a loaded machine may take
	// seconds to get there.
	gate, err := os.MkdirTemp("", "live-gate-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(gate) })
	require.NoError(t, os.Chmod(gate, 0o755))
	cmd := a.ssh(ctx, fmt.Sprintf("for i in $(seq 200); do [ -e %s/go ] && break; sleep 0.1; done; echo marker-$((6*7)) from web-01; sleep 1", gate))
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var id string
	require.Eventually(t, func() bool {
		for _, s := range b.sessions("--live") {
			if !before[s.ID] {
				id = s.ID
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "the session through A never showed as live; logs: %s", a.logs)

	op.SignInAs("alice@example.com", true) // svc-ops's owner
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	page := getText(t, browser, base+"/sessions/"+id)
	assert.Contains(t, page, fmt.Sprintf(`data-stream="/sessions/%s/live"`, id), "B's page opens the stream")
	assert.Contains(t, page, `id="live-from-store"`, "and says it follows the recording in the store")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sessions/"+id+"/live", nil)
	resp, err := browser.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	opened := time.Now()
	require.NoError(t, os.WriteFile(gate+"/go", nil, 0o644))
	stream := readStream(t, resp.Body, "end")
	assert.Contains(t, stream, "marker-42 from web-01", "the output printed after the page opened")
	t.Logf("B streamed A's session for %s, to its end", time.Since(opened).Round(time.Millisecond))
	require.NoError(t, cmd.Wait())

	var evs []struct {
		Actor, Detail string
	}
	require.NoError(t, json.Unmarshal([]byte(b.ok("audit", "list", "--type", "session_watch", "--json")), &evs))
	require.Len(t, evs, 1)
	assert.Equal(t, "alice@example.com", evs[0].Actor)
	assert.Contains(t, evs[0].Detail, id)
}

// withConsole restarts r with the console's sign-in through op, and
// returns the console's URL.
func withConsole(t *testing.T, r *replica, op *oidctest.Provider) string {
	t.Helper()
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	data, err := os.ReadFile(r.config)
	require.NoError(t, err)
	m := regexp.MustCompile(`web: \{listen: "127\.0\.0\.1:(\d+)"\}`).FindStringSubmatch(string(data))
	require.NotNil(t, m, "serve's web listener in %s", data)
	web := fmt.Sprintf(`web: {listen: "127.0.0.1:%s", oidc: {issuer: %q, client_id: %q, client_secret_env: SP_TEST_OIDC_SECRET}}`, m[1], op.URL, op.ClientID)
	require.NoError(t, os.WriteFile(r.config, []byte(strings.Replace(string(data), m[0], web, 1)), 0o600))
	r.cmd = exec.Command(binary, "--config", r.config, "serve")
	r.cmd.Env = append(append(os.Environ(), r.extraEnv...), "SP_TEST_OIDC_SECRET="+op.Secret)
	r.logs = &syncbuf.Buffer{}
	r.cmd.Stderr = r.logs
	require.NoError(t, r.cmd.Start())
	cmd := r.cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://127.0.0.1:" + m[1]
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "serve never became healthy: %s", r.logs)
	return base
}

func getText(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	return string(body)
}

// readStream reads Server-Sent Events up to the first named last, and
// returns the text of every output and exec event before it.
func readStream(t *testing.T, body io.Reader, last string) string {
	t.Helper()
	var text strings.Builder
	var names []string
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
			names = append(names, name)
		case strings.HasPrefix(line, "data: ") && (name == "output" || name == "exec"):
			var d struct{ Text string }
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d))
			text.WriteString(d.Text)
		case line == "" && name == last:
			return text.String()
		}
	}
	t.Fatalf("the stream ended without %s (events %v, err %v)", last, slices.Compact(names), sc.Err())
	return ""
}
