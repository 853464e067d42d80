package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemoPrintsCommandsThatWork starts `sallyport demo` and runs the lines
// it prints, from the directory the demo was started in, as a newcomer
// would paste them: an allowed ssh session, a refused one with its reason,
// psql, replay and verify of the recording, the admission checks and the
// break-glass flow, the console through the development sign-in, and
// /metrics with a live ssh session.
func TestDemoPrintsCommandsThatWork(t *testing.T) {
	work := t.TempDir()
	cmd := exec.Command(binary, "demo", "--dir", "./demo", "--web", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--ssh-port", fmt.Sprint(freePort(t)), "--postgres-port", fmt.Sprint(freePort(t)), "--mysql-port", fmt.Sprint(freePort(t)))
	cmd.Dir = work
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := readTour(t, bufio.NewScanner(stdout))

	run := func(line string) (string, int) {
		t.Helper()
		sh := exec.Command("sh", "-c", regexp.MustCompile(`\s+#.*$`).ReplaceAllString(line, ""))
		sh.Dir = work
		out, _ := sh.CombinedOutput()
		return string(out), sh.ProcessState.ExitCode()
	}
	find := func(substr string) string {
		t.Helper()
		for _, l := range lines {
			if strings.Contains(l, substr) {
				return l
			}
		}
		t.Fatalf("the demo printed no line with %q", substr)
		return ""
	}
	for _, l := range lines {
		require.NotContains(t, l, "note:", "a sandbox target did not start")
	}

	out, code := run(find("svc-backup@web-01@"))
	assert.Equal(t, 0, code, "the first ssh line is an allowed session: %s", out)
	assert.Contains(t, out, "hello from")
	out, code = run(find("# refused: command_not_entitled"))
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, out, `sallyport: access denied (command_not_entitled): svc-backup may not run "echo hello; id" on web-01`, "the refusal names the command")
	out, code = run(find("ci-deploy@web-01@"))
	assert.NotEqual(t, 0, code)
	assert.Contains(t, out, "certification_expired", "the refusal says why")
	out, code = run(find("mariadb "))
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "1000")
	out, code = run(find("psql "))
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "1000")

	require.Eventually(t, func() bool { _, code := run(find(" verify last")); return code == 0 },
		15*time.Second, 200*time.Millisecond, "the last recording never verified intact")
	out, code = run(find(" replay last"))
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "select count(*) from orders", "the psql session's query is in its recording")

	signInAndSeeSessions(t, find("open http://"))

	// While an ssh session runs, the printed metrics line shows it live.
	allowed, _, found := strings.Cut(find("svc-backup@web-01@"), " 'echo")
	require.True(t, found, "the allowed ssh line runs no echo")
	sleeper := exec.Command("sh", "-c", "exec "+allowed+" 'sleep 60'")
	sleeper.Dir = work
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	metrics := find("/metrics")
	liveSSH := func(n int) func() bool {
		return func() bool {
			out, _ := run(metrics)
			return strings.Contains(out, fmt.Sprintf(`sallyport_sessions{protocol="ssh",state="live"} %d`, n))
		}
	}
	require.Eventually(t, liveSSH(1), 15*time.Second, 200*time.Millisecond, "/metrics never showed the live ssh session")
	require.NoError(t, sleeper.Process.Kill())
	require.Eventually(t, liveSSH(0), 15*time.Second, 200*time.Millisecond, "/metrics still shows the ssh session after it ended")

	// A failed login reads like any other, is counted by its real reason
	// and is in the audit trail.
	out, code = run(strings.Replace(allowed, "svc-backup@web-01@", "nosuch@web-01@", 1) + " true")
	assert.Equal(t, 255, code, out)
	assert.Contains(t, out, "sallyport: access denied (credential_invalid)")
	require.Eventually(t, func() bool {
		out, _ := run(metrics)
		return strings.Contains(out, `sallyport_login_failures_total{protocol="ssh",reason="unknown_identity"} 1`)
	}, 15*time.Second, 200*time.Millisecond, "/metrics never counted the failed login")
	audit := exec.Command(binary, "--config", filepath.Join("demo", "sallyport.yaml"), "audit", "list", "--type", "login_failed", "--json")
	audit.Dir = work
	auditOut, err := audit.CombinedOutput()
	require.NoError(t, err, "%s", auditOut)
	assert.Contains(t, string(auditOut), `"nosuch"`, "the failed login is not in audit list")

	for i, l := range checkLines(lines) {
		out, code := run(l)
		if i == 0 {
			assert.Equalf(t, 0, code, "first printed check must allow: %s\n%s", l, out)
			continue
		}
		assert.Equalf(t, 1, code, "printed denial example %q: %s", l, out)
	}

	out, code = run(find("breakglass open"))
	assert.Equal(t, 0, code, out)
	out, code = run(find("bg-oncall@web-01@"))
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "break-glass session")
	out, code = run(find("breakglass close last"))
	assert.Equal(t, 0, code, out)
	require.Eventually(t, func() bool { out, _ := run(find(" review list")); return strings.Contains(out, "bg-oncall") },
		10*time.Second, 200*time.Millisecond, "no review after the grant closed")
	out, code = run(find("review complete last --by carol"))
	assert.Equal(t, 1, code, "the opener may not review her own grant: %s", out)
	out, code = run(find("review complete last --by alice"))
	assert.Equal(t, 0, code, out)
	out, code = run(find("review export last"))
	assert.Equal(t, 0, code, out)
	evidence, err := os.ReadFile(filepath.Join(work, "demo", "evidence.json"))
	require.NoError(t, err)
	assert.Contains(t, string(evidence), "echo break-glass session", "the evidence holds the session's command")
	// Once every recording is stored, the suggestion sees every command.
	require.Eventually(t, func() bool {
		out, _ := run(strings.TrimSpace(strings.SplitN(find(" iga suggest svc-backup"), " iga suggest", 2)[0]) + " sessions list --identity svc-backup --json")
		return strings.Contains(out, `"state"`) && !strings.Contains(out, `"state": "live"`) && !strings.Contains(out, `"state": "uploading"`) &&
			!strings.Contains(out, `"state":"live"`) && !strings.Contains(out, `"state":"uploading"`)
	}, 20*time.Second, 200*time.Millisecond, "svc-backup's recordings never reached the store")
	out, code = run(find(" iga suggest svc-backup"))
	assert.Equal(t, 0, code, out)
	assert.NotContains(t, out, "WARNING", "every recording was readable")
	assert.Contains(t, out, "commands: [echo hello from web-01", "the suggestion lists the commands the tour ran")
	assert.Contains(t, out, `command "id -un" never run`, "the suggestion says what was granted and not used")
	// Applied, the suggestion still admits what was done, and no more.
	sp := strings.TrimSpace(strings.SplitN(find(" iga suggest svc-backup"), " iga suggest", 2)[0])
	out, code = run(sp + " iga suggest svc-backup > demo/suggested.yaml && " + sp + " iga apply -f demo/suggested.yaml")
	require.Equal(t, 0, code, "iga apply refused the suggestion: %s", out)
	for command, want := range map[string]int{"echo hello from web-01": 0, "id -un": 1, "echo hello from web-02": 1} {
		out, code = run(sp + " iga check svc-backup web-01 --command '" + command + "'")
		assert.Equalf(t, want, code, "iga check --command %q after applying the suggestion: %s", command, out)
	}
	out, code = run(sp + " iga check svc-backup web-01 --command 'id -un' --json")
	assert.Contains(t, out, `"code": "command_not_entitled"`, "the JSON names the reason")
	out, code = run(find(" iga report"))
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "NHI")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	assert.NoError(t, cmd.Wait(), "demo exits 0 on Ctrl-C")
}

// signInAndSeeSessions follows the printed console line with a cookie-keeping
// HTTP client: the console sends it to the development sign-in, which lists
// the registry's people; picking the one the line names signs in, and the
// sessions page lists the ssh session the tour ran.
func signInAndSeeSessions(t *testing.T, line string) {
	t.Helper()
	m := regexp.MustCompile(`open (http://\S+) and pick (\S+)`).FindStringSubmatch(line)
	require.NotNil(t, m, "console line %q names no URL and person", line)
	console, email := m[1], m[2]
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	fetch := func(u string) (string, *url.URL) {
		t.Helper()
		resp, err := browser.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", u, body)
		return string(body), resp.Request.URL
	}
	page, at := fetch(console)
	assert.Contains(t, page, "development sign-in — demo only", "the login page says what it is")
	link := regexp.MustCompile(`href="([^"]*email=` + regexp.QuoteMeta(url.QueryEscape(email)) + `[^"]*)"`).FindStringSubmatch(page)
	require.NotNil(t, link, "the development sign-in offers no %s: %s", email, page)
	pick, err := at.Parse(html.UnescapeString(link[1]))
	require.NoError(t, err)
	_, at = fetch(pick.String())
	assert.Equal(t, strings.TrimSuffix(console, "/"), "http://"+at.Host, "signing in lands back on the console")
	page, _ = fetch(strings.TrimSuffix(console, "/") + "/sessions")
	assert.Contains(t, page, email, "the console shows who is signed in")
	assert.Contains(t, page, "<td>web-01</td><td>ssh</td>", "the sessions page lists the tour's ssh session")
}

// readTour reads the demo's output up to the end of its printed tour.
func readTour(t *testing.T, sc *bufio.Scanner) []string {
	t.Helper()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		for sc.Scan() {
			lines = append(lines, strings.TrimSpace(sc.Text()))
			if strings.Contains(sc.Text(), "/metrics") {
				break
			}
		}
		got <- lines
	}()
	select {
	case lines := <-got:
		require.NotEmpty(t, lines, "demo exited before printing its tour")
		return lines
	case <-time.After(60 * time.Second):
		t.Fatal("demo printed no tour within 60s")
		return nil
	}
}

func checkLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, " iga check ") {
			out = append(out, l)
		}
	}
	return out
}
