package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/internal/sshtest"
	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/recorder"
)

// keyedConfig is a replica's config as deploy/ writes it: every key the
// replicas share is named by file, and shutdown_grace is set.
const keyedConfig = `data_dir: ./data
registry: {driver: postgres, dsn_env: TEST_REGISTRY_DSN}
recordings:
  store: s3
  signing_key_file: %q
  s3: {endpoint: %q, bucket: %q, region: %q, secure: false, access_key_env: TEST_S3_ACCESS, secret_key_env: TEST_S3_SECRET}
ca: {ssh_user_key_file: %q}
tokens: {signing_key_file: %q}
web: {listen: "127.0.0.1:%d", session_key_file: %q}
ssh: {listen: "127.0.0.1:%d", host_key_file: %q}
shutdown_grace: %s
targets:
  - {name: web-01, kind: ssh, address: %q, host_key: %q, environment: prod}
`

// keyedReplica is a serve process started from keyedConfig; it can be
// stopped and started again on the same ports and files.
type keyedReplica struct {
	*env
	name             string
	webPort, sshPort int
	cmd              *exec.Cmd
	logs             *syncbuf.Buffer
}

// sharedKeyFiles creates, once, the keys replicas share besides the CA and
// recording key: the bastion's host key, the token key and the cookie key.
func (c *replicaCluster) sharedKeyFiles(t *testing.T) (hostKey, tokenKey, webKey string) {
	t.Helper()
	hostKey = filepath.Join(c.shared, "ssh_host_ed25519_key")
	tokenKey = filepath.Join(c.shared, "token.key")
	webKey = filepath.Join(c.shared, "web-session.key")
	for _, p := range []string{hostKey, tokenKey, webKey} {
		_, err := ca.LoadOrCreateKey(p)
		require.NoError(t, err)
	}
	return hostKey, tokenKey, webKey
}

// startKeyed writes a keyedConfig for one more replica and starts it.
func (c *replicaCluster) startKeyed(t *testing.T, name, grace string) *keyedReplica {
	t.Helper()
	hostKey, tokenKey, webKey := c.sharedKeyFiles(t)
	r := &keyedReplica{env: newEnv(t, ""), name: name, webPort: freePort(t), sshPort: freePort(t)}
	r.extraEnv = c.env
	cfg := fmt.Sprintf(keyedConfig, filepath.Join(c.shared, "recording.key"), c.s3.Endpoint, c.s3.Bucket, c.s3.Region,
		filepath.Join(c.shared, "ssh_user_ca"), tokenKey, r.webPort, webKey, r.sshPort, hostKey, grace,
		c.sshd.Addr(), strings.TrimSpace(c.sshd.HostKey))
	require.NoError(t, os.WriteFile(r.config, []byte(cfg), 0o600))
	r.start(t)
	return r
}

// knownHosts writes a known_hosts file trusting the shared host key at
// 127.0.0.1:port.
func (c *replicaCluster) knownHosts(t *testing.T, port int) string {
	t.Helper()
	hostKey, _, _ := c.sharedKeyFiles(t)
	key, err := ca.LoadOrCreateKey(hostKey)
	require.NoError(t, err)
	signer, err := gossh.NewSignerFromKey(key)
	require.NoError(t, err)
	path := filepath.Join(c.shared, fmt.Sprintf("known_hosts_%d", port))
	line := fmt.Sprintf("[127.0.0.1]:%d %s", port, gossh.MarshalAuthorizedKey(signer.PublicKey()))
	require.NoError(t, os.WriteFile(path, []byte(line), 0o600))
	return path
}

// sessions is the session index as this replica's CLI lists it.
func (r *keyedReplica) sessions(args ...string) []sessionOut {
	r.t.Helper()
	var out []sessionOut
	require.NoError(r.t, json.Unmarshal([]byte(r.ok(append([]string{"sessions", "list", "--json"}, args...)...)), &out))
	return out
}

func (r *keyedReplica) webURL() string { return fmt.Sprintf("http://127.0.0.1:%d", r.webPort) }

func (r *keyedReplica) sshAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.sshPort))
}

// start runs serve and waits until /healthz answers 200.
func (r *keyedReplica) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(binary, "--config", r.config, "serve")
	cmd.Env = append(os.Environ(), r.extraEnv...)
	logs := &syncbuf.Buffer{}
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r.cmd, r.logs = cmd, logs
	require.Eventually(t, func() bool {
		code, _ := healthz(r.webURL())
		return code == http.StatusOK
	}, 15*time.Second, 50*time.Millisecond, "replica %s never became healthy: %s", r.name, logs)
}

// stop sends SIGTERM, as an orchestrator does, and waits for serve to exit 0.
func (r *keyedReplica) stop(t *testing.T, within time.Duration) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	r.wait(t, within)
}

// wait waits for serve, already signalled, to exit 0.
func (r *keyedReplica) wait(t *testing.T, within time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "replica %s exits 0 after draining; logs: %s", r.name, r.logs)
	case <-time.After(within):
		t.Fatalf("replica %s still runs %s after SIGTERM; logs: %s", r.name, within, r.logs)
	}
}

// healthz GETs base/healthz and returns the status code and body (0 when
// nothing answers).
func healthz(base string) (int, string) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(base + "/healthz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// sshTo runs the real ssh client as svc-ops to web-01 through the bastion
// at 127.0.0.1:port, trusting only the host key in known.
func (c *replicaCluster) sshTo(ctx context.Context, port int, known, command string) *exec.Cmd {
	return exec.CommandContext(ctx, "ssh", sshtest.ClientArgs(c.clientKey, known,
		"-p", strconv.Itoa(port), "-l", "svc-ops@web-01", "127.0.0.1", command)...)
}

// roundRobin is a TCP load balancer in the way HAProxy with health checks
// behaves for a stopping replica: each connection goes to the next backend
// that accepts it, and one that refuses is skipped.
type roundRobin struct {
	ln       net.Listener
	backends []string

	mu     sync.Mutex
	next   int
	routes []lbRoute // one per accepted client connection, in order
	open   map[net.Conn]bool
	wg     sync.WaitGroup
}

// lbRoute is where one client connection went: the backend, and the
// balancer's address as that backend saw it (the session's source).
type lbRoute struct {
	backend, source string
}

func newRoundRobin(t *testing.T, backends ...string) *roundRobin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lb := &roundRobin{ln: ln, backends: backends, open: map[net.Conn]bool{}}
	lb.wg.Go(lb.serve)
	t.Cleanup(lb.close)
	return lb
}

func (lb *roundRobin) port() int { return lb.ln.Addr().(*net.TCPAddr).Port }

func (lb *roundRobin) serve() {
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return
		}
		lb.mu.Lock()
		i := len(lb.routes)
		lb.routes = append(lb.routes, lbRoute{})
		lb.open[c] = true
		lb.mu.Unlock()
		lb.wg.Go(func() { lb.relay(c, i) })
	}
}

// relay dials backends in turn from the next one, and pipes c to the
// first that accepts.
func (lb *roundRobin) relay(c net.Conn, i int) {
	defer lb.forget(c)
	for range lb.backends {
		lb.mu.Lock()
		backend := lb.backends[lb.next%len(lb.backends)]
		lb.next++
		lb.mu.Unlock()
		up, err := net.DialTimeout("tcp", backend, time.Second)
		if err != nil {
			continue
		}
		lb.mu.Lock()
		lb.routes[i] = lbRoute{backend: backend, source: up.LocalAddr().String()}
		lb.open[up] = true
		lb.mu.Unlock()
		defer lb.forget(up)
		pipe(c, up)
		return
	}
}

// pipe copies both ways, passing on each side's end of input.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(b, a); _ = b.(*net.TCPConn).CloseWrite() })
	_, _ = io.Copy(a, b)
	_ = a.(*net.TCPConn).CloseWrite()
	wg.Wait()
}

func (lb *roundRobin) forget(c net.Conn) {
	c.Close()
	lb.mu.Lock()
	delete(lb.open, c)
	lb.mu.Unlock()
}

func (lb *roundRobin) accepted() int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return len(lb.routes)
}

func (lb *roundRobin) routesFrom(i, j int) []lbRoute {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]lbRoute(nil), lb.routes[i:j]...)
}

func (lb *roundRobin) close() {
	lb.ln.Close()
	lb.mu.Lock()
	for c := range lb.open {
		c.Close()
	}
	lb.mu.Unlock()
	lb.wg.Wait()
}

// attempt is one ssh session the client tried through the balancer.
type attempt struct {
	n      int
	err    error
	stderr string
	routes []lbRoute
}

// sessionClient opens one ssh session after another through lb until
// stopped: what a fleet of scripts does to a bastion.
type sessionClient struct {
	mu       sync.Mutex
	attempts []attempt
	changed  chan struct{}
}

func (sc *sessionClient) run(ctx context.Context, c *replicaCluster, lb *roundRobin, known string) {
	for n := 0; ctx.Err() == nil; n++ {
		before := lb.accepted() // the client's own balancer: its routes are this attempt's
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		// Each session lasts a moment, so that a SIGTERM finds some live.
		cmd := c.sshTo(actx, lb.port(), known, "sleep 0.2")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		if ctx.Err() != nil {
			return // stopped mid-attempt: not the bastion's failure
		}
		sc.mu.Lock()
		sc.attempts = append(sc.attempts, attempt{n: n, err: err, stderr: stderr.String(), routes: lb.routesFrom(before, lb.accepted())})
		sc.mu.Unlock()
		select {
		case sc.changed <- struct{}{}:
		default:
		}
	}
}

func (sc *sessionClient) snapshot() []attempt {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]attempt(nil), sc.attempts...)
}

// waitServed waits until a session after attempt index from succeeded
// through backend ("": any), and returns how many attempts there are.
func (sc *sessionClient) waitServed(t *testing.T, from int, backend string, within time.Duration, rs ...*keyedReplica) int {
	t.Helper()
	deadline := time.After(within)
	for {
		as := sc.snapshot()
		for _, a := range as[min(from, len(as)):] {
			if a.err == nil && len(a.routes) == 1 && (backend == "" || a.routes[0].backend == backend) {
				return len(as)
			}
		}
		select {
		case <-sc.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			var logs strings.Builder
			for _, r := range rs {
				fmt.Fprintf(&logs, "\nreplica %s: %s", r.name, r.logs)
			}
			t.Fatalf("no session through %q within %s of attempt %d; attempts: %s%s", backend, within, from, describe(sc.snapshot()), &logs)
		}
	}
}

func failed(as []attempt) []attempt {
	var out []attempt
	for _, a := range as {
		if a.err != nil {
			out = append(out, a)
		}
	}
	return out
}

func failures(as []attempt) int { return len(failed(as)) }

func describe(as []attempt) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "\n  #%d err=%v routes=%v %s", a.n, a.err, a.routes, strings.TrimSpace(a.stderr))
	}
	return b.String()
}

// TestRollingRestart: two replicas sharing their keys behind a balancer
// are restarted one at a time while clients keep opening ssh sessions.
// A session live on a replica when it gets SIGTERM runs to its end. No
// attempt fails twice in a row (at most one reconnect), each restart costs
// a client at most one failed attempt, each restarted replica serves
// again, every session that succeeded is in the index, every session in
// the index has a recording that verifies, and a token minted before the
// restarts authenticates on either replica after them.
func TestRollingRestart(t *testing.T) {
	c := newReplicaCluster(t)
	a := c.startKeyed(t, "a", "5s")
	b := c.startKeyed(t, "b", "5s")
	a.ok("iga", "apply", "-f", c.registry)
	token := strings.TrimSpace(a.ok("token", "issue", "--person", "alice@example.com", "--ttl", "15m"))
	bearerGet(t, b.webURL()+"/api/v1/me", token, http.StatusOK)

	// Two clients, each through its own balancer (as two HAProxy
	// instances would be), so that a SIGTERM is likely to meet a session
	// in its handshake as well as a live one.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var clients []*sessionClient
	var running sync.WaitGroup
	for range 2 {
		lb := newRoundRobin(t, a.sshAddr(), b.sshAddr())
		known := c.knownHosts(t, lb.port())
		client := &sessionClient{changed: make(chan struct{}, 1)}
		clients = append(clients, client)
		running.Go(func() { client.run(ctx, c, lb, known) })
	}
	watched := clients[0]
	n := watched.waitServed(t, 0, "", 20*time.Second, a, b)
	for _, r := range []*keyedReplica{a, b} {
		other := a
		if r == a {
			other = b
		}
		live := c.startLive(t, ctx, r)
		r.stop(t, 20*time.Second)
		live.finished(t)
		// While r is down its sessions go to the other replica...
		n = watched.waitServed(t, n, other.sshAddr(), 20*time.Second, a, b)
		n = watched.waitServed(t, n, other.sshAddr(), 20*time.Second, a, b)
		r.start(t)
		// ...and once it is back it takes sessions again.
		n = watched.waitServed(t, n, r.sshAddr(), 20*time.Second, a, b)
	}
	cancel()
	running.Wait()

	var served []lbRoute
	for ci, client := range clients {
		attempts := client.snapshot()
		for i, at := range attempts {
			if at.err == nil {
				require.Len(t, at.routes, 1, "client %d attempt %d succeeded through one connection", ci, at.n)
				served = append(served, at.routes[0])
				continue
			}
			if i > 0 {
				require.NoError(t, attempts[i-1].err, "client %d: attempts %d and %d both failed: a session was refused for longer than one reconnect; attempts: %s\nA: %s\nB: %s",
					ci, attempts[i-1].n, at.n, describe(attempts), a.logs, b.logs)
			}
		}
		// A replica whose sessions kept failing (a listener open while
		// draining, a host key of its own) would cost more than that.
		assert.LessOrEqual(t, failures(attempts), 2, "client %d: more failed attempts than restarts: %s", ci, describe(failed(attempts)))
		t.Logf("client %d: %d attempts, %d failed once and then reconnected:%s", ci, len(attempts), failures(attempts), describe(failed(attempts)))
	}

	checkRecorded(t, c, b, served, len(served)+2)
	for _, r := range []*keyedReplica{a, b} {
		bearerGet(t, r.webURL()+"/api/v1/me", token, http.StatusOK)
	}
}

// checkRecorded asserts that each served route's session is in the index,
// that the index holds at least atLeast sessions, and that every one is
// stored with a recording that, read from the shared store, verifies.
func checkRecorded(t *testing.T, c *replicaCluster, r *keyedReplica, served []lbRoute, atLeast int) {
	t.Helper()
	bySource := map[string]sessionOut{}
	var all []sessionOut
	require.Eventually(t, func() bool {
		clear(bySource)
		all = r.sessions()
		for _, s := range all {
			bySource[s.Source] = s
			if s.State != "stored" {
				return false
			}
		}
		for _, route := range served {
			if _, ok := bySource[route.source]; !ok {
				return false
			}
		}
		return len(all) >= atLeast
	}, 30*time.Second, 250*time.Millisecond, "every served session in the index, all stored, at least %d; index: %+v", atLeast, &all)

	cfg, err := LoadConfig(r.config)
	require.NoError(t, err)
	t.Setenv("TEST_S3_ACCESS", c.s3.AccessKey)
	t.Setenv("TEST_S3_SECRET", c.s3.SecretKey)
	rc, err := recorderConfig(cfg)
	require.NoError(t, err)
	store, err := recorder.NewStore(rc)
	require.NoError(t, err)
	key, err := ca.LoadOrCreateKey(recordingKeyPath(cfg))
	require.NoError(t, err)
	for _, s := range all {
		rep, err := recorder.Verify(t.Context(), recorder.SessionSource(store, s.ID, s.StartedAt), key.Public().(ed25519.PublicKey))
		require.NoError(t, err, "verify session %s", s.ID)
		assert.Equal(t, recorder.StatusIntact, rep.Status, "session %s from %s: %s", s.ID, s.Source, rep)
	}
}

// liveSession is an ssh session opened straight to one replica.
type liveSession struct {
	cmd   *exec.Cmd
	lines chan string
	out   strings.Builder
}

// startLive opens a session on r that is running its command when
// startLive returns, and lasts a second more.
func (c *replicaCluster) startLive(t *testing.T, ctx context.Context, r *keyedReplica) *liveSession {
	t.Helper()
	s := &liveSession{cmd: c.sshTo(ctx, r.sshPort, c.knownHosts(t, r.sshPort), "echo started; sleep 1; echo finished"), lines: make(chan string, 4)}
	stdout, err := s.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	select {
	case line := <-s.lines:
		require.Equal(t, "started", line)
	case <-time.After(20 * time.Second):
		t.Fatalf("the session on replica %s did not start within 20s; logs: %s", r.name, r.logs)
	}
	return s
}

// finished asserts that the session ran its command to the end.
func (s *liveSession) finished(t *testing.T) {
	t.Helper()
	var rest []string
	for line := range s.lines {
		rest = append(rest, line)
	}
	require.NoError(t, s.cmd.Wait(), "the session live at SIGTERM must finish within the grace")
	assert.Equal(t, []string{"finished"}, rest)
}

// errRefused is what a dial to a closed listener returns.
var errRefused = syscall.ECONNREFUSED

// refuses reports whether nothing accepts on addr.
func refuses(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, errRefused)
}
