package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
)

// binary is the sallyport binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sallyport-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sallyport")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sallyport:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one throwaway bastion config with its registry file and keys.
type env struct {
	t        *testing.T
	dir      string
	config   string
	registry string
	keyPub   string // svc-backup's public key file
	extraEnv []string
}

const testConfig = `data_dir: ./data
%s
web: {listen: "127.0.0.1:0"}
ssh: {listen: "127.0.0.1:0"}
postgres: {listen: "127.0.0.1:0"}
mysql: {listen: "127.0.0.1:0"}
targets:
  - {name: web-01,    kind: ssh,      address: "127.0.0.1:22", environment: prod}
  - {name: analytics, kind: postgres, address: "127.0.0.1:5432", database: analytics}
`

func newEnv(t *testing.T, registryBlock string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, config: filepath.Join(dir, "sallyport.yaml"), registry: filepath.Join(dir, "registry.yaml")}
	require.NoError(t, os.WriteFile(e.config, []byte(fmt.Sprintf(testConfig, registryBlock)), 0o600))
	key, err := ca.LoadOrCreateKey(filepath.Join(dir, "svc-backup"))
	require.NoError(t, err)
	e.keyPub = filepath.Join(dir, "svc-backup.pub")
	pub := strings.TrimSpace(ca.AuthorizedKey(key))
	require.NoError(t, os.WriteFile(e.keyPub, []byte(pub+"\n"), 0o644))
	require.NoError(t, os.WriteFile(e.registry, []byte(testRegistry(pub, time.Now().UTC())), 0o600))
	return e
}

func testRegistry(pub string, now time.Time) string {
	d := func(days int) string { return now.AddDate(0, 0, days).Format(time.DateOnly) }
	return fmt.Sprintf(`people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
  - {id: bob@example.com,   name: Bob,   roles: [owner], status: active}
  - {id: carol@example.com, name: Carol, roles: [auditor], status: active}
identities:
  - id: svc-backup
    kind: service-account
    state: active
    owner: alice@example.com
    environment: prod
    credentials:
      ssh_keys: [{key: "%s", expires: %s}]
    entitlements:
      - {target: web-01, login: backup, actions: [exec, sftp], expires: %s, from: ["10.1.0.0/16"]}
    certification: {by: alice@example.com, at: %s, until: %s}
  - id: ci-deploy
    kind: pipeline
    state: active
    owner: bob@example.com
    entitlements:
      - {target: web-01, login: deploy, actions: [exec]}
    certification: {by: bob@example.com, at: %s, until: %s}
  - id: bg-oncall
    kind: break-glass
    state: active
    owner: alice@example.com
    holders: [carol@example.com]
    entitlements:
      - {target: web-01, login: root, actions: [shell]}
    certification: {by: alice@example.com, at: %s, until: %s}
`, pub, d(100), d(200), d(0), d(60), d(-80), d(-10), d(0), d(60))
}

// run runs the binary with the env's config and returns stdout, stderr and
// the exit code.
func (e *env) run(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"--config", e.config}, args...)...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), e.extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.t.Fatalf("run sallyport %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// ok runs a command that must succeed and returns its stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run("", args...)
	require.Equalf(e.t, 0, code, "sallyport %v: stderr %s", args, errOut)
	return out
}

func (e *env) check(args ...string) (decisionJSON, int) {
	e.t.Helper()
	out, errOut, code := e.run("", append([]string{"iga", "check", "--json"}, args...)...)
	var d decisionJSON
	require.NoErrorf(e.t, json.Unmarshal([]byte(out), &d), "check output %q, stderr %q", out, errOut)
	return d, code
}

type decisionJSON struct {
	Allow   bool `json:"allow"`
	Reasons []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"reasons"`
	Login string `json:"login"`
	Grant string `json:"breakglass_grant"`
}

func (d decisionJSON) codes() []string {
	var c []string
	for _, r := range d.Reasons {
		c = append(c, r.Code)
	}
	return c
}

func TestCLIGovernanceLifecycle(t *testing.T) {
	for _, driver := range registryDrivers(t) {
		t.Run(driver.name, func(t *testing.T) {
			e := newEnv(t, driver.block)
			e.extraEnv = driver.env
			testLifecycle(t, e)
		})
	}
}

type registryDriver struct {
	name  string
	block string
	env   []string
}

// registryDrivers returns the embedded SQLite registry and one on a sandbox
// PostgreSQL, so the CLI is exercised against both drivers.
func registryDrivers(t *testing.T) []registryDriver {
	pg := sandbox.PostgresT(t)
	db := fmt.Sprintf("cli_%d", time.Now().UnixNano())
	require.NoError(t, pg.CreateDatabase(t.Context(), db))
	return []registryDriver{
		{name: "sqlite", block: "registry: {driver: sqlite}"},
		{name: "postgres", block: "registry: {driver: postgres, dsn_env: TEST_REGISTRY_DSN}",
			env: []string{"TEST_REGISTRY_DSN=" + pg.DSN(db)}},
	}
}

func testLifecycle(t *testing.T, e *env) {
	out := e.ok("iga", "apply", "-f", e.registry)
	assert.Contains(t, out, "3 created, 0 updated, 0 unchanged")
	out = e.ok("iga", "apply", "-f", e.registry)
	assert.Contains(t, out, "0 created, 0 updated, 3 unchanged", "re-applying the same file must change nothing")

	d, code := e.check("svc-backup", "web-01", "--action", "exec", "--from", "10.1.2.3", "--key", e.keyPub)
	assert.Equal(t, 0, code)
	assert.True(t, d.Allow, "reasons: %v", d.Reasons)
	assert.Equal(t, "backup", d.Login)

	d, code = e.check("svc-backup", "web-01", "--action", "shell", "--from", "192.168.1.1")
	assert.Equal(t, 1, code)
	assert.ElementsMatch(t, []string{"action_not_entitled"}, d.codes(), "shell is not entitled; the from check concerns the covering entitlement")

	d, code = e.check("ci-deploy", "web-01", "--action", "exec")
	assert.Equal(t, 1, code)
	assert.Equal(t, []string{"certification_expired"}, d.codes())
	assert.Contains(t, d.Reasons[0].Message, "bob@example.com", "the message names who can fix it")

	_, errOut, code := e.run("", "iga", "certify", "ci-deploy", "--by", "alice@example.com")
	assert.Equal(t, 1, code, "only the owner may certify")
	assert.Contains(t, errOut, "bob@example.com")
	out = e.ok("iga", "certify", "ci-deploy", "--by", "bob@example.com", "--for", "30d", "--note", "reviewed")
	assert.Contains(t, out, "certified by bob@example.com")
	assert.Contains(t, out, "web-01 as", "the owner sees what they certified: the entitlements")
	_, code = e.check("ci-deploy", "web-01", "--action", "exec")
	assert.Equal(t, 0, code, "recertified identity is admitted")

	_, errOut, code = e.run("", "iga", "certify", "ci-deploy", "--by", "bob@example.com", "--for", "365d")
	assert.Equal(t, 1, code, "longer than certification.max_period")
	assert.Contains(t, errOut, "90")

	e.ok("iga", "revoke", "ci-deploy", "--by", "bob@example.com", "--reason", "pipeline retired")
	d, _ = e.check("ci-deploy", "web-01", "--action", "exec")
	assert.ElementsMatch(t, []string{"not_active", "certification_revoked"}, d.codes())

	out = e.ok("iga", "offboard", "alice@example.com")
	assert.Contains(t, out, "svc-backup")
	d, _ = e.check("svc-backup", "web-01", "--action", "exec")
	assert.Equal(t, []string{"owner_inactive"}, d.codes())

	first := e.ok("iga", "export")
	second := e.ok("iga", "export")
	assert.Equal(t, first, second, "two exports must be byte-identical")
	exported := filepath.Join(e.dir, "exported.yaml")
	e.ok("iga", "export", "-o", exported)
	out = e.ok("iga", "apply", "-f", exported)
	assert.Contains(t, out, "0 created, 0 updated, 3 unchanged", "applying an export changes nothing")

	audit := e.ok("audit", "list", "--identity", "ci-deploy", "--json")
	var evs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(audit), &evs))
	types := map[string]int{}
	for _, ev := range evs {
		types[ev["type"].(string)]++
	}
	assert.GreaterOrEqual(t, types["check"], 3, "every check is audited")
	assert.Equal(t, 1, types["revoke"])
	assert.GreaterOrEqual(t, types["certify"], 1)
}

func TestCLIBreakglass(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)

	d, code := e.check("bg-oncall", "web-01")
	assert.Equal(t, 1, code)
	assert.Equal(t, []string{"breakglass_no_grant"}, d.codes())

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not a holder", []string{"--by", "bob@example.com", "--reason", "database on fire"}, "holder"},
		{"short reason", []string{"--by", "carol@example.com", "--reason", "fire"}, "10"},
		{"too long", []string{"--by", "carol@example.com", "--reason", "database on fire", "--for", "2h"}, "1h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := e.run("", append([]string{"breakglass", "open", "bg-oncall", "--target", "web-01"}, tc.args...)...)
			assert.Equal(t, 1, code)
			assert.Contains(t, errOut, tc.want)
		})
	}

	out := e.ok("breakglass", "open", "bg-oncall", "--target", "web-01", "--by", "carol@example.com",
		"--reason", "INC-1 database on fire", "--ticket", "INC-1", "--for", "15m", "--json")
	var grant struct {
		ID        string    `json:"id"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &grant))
	require.NotEmpty(t, grant.ID)
	assert.WithinDuration(t, time.Now().Add(15*time.Minute), grant.ExpiresAt, time.Minute)

	d, code = e.check("bg-oncall", "web-01")
	assert.Equal(t, 0, code, "reasons: %v", d.Reasons)
	assert.Equal(t, grant.ID, d.Grant)

	e.ok("breakglass", "close", grant.ID)
	d, _ = e.check("bg-oncall", "web-01")
	assert.Equal(t, []string{"breakglass_grant_expired"}, d.codes())
}

func TestCLITokens(t *testing.T) {
	e := newEnv(t, "")
	e.ok("iga", "apply", "-f", e.registry)
	out := e.ok("token", "issue", "ci-deploy", "--ttl", "15m")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, "token issue prints the token alone")
	token := lines[0]

	out, _, code := e.run(token, "iga", "check", "ci-deploy", "web-01", "--action", "exec", "--token", "-", "--json")
	var d decisionJSON
	require.NoError(t, json.Unmarshal([]byte(out), &d))
	assert.Equal(t, 1, code)
	assert.Equal(t, []string{"certification_expired"}, d.codes(), "the token itself is valid")

	out, _, _ = e.run(token, "iga", "check", "svc-backup", "web-01", "--action", "exec", "--token", "-", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &d))
	assert.Contains(t, d.codes(), "credential_invalid", "a token bound to ci-deploy is not svc-backup's")

	audit := e.ok("audit", "list", "--json")
	assert.NotContains(t, audit, token, "the token never reaches the audit trail")
	_, errOut, code := e.run("", "token", "issue", "ci-deploy", "--ttl", "-5m")
	assert.Equal(t, 2, code, errOut)
}

func TestCLIBadInput(t *testing.T) {
	e := newEnv(t, "")
	bad := filepath.Join(e.dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`people:
  - {id: alice@example.com, name: Alice, status: active}
identities:
  - id: svc-a
    kind: service-account
    state: active
    owner: nobody@example.com
    colour: blue
  - id: svc-a
    kind: robot
    state: active
    owner: alice@example.com
    credentials:
      ssh_keys: [{key: "ssh-ed25519 not-a-key"}]
    certification: {by: alice@example.com, at: 01/02/2026, until: 2026-13-01}
`), 0o600))
	_, errOut, code := e.run("", "iga", "apply", "-f", bad)
	assert.Equal(t, 1, code)
	for _, want := range []string{"bad.yaml:7:", "bad.yaml:8:", "colour", "bad.yaml:9:", "svc-a", "robot", "nobody@example.com", "bad.yaml:14:", "bad.yaml:15:"} {
		assert.Contains(t, errOut, want)
	}
	out := e.ok("iga", "export")
	assert.NotContains(t, out, "svc-a", "a refused apply changes nothing")

	cfg := filepath.Join(e.dir, "broken.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("data_dir: ./data\nweb:\n  listen: \":8080\"\n  lisen: x\n"), 0o600))
	cmd := exec.Command(binary, "--config", cfg, "iga", "export")
	errb := &bytes.Buffer{}
	cmd.Stderr = errb
	err := cmd.Run()
	require.Error(t, err)
	assert.Equal(t, 2, cmd.ProcessState.ExitCode())
	assert.Contains(t, errb.String(), "broken.yaml:4: unknown key lisen")

	// A target's tls block that cannot work is refused when the config
	// loads, not at the first session.
	require.NoError(t, os.WriteFile(cfg, []byte(`data_dir: ./data
targets:
  - {name: db, kind: postgres, address: "db:5432", tls: {mode: prefer}}
  - {name: web, kind: ssh, address: "web:22", tls: {mode: require}}
  - {name: shop, kind: mysql, address: "shop:3306", tls: {mode: require, ca_file: /etc/ca.pem}}
recordings: {compression: lz4}
`), 0o600))
	_, errOut, code = e.run("", "--config", cfg, "iga", "export")
	assert.Equal(t, 2, code)
	for _, want := range []string{`(db).tls.mode "prefer": want disable, require or verify-full`,
		"(web).tls: ssh targets take no tls block", "(shop).tls: ca_file and server_name need mode verify-full, not require",
		`recordings.compression "lz4": want zstd, gzip or none`} {
		assert.Contains(t, errOut, want)
	}

	_, errOut, code = e.run("", "iga", "check", "only-one-arg")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "IDENTITY and TARGET")
	_, _, code = e.run("", "iga", "check", "a", "b", "--no-such-flag")
	assert.Equal(t, 2, code)
}

func TestServeHealthMetricsAndShutdown(t *testing.T) {
	e := newEnv(t, "")
	port := freePort(t)
	cfg := strings.Replace(fmt.Sprintf(testConfig, ""), "127.0.0.1:0", fmt.Sprintf("127.0.0.1:%d", port), 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	cmd := exec.Command(binary, "--config", e.config, "serve")
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

	e.ok("iga", "apply", "-f", e.registry)
	e.check("ci-deploy", "web-01")
	body := get(t, base+"/metrics", http.StatusOK)
	assert.Contains(t, body, "sallyport_build_info{")
	get(t, base+"/api/v1/sessions", http.StatusUnauthorized)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "serve exits 0 on SIGTERM; logs: %s", &logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop within 15s of SIGTERM")
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	assert.Equal(t, want, resp.StatusCode, "GET %s", url)
	return b.String()
}

// freePort is a loopback port for a serve listener the test must name
// before serve starts (sandbox.FreePort says why it is not the kernel's pick).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := sandbox.FreePort()
	require.NoError(t, err)
	return port
}
