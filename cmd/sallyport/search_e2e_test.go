package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/sshtest"
)

// searchConfig is serve in front of an sshd, a PostgreSQL and a MariaDB
// target, recording to its data_dir, with the registry block given.
const searchConfig = `data_dir: ./data
%s
recordings: {flush_interval: 200ms}
ca: {ssh_user_key_file: %q}
web: {listen: "127.0.0.1:0"}
ssh: {listen: "127.0.0.1:%d"}
postgres: {listen: "127.0.0.1:%d"}
mysql: {listen: "127.0.0.1:%d"}
targets:
  - {name: web-01, kind: ssh, address: %q, host_key: %q}
  - {name: analytics, kind: postgres, address: %q, database: %s, admin_dsn_env: TEST_PG_ADMIN_DSN}
  - {name: billing, kind: mysql, address: %q, admin_dsn_env: TEST_MYSQL_ADMIN_DSN}
`

// searchRegistry: svc-ops runs commands and sftp on web-01, svc-report
// queries analytics, svc-billing queries billing.
const searchRegistry = `people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
identities:
  - id: svc-ops
    kind: service-account
    state: active
    owner: alice@example.com
    credentials: {ssh_keys: [{key: "%s"}]}
    entitlements: [{target: web-01, login: %s, actions: [exec, shell, sftp]}]
    certification: {by: alice@example.com, at: %[5]s, until: %[6]s}
  - id: svc-report
    kind: service-account
    state: active
    owner: alice@example.com
    entitlements: [{target: analytics, login: %[3]s, actions: [query]}]
    certification: {by: alice@example.com, at: %[5]s, until: %[6]s}
  - id: svc-billing
    kind: service-account
    state: active
    owner: alice@example.com
    entitlements: [{target: billing, login: %[4]s, actions: [query]}]
    certification: {by: alice@example.com, at: %[5]s, until: %[6]s}
`

// searchBastion is serve with all three proxies and the clients' settings.
type searchBastion struct {
	*env
	sshPort, pgPort, myPort int
	known, clientKey        string
	serve                   *exec.Cmd
}

func newSearchBastion(t *testing.T, driver registryDriver) *searchBastion {
	t.Helper()
	for _, client := range []string{"ssh", "sftp", "mariadb"} {
		if _, err := exec.LookPath(client); err != nil {
			sandbox.Need(t, fmt.Errorf("%s not in PATH: install its client package: %w", client, sandbox.ErrNotInstalled))
		}
	}
	b := &searchBastion{env: newEnv(t, ""), sshPort: freePort(t), pgPort: freePort(t), myPort: freePort(t)}
	b.extraEnv = driver.env
	caFile := filepath.Join(b.dir, "ssh_user_ca")
	caKey, err := ca.LoadOrCreateKey(caFile)
	require.NoError(t, err)
	sshd := sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{(&ca.SSHUserCA{Key: caKey}).AuthorizedKey()}})
	pg := sandbox.PostgresTargetT(t, sandbox.PostgresTargetOptions{})
	my := sandbox.MariaDBTargetT(t)
	b.extraEnv = append(b.extraEnv, "TEST_PG_ADMIN_DSN="+pg.AdminDSN(), "TEST_MYSQL_ADMIN_DSN="+my.AdminDSN())
	cfg := fmt.Sprintf(searchConfig, driver.block, caFile, b.sshPort, b.pgPort, b.myPort, sshd.Addr(), strings.TrimSpace(sshd.HostKey),
		pg.Addr(), pg.Database, my.Addr())
	require.NoError(t, os.WriteFile(b.config, []byte(cfg), 0o600))
	b.clientKey = filepath.Join(b.dir, "svc-ops.key")
	pub := sshtest.WriteKey(t, b.clientKey)
	now := time.Now().UTC()
	require.NoError(t, os.WriteFile(b.registry, []byte(fmt.Sprintf(searchRegistry, pub, sshd.User, pg.Role, my.Role,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))), 0o600))
	b.known = filepath.Join(b.dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", b.sshPort, b.ok("ca", "export", "--type", "ssh-host"))
	require.NoError(t, os.WriteFile(b.known, []byte(line), 0o600))
	b.ok("iga", "apply", "-f", b.registry)
	b.serve, _ = startServe(t, b.env)
	return b
}

func (b *searchBastion) sshArgs(extra ...string) []string {
	return sshtest.ClientArgs(b.clientKey, b.known, extra...)
}

// run runs a client and fails the test unless it succeeds.
func (b *searchBastion) client(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	res := e2eRun(t, cmd)
	require.Equalf(t, 0, res.code, "%s %v: %s", name, args, res.stderr)
	return res.stdout
}

// searchHit is one hit of `sessions search --json`.
type searchHit struct {
	Session, Identity, Target, Protocol, Where, Snippet string
	Time                                                time.Time
	Offset                                              float64
}

func (b *searchBastion) search(t *testing.T, args ...string) []searchHit {
	t.Helper()
	var hits []searchHit
	out := b.ok(append([]string{"sessions", "search", "--json"}, args...)...)
	require.NoError(t, json.Unmarshal([]byte(out), &hits), "search output %q", out)
	return hits
}

// record runs one session of each kind through the bastion, each carrying
// a marker of its own.
func (b *searchBastion) record(t *testing.T) {
	ssh := func(args ...string) []string {
		return b.sshArgs(append([]string{"-p", fmt.Sprint(b.sshPort), "-l", "svc-ops@web-01", "127.0.0.1"}, args...)...)
	}
	assert.Contains(t, b.client(t, "", "ssh", ssh("echo cmd-marker-$((6*7))")...), "cmd-marker-42")
	assert.Contains(t, b.client(t, "echo stdin-marker-$((2+3))\n", "ssh", ssh("bash -s")...), "stdin-marker-5")
	assert.Contains(t, b.client(t, "", "ssh", ssh("-tt", "printf 'tty-%s\\n' marker-output")...), "tty-marker-output")
	local := filepath.Join(b.dir, "upload.txt")
	require.NoError(t, os.WriteFile(local, []byte("payload\n"), 0o600))
	b.client(t, "put "+local+" /tmp/sftp-marker-upload.txt\n", "sftp",
		b.sshArgs("-b", "-", "-P", fmt.Sprint(b.sshPort), "-o", "User=svc-ops@web-01", "127.0.0.1")...)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token := strings.TrimSpace(b.ok("token", "issue", "svc-report", "--ttl", "5m"))
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://svc-report:%s@127.0.0.1:%d/analytics?sslmode=require", token, b.pgPort))
	require.NoError(t, err)
	var got string
	require.NoError(t, conn.QueryRow(ctx, "SELECT $1::text", "pg-param-marker").Scan(&got))
	require.Equal(t, "pg-param-marker", got)
	require.NoError(t, conn.Close(ctx))

	token = strings.TrimSpace(b.ok("token", "issue", "svc-billing", "--ttl", "5m"))
	cmd := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-N", "-B", "--protocol=TCP", "-h", "127.0.0.1",
		"-P", fmt.Sprint(b.myPort), "-u", "svc-billing", "-D", "billing", "--ssl", "-e", "SELECT 'mysql-query-marker'")
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+token)
	res := e2eRun(t, cmd)
	require.Equalf(t, 0, res.code, "mariadb: %s", res.stderr)
}

// wantHit waits until search for text finds hits, all in where of a
// session of identity (an sftp upload is an open and a write), and
// returns the first.
func (b *searchBastion) wantHit(t *testing.T, text, where, identity string) searchHit {
	t.Helper()
	var hits []searchHit
	require.Eventually(t, func() bool {
		hits = b.search(t, text)
		return len(hits) > 0
	}, 15*time.Second, 200*time.Millisecond, "no hit for %q", text)
	for _, h := range hits {
		assert.Equal(t, where, h.Where, "where of %q", text)
		assert.Equal(t, identity, h.Identity, "identity of %q", text)
	}
	h := hits[0]
	assert.GreaterOrEqual(t, h.Offset, 0.0)
	assert.Less(t, h.Offset, 20.0, "offset of %q into its session", text)
	assert.WithinDuration(t, time.Now(), h.Time, 2*time.Minute)
	assert.Contains(t, strings.ToLower(h.Snippet), strings.ToLower(strings.Trim(text, `"`)))
	return h
}

// searchCases are the markers record leaves, where they are, and whose.
var searchCases = []struct{ text, where, identity string }{
	{"cmd-marker-$((6*7))", "command", "svc-ops"},
	{"stdin-marker-$((2+3))", "stdin", "svc-ops"},
	{"tty-marker-output", "output", "svc-ops"},
	{"/tmp/sftp-marker-upload.txt", "file", "svc-ops"},
	{"pg-param-marker", "query", "svc-report"},
	{"mysql-query-marker", "query", "svc-billing"},
}

// TestSessionsSearch: what sessions did through every proxy is found by
// the CLI, in the right place, on either registry driver; filters narrow.
func TestSessionsSearch(t *testing.T) {
	for _, driver := range registryDrivers(t) {
		t.Run(driver.name, func(t *testing.T) {
			b := newSearchBastion(t, driver)
			b.record(t)
			for _, c := range searchCases {
				b.wantHit(t, c.text, c.where, c.identity)
			}
			all := b.search(t, "marker", "--limit", "50")
			assert.GreaterOrEqual(t, len(all), len(searchCases), "every marker: %+v", all)
			assert.Len(t, b.search(t, "marker", "--limit", "2"), 2)
			assert.Len(t, b.search(t, "marker", "--identity", "svc-report"), 1)
			assert.Len(t, b.search(t, "marker", "--protocol", "mysql"), 1)
			assert.Len(t, b.search(t, "marker", "--target", "analytics"), 1)
			assert.Empty(t, b.search(t, "marker", "--until", "1h"))
			assert.Empty(t, b.search(t, "marker", "--breakglass"))
			assert.Len(t, b.search(t, "marker", "--where", "file,query"), 4, "the sftp upload's open and write, and the two queries")
			out := b.ok("sessions", "search", "pg-param-marker")
			assert.Contains(t, out, "[[pg-param-marker]]", "the table marks the match")
			assert.Contains(t, out, "svc-report")
			for text, want := range map[string]string{"": "the search text is empty", "%*": "no letters or digits",
				strings.Repeat("x", 10240): "at most 1024"} {
				_, errOut, code := b.run("", "sessions", "search", text)
				assert.Equal(t, exitUsage, code, "search %.10q", text)
				assert.Contains(t, errOut, want)
			}
			for _, text := range []string{`NEAR(a b) OR "x`, "'; DROP TABLE sessions; --", "grüße 🙂", "%marker%"} {
				_, errOut, code := b.run("", "sessions", "search", text)
				assert.Equal(t, 0, code, "search %q: %s", text, errOut)
			}
		})
	}
}

// TestSessionsSearchLive: what a running session printed is found while
// it still runs, from the chunks already in the store.
func TestSessionsSearchLive(t *testing.T) {
	b := newSearchBastion(t, registryDriver{name: "sqlite", block: "registry: {driver: sqlite}"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", b.sshArgs("-p", fmt.Sprint(b.sshPort), "-l", "svc-ops@web-01", "127.0.0.1",
		"echo live-marker-$((6*7)); sleep 30")...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var hits []searchHit
	require.Eventually(t, func() bool {
		hits = b.search(t, "live-marker-42")
		return len(hits) > 0
	}, 25*time.Second, 250*time.Millisecond, "the live session's output is not found")
	assert.Nil(t, cmd.ProcessState, "found while the session runs")
	assert.Equal(t, "output", hits[0].Where)
}
