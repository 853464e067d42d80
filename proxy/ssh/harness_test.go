package ssh

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// identities the harness registers; each gets its own key.
var harnessIdentities = []string{
	"svc-ops", "svc-exec", "svc-new", "joe", "svc-orphan", "svc-bobs", "svc-uncert",
	"svc-certexp", "svc-revoked", "svc-noent", "svc-entexp", "svc-src", "svc-env",
	"bg-root", "svc-keyexp", "svc-sftp", "svc-backup-cmd", "svc-backup-one",
}

// registryTemplate is filled with: login, the keys by identity, dates, and
// the harness directory (where a test puts scripts an entitlement names).
const registryTemplate = `
people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
  - {id: bob@example.com, name: Bob, roles: [owner], status: inactive}
  - {id: carol@example.com, name: Carol, roles: [owner], status: active}
identities:
  - {id: svc-ops, kind: service-account, state: active, owner: alice@example.com, environment: prod,
     credentials: {ssh_keys: [{key: "{{svc-ops}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [shell, exec, sftp, forward]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-exec, kind: pipeline, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-exec}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-sftp, kind: service-account, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-sftp}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [sftp]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-new, kind: service-account, state: proposed, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-new}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}]}
  - {id: joe, kind: human, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{joe}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-orphan, kind: service-account, state: active,
     credentials: {ssh_keys: [{key: "{{svc-orphan}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}]}
  - {id: svc-bobs, kind: service-account, state: active, owner: bob@example.com,
     credentials: {ssh_keys: [{key: "{{svc-bobs}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}],
     certification: {by: bob@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-uncert, kind: service-account, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-uncert}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}]}
  - {id: svc-certexp, kind: service-account, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-certexp}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}],
     certification: {by: alice@example.com, at: {{longago}}, until: {{past}}}}
  - {id: svc-revoked, kind: service-account, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-revoked}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}],
     certification: {decision: revoke, by: alice@example.com, at: {{past}}}}
  - {id: svc-noent, kind: service-account, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-noent}}"}]},
     entitlements: [{target: other, login: {{login}}, actions: [exec]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-entexp, kind: service-account, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-entexp}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec], expires: {{past}}}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-src, kind: service-account, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-src}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec], from: ["10.99.0.0/16"]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-env, kind: service-account, state: active, owner: alice@example.com, environment: staging,
     credentials: {ssh_keys: [{key: "{{svc-env}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: bg-root, kind: break-glass, state: active, owner: alice@example.com, holders: [carol@example.com],
     credentials: {ssh_keys: [{key: "{{bg-root}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-keyexp, kind: service-account, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-keyexp}}", expires: {{past}}}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-backup-cmd, kind: pipeline, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-backup-cmd}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec], commands: ["{{dir}}/backup.sh *"]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
  - {id: svc-backup-one, kind: pipeline, state: active, owner: alice@example.com,
     credentials: {ssh_keys: [{key: "{{svc-backup-one}}"}]},
     entitlements: [{target: web, login: {{login}}, actions: [exec, sftp], commands: ["/bin/echo exactly-this"]}],
     certification: {by: alice@example.com, at: {{past}}, until: {{future}}}}
`

// harness is a bastion in front of a real sandbox sshd, with a real
// registry and recorder, for the real ssh, scp and sftp clients.
type harness struct {
	t       testing.TB
	dir     string
	sshd    *sandbox.SSHD
	reg     *iga.Registry
	rec     *recorder.Recorder
	store   recorder.Store
	recKey  ed25519.PrivateKey
	live    *proxy.Live
	srv     *Server
	addr    string
	port    string
	known   string
	keys    map[string]string // identity → private key file
	offset  atomic.Int64      // registry clock offset, nanoseconds
	serveCh chan error
	seen    map[string]bool // recordings newestRecording returned already
}

type harnessOptions struct {
	tune func(*Server)
	// tuneRecorder adjusts the recorder before it starts.
	tuneRecorder func(*recorder.Recorder)
	watch        bool // run a proxy.Live watcher
	// hostCA makes sshd present a host certificate it signed.
	hostCA gossh.Signer
}

func needClients(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"ssh", "scp", "sftp"} {
		if _, err := exec.LookPath(bin); err != nil {
			sandbox.Need(t, fmt.Errorf("%s not in PATH: install the Debian package openssh-client: %w", bin, sandbox.ErrNotInstalled))
		}
	}
}

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	needClients(t)
	h := &harness{t: t, dir: t.TempDir(), keys: map[string]string{}, seen: map[string]bool{}}
	_, caKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	userCA := &ca.SSHUserCA{Key: caKey, TTL: 2 * time.Minute}
	// The target accepts more env than the bastion's allow-list passes.
	// "direct" logs in to sshd without the bastion, for the benchmarks.
	h.sshd = sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{userCA.AuthorizedKey()}, RecordCertificates: true,
		AuthorizedKeys: []string{h.newKey("direct")}, Config: []string{"AcceptEnv LANG LC_* TERM LD_PRELOAD"},
		HostCA: opts.hostCA})
	h.registry()
	h.recorder(opts.tuneRecorder)
	h.live = &proxy.Live{Gate: h.reg, Logger: quietLogger(), Recheck: 500 * time.Millisecond}
	h.serve(userCA, opts)
	return h
}

func quietLogger() *slog.Logger {
	if os.Getenv("SALLYPORT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// registry builds a SQLite registry with harnessIdentities.
func (h *harness) registry() {
	t := h.t
	store, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "sqlite", Path: filepath.Join(h.dir, "r.db")})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	h.reg = &iga.Registry{
		Store: store,
		Targets: func(name string) (iga.Target, bool) {
			if name == "web" {
				return iga.Target{Name: "web", Kind: "ssh", Environment: "prod"}, true
			}
			return iga.Target{}, false
		},
		Now:    func() time.Time { return time.Now().Add(time.Duration(h.offset.Load())) },
		Logger: quietLogger(),
		Tokens: iga.TokenConfig{SigningKey: tokenKey(t)},
	}
	now := time.Now().UTC()
	repl := []string{"{{login}}", h.sshd.User, "{{past}}", now.Add(-24 * time.Hour).Format(time.RFC3339),
		"{{future}}", now.Add(30 * 24 * time.Hour).Format(time.RFC3339), "{{longago}}", now.Add(-60 * 24 * time.Hour).Format(time.RFC3339), "{{dir}}", h.dir}
	for _, id := range harnessIdentities {
		repl = append(repl, "{{"+id+"}}", h.newKey(id))
	}
	doc := strings.NewReplacer(repl...).Replace(registryTemplate)
	f, err := iga.ParseFile("harness.yaml", []byte(doc))
	require.NoError(t, err)
	_, err = h.reg.Apply(context.Background(), f, iga.ApplyOptions{Actor: "test"})
	require.NoError(t, err)
}

func tokenKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

// newKey writes an ed25519 key for id and returns its public line.
func (h *harness) newKey(id string) string {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(h.t, err)
	block, err := gossh.MarshalPrivateKey(priv, id)
	require.NoError(h.t, err)
	path := filepath.Join(h.dir, "key-"+id)
	require.NoError(h.t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	h.keys[id] = path
	sp, err := gossh.NewPublicKey(pub)
	require.NoError(h.t, err)
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp)))
}

func (h *harness) recorder(tune func(*recorder.Recorder)) {
	t := h.t
	var err error
	h.store, err = recorder.NewFileStore(filepath.Join(h.dir, "store"))
	require.NoError(t, err)
	_, h.recKey, err = ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	h.rec = &recorder.Recorder{
		Config: recorder.Config{DataDir: filepath.Join(h.dir, "data"), FlushInterval: 50 * time.Millisecond, FailClosed: true},
		Store:  h.store, Key: h.recKey, Logger: quietLogger(),
	}
	if tune != nil {
		tune(h.rec)
	}
	require.NoError(t, h.rec.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.rec.Shutdown(ctx)
	})
}

func (h *harness) serve(userCA *ca.SSHUserCA, opts harnessOptions) {
	t := h.t
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := gossh.NewSignerFromKey(hostKey)
	require.NoError(t, err)
	target := Target{Name: "web", Address: h.sshd.Addr(), HostKeys: []gossh.PublicKey{h.sshd.HostPublicKey()}}
	h.srv = &Server{
		Gate: h.reg, Live: h.live, Recorder: h.rec, CA: userCA, HostSigners: []gossh.Signer{signer},
		Targets: func(name string) (Target, bool) { return target, name == "web" },
		Logger:  quietLogger(),
	}
	if opts.tune != nil {
		opts.tune(h.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h.addr = ln.Addr().String()
	_, h.port, _ = net.SplitHostPort(h.addr)
	h.known = filepath.Join(h.dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%s %s", h.port, gossh.MarshalAuthorizedKey(signer.PublicKey()))
	require.NoError(t, os.WriteFile(h.known, []byte(line), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	if opts.watch {
		go func() { _ = h.live.Watch(ctx) }()
	}
	h.serveCh = make(chan error, 1)
	go func() { h.serveCh <- h.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer scancel()
		_ = h.srv.Shutdown(sctx)
		cancel()
		require.ErrorIs(t, <-h.serveCh, ErrServerClosed)
	})
}

// opts are the client options every OpenSSH tool here shares.
func (h *harness) opts(identity, user string) []string {
	return []string{"-F", "/dev/null", "-i", h.keys[identity], "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + h.known, "-o", "StrictHostKeyChecking=yes", "-o", "User=" + user,
		"-o", "ConnectTimeout=10"}
}

// ssh runs ssh as identity to target "web" with args after the host.
func (h *harness) ssh(ctx context.Context, identity string, args ...string) *exec.Cmd {
	return h.sshAs(ctx, identity, identity+"@web", args...)
}

// sshDirect runs ssh straight to the target, bypassing the bastion.
func (h *harness) sshDirect(ctx context.Context, args ...string) *exec.Cmd {
	kh := filepath.Join(h.dir, "known_hosts_direct")
	_ = os.WriteFile(kh, []byte(h.sshd.KnownHostsLine()+"\n"), 0o600)
	return h.sshDirectKey(ctx, kh, h.sshd.User, h.sshd.Port, args...)
}

// sshDirectKey runs ssh with the direct leg's key to port, trusting the
// host keys in knownHosts only.
func (h *harness) sshDirectKey(ctx context.Context, knownHosts, user string, port int, args ...string) *exec.Cmd {
	a := []string{"-F", "/dev/null", "-i", h.keys["direct"], "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "User=" + user, "-p", strconv.Itoa(port)}
	return exec.CommandContext(ctx, "ssh", append(a, args...)...)
}

func (h *harness) sshAs(ctx context.Context, identity, user string, args ...string) *exec.Cmd {
	a := append(h.opts(identity, user), "-p", h.port)
	a = append(a, args...)
	return exec.CommandContext(ctx, "ssh", a...)
}

// hostArgs are what ssh needs after its options: the host, then the command.
func hostArgs(cmd ...string) []string { return append([]string{"127.0.0.1"}, cmd...) }

type result struct {
	stdout, stderr string
	code           int
}

func run(t testing.TB, cmd *exec.Cmd, stdin string) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// recording waits until the session with the given identity is stored and
// returns its verify report and its JSON replay lines.
func (h *harness) recordings(ctx context.Context) []recorder.Source {
	h.t.Helper()
	h.waitLive(0, 10*time.Second) // a session leaves the table once its recording is sealed
	require.NoError(h.t, h.rec.WaitIdle(ctx))
	keys, err := h.store.List(ctx, "")
	require.NoError(h.t, err)
	seen := map[string]bool{}
	var srcs []recorder.Source
	for _, k := range keys {
		parts := strings.Split(k, "/")
		if len(parts) == 5 && !seen[parts[3]] && strings.HasSuffix(k, "manifest.json") {
			seen[parts[3]] = true
			src, err := recorder.FindSession(ctx, h.store, parts[3])
			require.NoError(h.t, err)
			srcs = append(srcs, src)
		}
	}
	return srcs
}

// replayJSON returns the recording's JSON lines decoded.
func replayJSON(t testing.TB, ctx context.Context, src recorder.Source) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: recorder.FormatJSON}))
	var lines []map[string]any
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		lines = append(lines, m)
	}
	return lines
}

// eventsOf returns the events of one type.
func eventsOf(lines []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["type"] == typ {
			out = append(out, l)
		}
	}
	return out
}

// waitLive waits until n sessions are live and returns them.
func (h *harness) waitLive(n int, within time.Duration) []*proxy.Session {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if s := h.live.Snapshot(); len(s) == n {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("got %d live sessions, want %d", len(h.live.Snapshot()), n)
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
