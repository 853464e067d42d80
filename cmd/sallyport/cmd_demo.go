package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/iga"
)

func newDemoCmd(g *globals) *cobra.Command {
	var dir, webListen string
	c := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Run a throwaway bastion with a seeded registry and print what to try",
		Long: `demo writes a config, keys and a seeded registry under DIR (two owners, three
NHIs in different states, one break-glass account), starts the bastion on the
embedded default (SQLite, local disk) on loopback, and prints copy-paste
commands. Stop it with Ctrl-C; DIR stays for inspection.`,
		Example: `  sallyport demo --dir ./demo`,
		Args:    args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return runDemo(c.Context(), c.OutOrStdout(), dir, webListen)
		},
	}
	c.Flags().StringVar(&dir, "dir", "./sallyport-demo", "directory for the demo's config, keys and data")
	c.Flags().StringVar(&webListen, "web", "127.0.0.1:8080", "address of the health, metrics and console listener")
	return c
}

func runDemo(ctx context.Context, out io.Writer, dir, webListen string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cfgPath, err := writeDemoFiles(abs, webListen)
	if err != nil {
		return err
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	if err := seedDemoRegistry(ctx, cfg, filepath.Join(abs, "registry.yaml")); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return serve(ctx, cfg, log, func(webAddr string) {
		printDemoTour(out, dir, webAddr)
	})
}

// writeDemoFiles writes the config, the demo identity's SSH key and the
// registry file under dir and returns the config's path.
func writeDemoFiles(dir, webListen string) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		return "", fmt.Errorf("create demo dir: %w", err)
	}
	key, err := ca.LoadOrCreateKey(filepath.Join(dir, "keys", "svc-backup"))
	if err != nil {
		return "", fmt.Errorf("create demo key: %w", err)
	}
	pub := strings.TrimSpace(ca.AuthorizedKey(key))
	if err := os.WriteFile(filepath.Join(dir, "keys", "svc-backup.pub"), []byte(pub+" svc-backup\n"), 0o644); err != nil {
		return "", fmt.Errorf("write demo public key: %w", err)
	}
	cfgPath := filepath.Join(dir, "sallyport.yaml")
	cfg := fmt.Sprintf(demoConfig, webListen)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write demo config: %w", err)
	}
	reg, err := demoRegistry(pub, time.Now().UTC())
	if err != nil {
		return "", err
	}
	return cfgPath, os.WriteFile(filepath.Join(dir, "registry.yaml"), reg, 0o600)
}

const demoConfig = `# sallyport demo config: everything on loopback, SQLite registry, recordings on local disk.
data_dir: ./data
ssh:      {listen: "127.0.0.1:2222"}
postgres: {listen: "127.0.0.1:6432"}
mysql:    {listen: "127.0.0.1:3307"}
web:      {listen: "%s"}
breakglass: {max_duration: 1h}
targets:
  - {name: web-01,    kind: ssh,      address: "127.0.0.1:2022", environment: prod}
  - {name: analytics, kind: postgres, address: "127.0.0.1:5432", database: analytics, environment: prod}
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
      - {target: web-01, login: {{.Login}}, actions: [exec, sftp, shell], expires: {{.EntExpires}}}
    certification: {by: alice@example.com, at: {{.Today}}, until: {{.CertUntil}}}
  - id: ci-deploy
    kind: pipeline
    state: active
    owner: bob@example.com
    environment: prod
    credentials:
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
      - {target: analytics, login: reporting, actions: [query]}
  - id: bg-oncall
    kind: break-glass
    state: active
    owner: alice@example.com
    holders: [carol@example.com]
    entitlements:
      - {target: web-01, login: {{.Login}}, actions: [shell, exec]}
    certification: {by: alice@example.com, at: {{.Today}}, until: {{.CertUntil}}}
`))

func demoRegistry(pubKey string, now time.Time) ([]byte, error) {
	login := "root"
	if u, err := user.Current(); err == nil {
		login = u.Username
	}
	d := func(days int) string { return now.AddDate(0, 0, days).Format(time.DateOnly) }
	var buf bytes.Buffer
	err := demoRegistryTmpl.Execute(&buf, map[string]string{
		"Key": pubKey, "Login": login, "Today": d(0), "CertUntil": d(60), "KeyExpires": d(180),
		"EntExpires": d(365), "LongAgo": d(-100), "Expired": d(-10),
	})
	return buf.Bytes(), err
}

func seedDemoRegistry(ctx context.Context, cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := iga.ParseFile(path, data)
	if err != nil {
		return fmt.Errorf("demo registry: %w", err)
	}
	ap, err := openApp(ctx, cfg, slog.Default())
	if err != nil {
		return err
	}
	defer ap.Close()
	_, err = ap.reg.Apply(ctx, f, iga.ApplyOptions{Actor: "demo"})
	return err
}

func printDemoTour(w io.Writer, dir, webAddr string) {
	sp := selfCommand() + " --config " + filepath.Join(dir, "sallyport.yaml")
	fmt.Fprintf(w, `
sallyport demo is running (Ctrl-C stops it; %s stays for inspection).
  health:   curl -s http://%s/healthz
  metrics:  curl -s http://%s/metrics | grep sallyport_

Admission, as the bastion will decide it (exit 0 allow, 1 deny):
  %s iga check svc-backup web-01 --action exec --key %s
  %s iga check ci-deploy web-01 --action exec          # certification_expired
  %s iga check agent-report analytics                  # not_active, not_certified
  %s iga check svc-backup web-01 --action forward      # action_not_entitled
  %s iga check bg-oncall web-01                        # breakglass_no_grant

Break-glass, then the same check allows:
  %s breakglass open bg-oncall --target web-01 --by carol@example.com --reason "demo: incident drill" --for 15m
  %s iga check bg-oncall web-01

Governance:
  %s iga show svc-backup
  %s iga revoke svc-backup --by alice@example.com --reason "demo: retired"
  %s audit list --identity svc-backup
  %s iga export
`, dir, webAddr, webAddr,
		sp, filepath.Join(dir, "keys", "svc-backup.pub"), sp, sp, sp, sp, sp, sp, sp, sp, sp, sp)
}

// selfCommand is how the user ran this binary, so printed commands work
// from the directory they ran it in.
func selfCommand() string {
	if strings.Contains(filepath.Base(os.Args[0]), "sallyport") {
		return os.Args[0]
	}
	return "sallyport"
}
