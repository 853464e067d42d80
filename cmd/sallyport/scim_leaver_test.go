package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/sshtest"
)

// scimToken is the IdP's bearer token in the leaver test.
const scimToken = "scim-e2e-token-0123456789abcdef"

// scimLeaverConfig is serve with SCIM on, the alert webhook, an sshd and a
// PostgreSQL target.
const scimLeaverConfig = `data_dir: ./data
%s
scim: {token_env: TEST_SCIM_TOKEN, groups: {"Sallyport Admins": admin}}
alerts: {webhook_url: %q, secret_env: TEST_HOOK_SECRET}
recordings: {flush_interval: 200ms}
ca: {ssh_user_key_file: %q}
web: {listen: "127.0.0.1:0"}
ssh: {listen: "127.0.0.1:%d"}
postgres: {listen: "127.0.0.1:%d"}
targets:
  - {name: web-01, kind: ssh, address: %q, host_key: %q}
  - {name: analytics, kind: postgres, address: %q, database: %s, admin_dsn_env: TEST_PG_ADMIN_DSN}
`

// scimLeaverRegistry: alice owns svc-ops (ssh) and svc-report (psql); bob
// will be her manager; carol is an admin.
const scimLeaverRegistry = `people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
  - {id: bob@example.com, name: Bob, roles: [owner], status: active}
  - {id: carol@example.com, name: Carol, roles: [admin], status: active}
identities:
  - id: svc-ops
    kind: service-account
    state: active
    owner: alice@example.com
    credentials: {ssh_keys: [{key: "%s"}]}
    entitlements: [{target: web-01, login: %s, actions: [exec, shell]}]
    certification: {by: alice@example.com, at: %[4]s, until: %[5]s}
  - id: svc-report
    kind: service-account
    state: active
    owner: alice@example.com
    entitlements: [{target: analytics, login: %[3]s, actions: [query]}]
    certification: {by: alice@example.com, at: %[4]s, until: %[5]s}
`

type scimLeaver struct {
	*env
	sshPort, pgPort int
	known, key, web string
	hook            *revReceiver
}

func newSCIMLeaver(t *testing.T, driver registryDriver) *scimLeaver {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		sandbox.Need(t, fmt.Errorf("ssh not in PATH: install openssh-client: %w", sandbox.ErrNotInstalled))
	}
	b := &scimLeaver{env: newEnv(t, ""), sshPort: freePort(t), pgPort: freePort(t), hook: &revReceiver{secret: []byte("scim-hook-secret")}}
	hook := httptest.NewServer(b.hook)
	t.Cleanup(hook.Close)
	caFile := filepath.Join(b.dir, "ssh_user_ca")
	caKey, err := ca.LoadOrCreateKey(caFile)
	require.NoError(t, err)
	sshd := sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{(&ca.SSHUserCA{Key: caKey}).AuthorizedKey()}})
	pg := sandbox.PostgresTargetT(t, sandbox.PostgresTargetOptions{})
	b.extraEnv = append(driver.env, "TEST_PG_ADMIN_DSN="+pg.AdminDSN(), "TEST_SCIM_TOKEN=old-token-that-is-long-enough,"+scimToken,
		"TEST_HOOK_SECRET="+string(b.hook.secret))
	cfg := fmt.Sprintf(scimLeaverConfig, driver.block, hook.URL, caFile, b.sshPort, b.pgPort, sshd.Addr(), strings.TrimSpace(sshd.HostKey), pg.Addr(), pg.Database)
	require.NoError(t, os.WriteFile(b.config, []byte(cfg), 0o600))
	b.key = filepath.Join(b.dir, "svc-ops.key")
	now := time.Now().UTC()
	require.NoError(t, os.WriteFile(b.registry, []byte(fmt.Sprintf(scimLeaverRegistry, sshtest.WriteKey(t, b.key), sshd.User, pg.Role,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))), 0o600))
	b.known = filepath.Join(b.dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", b.sshPort, b.ok("ca", "export", "--type", "ssh-host"))
	require.NoError(t, os.WriteFile(b.known, []byte(line), 0o600))
	b.ok("iga", "apply", "-f", b.registry)
	startServe(t, b.env)
	data, err := os.ReadFile(b.config)
	require.NoError(t, err)
	_, rest, _ := strings.Cut(string(data), `web: {listen: "`)
	addr, _, _ := strings.Cut(rest, `"`)
	b.web = "http://" + addr + "/scim/v2"
	return b
}

func (b *scimLeaver) ssh(ctx context.Context, command string) *exec.Cmd {
	return exec.CommandContext(ctx, "ssh", sshtest.ClientArgs(b.key, b.known,
		"-p", strconv.Itoa(b.sshPort), "-l", "svc-ops@web-01", "127.0.0.1", command)...)
}

// psql runs the real psql through serve as svc-report.
func (b *scimLeaver) psql(t *testing.T, token, sql string) e2eResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psqlBinary(t), "-X", "-At", "-c", sql)
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(b.pgPort), "PGUSER=svc-report", "PGDATABASE=analytics",
		"PGPASSWORD="+token, "PGSSLMODE=require", "PGCONNECT_TIMEOUT=10", "PSQLRC=/dev/null")
	return e2eRun(t, cmd)
}

// scim sends one SCIM request as the IdP and returns the status.
func (b *scimLeaver) scim(t *testing.T, method, path, body, requestID string) int {
	t.Helper()
	req, err := http.NewRequest(method, b.web+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("X-Request-Id", requestID)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// waitLive waits until serve's index shows a live session.
func (b *scimLeaver) waitLive(t *testing.T) {
	require.Eventually(t, func() bool {
		var ss []struct{ State string }
		if json.Unmarshal([]byte(b.ok("sessions", "list", "--json")), &ss) != nil {
			return false
		}
		for _, s := range ss {
			if s.State == "live" {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "no live session")
}

// TestSCIMLeaverEndToEnd: the IdP deactivates an owner over SCIM (Entra's
// body); her NHI's live SSH session ends within 5 s, its next ssh and psql
// logins are denied owner_inactive, an alert goes out per NHI, each gets a
// transfer item for her manager, and a new owner closes it.
// It runs on a SQLite and a PostgreSQL registry.
func TestSCIMLeaverEndToEnd(t *testing.T) {
	for _, driver := range registryDrivers(t) {
		t.Run(driver.name, func(t *testing.T) { testSCIMLeaver(t, newSCIMLeaver(t, driver)) })
	}
}

func testSCIMLeaver(t *testing.T, b *scimLeaver) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res := e2eRun(t, b.ssh(ctx, "echo before-leaving"))
	require.Equalf(t, 0, res.code, "ssh before: %s", res.stderr)
	token := strings.TrimSpace(b.ok("token", "issue", "svc-report", "--ttl", "15m"))
	res = b.psql(t, token, "select count(*) from orders")
	require.Equalf(t, 0, res.code, "psql before: %s", res.stderr)

	long := b.ssh(ctx, "sleep 60")
	require.NoError(t, long.Start())
	b.waitLive(t)
	require.Equal(t, http.StatusOK, b.scim(t, "PATCH", "/Users/alice@example.com", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
	 "Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"bob@example.com"}]}`, "entra-mover-1"))
	deactivated := time.Now()
	require.Equal(t, http.StatusOK, b.scim(t, "PATCH", "/Users/alice@example.com", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
	 "Operations":[{"op":"Replace","path":"active","value":"False"}]}`, "entra-leaver-1"))
	waited := make(chan error, 1)
	go func() { waited <- long.Wait() }()
	select {
	case <-waited:
		t.Logf("the live session ended %s after the deactivation", time.Since(deactivated).Round(time.Millisecond))
		assert.Less(t, time.Since(deactivated), 5*time.Second, "the live session outlived its owner by more than 5 s")
	case <-time.After(8 * time.Second):
		t.Fatal("the live session still runs 8 s after its owner was deactivated")
	}

	res = e2eRun(t, b.ssh(ctx, "echo after-leaving"))
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "owner_inactive")
	res = b.psql(t, token, "select 1")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "owner_inactive")
	require.Eventually(t, func() bool { return len(b.hook.kinds()) >= 2 }, 10*time.Second, 50*time.Millisecond, "no owner_inactive alerts")
	assert.Zero(t, b.hook.bad, "the alerts' signatures verify")
	for _, k := range b.hook.kinds() {
		assert.True(t, strings.HasPrefix(k, "owner_inactive"), k)
	}
	checkLeaverTransfers(t, b)
}

func checkLeaverTransfers(t *testing.T, b *scimLeaver) {
	var items []struct {
		ID, Identity, From string
		AssignedTo         string `json:"assigned_to"`
		RequestID          string `json:"request_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(b.ok("iga", "transfers", "--json")), &items))
	require.Len(t, items, 2)
	for _, it := range items {
		assert.Equal(t, "bob@example.com", it.AssignedTo, "the manager the IdP sent gets the item")
		assert.Equal(t, "entra-leaver-1", it.RequestID)
	}
	assert.Contains(t, b.ok("iga", "transfers"), "svc-report")

	_, errOut, code := b.run("", "iga", "apply", "-f", b.registry)
	assert.Equal(t, 1, code, "apply would make alice active again")
	assert.Contains(t, errOut, "managed by the identity provider")

	out := b.ok("iga", "transfer", "svc-ops", "--to", "carol@example.com")
	assert.Contains(t, out, "now owned by carol@example.com")
	require.NoError(t, json.Unmarshal([]byte(b.ok("iga", "transfers", "--json")), &items))
	require.Len(t, items, 1, "the new owner closed svc-ops's item")
	assert.Equal(t, "svc-report", items[0].Identity)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := e2eRun(t, b.ssh(ctx, "echo new-owner"))
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "not_certified", "the new owner must certify first")
	b.ok("iga", "certify", "svc-ops", "--by", "carol@example.com")
	res = e2eRun(t, b.ssh(ctx, "echo certified"))
	assert.Equalf(t, 0, res.code, "ssh after the new owner certified: %s", res.stderr)
}
