package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
)

// e2eMySQLRegistry: bg-my is alice's break-glass account on the billing
// database, with carol as its holder.
const e2eMySQLRegistry = `people:
  - {id: alice@example.com, name: Alice, roles: [owner], status: active}
  - {id: carol@example.com, name: Carol, roles: [auditor], status: active}
identities:
  - id: bg-my
    kind: break-glass
    state: active
    owner: alice@example.com
    holders: [carol@example.com]
    entitlements: [{target: billing, login: %s, actions: [query]}]
    certification: {by: alice@example.com, at: %s, until: %s}
`

// e2eMySQLEnv adds a sandbox MariaDB target named billing to the env's
// config, fixes serve's mysql listener and writes the bg-my registry. It
// returns the listener's port.
func e2eMySQLEnv(t *testing.T, e *env) int {
	t.Helper()
	target := sandbox.MariaDBTargetT(t)
	port := freePort(t)
	data, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.NewReplacer(
		`mysql: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`mysql: {listen: "127.0.0.1:%d"}`, port),
		"targets:\n", fmt.Sprintf("targets:\n  - {name: billing, kind: mysql, address: %q, admin_dsn_env: TEST_MYSQL_ADMIN_DSN}\n", target.Addr()),
	).Replace(string(data))
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	e.extraEnv = append(e.extraEnv, "TEST_MYSQL_ADMIN_DSN="+target.AdminDSN())
	now := time.Now().UTC()
	require.NoError(t, os.WriteFile(e.registry, []byte(fmt.Sprintf(e2eMySQLRegistry, target.Role,
		now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339))), 0o600))
	return port
}

// e2eMariaDB runs the real mariadb client through serve's listener as bg-my.
func e2eMariaDB(t *testing.T, port int, token, sql string) e2eResult {
	t.Helper()
	if _, err := exec.LookPath("mariadb"); err != nil {
		sandbox.Need(t, fmt.Errorf("mariadb not in PATH: install mariadb-client: %w", sandbox.ErrNotInstalled))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-N", "-B", "--protocol=TCP", "-h", "127.0.0.1",
		"-P", strconv.Itoa(port), "-u", "bg-my", "-D", "billing", "--ssl", "-e", sql)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+token)
	return e2eRun(t, cmd)
}

// TestBreakglassEndToEndMySQL: serve's MySQL listener with a break-glass
// account — refused without a grant, recorded during one.
func TestBreakglassEndToEndMySQL(t *testing.T) {
	e := newEnv(t, "")
	port := e2eMySQLEnv(t, e)
	_, logs := revServe(t, e)
	e.ok("iga", "apply", "-f", e.registry)
	token := strings.TrimSpace(e.ok("token", "issue", "bg-my", "--ttl", "15m"))

	res := e2eMariaDB(t, port, token, "SELECT 1")
	assert.NotEqual(t, 0, res.code, "no grant, no session")
	assert.Contains(t, res.stderr, "ERROR 1045 (28000): sallyport: access denied (breakglass_no_grant)")

	out := e.ok("breakglass", "open", "bg-my", "--target", "billing", "--by", "carol@example.com",
		"--reason", "INC-11 billing run stuck", "--for", "15m", "--json")
	var g struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &g))
	res = e2eMariaDB(t, port, token, "SELECT COUNT(*) FROM orders")
	require.Equalf(t, 0, res.code, "mariadb during the grant: %s; logs: %s", res.stderr, logs)
	assert.Equal(t, "1000", strings.TrimSpace(res.stdout))
	e.ok("breakglass", "close", g.ID)

	var ss []struct {
		ID, State, Protocol, Login string
		BreakglassGrant            string `json:"breakglass_grant"`
	}
	require.Eventually(t, func() bool {
		return json.Unmarshal([]byte(e.ok("sessions", "list", "--json")), &ss) == nil && len(ss) == 1 && ss[0].State == "stored"
	}, 15*time.Second, 100*time.Millisecond, "the mysql session's recording is not stored; logs: %s", logs)
	assert.Equal(t, "mysql", ss[0].Protocol)
	assert.Equal(t, g.ID, ss[0].BreakglassGrant, "the session is flagged with its grant")
	replay := e.ok("replay", ss[0].ID, "--format", "text")
	assert.Contains(t, replay, "SELECT COUNT(*) FROM orders", "the replay shows the statement timeline")
	e.ok("verify", ss[0].ID)
}
