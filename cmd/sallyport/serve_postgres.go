package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sallyport/sallyport/ca"
	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/proxy/postgres"
)

const (
	// postgresJanitorTimeout bounds one sweep of one target.
	postgresJanitorTimeout = 30 * time.Second
	// postgresAdminConns sizes each target's admin pool: role creation and
	// drop are short statements.
	postgresAdminConns = 4
)

// postgresComponent runs the PostgreSQL listener on postgres.listen for the
// targets of kind postgres, and their janitor.
func (d *serveDeps) postgresComponent() (*component, error) {
	cfg := d.ap.cfg
	targets, err := d.postgresTargets()
	if err != nil {
		return nil, err
	}
	cert, err := dbListenerCertificate(cfg, "postgres", d.log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Postgres.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on postgres.listen %s: %w", cfg.Postgres.Listen, err)
	}
	srv := &postgres.Server{
		Gate: d.ap.reg, Live: d.live, Recorder: d.recorder, Logger: d.log.With("proxy", "postgres"),
		Targets:        func(name string) (*postgres.Target, bool) { t, ok := targets[name]; return t, ok },
		TLSConfig:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		AllowPlaintext: !boolOr(cfg.Postgres.RequireTLS, true),
		ProxyProtocol:  cfg.Postgres.ProxyProtocol.settings(),
	}
	return &component{
		name: "postgres",
		run: func(ctx context.Context) error {
			go d.postgresJanitor(ctx, targets)
			if err := srv.Serve(ctx, ln); !errors.Is(err, postgres.ErrServerClosed) {
				return err
			}
			return nil
		},
		shutdown: srv.Shutdown,
		listener: true,
	}, nil
}

// postgresTargets builds each postgres target from its config: the admin
// DSN from the variable admin_dsn_env names, pointed at the target's
// address and database, with TLS as its tls block says. A target without one is left out (and logged):
// sessions to it are refused.
func (d *serveDeps) postgresTargets() (map[string]*postgres.Target, error) {
	out := map[string]*postgres.Target{}
	for _, tc := range d.ap.cfg.Targets {
		if tc.Kind != "postgres" {
			continue
		}
		dsn := os.Getenv(tc.AdminDSNEnv)
		if dsn == "" {
			d.log.Error("postgres target has no admin DSN; its sessions are refused",
				"target", tc.Name, "admin_dsn_env", tc.AdminDSNEnv)
			continue
		}
		t, err := postgresTarget(tc, dsn)
		if err != nil {
			return nil, err
		}
		out[tc.Name] = t
	}
	return out, nil
}

func postgresTarget(tc TargetConfig, dsn string) (*postgres.Target, error) {
	db := tc.Database
	if db == "" {
		db = tc.Name
	}
	conn, err := pgconn.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors mask the password.
		return nil, configErrorf("target %s: admin DSN in %s: %v", tc.Name, tc.AdminDSNEnv, err)
	}
	if err := pointAt(conn, tc.Address, db); err != nil {
		return nil, configErrorf("target %s: %v", tc.Name, err)
	}
	tlsCfg, err := tc.TLS.clientConfig(conn.Host)
	if err != nil {
		return nil, configErrorf("target %s: %v", tc.Name, err)
	}
	poolCfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, configErrorf("target %s: admin DSN in %s: %v", tc.Name, tc.AdminDSNEnv, err)
	}
	_ = pointAt(&poolCfg.ConnConfig.Config, tc.Address, db) // the address parsed above
	// The target's tls block decides, for sessions and the admin pool
	// alike; no plaintext fallback.
	conn.TLSConfig, conn.Fallbacks = tlsCfg, nil
	poolCfg.ConnConfig.TLSConfig, poolCfg.ConnConfig.Fallbacks = tlsCfg, nil
	poolCfg.MaxConns = postgresAdminConns
	pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg)
	if err != nil {
		return nil, fmt.Errorf("target %s: admin pool: %w", tc.Name, err)
	}
	return &postgres.Target{Name: tc.Name, Database: db, Conn: conn, Roles: &capg.Issuer{DB: pool}}, nil
}

// pointAt directs a connection config (and its TLS fallbacks) at the
// target's address and database.
func pointAt(c *pgconn.Config, address, db string) error {
	c.Database = db
	if address == "" {
		return nil
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("address %q: want host:port", address)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return fmt.Errorf("address %q: bad port", address)
	}
	c.Host, c.Port = host, uint16(port)
	for _, fb := range c.Fallbacks {
		fb.Host, fb.Port = host, uint16(port)
	}
	return nil
}

// postgresJanitor sweeps leftover per-session roles from every target at
// start and every cluster.janitor_interval until ctx ends, while this
// replica leads.
func (d *serveDeps) postgresJanitor(ctx context.Context, targets map[string]*postgres.Target) {
	d.cluster.janitorRounds(ctx, func() {
		for name, t := range targets {
			if issuer, ok := t.Roles.(*capg.Issuer); ok {
				d.sweepPostgres(ctx, name, issuer)
			}
		}
	})
}

// sweepPostgres drops the roles of sessions that ended or whose replica is
// gone; without the session index it drops nothing.
func (d *serveDeps) sweepPostgres(ctx context.Context, name string, issuer *capg.Issuer) {
	ctx, cancel := context.WithTimeout(ctx, postgresJanitorTimeout)
	defer cancel()
	held, err := d.cluster.sessionHolders(ctx, d.live)
	if err != nil {
		d.log.Warn("postgres janitor skipped a sweep", "target", name, "err", err)
		return
	}
	dropped, err := issuer.SweepSessions(ctx, func(role string) ca.Verdict {
		return held.of(strings.TrimPrefix(role, capg.RolePrefix))
	})
	if err != nil {
		d.log.Warn("postgres janitor", "target", name, "err", err)
	}
	if len(dropped) > 0 {
		d.log.Info("postgres janitor dropped leftover session roles", "target", name, "roles", dropped)
	}
}
