package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/sshtest"
	"github.com/sallyport/sallyport/proxy"
	sshproxy "github.com/sallyport/sallyport/proxy/ssh"
)

// e2eRegistry: bg-oncall is alice's break-glass account with carol as its
// holder; its key and login are filled in.
const e2eRegistry = `people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
  - {id: carol@example.com, name: Carol, roles: [auditor], status: active}
identities:
  - id: bg-oncall
    kind: break-glass
    state: active
    owner: alice@example.com
    holders: [carol@example.com]
    credentials: {ssh_keys: [{key: "%s"}]}
    entitlements: [{target: web-01, login: %s, actions: [exec, shell]}]
    certification: {by: alice@example.com, at: %s, until: %s}
`

// e2eBastion is the SSH side of a bastion on the env's registry and
// recording store, in front of a sandbox sshd, with the watcher running.
type e2eBastion struct {
	port, known, key string
	store            *sqlstore.Store
}

func newE2EBastion(t *testing.T, e *env) *e2eBastion {
	t.Helper()
	for _, bin := range []string{"ssh"} {
		if _, err := exec.LookPath(bin); err != nil {
			sandbox.Need(t, fmt.Errorf("%s not in PATH: install openssh-client: %w", bin, sandbox.ErrNotInstalled))
		}
	}
	_, caKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	userCA := &ca.SSHUserCA{Key: caKey}
	sshd := sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{userCA.AuthorizedKey()}})
	b := &e2eBastion{key: filepath.Join(e.dir, "bg-oncall.key")}
	pub := sshtest.WriteKey(t, b.key)
	now := time.Now().UTC()
	require.NoError(t, os.WriteFile(e.registry, []byte(fmt.Sprintf(e2eRegistry, pub, sshd.User,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))), 0o600))

	cfg, err := LoadConfig(e.config)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ap, err := openApp(ctx, cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { ap.Close() })
	b.store = ap.store
	rec, err := newRecorder(cfg, testLogger(t), newMetrics())
	require.NoError(t, err)
	rec.OnState = indexSessions(ap.store, testLogger(t))
	require.NoError(t, rec.Start(ctx))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = rec.Shutdown(sctx)
	})
	live := &proxy.Live{Gate: ap.reg, Index: ap.store, Logger: testLogger(t)} // serve's defaults: re-admit every 2 s
	go live.Watch(ctx)
	b.port, b.known = sshtest.Serve(ctx, t, &sshproxy.Server{Gate: ap.reg, Live: live, Recorder: rec, CA: userCA, Logger: testLogger(t),
		Targets: func(name string) (sshproxy.Target, bool) {
			return sshproxy.Target{Name: name, Address: sshd.Addr(), HostKeys: []gossh.PublicKey{sshd.HostPublicKey()}}, name == "web-01"
		}}, e.dir)
	return b
}

// ssh runs the real ssh client as bg-oncall to web-01 through the bastion.
func (b *e2eBastion) ssh(ctx context.Context, command string) *exec.Cmd {
	return exec.CommandContext(ctx, "ssh", sshtest.ClientArgs(b.key, b.known, "-p", b.port, "-l", "bg-oncall@web-01", "127.0.0.1", command)...)
}

// TestBreakglassEndToEnd is the whole flow through the real ssh client:
// open → signed alert → a recorded session → close ends a live session
// within 5 s → review for the owner → the opener's completion refused →
// the owner completes → the evidence export holds the session's command.
func TestBreakglassEndToEnd(t *testing.T) {
	rcv := &revReceiver{secret: []byte("e2e-hook-secret")}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	e := newEnv(t, fmt.Sprintf("alerts: {webhook_url: %q, secret_env: TEST_HOOK_SECRET}", hook.URL))
	e.extraEnv = []string{"TEST_HOOK_SECRET=" + string(rcv.secret)}
	b := newE2EBastion(t, e)
	_, logs := revServe(t, e)
	e.ok("iga", "apply", "-f", e.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	res := e2eRun(t, b.ssh(ctx, "echo before-grant"))
	assert.NotEqual(t, 0, res.code, "no grant, no session")
	assert.Contains(t, res.stderr, "breakglass_no_grant")

	grant := revOpenGrant(t, e)
	require.Eventually(t, func() bool { return len(rcv.kinds()) >= 1 }, 10*time.Second, 50*time.Millisecond, "no alert; logs: %s", logs)
	assert.Equal(t, "breakglass_opened "+grant, rcv.kinds()[0])
	assert.Zero(t, rcv.bad, "the alert's signature verifies")

	res = e2eRun(t, b.ssh(ctx, "echo evidence-marker-$((6*7))"))
	require.Equalf(t, 0, res.code, "ssh during the grant: %s", res.stderr)
	assert.Contains(t, res.stdout, "evidence-marker-42")

	long := b.ssh(ctx, "sleep 60")
	require.NoError(t, long.Start())
	e2eWaitLive(t, b.store, 2)
	closed := time.Now()
	e.ok("breakglass", "close", grant)
	waited := make(chan error, 1)
	go func() { waited <- long.Wait() }()
	select {
	case <-waited:
		assert.Less(t, time.Since(closed), 5*time.Second, "the live session outlived the grant by more than 5s")
	case <-time.After(8 * time.Second):
		t.Fatal("the live session still runs 8s after the grant closed")
	}
	e2eWaitStored(t, b.store)

	rs := revList(t, e)
	require.Len(t, rs, 1)
	assert.Equal(t, "alice@example.com", rs[0].AssignedTo)
	_, errOut, code := e.run("", "review", "complete", rs[0].ID, "--by", "carol@example.com", "--outcome", "legitimate", "--note", "mine")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "dual control")
	e.ok("review", "complete", rs[0].ID, "--by", "alice@example.com", "--outcome", "drill", "--note", "planned exercise")
	e2eCheckEvidence(t, e, rs[0].ID, grant)
}

func e2eCheckEvidence(t *testing.T, e *env, review, grant string) {
	t.Helper()
	var ev struct {
		Grant    struct{ ID string }
		Sessions []struct {
			Verify string
			Grant  *string `json:"breakglass_grant"`
			Events []map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(e.ok("review", "export", review)), &ev))
	assert.Equal(t, grant, ev.Grant.ID)
	require.Len(t, ev.Sessions, 2, "both sessions of the grant")
	var commands []string
	for _, s := range ev.Sessions {
		assert.Equal(t, "intact", s.Verify)
		require.NotNil(t, s.Grant)
		assert.Equal(t, grant, *s.Grant)
		for _, x := range s.Events {
			if x["type"] == "exec" {
				commands = append(commands, fmt.Sprint(x["command"]))
			}
		}
	}
	assert.Equal(t, []string{"echo evidence-marker-$((6*7))", "sleep 60"}, commands)
}

type e2eResult struct {
	stdout, stderr string
	code           int
}

func e2eRun(t *testing.T, cmd *exec.Cmd) e2eResult {
	t.Helper()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return e2eResult{out.String(), errb.String(), code}
}

// e2eWaitLive waits until the index holds n sessions, the last one live.
func e2eWaitLive(t *testing.T, store *sqlstore.Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		rs, err := store.Sessions(context.Background(), sqlstore.SessionFilter{})
		return err == nil && len(rs) == n && rs[n-1].EndedAt.IsZero()
	}, 10*time.Second, 50*time.Millisecond, "want "+strconv.Itoa(n)+" sessions, the last live")
}

// e2eWaitStored waits until every indexed session's recording is in the store.
func e2eWaitStored(t *testing.T, store *sqlstore.Store) {
	t.Helper()
	require.Eventually(t, func() bool {
		rs, err := store.Sessions(context.Background(), sqlstore.SessionFilter{})
		if err != nil {
			return false
		}
		for _, r := range rs {
			if r.State != "stored" {
				return false
			}
		}
		return true
	}, 15*time.Second, 100*time.Millisecond, "recordings not stored")
}

// e2ePsqlRegistry: bg-db is alice's break-glass account on the analytics
// database, with carol as its holder.
const e2ePsqlRegistry = `people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
  - {id: carol@example.com, name: Carol, roles: [auditor], status: active}
identities:
  - id: bg-db
    kind: break-glass
    state: active
    owner: alice@example.com
    holders: [carol@example.com]
    entitlements: [{target: analytics, login: %s, actions: [query]}]
    certification: {by: alice@example.com, at: %s, until: %s}
`

// e2ePsqlEnv points the env's analytics target at a sandbox PostgreSQL
// target, fixes serve's postgres listener and writes the bg-db registry.
// It returns the listener's port.
func e2ePsqlEnv(t *testing.T, e *env) int {
	t.Helper()
	target := sandbox.PostgresTargetT(t, sandbox.PostgresTargetOptions{Database: "bg_analytics", Role: "bg_analyst", Admin: "bg_admin"})
	port := freePort(t)
	data, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.NewReplacer(
		`{name: analytics, kind: postgres, address: "127.0.0.1:5432", database: analytics}`,
		fmt.Sprintf(`{name: analytics, kind: postgres, address: %q, database: %s, admin_dsn_env: TEST_ADMIN_DSN}`, target.Addr(), target.Database),
		`postgres: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`postgres: {listen: "127.0.0.1:%d"}`, port),
	).Replace(string(data))
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	e.extraEnv = append(e.extraEnv, "TEST_ADMIN_DSN="+target.AdminDSN())
	now := time.Now().UTC()
	require.NoError(t, os.WriteFile(e.registry, []byte(fmt.Sprintf(e2ePsqlRegistry, target.Role,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))), 0o600))
	return port
}

// e2ePsql runs the real psql through serve's listener as bg-db.
func e2ePsql(t *testing.T, port int, token, sql string) e2eResult {
	t.Helper()
	bin := psqlBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql)
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(port), "PGUSER=bg-db", "PGDATABASE=analytics",
		"PGPASSWORD="+token, "PGSSLMODE=require", "PGCONNECT_TIMEOUT=10", "PSQLRC=/dev/null")
	return e2eRun(t, cmd)
}

// psqlBinary is the real psql, the newest installed.
func psqlBinary(t *testing.T) string { return sandbox.PostgresClientT(t, "psql") }

// TestBreakglassEndToEndPsql is the same flow through the real psql and
// serve's PostgreSQL listener: the evidence holds the session's query.
func TestBreakglassEndToEndPsql(t *testing.T) {
	rcv := &revReceiver{secret: []byte("e2e-hook-secret")}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	e := newEnv(t, fmt.Sprintf("alerts: {webhook_url: %q, secret_env: TEST_HOOK_SECRET}", hook.URL))
	e.extraEnv = []string{"TEST_HOOK_SECRET=" + string(rcv.secret)}
	port := e2ePsqlEnv(t, e)
	_, logs := revServe(t, e)
	e.ok("iga", "apply", "-f", e.registry)
	token := strings.TrimSpace(e.ok("token", "issue", "bg-db", "--ttl", "15m"))

	res := e2ePsql(t, port, token, "select 1")
	assert.NotEqual(t, 0, res.code, "no grant, no session")
	assert.Contains(t, res.stderr, "breakglass_no_grant")

	out := e.ok("breakglass", "open", "bg-db", "--target", "analytics", "--by", "carol@example.com",
		"--reason", "INC-9 stuck import job", "--for", "15m", "--json")
	var g struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &g))
	require.Eventually(t, func() bool { return len(rcv.kinds()) >= 1 }, 10*time.Second, 50*time.Millisecond, "no alert; logs: %s", logs)
	assert.Equal(t, "breakglass_opened "+g.ID, rcv.kinds()[0])
	assert.Zero(t, rcv.bad, "the alert's signature verifies")

	res = e2ePsql(t, port, token, "select count(*) from orders")
	require.Equalf(t, 0, res.code, "psql during the grant: %s", res.stderr)
	assert.Equal(t, "1000", strings.TrimSpace(res.stdout))
	e.ok("breakglass", "close", g.ID)
	require.Eventually(t, func() bool {
		var ss []struct{ State string }
		return json.Unmarshal([]byte(e.ok("sessions", "list", "--json")), &ss) == nil && len(ss) == 1 && ss[0].State == "stored"
	}, 15*time.Second, 100*time.Millisecond, "the psql session's recording is not stored; logs: %s", logs)

	rs := revList(t, e)
	require.Len(t, rs, 1)
	assert.Equal(t, "alice@example.com", rs[0].AssignedTo)
	_, errOut, code := e.run("", "review", "complete", rs[0].ID, "--by", "carol@example.com", "--outcome", "legitimate", "--note", "mine")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "dual control")
	e.ok("review", "complete", rs[0].ID, "--by", "alice@example.com", "--outcome", "legitimate", "--note", "import unstuck")
	var ev struct {
		Sessions []struct {
			Verify string
			Events []map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(e.ok("review", "export", rs[0].ID)), &ev))
	require.Len(t, ev.Sessions, 1)
	assert.Equal(t, "intact", ev.Sessions[0].Verify)
	var queries []string
	for _, x := range ev.Sessions[0].Events {
		if x["type"] == "query" {
			queries = append(queries, fmt.Sprint(x["sql"]))
		}
	}
	assert.Contains(t, queries, "select count(*) from orders")
}
