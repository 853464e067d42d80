package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/sshtest"
	"github.com/sallyport/sallyport/internal/syncbuf"
)

// replicaConfig is one replica's config: its own data_dir and ports, the
// shared registry, recording store, keys and targets. A lease of 2s and a
// janitor every second let the crash test see a dead replica's credentials
// go within seconds.
const replicaConfig = `data_dir: ./data
registry: {driver: postgres, dsn_env: TEST_REGISTRY_DSN}
recordings:
  store: s3
  flush_interval: 200ms
  signing_key_file: %q
  s3: {endpoint: %q, bucket: %q, region: %q, secure: false, access_key_env: TEST_S3_ACCESS, secret_key_env: TEST_S3_SECRET}
ca: {ssh_user_key_file: %q}
cluster: {lease: 2s, janitor_interval: 1s}
web: {listen: "127.0.0.1:0"}
ssh: {listen: "127.0.0.1:%d"}
postgres: {listen: "127.0.0.1:%d", require_tls: true}
targets:
  - {name: web-01, kind: ssh, address: %q, host_key: %q, environment: prod}
  - {name: analytics, kind: postgres, address: %q, database: %s, admin_dsn_env: TEST_PG_ADMIN_DSN, environment: prod}
`

// replicaRegistry: svc-ops may run commands on web-01 as the sshd's user,
// svc-report may query analytics.
const replicaRegistry = `people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
identities:
  - id: svc-ops
    kind: service-account
    state: active
    owner: alice@example.com
    environment: prod
    credentials: {ssh_keys: [{key: "%s"}]}
    entitlements: [{target: web-01, login: %s, actions: [exec, shell]}]
    certification: {by: alice@example.com, at: %[3]s, until: %[4]s}
  - id: svc-report
    kind: service-account
    state: active
    owner: alice@example.com
    environment: prod
    entitlements: [{target: analytics, login: analyst, actions: [query]}]
    certification: {by: alice@example.com, at: %[3]s, until: %[4]s}
`

// replica is one `sallyport serve` child process and how to reach it.
type replica struct {
	*env
	sshPort   int
	pgPort    int
	cfgText   string // the config as first written, for restarts
	known     string // known_hosts holding the replica's host key
	clientKey string // svc-ops's private key file
	logs      *syncbuf.Buffer
	cmd       *exec.Cmd // the serve process
}

// replicaCluster is what the replicas share.
type replicaCluster struct {
	env       []string
	shared    string // directory of the shared key files
	s3        *sandbox.S3
	sshd      *sandbox.SSHD
	pg        *sandbox.PostgresTarget // on the registry's server
	clientKey string
	registry  string // the registry file, applied once
}

// newReplicaCluster starts a sandbox PostgreSQL server holding the
// registry and a target database, an S3 store, and an sshd trusting a user
// CA whose key file every replica is given.
func newReplicaCluster(t *testing.T) *replicaCluster {
	t.Helper()
	for _, client := range []string{"ssh", "psql"} {
		if _, err := exec.LookPath(client); err != nil {
			sandbox.Need(t, fmt.Errorf("%s not in PATH: install its client package: %w", client, sandbox.ErrNotInstalled))
		}
	}
	c := &replicaCluster{shared: t.TempDir()}
	pg := sandbox.PostgresT(t)
	require.NoError(t, pg.CreateDatabase(t.Context(), "registry"))
	var err error
	c.pg, err = pg.NewTarget(t.Context(), sandbox.PostgresTargetOptions{})
	require.NoError(t, err)
	c.s3 = sandbox.S3T(t)
	c.env = []string{"TEST_REGISTRY_DSN=" + pg.DSN("registry"), "TEST_PG_ADMIN_DSN=" + c.pg.AdminDSN(),
		"TEST_S3_ACCESS=" + c.s3.AccessKey, "TEST_S3_SECRET=" + c.s3.SecretKey}
	caKey, err := ca.LoadOrCreateKey(filepath.Join(c.shared, "ssh_user_ca"))
	require.NoError(t, err)
	_, err = ca.LoadOrCreateKey(filepath.Join(c.shared, "recording.key"))
	require.NoError(t, err)
	c.sshd = sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{(&ca.SSHUserCA{Key: caKey}).AuthorizedKey()}})
	c.clientKey = filepath.Join(c.shared, "svc-ops.key")
	pub := sshtest.WriteKey(t, c.clientKey)
	now := time.Now().UTC()
	c.registry = filepath.Join(c.shared, "registry.yaml")
	require.NoError(t, os.WriteFile(c.registry, []byte(fmt.Sprintf(replicaRegistry, pub, c.sshd.User,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))), 0o600))
	return c
}

// start runs one more replica and waits until it is healthy.
func (c *replicaCluster) start(t *testing.T) *replica {
	t.Helper()
	r := &replica{env: newEnv(t, ""), sshPort: freePort(t), pgPort: freePort(t), clientKey: c.clientKey}
	r.extraEnv = c.env
	r.cfgText = fmt.Sprintf(replicaConfig, filepath.Join(c.shared, "recording.key"), c.s3.Endpoint, c.s3.Bucket, c.s3.Region,
		filepath.Join(c.shared, "ssh_user_ca"), r.sshPort, r.pgPort, c.sshd.Addr(), strings.TrimSpace(c.sshd.HostKey),
		c.pg.Addr(), c.pg.Database)
	require.NoError(t, os.WriteFile(r.config, []byte(r.cfgText), 0o600))
	// The keys every replica must share and that have no config key here
	// are copied into its data_dir; the host key is made here, so the
	// client can trust it from the start.
	require.NoError(t, os.MkdirAll(filepath.Join(r.dir, "data", "keys"), 0o700))
	for _, name := range []string{"ssh_host_ed25519_key", "token.key", "web-session.key"} {
		_, err := ca.LoadOrCreateKey(filepath.Join(c.shared, name))
		require.NoError(t, err)
		data, err := os.ReadFile(filepath.Join(c.shared, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(r.dir, "data", "keys", name), data, 0o600))
	}
	// known_hosts as an operator writes it, from `ca export --type ssh-host`;
	// ssh then checks it strictly.
	r.known = filepath.Join(r.dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", r.sshPort, r.ok("ca", "export", "--type", "ssh-host"))
	require.NoError(t, os.WriteFile(r.known, []byte(line), 0o600))
	r.cmd, r.logs = startServe(t, r.env)
	return r
}

// restart starts r again with the same config and data_dir, after it died.
func (r *replica) restart(t *testing.T) {
	t.Helper()
	require.NoError(t, os.WriteFile(r.config, []byte(r.cfgText), 0o600))
	r.cmd, r.logs = startServe(t, r.env)
}

// startServe runs serve with e's config on a free web port and waits until
// /healthz answers; the process is killed when the test ends.
func startServe(t *testing.T, e *env) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	port := freePort(t)
	data, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(data), `web: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`web: {listen: "127.0.0.1:%d"}`, port), 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	cmd := exec.Command(binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), e.extraEnv...)
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
	return cmd, logs
}

// ssh runs the real ssh client as svc-ops to web-01 through the replica.
func (r *replica) ssh(ctx context.Context, command string) *exec.Cmd {
	return exec.CommandContext(ctx, "ssh", sshtest.ClientArgs(r.clientKey, r.known,
		"-p", strconv.Itoa(r.sshPort), "-l", "svc-ops@web-01", "127.0.0.1", command)...)
}

// sessions is the session index as this replica's CLI lists it.
func (r *replica) sessions(args ...string) []sessionOut {
	r.t.Helper()
	var out []sessionOut
	require.NoError(r.t, json.Unmarshal([]byte(r.ok(append([]string{"sessions", "list", "--json"}, args...)...)), &out))
	return out
}

// startLong starts a long ssh command through r and waits until observer's
// CLI lists a new live session; it returns the command and the session id.
func startLong(t *testing.T, ctx context.Context, r, observer *replica) (*exec.Cmd, string) {
	t.Helper()
	before := map[string]bool{}
	for _, s := range observer.sessions() {
		before[s.ID] = true
	}
	cmd := r.ssh(ctx, "sleep 60")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var id string
	require.Eventually(t, func() bool {
		for _, s := range observer.sessions("--live") {
			if !before[s.ID] {
				id = s.ID
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "the session through the replica never showed as live; logs: %s", r.logs)
	return cmd, id
}

// exited reports when cmd exits; call it before asking for the end.
func exited(cmd *exec.Cmd) <-chan time.Time {
	done := make(chan time.Time, 1)
	go func() { _ = cmd.Wait(); done <- time.Now() }()
	return done
}

// endsWithin fails the test unless the session exits within limit of
// since, and returns how long it took.
func endsWithin(t *testing.T, done <-chan time.Time, since time.Time, limit time.Duration, what string) time.Duration {
	t.Helper()
	select {
	case at := <-done:
		took := at.Sub(since)
		assert.Less(t, took, limit, "%s: the session ended too late", what)
		return took
	case <-time.After(limit + 3*time.Second):
		t.Fatalf("%s: the session still runs %s later", what, limit+3*time.Second)
	}
	return 0
}

// TestReplicas: two serve processes on one PostgreSQL registry and one S3
// store act as one bastion: either replica's CLI lists, kills and revokes
// the other's sessions, exports the same keys, and verifies and replays the
// other's recordings.
func TestReplicas(t *testing.T) {
	c := newReplicaCluster(t)
	a, b := c.start(t), c.start(t)
	a.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	for _, typ := range []string{"ssh-user", "recording", "ssh-host"} {
		assert.Equal(t, a.ok("ca", "export", "--type", typ), b.ok("ca", "export", "--type", typ), "ca export --type %s", typ)
	}

	res := e2eRun(t, a.ssh(ctx, "echo marker-from-$((40+1))-a"))
	require.Equalf(t, 0, res.code, "ssh through A: %s; logs: %s", res.stderr, a.logs)
	assert.Contains(t, res.stdout, "marker-from-41-a")
	res = e2eRun(t, b.ssh(ctx, "echo marker-from-$((40+2))-b"))
	require.Equalf(t, 0, res.code, "ssh through B: %s; logs: %s", res.stderr, b.logs)

	var ids []string
	var ss []sessionOut
	require.Eventually(t, func() bool {
		ss = b.sessions()
		ids = ids[:0]
		for _, s := range ss {
			if s.State != "stored" {
				return false
			}
			ids = append(ids, s.ID)
		}
		return len(ss) == 2
	}, 15*time.Second, 100*time.Millisecond, "both recordings stored: %+v\nA: %s\nB: %s", &ss, a.logs, b.logs)
	assert.Equal(t, b.sessions(), a.sessions(), "one index: both replicas list the same sessions")
	assert.NotEmpty(t, ss[0].Replica, "the index names the replica that ran the session")
	assert.NotEqual(t, ss[0].Replica, ss[1].Replica, "sessions of A and B name different replicas")
	// Without a pty the recording holds the command, not its output.
	for i, marker := range []string{"exec: echo marker-from-$((40+1))-a", "exec: echo marker-from-$((40+2))-b"} {
		for _, r := range []*replica{a, b} {
			assert.Contains(t, r.ok("verify", ids[i]), "intact", "session %d verifies on either replica", i)
			assert.Contains(t, r.ok("replay", ids[i], "--format", "text"), marker, "session %d replays on either replica", i)
		}
	}

	long, id := startLong(t, ctx, a, b)
	done := exited(long)
	asked := time.Now()
	b.ok("sessions", "kill", id, "--reason", "killed through replica B")
	committed := time.Now() // the kill request is in the registry once the CLI has exited
	took := endsWithin(t, done, asked, 2*time.Second, "sessions kill on B of A's session")
	t.Logf("sessions kill on B ended A's session %s after the CLI started, %s after it exited", took, took-committed.Sub(asked))

	long, _ = startLong(t, ctx, a, b)
	done = exited(long)
	asked = time.Now()
	b.ok("iga", "revoke", "svc-ops", "--by", "alice@example.com", "--reason", "revoked through replica B")
	took = endsWithin(t, done, asked, 5*time.Second, "iga revoke on B of A's identity")
	t.Logf("iga revoke on B ended A's session %s after the CLI started", took)
}

// TestServeDrainsOnSIGTERM: SIGTERM closes the SSH listener at once, lets
// a session opened before it finish its command within shutdownGrace, and
// the session's recording is stored before serve exits.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	c := newReplicaCluster(t)
	r := c.start(t)
	r.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out strings.Builder
	session := r.ssh(ctx, "sleep 2; echo finished-after-$((1+1))s")
	session.Stdout = &out
	require.NoError(t, session.Start())
	t.Cleanup(func() { _ = session.Process.Kill() })
	require.Eventually(t, func() bool { return len(r.sessions("--live")) == 1 },
		10*time.Second, 50*time.Millisecond, "the session never showed as live; logs: %s", r.logs)

	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(r.sshPort))
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, time.Second, 20*time.Millisecond, "the ssh listener still accepts 1s after SIGTERM")

	require.NoError(t, session.Wait(), "the session opened before SIGTERM must finish; logs: %s", r.logs)
	assert.Contains(t, out.String(), "finished-after-2s")
	served := make(chan error, 1)
	go func() { served <- r.cmd.Wait() }()
	select {
	case err := <-served:
		assert.NoError(t, err, "serve exits 0 after draining; logs: %s", r.logs)
	case <-time.After(shutdownGrace + 5*time.Second):
		t.Fatalf("serve still runs %s after SIGTERM", shutdownGrace+5*time.Second)
	}
	ss := r.sessions()
	require.Len(t, ss, 1)
	assert.Equal(t, "stored", ss[0].State, "the drained session's recording is finalised; logs: %s", r.logs)
}

// metric reads an unlabelled series from r's /metrics.
func (r *replica) metric(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(r.config)
	require.NoError(t, err)
	m := regexp.MustCompile(`web: \{listen: "([^"]+)"\}`).FindSubmatch(data)
	require.NotNil(t, m, "web.listen in %s", data)
	resp, err := http.Get("http://" + string(m[1]) + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return ""
}

// psqlThrough runs the real psql as svc-report to analytics through r,
// with a token r issued as its password.
func (r *replica) psqlThrough(ctx context.Context, args ...string) *exec.Cmd {
	token := strings.TrimSpace(r.ok("token", "issue", "svc-report", "--ttl", "5m"))
	cmd := exec.CommandContext(ctx, "psql", append([]string{"-X", "-At"}, args...)...)
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", r.pgPort), "PGUSER=svc-report",
		"PGDATABASE=analytics", "PGPASSWORD="+token, "PGSSLMODE=require", "PGCONNECT_TIMEOUT=10")
	return cmd
}

// TestReplicaCrash: SIGKILL of replica A in the middle of a psql session.
// B's janitor drops the session's database role (ending its query) once
// A's lease lapses, not before; when A restarts on its data_dir its spool
// uploads, and the session shows as incomplete in the index and verifies
// and replays through B.
func TestReplicaCrash(t *testing.T) {
	c := newReplicaCluster(t)
	a := c.start(t)
	b := c.start(t)
	a.ok("iga", "apply", "-f", c.registry)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	psql := a.psqlThrough(ctx, "-c", "SELECT 'crash-marker-' || (40+2)", "-c", "SELECT pg_sleep(60)")
	var out syncbuf.Buffer
	psql.Stdout, psql.Stderr = &out, &out
	require.NoError(t, psql.Start())
	t.Cleanup(func() { _ = psql.Process.Kill() })
	var id string
	require.Eventually(t, func() bool {
		ss := b.sessions("--live")
		if len(ss) == 1 && strings.Contains(out.String(), "crash-marker-42") {
			id = ss[0].ID
			return true
		}
		return false
	}, 15*time.Second, 100*time.Millisecond, "psql through A never ran its first query: %s\nA: %s", &out, a.logs)
	conn, err := pgx.Connect(ctx, c.pg.AdminDSN())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	role := "sp_" + id
	roleExists := func() bool {
		var n int
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n))
		return n == 1
	}
	require.True(t, roleExists(), "the session's role %s exists while it runs", role)
	leaders := a.metric(t, "sallyport_replica_leader") + b.metric(t, "sallyport_replica_leader")
	assert.Contains(t, []string{"10", "01"}, leaders, "exactly one replica leads (A, B)")
	time.Sleep(500 * time.Millisecond) // the recording's flush_interval is 200ms: the first query is in A's spool

	require.NoError(t, a.cmd.Process.Kill())
	_ = a.cmd.Wait()
	killed := time.Now()
	require.True(t, roleExists(), "the role outlives A until A's lease lapses")
	require.Eventually(t, func() bool { return !roleExists() }, 15*time.Second, 50*time.Millisecond,
		"B never dropped A's role %s; B: %s", role, b.logs)
	gone := time.Since(killed)
	t.Logf("B dropped A's role %s after A's SIGKILL (lease 2s, janitor every 1s)", gone)
	assert.GreaterOrEqual(t, gone, time.Second, "the role went before A's lease could lapse")
	assert.Equal(t, "1", b.metric(t, "sallyport_replica_leader"), "B leads once A is dead")

	ss := b.sessions()
	require.Len(t, ss, 1)
	assert.Equal(t, "incomplete", ss[0].State, "once A's lease lapsed, its session is not live")
	assert.Contains(t, ss[0].Reason, "replica "+ss[0].Replica+" stopped renewing its lease", "the index says which replica went")
	assert.Empty(t, b.sessions("--live"), "sessions list --live leaves out the session of a dead replica")
	_, errOut, code := b.run("", "sessions", "kill", id)
	assert.Equal(t, 1, code, "no kill for a session nothing runs")
	assert.Contains(t, errOut, "nothing left to end")
	a.restart(t)
	require.Eventually(t, func() bool {
		ss = b.sessions()
		return len(ss) == 1 && ss[0].State == "incomplete" && strings.Contains(ss[0].Reason, "recovered at")
	}, 15*time.Second, 100*time.Millisecond, "A's restart never uploaded the crashed session: %+v\nA: %s", &ss, a.logs)
	out2, _, _ := b.run("", "verify", "--json", id)
	var rep struct {
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(out2), &rep), "verify --json: %s", out2)
	assert.Equal(t, "incomplete", rep.Status, "B verifies the crashed session as authentic but cut short")
	assert.Contains(t, b.ok("replay", id, "--format", "text"), "crash-marker-", "B replays the queries A recorded before it died")
}
