package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/syncbuf"
)

// discoveryEnv is a bastion config with four targets: the sandbox
// PostgreSQL (discovered as its superuser, which reads passwords), the
// sandbox MariaDB (as sallyport's admin), the sandbox sshd trusting the
// bastion's CA (discovery_login: the user running the test), and a
// PostgreSQL target that is down.
type discoveryEnv struct {
	*env
	pg   *sandbox.PostgresTarget
	keys string // authorized_keys dir: one file per login
	user string // the sshd's login
}

func newDiscoveryEnv(t *testing.T) *discoveryEnv {
	e := newEnv(t, "")
	pg := sandbox.PostgresTargetT(t)
	my := sandbox.MariaDBTargetT(t)
	caPath := filepath.Join(e.dir, "ssh_user_ca")
	key, err := ca.LoadOrCreateKey(caPath)
	require.NoError(t, err)
	sshd := sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{ca.AuthorizedKey(key)}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	ln.Close()
	d := &discoveryEnv{env: e, pg: pg, keys: t.TempDir(), user: sshd.User}
	cfg := fmt.Sprintf(`data_dir: ./data
ca: {ssh_user_key_file: %q}
discovery: {interval: 24h, timeout: 10s, authorized_keys_file: %q}
targets:
  - {name: web-01, kind: ssh, address: %q, host_key: %q, discovery_login: %s}
  - {name: analytics, kind: postgres, address: %q, database: %s, admin_dsn_env: DISC_PG}
  - {name: billing, kind: mysql, address: %q, admin_dsn_env: DISC_MY}
  - {name: down, kind: postgres, address: %q, database: x, admin_dsn_env: DISC_DOWN}
`, caPath, d.keys+"/%u", net.JoinHostPort(sshd.Host, strconv.Itoa(sshd.Port)), sshd.HostKey, sshd.User,
		pg.Addr(), pg.Database, my.Addr(), down)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))
	e.extraEnv = []string{"DISC_PG=" + pg.DSN(pg.Database), "DISC_MY=" + my.AdminDSN(),
		"DISC_DOWN=postgres://x:y@" + down + "/x?sslmode=disable&connect_timeout=2"}
	e.ok("iga", "apply", "-f", e.registry)
	require.NoError(t, my.Exec(t.Context(), my.Database, "CREATE USER 'etl'@'%' IDENTIFIED BY 'standing-secret';"))
	return d
}

type discoveryJSON struct {
	Targets []struct {
		Target   string        `json:"target"`
		Error    string        `json:"error"`
		Accounts []accountJSON `json:"accounts"`
		Change   struct {
			New  []string `json:"new"`
			Gone []string `json:"gone"`
		} `json:"change"`
	} `json:"targets"`
	Proposed *struct {
		Created []string `json:"created"`
	} `json:"proposed"`
}

type accountJSON struct {
	Account   string    `json:"account"`
	FirstSeen time.Time `json:"first_seen"`
	Password  string    `json:"password"`
	Keys      []struct {
		Fingerprint string   `json:"fingerprint"`
		Options     []string `json:"options"`
	} `json:"keys"`
}

func (d *discoveryEnv) discover(wantCode int, args ...string) discoveryJSON {
	d.t.Helper()
	out, errOut, code := d.run("", append([]string{"iga", "discover", "--json"}, args...)...)
	require.Equalf(d.t, wantCode, code, "iga discover %v: stderr %s", args, errOut)
	var got discoveryJSON
	require.NoErrorf(d.t, json.Unmarshal([]byte(out), &got), "output %q", out)
	return got
}

func (d *discoveryEnv) findings() []string {
	d.t.Helper()
	var rep struct {
		Findings []struct{ NHI, Kind, Identity string } `json:"findings"`
	}
	require.NoError(d.t, json.Unmarshal([]byte(d.ok("iga", "report", "--json")), &rep))
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.NHI+" "+f.Kind+" "+f.Identity)
	}
	return out
}

// TestCLIDiscover: the down target is reported and the others discovered;
// the extra PostgreSQL and MariaDB logins are found with their passwords
// and reported, svc-backup's key on the sshd is key_installed_on_target,
// --propose registers unknown accounts, and a dropped role is gone until
// it is created again.
func TestCLIDiscover(t *testing.T) {
	d := newDiscoveryEnv(t)
	pub, err := os.ReadFile(d.keyPub)
	require.NoError(t, err)
	opt, err := os.ReadFile(filepath.Join(d.dir, "svc-backup.pub")) // same key, forced
	require.NoError(t, err)
	file := string(pub) + `no-pty,command="backup --key=s3cr3t" ` + string(opt)
	require.NoError(t, os.WriteFile(filepath.Join(d.keys, d.user), []byte(file), 0o600))
	require.NoError(t, d.pg.Exec(t.Context(), d.pg.Database, "CREATE ROLE etl_user LOGIN PASSWORD 'standing-secret'"))

	got := d.discover(1)
	byName := map[string]int{}
	for i, tr := range got.Targets {
		byName[tr.Target] = i
	}
	require.Len(t, got.Targets, 4)
	assert.Contains(t, got.Targets[byName["down"]].Error, "list login roles", "the down target says why")
	for _, name := range []string{"web-01", "analytics", "billing"} {
		assert.Emptyf(t, got.Targets[byName[name]].Error, "%s is discovered although down is not", name)
	}
	assert.Contains(t, got.Targets[byName["analytics"]].Change.New, "etl_user")
	assert.Contains(t, got.Targets[byName["billing"]].Change.New, "etl@%")
	web := got.Targets[byName["web-01"]]
	i := slices.IndexFunc(web.Accounts, func(a accountJSON) bool { return a.Account == d.user })
	require.GreaterOrEqual(t, i, 0, "the sshd's login is listed")
	require.Len(t, web.Accounts[i].Keys, 2)
	assert.Equal(t, []string{"no-pty", "command"}, web.Accounts[i].Keys[1].Options)
	out, _, _ := d.run("", "iga", "discover", "--json")
	assert.NotContains(t, out, "s3cr3t", "option values stay on the target")
	assert.NotContains(t, out, "standing-secret")
	var again discoveryJSON
	require.NoError(t, json.Unmarshal([]byte(out), &again))
	first := got.Targets[byName["billing"]].Accounts
	for i, a := range again.Targets[byName["billing"]].Accounts {
		assert.Equal(t, first[i].FirstSeen, a.FirstSeen, "%s was first seen by the first run", a.Account)
	}

	fs := d.findings()
	for _, want := range []string{
		"NHI1 unmanaged_account analytics/etl_user", "NHI7 standing_password analytics/etl_user",
		"NHI1 unmanaged_account billing/etl@%", "NHI7 standing_password billing/etl@%",
		"NHI9 key_installed_on_target svc-backup",
	} {
		assert.Contains(t, fs, want)
	}

	prop := d.discover(0, "--target", "analytics", "--propose")
	require.NotNil(t, prop.Proposed)
	assert.Contains(t, prop.Proposed.Created, "discovered.analytics.etl_user")
	fs = d.findings()
	assert.NotContains(t, fs, "NHI1 unmanaged_account analytics/etl_user")
	assert.Contains(t, fs, "NHI1 no_owner discovered.analytics.etl_user")
	check, _ := d.check("discovered.analytics.etl_user", "analytics", "--action", "query")
	assert.Contains(t, check.codes(), "not_active", "a proposed identity is denied")

	require.NoError(t, d.pg.Exec(t.Context(), d.pg.Database, "DROP ROLE etl_user"))
	gone := d.discover(0, "--target", "analytics")
	assert.Equal(t, []string{"etl_user"}, gone.Targets[0].Change.Gone)
	assert.NotContains(t, d.findings(), "NHI7 standing_password analytics/etl_user")

	require.NoError(t, d.pg.Exec(t.Context(), d.pg.Database, "CREATE ROLE etl_user LOGIN PASSWORD 'again'"))
	back := d.discover(0, "--target", "analytics")
	assert.Equal(t, []string{"etl_user"}, back.Targets[0].Change.New)
	assert.Contains(t, d.findings(), "NHI7 standing_password analytics/etl_user")

	text, _, code := d.run("", "iga", "discover", "--target", "down")
	assert.Equal(t, 1, code)
	assert.True(t, strings.Contains(text, "down: not discovered:"), text)
	_, errOut, code := d.run("", "iga", "discover", "--target", "nope")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--target nope: no such target")
}

// TestDiscoveryConfigRefused: a discovery_login on a database target, a
// bad login name, a short interval and an unknown %-token are config
// errors, named.
func TestDiscoveryConfigRefused(t *testing.T) {
	cfg := `targets:
  - {name: db, kind: postgres, address: "127.0.0.1:5432", discovery_login: root}
  - {name: web, kind: ssh, address: "127.0.0.1:22", discovery_login: "Root Admin"}
discovery: {interval: 10s, authorized_keys_file: "/k/%i"}
`
	_, err := ParseConfig("sallyport.yaml", []byte(cfg))
	require.Error(t, err)
	for _, want := range []string{"(db).discovery_login: only ssh targets", `(web).discovery_login "Root Admin"`,
		"discovery.interval 10s", "%i is not supported"} {
		assert.ErrorContains(t, err, want)
	}
}

// TestServeDiscoversOnSchedule: serve with discovery.interval discovers
// the targets by itself, on the leader (the only replica here): the extra
// login reaches iga report without an iga discover, and the down target
// is logged while the others are kept.
func TestServeDiscoversOnSchedule(t *testing.T) {
	d := newDiscoveryEnv(t)
	require.NoError(t, d.pg.Exec(t.Context(), d.pg.Database, "CREATE ROLE nightly LOGIN PASSWORD 'standing-secret'"))
	data, err := os.ReadFile(d.config)
	require.NoError(t, err)
	listen := "web: {listen: \"127.0.0.1:0\"}\nssh: {listen: \"127.0.0.1:0\"}\npostgres: {listen: \"127.0.0.1:0\"}\nmysql: {listen: \"127.0.0.1:0\"}\n"
	require.NoError(t, os.WriteFile(d.config, append([]byte(listen), data...), 0o600))

	serve := exec.Command(binary, "--config", d.config, "serve")
	serve.Dir, serve.Env = d.dir, append(os.Environ(), d.extraEnv...)
	logs := &syncbuf.Buffer{}
	serve.Stdout, serve.Stderr = logs, logs
	require.NoError(t, serve.Start())
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })

	require.Eventually(t, func() bool {
		return slices.Contains(d.findings(), "NHI7 standing_password analytics/nightly")
	}, 30*time.Second, 500*time.Millisecond, "serve never discovered; logs: %s", logs)
	assert.Contains(t, d.findings(), "NHI7 standing_password billing/etl@%", "the targets after the down one too")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "target not discovered") },
		10*time.Second, 100*time.Millisecond, "logs: %s", logs)
	assert.Contains(t, logs.String(), "target=down")
	assert.NotContains(t, logs.String(), "standing-secret")
	require.NoError(t, serve.Process.Signal(syscall.SIGTERM))
	require.NoError(t, serve.Wait(), "serve exits 0 on SIGTERM; logs: %s", logs)
}
