package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// app is what a command needs: the config and the registry it names.
type app struct {
	cfg   *Config
	store *sqlstore.Store
	reg   *iga.Registry
}

// open loads the config and opens the registry it names.
func (g *globals) open(ctx context.Context) (*app, error) {
	cfg, err := LoadConfig(g.resolveConfigPath())
	if err != nil {
		return nil, err
	}
	return openApp(ctx, cfg, slog.Default())
}

func openApp(ctx context.Context, cfg *Config, log *slog.Logger) (*app, error) {
	sc, err := storeConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
	}
	store, err := sqlstore.Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	tokenKey, err := ca.LoadOrCreateKey(tokenKeyPath(cfg))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("load token signing key: %w", err)
	}
	reg := &iga.Registry{
		Store:   store,
		Targets: cfg.igaTarget,
		Policy: iga.Policy{
			MaxCertification: cfg.Certification.MaxPeriod.D(),
			MaxBreakglass:    cfg.Breakglass.MaxDuration.D(),
		},
		Tokens: iga.TokenConfig{TrustedIssuers: cfg.trustedIssuers(), SigningKey: tokenKey},
		Logger: log,
	}
	return &app{cfg: cfg, store: store, reg: reg}, nil
}

func (a *app) Close() error { return a.store.Close() }

func storeConfig(cfg *Config) (sqlstore.Config, error) {
	if cfg.Registry.Driver != "postgres" {
		return sqlstore.Config{Driver: "sqlite", Path: cfg.Path("registry.db")}, nil
	}
	dsn := os.Getenv(cfg.Registry.DSNEnv)
	if dsn == "" {
		return sqlstore.Config{}, configErrorf("registry.dsn_env: environment variable %s is empty; set it to the PostgreSQL DSN", cfg.Registry.DSNEnv)
	}
	return sqlstore.Config{Driver: "postgres", DSN: dsn}, nil
}

func (c *Config) igaTarget(name string) (iga.Target, bool) {
	t, ok := c.Target(name)
	if !ok {
		return iga.Target{}, false
	}
	return iga.Target{Name: t.Name, Kind: t.Kind, Environment: t.Environment}, true
}

func (c *Config) trustedIssuers() []iga.TrustedIssuer {
	out := make([]iga.TrustedIssuer, 0, len(c.Tokens.TrustedIssuers))
	for _, ti := range c.Tokens.TrustedIssuers {
		out = append(out, iga.TrustedIssuer{Issuer: ti.Issuer, Audience: ti.Audience})
	}
	return out
}

// operator names who ran an admin command, for the audit trail.
func operator() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return "cli:" + u
	}
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}
