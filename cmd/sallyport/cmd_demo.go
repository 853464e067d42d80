package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
)

// demoAdminDSNEnv carries the sandbox PostgreSQL target's admin DSN from the
// demo to serve, in this process's environment only.
const demoAdminDSNEnv = "SALLYPORT_DEMO_ANALYTICS_ADMIN_DSN"

// demoMySQLAdminDSNEnv does the same for the sandbox MariaDB target.
const demoMySQLAdminDSNEnv = "SALLYPORT_DEMO_BILLING_ADMIN_DSN"

func newDemoCmd(g *globals) *cobra.Command {
	var dir, webListen string
	var ports demoPorts
	c := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Run a throwaway bastion with real sandbox targets and print what to try",
		Long: `demo writes a config, keys and a seeded registry under DIR (two owners, three
NHIs in different states, one break-glass account), starts sandbox targets — a
real OpenSSH sshd trusting the bastion's CA and a real PostgreSQL with sample data
— and the bastion on the embedded default (SQLite, local disk), all on loopback,
then prints copy-paste commands. Ctrl-C stops everything; DIR stays.`,
		Example: `  sallyport demo --dir ./sallyport-demo`,
		Args:    args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return runDemo(c.Context(), c.OutOrStdout(), dir, webListen, ports)
		},
	}
	c.Flags().StringVar(&dir, "dir", "./sallyport-demo", "directory for the demo's config, keys and data")
	c.Flags().StringVar(&webListen, "web", "127.0.0.1:8080", "address of the health, metrics and console listener")
	c.Flags().IntVar(&ports.ssh, "ssh-port", 2222, "loopback port of the SSH listener")
	c.Flags().IntVar(&ports.postgres, "postgres-port", 6432, "loopback port of the PostgreSQL listener")
	c.Flags().IntVar(&ports.mysql, "mysql-port", 3307, "loopback port of the MySQL listener")
	return c
}

// demoPorts are the loopback ports the demo's listeners use.
type demoPorts struct{ ssh, postgres, mysql int }

// demo is what one demo run set up.
type demo struct {
	dir     string // as the user gave it, for printed commands
	abs     string
	login   string // the Unix login on the sshd target
	sshd    *sandbox.SSHD
	pg      *sandbox.PostgresTarget
	maria   *sandbox.MariaDBTarget
	notes   []string
	webAddr string
	cfgPath string
	keyPub  string
	userCA  string
	ports   demoPorts
	signIn  *devSignIn
}

func runDemo(ctx context.Context, out io.Writer, dir, webListen string, ports demoPorts) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	d := &demo{dir: dir, abs: abs, login: currentLogin(), ports: ports}
	if err := d.prepareKeys(); err != nil {
		return err
	}
	defer d.startTargets(ctx)()
	ds, err := listenDevSignIn()
	if err != nil {
		return err
	}
	d.signIn = ds
	if err := d.writeFiles(webListen); err != nil {
		ds.ln.Close()
		return err
	}
	cfg, err := LoadConfig(d.cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := seedDemoRegistry(ctx, cfg, filepath.Join(abs, "registry.yaml"), log); err != nil {
		ds.ln.Close()
		return err
	}
	stop, err := ds.start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stop()
	return serve(ctx, cfg, log, func(webAddr string) {
		d.webAddr = webAddr
		d.printTour(out)
	})
}

// prepareKeys creates the demo identity's SSH key and the bastion's user CA
// (which the sandbox sshd must trust before it starts).
func (d *demo) prepareKeys() error {
	if err := os.MkdirAll(filepath.Join(d.abs, "keys"), 0o700); err != nil {
		return fmt.Errorf("create demo dir: %w", err)
	}
	key, err := ca.LoadOrCreateKey(filepath.Join(d.abs, "keys", "svc-backup"))
	if err != nil {
		return fmt.Errorf("create demo key: %w", err)
	}
	d.keyPub = strings.TrimSpace(ca.AuthorizedKey(key))
	if err := os.WriteFile(filepath.Join(d.abs, "keys", "svc-backup.pub"), []byte(d.keyPub+" svc-backup\n"), 0o644); err != nil {
		return fmt.Errorf("write demo public key: %w", err)
	}
	caKey, err := ca.LoadOrCreateKey(filepath.Join(d.abs, "data", "keys", "ssh_user_ca"))
	if err != nil {
		return fmt.Errorf("create the bastion's ssh user ca: %w", err)
	}
	d.userCA = strings.TrimSpace(ca.AuthorizedKey(caKey))
	return nil
}

// startTargets starts the sandbox sshd and PostgreSQL when installed and
// returns what stops them. A missing server becomes a note, not a failure.
func (d *demo) startTargets(ctx context.Context) func() {
	var err error
	d.sshd, err = sandbox.StartSSHD(ctx, sandbox.SSHDOptions{TrustedUserCAKeys: []string{d.userCA}})
	if err != nil {
		d.sshd = nil
		d.notes = append(d.notes, "no sandbox sshd ("+demoReason(err)+"): the ssh lines below will be refused with unknown_target")
	}
	pg, err := sandbox.StartPostgres(ctx, sandbox.PostgresOptions{})
	if err == nil {
		d.pg, err = pg.NewTarget(ctx, sandbox.PostgresTargetOptions{})
		if err != nil {
			pg.Stop()
		}
	}
	if err != nil {
		d.pg = nil
		d.notes = append(d.notes, "no sandbox PostgreSQL ("+demoReason(err)+"): the psql line below will be refused")
	} else {
		os.Setenv(demoAdminDSNEnv, d.pg.AdminDSN())
	}
	d.startMariaDB(ctx)
	return func() {
		if d.maria != nil {
			d.maria.Stop()
		}
		if d.sshd != nil {
			d.sshd.Stop()
		}
		if d.pg != nil {
			d.pg.Stop()
		}
	}
}

func (d *demo) startMariaDB(ctx context.Context) {
	m, err := sandbox.StartMariaDB(ctx, sandbox.MariaDBOptions{})
	if err == nil {
		d.maria, err = m.NewTarget(ctx, sandbox.MariaDBTargetOptions{})
		if err != nil {
			m.Stop()
		}
	}
	if err != nil {
		d.maria = nil
		d.notes = append(d.notes, "no sandbox MariaDB ("+demoReason(err)+"): the mariadb line below will be refused")
		return
	}
	os.Setenv(demoMySQLAdminDSNEnv, d.maria.AdminDSN())
}

func demoReason(err error) string {
	if errors.Is(err, sandbox.ErrNotInstalled) {
		return "run make deps to install it"
	}
	return err.Error()
}

func currentLogin() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// writeFiles writes the config and the registry file under dir.
func (d *demo) writeFiles(webListen string) error {
	d.cfgPath = filepath.Join(d.abs, "sallyport.yaml")
	var targets []string
	if d.sshd != nil {
		d.login = d.sshd.User
		targets = append(targets, fmt.Sprintf(`  - {name: web-01, kind: ssh, address: "%s", host_key: "%s", environment: prod}`,
			d.sshd.Addr(), strings.TrimSpace(d.sshd.HostKey)))
	}
	if d.pg != nil {
		targets = append(targets, fmt.Sprintf(`  - {name: analytics, kind: postgres, address: "%s", database: %s, admin_dsn_env: %s, environment: prod}`,
			d.pg.Addr(), d.pg.Database, demoAdminDSNEnv))
	}
	if d.maria != nil {
		targets = append(targets, fmt.Sprintf(`  - {name: billing, kind: mysql, address: "%s", database: %s, admin_dsn_env: %s, environment: prod}`,
			d.maria.Addr(), d.maria.Database, demoMySQLAdminDSNEnv))
	}
	cfg := fmt.Sprintf(demoConfig, d.ports.ssh, d.ports.postgres, d.ports.mysql, webListen,
		d.signIn.issuer, demoOIDCClientID, demoOIDCSecretEnv, strings.Join(targets, "\n"))
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write demo config: %w", err)
	}
	role, mysqlRole := sandbox.DefaultTargetRole, sandbox.DefaultMariaDBTargetRole
	if d.pg != nil {
		role = d.pg.Role
	}
	if d.maria != nil {
		mysqlRole = d.maria.Role
	}
	reg, err := demoRegistry(d.keyPub, d.login, role, mysqlRole, time.Now().UTC())
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.abs, "registry.yaml"), reg, 0o600)
}

const demoConfig = `# sallyport demo config: everything on loopback, SQLite registry, recordings on local disk.
data_dir: ./data
ssh:      {listen: "127.0.0.1:%d"}
postgres: {listen: "127.0.0.1:%d"}
mysql:    {listen: "127.0.0.1:%d"}
web:
  listen: "%s"
  # The demo's development sign-in (no passwords; never run by serve).
  oidc: {issuer: "%s", client_id: %s, client_secret_env: %s}
breakglass: {max_duration: 1h}
targets:
%s
`

var demoRegistryTmpl = template.Must(template.New("registry").Parse(`# sallyport demo registry: apply with 'sallyport iga apply -f registry.yaml'.
people:
  - {id: alice@example.com, name: Alice Ng, roles: [owner, auditor, admin], status: active}
  - {id: bob@example.com,   name: Bob Okafor, roles: [owner], status: active}
  - {id: carol@example.com, name: Carol Diaz, roles: [auditor], status: active}
identities:
  - id: svc-backup
    kind: service-account
    state: active
    owner: alice@example.com
    environment: prod
    credentials:
      ssh_keys: [{key: "{{.Key}}", expires: {{.KeyExpires}}}]
    entitlements:
      # A backup account runs the commands listed, nothing else (no shell):
      - target: web-01
        login: {{.Login}}
        actions: [exec, sftp]
        expires: {{.EntExpires}}
        commands: ["echo hello from *", "sleep *", "id -un"]
      - {target: analytics, login: {{.Role}}, actions: [query], expires: {{.EntExpires}}}
      - {target: billing, login: {{.MySQLRole}}, actions: [query], expires: {{.EntExpires}}}
    certification: {by: alice@example.com, at: {{.Today}}, until: {{.CertUntil}}}
  - id: ci-deploy
    kind: pipeline
    state: active
    owner: bob@example.com
    environment: prod
    credentials:
      ssh_keys: [{key: "{{.Key}}"}]
      oidc: [{issuer: "https://token.actions.githubusercontent.com", subject: "repo:acme/deploy:ref:refs/heads/main"}]
    entitlements:
      - {target: web-01, login: {{.Login}}, actions: [exec], expires: {{.EntExpires}}}
    certification: {by: bob@example.com, at: {{.LongAgo}}, until: {{.Expired}}}
  - id: agent-report
    kind: agent
    state: suspended
    owner: alice@example.com
    environment: prod
    entitlements:
      - {target: analytics, login: {{.Role}}, actions: [query]}
  - id: bg-oncall
    kind: break-glass
    state: active
    owner: alice@example.com
    holders: [carol@example.com]
    credentials:
      ssh_keys: [{key: "{{.Key}}"}]
    entitlements:
      - {target: web-01, login: {{.Login}}, actions: [shell, exec]}
    certification: {by: alice@example.com, at: {{.Today}}, until: {{.CertUntil}}}
`))

func demoRegistry(pubKey, login, role, mysqlRole string, now time.Time) ([]byte, error) {
	d := func(days int) string { return now.AddDate(0, 0, days).Format(time.DateOnly) }
	var buf bytes.Buffer
	err := demoRegistryTmpl.Execute(&buf, map[string]string{
		"Key": pubKey, "Login": login, "Role": role, "MySQLRole": mysqlRole, "Today": d(0), "CertUntil": d(60), "KeyExpires": d(180),
		"EntExpires": d(365), "LongAgo": d(-100), "Expired": d(-10),
	})
	return buf.Bytes(), err
}

func seedDemoRegistry(ctx context.Context, cfg *Config, path string, log *slog.Logger) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := iga.ParseFile(path, data)
	if err != nil {
		return fmt.Errorf("demo registry: %w", err)
	}
	ap, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer ap.Close()
	_, err = ap.reg.Apply(ctx, f, iga.ApplyOptions{Actor: "demo"})
	return err
}

func (d *demo) printTour(w io.Writer) {
	sp := selfCommand() + " --config " + filepath.Join(d.dir, "sallyport.yaml")
	key := filepath.Join(d.dir, "keys", "svc-backup")
	ssh := fmt.Sprintf("ssh -p %d -i %s -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s",
		d.ports.ssh, key, filepath.Join(d.dir, "known_hosts"))
	fmt.Fprintf(w, "\nsallyport demo is running (Ctrl-C stops it; %s stays for inspection).\n", d.dir)
	for _, n := range d.notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	fmt.Fprintf(w, `
Through the bastion with stock clients (exit status passes through):
  %[2]s svc-backup@web-01@127.0.0.1 'echo hello from web-01'
  %[2]s svc-backup@web-01@127.0.0.1 'echo hello; id'   # refused: command_not_entitled
  %[2]s ci-deploy@web-01@127.0.0.1 true             # refused: certification_expired
  PGPASSWORD=$(%[1]s token issue svc-backup --ttl 15m) psql "host=127.0.0.1 port=%[5]d user=svc-backup dbname=analytics sslmode=require" -c 'select count(*) from orders'
  MYSQL_PWD=$(%[1]s token issue svc-backup --ttl 15m) mariadb -h 127.0.0.1 -P %[7]d --protocol=TCP -u svc-backup -D billing --ssl -e 'select count(*) from orders'

Every session is recorded, signed and verifiable:
  %[1]s sessions list
  %[1]s replay last --format text
  %[1]s verify last

Admission, as the bastion decides it (exit 0 allow, 1 deny):
  %[1]s iga check svc-backup web-01 --action exec --key %[3]s.pub
  %[1]s iga check ci-deploy web-01 --action exec          # certification_expired
  %[1]s iga check agent-report analytics                  # not_active, not_certified
  %[1]s iga check svc-backup web-01 --action forward      # action_not_entitled
  %[1]s iga check svc-backup web-01 --command 'cat /etc/shadow'   # command_not_entitled
  %[1]s iga check bg-oncall web-01                        # breakglass_no_grant

Break-glass: a named holder, a reason, a time limit; then the session is let in and flagged:
  %[1]s breakglass open bg-oncall --target web-01 --by carol@example.com --reason "demo: incident drill" --for 15m
  %[2]s bg-oncall@web-01@127.0.0.1 'echo break-glass session'
  %[1]s breakglass close last
Afterwards someone other than the opener reviews what happened:
  %[1]s review list
  %[1]s review complete last --by carol@example.com --outcome drill --note "my own grant"   # refused: dual control
  %[1]s review complete last --by alice@example.com --outcome drill --note "demo drill, commands as expected"
  %[1]s review export last -o %[6]s
  %[1]s iga report                                        # hygiene findings with OWASP NHI ids

Governance:
  %[1]s iga show svc-backup
  %[1]s iga suggest svc-backup                            # the smallest entitlements for what it did
  %[1]s iga revoke svc-backup --by alice@example.com --reason "demo: retired"
  %[1]s audit list --identity svc-backup
  %[1]s iga export

The console (development sign-in, demo only — anyone listed, no password):
  open http://%[4]s/ and pick alice@example.com (owner, auditor, admin)

Health and metrics:
  curl -s http://%[4]s/healthz
  curl -s http://%[4]s/metrics | grep sallyport_
`, sp, ssh, key, d.webAddr, d.ports.postgres, filepath.Join(d.dir, "evidence.json"), d.ports.mysql)
}

// selfCommand is how the user ran this binary, so printed commands work
// from the directory they ran it in.
func selfCommand() string {
	if strings.Contains(filepath.Base(os.Args[0]), "sallyport") {
		return os.Args[0]
	}
	return "sallyport"
}
