package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
)

// replicaConfig is one replica's config: its own data_dir and ports, the
// shared registry, recording store, keys and target.
const replicaConfig = `data_dir: ./data
registry: {driver: postgres, dsn_env: TEST_REGISTRY_DSN}
recordings:
  store: s3
  signing_key_file: %q
  s3: {endpoint: %q, bucket: %q, region: %q, secure: false, access_key_env: TEST_S3_ACCESS, secret_key_env: TEST_S3_SECRET}
ca: {ssh_user_key_file: %q}
web: {listen: "127.0.0.1:0"}
ssh: {listen: "127.0.0.1:%d"}
targets:
  - {name: web-01, kind: ssh, address: %q, host_key: %q, environment: prod}
`

// replicaRegistry: svc-ops may run commands on web-01 as the sshd's user.
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
    certification: {by: alice@example.com, at: %s, until: %s}
`

// replica is one `sallyport serve` child process and how to reach it.
type replica struct {
	*env
	sshPort   int
	known     string // known_hosts holding the replica's host key
	clientKey string // svc-ops's private key file
	logs      *syncBuffer
	cmd       *exec.Cmd // the serve process
}

// replicaCluster is what the replicas share.
type replicaCluster struct {
	registryBlock string
	env           []string
	shared        string // directory of the shared key files
	s3            *sandbox.S3
	sshd          *sandbox.SSHD
	clientKey     string
	registry      string // the registry file, applied once
}

// newReplicaCluster starts a sandbox PostgreSQL registry, S3 store and
// sshd trusting a user CA whose key file every replica is given.
func newReplicaCluster(t *testing.T) *replicaCluster {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		sandbox.Need(t, fmt.Errorf("ssh not in PATH: install openssh-client: %w", sandbox.ErrNotInstalled))
	}
	c := &replicaCluster{shared: t.TempDir()}
	c.registryBlock, c.env = sharedRegistry(t, "replicas")
	c.s3 = sandbox.S3T(t)
	c.env = append(c.env, "TEST_S3_ACCESS="+c.s3.AccessKey, "TEST_S3_SECRET="+c.s3.SecretKey)
	caKey, err := ca.LoadOrCreateKey(filepath.Join(c.shared, "ssh_user_ca"))
	require.NoError(t, err)
	_, err = ca.LoadOrCreateKey(filepath.Join(c.shared, "recording.key"))
	require.NoError(t, err)
	c.sshd = sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{(&ca.SSHUserCA{Key: caKey}).AuthorizedKey()}})
	c.clientKey = filepath.Join(c.shared, "svc-ops.key")
	pub := e2eKey(t, c.clientKey)
	now := time.Now().UTC()
	c.registry = filepath.Join(c.shared, "registry.yaml")
	require.NoError(t, os.WriteFile(c.registry, []byte(fmt.Sprintf(replicaRegistry, pub, c.sshd.User,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))), 0o600))
	return c
}

// start runs one more replica and waits until it is healthy.
func (c *replicaCluster) start(t *testing.T) *replica {
	t.Helper()
	r := &replica{env: newEnv(t, ""), sshPort: freePort(t), clientKey: c.clientKey}
	r.extraEnv = c.env
	cfg := fmt.Sprintf(replicaConfig, filepath.Join(c.shared, "recording.key"), c.s3.Endpoint, c.s3.Bucket, c.s3.Region,
		filepath.Join(c.shared, "ssh_user_ca"), r.sshPort, c.sshd.Addr(), strings.TrimSpace(c.sshd.HostKey))
	require.NoError(t, os.WriteFile(r.config, []byte(cfg), 0o600))
	// The host key is made here, so the client can trust it from the start.
	hostKey, err := ca.LoadOrCreateKey(filepath.Join(r.dir, "data", "keys", "ssh_host_ed25519_key"))
	require.NoError(t, err)
	signer, err := gossh.NewSignerFromKey(hostKey)
	require.NoError(t, err)
	r.known = filepath.Join(r.dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", r.sshPort, gossh.MarshalAuthorizedKey(signer.PublicKey()))
	require.NoError(t, os.WriteFile(r.known, []byte(line), 0o600))
	r.cmd, r.logs = startServe(t, r.env)
	return r
}

// startServe runs serve with e's config on a free web port and waits until
// /healthz answers; the process is killed when the test ends.
func startServe(t *testing.T, e *env) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	port := freePort(t)
	data, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(data), `web: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`web: {listen: "127.0.0.1:%d"}`, port), 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	cmd := exec.Command(binary, "--config", e.config, "serve")
	cmd.Env = append(os.Environ(), e.extraEnv...)
	logs := &syncBuffer{}
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
	return exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-i", r.clientKey, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+r.known, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
		"-p", strconv.Itoa(r.sshPort), "-l", "svc-ops@web-01", "127.0.0.1", command)
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

// endsWithin fails the test unless cmd exits within limit of since.
func endsWithin(t *testing.T, cmd *exec.Cmd, since time.Time, limit time.Duration, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		assert.Less(t, time.Since(since), limit, "%s: the session ended too late", what)
	case <-time.After(limit + 3*time.Second):
		t.Fatalf("%s: the session still runs %s later", what, limit+3*time.Second)
	}
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

	for _, typ := range []string{"ssh-user", "recording"} {
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
	// Without a pty the recording holds the command, not its output.
	for i, marker := range []string{"exec: echo marker-from-$((40+1))-a", "exec: echo marker-from-$((40+2))-b"} {
		for _, r := range []*replica{a, b} {
			assert.Contains(t, r.ok("verify", ids[i]), "intact", "session %d verifies on either replica", i)
			assert.Contains(t, r.ok("replay", ids[i], "--format", "text"), marker, "session %d replays on either replica", i)
		}
	}

	long, id := startLong(t, ctx, a, b)
	asked := time.Now()
	b.ok("sessions", "kill", id, "--reason", "killed through replica B")
	endsWithin(t, long, asked, 2*time.Second, "sessions kill on B of A's session")

	long, _ = startLong(t, ctx, a, b)
	asked = time.Now()
	b.ok("iga", "revoke", "svc-ops", "--by", "alice@example.com", "--reason", "revoked through replica B")
	endsWithin(t, long, asked, 5*time.Second, "iga revoke on B of A's identity")
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
