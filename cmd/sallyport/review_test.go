package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/sessionid"
	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/web"
)

// revOpenGrant opens a grant on bg-oncall as carol, its holder, and
// returns its id.
func revOpenGrant(t *testing.T, e *env) string {
	t.Helper()
	out := e.ok("breakglass", "open", "bg-oncall", "--target", "web-01", "--by", "carol@example.com",
		"--reason", "INC-7 disk full on web-01", "--ticket", "INC-7", "--for", "15m", "--json")
	var g struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &g))
	require.NotEmpty(t, g.ID)
	return g.ID
}

// revRecordBreakglass records, through the recorder serve builds, a
// break-glass session flagged with grant that runs one command.
func revRecordBreakglass(t *testing.T, e *env, grant string) string {
	t.Helper()
	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	rec, err := newRecorder(cfg, testLogger(t), newMetrics())
	require.NoError(t, err)
	ctx := context.Background()
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	defer ap.Close()
	rec.OnState = indexSessions(ap.store, testLogger(t))
	require.NoError(t, rec.Start(ctx))
	meta := recorder.SessionMeta{ID: sessionid.New(time.Now()), Identity: "bg-oncall", Owner: "alice@example.com", Target: "web-01",
		Protocol: "ssh", Login: "root", Source: "127.0.0.1:50001", BreakglassGrant: grant, StartedAt: time.Now().UTC()}
	s, err := rec.Open(ctx, meta)
	require.NoError(t, err)
	ch := 0
	require.NoError(t, s.Event(recorder.Event{Time: time.Now(), Type: recorder.EventExec, Channel: &ch, Command: "rm -rf /var/log/old-*"}))
	require.NoError(t, s.OpenTerminal(1, 80, 24, "xterm"))
	require.NoError(t, s.Output(1, []byte("# df -h /\r\n/dev/sda1  40G  12G  28G  30% /\r\n")))
	zero := 0
	require.NoError(t, s.Close(ctx, endForTest(&zero)))
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, rec.Shutdown(sctx))
	return meta.ID
}

type revReview struct {
	ID, Grant, State, Reviewers string
	AssignedTo                  string `json:"assigned_to"`
	OpenedBy                    string `json:"opened_by"`
	CompletedBy                 string `json:"completed_by"`
	Outcome                     string
}

func revList(t *testing.T, e *env, args ...string) []revReview {
	t.Helper()
	var rs []revReview
	require.NoError(t, json.Unmarshal([]byte(e.ok(append([]string{"review", "list", "--json"}, args...)...)), &rs))
	return rs
}

// TestCLIReviewFlow: a closed grant gets a review assigned to the owner;
// the opener's completion is refused, the owner's accepted, and the
// evidence bundle holds the grant, both people, and the session's
// command with its verify status.
func TestCLIReviewFlow(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	grant := revOpenGrant(t, e)
	assert.Empty(t, revList(t, e), "an open grant has no review yet")
	_, errOut, code := e.run("", "review", "export", "last")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no reviews yet")
	session := revRecordBreakglass(t, e, grant)
	e.ok("breakglass", "close", grant)

	rs := revList(t, e)
	require.Len(t, rs, 1)
	rv := rs[0]
	assert.Equal(t, grant, rv.Grant)
	assert.Equal(t, "alice@example.com", rv.AssignedTo, "the owner reviews, not the opener")
	assert.Equal(t, "pending", rv.State)
	assert.Empty(t, revList(t, e, "--overdue"), "due in 72h")

	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"the opener is refused", []string{"--by", "carol@example.com", "--outcome", "legitimate", "--note", "all good"}, 1, "dual control"},
		{"a bystander is refused", []string{"--by", "bob@example.com", "--outcome", "legitimate", "--note", "all good"}, 1, "assigned to alice@example.com"},
		{"an unknown outcome", []string{"--by", "alice@example.com", "--outcome", "fine", "--note", "all good"}, 1, "legitimate, misuse, drill"},
		{"no note", []string{"--by", "alice@example.com", "--outcome", "legitimate"}, 2, "--note"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := e.run("", append([]string{"review", "complete", rv.ID}, tc.args...)...)
			assert.Equalf(t, tc.code, code, "got exit %d, want %d: %s", code, tc.code, errOut)
			assert.Contains(t, errOut, tc.says)
		})
	}
	out := e.ok("review", "complete", rv.ID, "--by", "alice@example.com", "--outcome", "legitimate", "--note", "cleared old logs per INC-7")
	assert.Contains(t, out, "completed by alice@example.com")

	file := filepath.Join(e.dir, "evidence.json")
	e.ok("review", "export", "last", "-o", file)
	revCheckEvidence(t, file, grant, session)
}

func revCheckEvidence(t *testing.T, file, grant, session string) {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var ev struct {
		Review struct {
			OpenedBy    string `json:"opened_by"`
			CompletedBy string `json:"completed_by"`
			Outcome     string
		}
		Grant struct {
			ID, Reason, Ticket string
		}
		Sessions []struct {
			ID, Verify, Transcript string
			Grant                  *string `json:"breakglass_grant"`
			Events                 []map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(data, &ev))
	assert.Equal(t, "carol@example.com", ev.Review.OpenedBy)
	assert.Equal(t, "alice@example.com", ev.Review.CompletedBy)
	assert.Equal(t, "legitimate", ev.Review.Outcome)
	assert.Equal(t, grant, ev.Grant.ID)
	assert.Equal(t, "INC-7 disk full on web-01", ev.Grant.Reason)
	assert.Equal(t, "INC-7", ev.Grant.Ticket)
	require.Len(t, ev.Sessions, 1)
	s := ev.Sessions[0]
	assert.Equal(t, session, s.ID)
	assert.Equal(t, "intact", s.Verify)
	require.NotNil(t, s.Grant)
	assert.Equal(t, grant, *s.Grant, "the session is flagged with the grant")
	var commands []any
	for _, e := range s.Events {
		if e["type"] == "exec" {
			commands = append(commands, e["command"])
		}
	}
	assert.Equal(t, []any{"rm -rf /var/log/old-*"}, commands)
	assert.Contains(t, s.Transcript, "/dev/sda1")
}

// revReceiver is an alert webhook receiver that checks signatures.
type revReceiver struct {
	secret []byte
	mu     sync.Mutex
	got    []map[string]any
	bad    int
}

func (r *revReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !hmac.Equal([]byte(web.Sign(r.secret, body)), []byte(req.Header.Get(web.SignatureHeader))) {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var a map[string]any
	if json.Unmarshal(body, &a) == nil {
		r.got = append(r.got, a)
	}
}

func (r *revReceiver) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.got {
		out = append(out, fmt.Sprint(a["kind"], " ", a["grant"]))
	}
	return out
}

// TestServeBreakglassAlerts: serve alerts a grant opened by another
// process to the webhook with a valid signature, creates its review when
// it closes, alerts it once it is overdue, and exports both metrics.
func TestServeBreakglassAlerts(t *testing.T) {
	rcv := &revReceiver{secret: []byte("hook-secret-for-tests")}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	e := newEnv(t, fmt.Sprintf("breakglass: {review_within: 2s}\nalerts: {webhook_url: %q, secret_env: TEST_HOOK_SECRET}", hook.URL+"/alerts"))
	e.extraEnv = []string{"TEST_HOOK_SECRET=" + string(rcv.secret)}
	base, logs := revServe(t, e)
	e.ok("iga", "apply", "-f", e.registry)

	grant := revOpenGrant(t, e)
	require.Eventually(t, func() bool { return len(rcv.kinds()) >= 1 }, 10*time.Second, 50*time.Millisecond,
		"no alert within 10s of the grant opening; logs: %s", logs)
	assert.Equal(t, []string{"breakglass_opened " + grant}, rcv.kinds())
	assert.Zero(t, rcv.bad, "every POST carries a valid signature")
	assert.Contains(t, get(t, base+"/metrics", http.StatusOK), "sallyport_breakglass_opened_total 1")

	e.ok("breakglass", "close", grant)
	require.Eventually(t, func() bool { return len(rcv.kinds()) >= 2 }, 10*time.Second, 50*time.Millisecond,
		"no overdue alert within 10s of a 2s review_within; logs: %s", logs)
	assert.Equal(t, "review_overdue "+grant, rcv.kinds()[1])
	assert.Contains(t, get(t, base+"/metrics", http.StatusOK), "sallyport_breakglass_reviews_overdue 1")
	rs := revList(t, e, "--overdue")
	require.Len(t, rs, 1)
	assert.Equal(t, "overdue", rs[0].State)
	assert.Contains(t, logs.String(), "level=WARN", "alerts are logged at WARN")
	assert.NotContains(t, logs.String(), string(rcv.secret))
}

// revServe runs `sallyport serve` on e until the test ends and returns its
// web base URL and its log.
func revServe(t *testing.T, e *env) (string, *syncbuf.Buffer) {
	t.Helper()
	port := freePort(t)
	data, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(data), "web: {listen: \"127.0.0.1:0\"}", fmt.Sprintf("web: {listen: \"127.0.0.1:%d\"}", port), 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	cmd := exec.Command(binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), e.extraEnv...)
	logs := &syncbuf.Buffer{}
	cmd.Stderr = logs
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
	}, 10*time.Second, 50*time.Millisecond, "serve never became healthy: %s", logs)
	return base, logs
}

// TestServeRefusesUnsignedWebhook: a webhook without its signing secret is
// a config problem serve reports at start, naming the variable, not the URL.
func TestServeRefusesUnsignedWebhook(t *testing.T) {
	e := newEnv(t, `alerts: {webhook_url: "https://hooks.example.com/T0K3N", secret_env: TEST_MISSING_SECRET}`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), "TEST_MISSING_SECRET=")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	err := cmd.Run()
	require.Error(t, err, "serve must not run without the webhook secret")
	assert.Equal(t, exitUsage, cmd.ProcessState.ExitCode(), "a config problem exits 2; logs: %s", &logs)
	assert.Contains(t, logs.String(), "TEST_MISSING_SECRET is empty")
	assert.NotContains(t, logs.String(), "T0K3N", "the webhook URL may hold a token")
}
