package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sallyport/sallyport/ca"
	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/proxy/mysql"
)

const (
	// mysqlJanitorTimeout bounds one sweep of one target.
	mysqlJanitorTimeout = 30 * time.Second
	// mysqlAdminConns sizes each target's admin pool: user creation and
	// drop are short statements.
	mysqlAdminConns = 4
)

// mysqlComponent runs the MySQL listener on mysql.listen for the targets
// of kind mysql, and their janitor.
func (d *serveDeps) mysqlComponent() (*component, error) {
	cfg := d.ap.cfg
	targets, err := d.mysqlTargets()
	if err != nil {
		return nil, err
	}
	cert, err := dbListenerCertificate(cfg, "mysql", d.log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.MySQL.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on mysql.listen %s: %w", cfg.MySQL.Listen, err)
	}
	srv := &mysql.Server{
		Gate: d.ap.reg, Live: d.live, Recorder: d.recorder, Logger: d.log.With("proxy", "mysql"),
		Targets:        func(name string) (*mysql.Target, bool) { t, ok := targets[name]; return t, ok },
		TLSConfig:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		AllowPlaintext: !boolOr(cfg.MySQL.RequireTLS, true),
		ProxyProtocol:  cfg.MySQL.ProxyProtocol.settings(),
	}
	return &component{
		name: "mysql",
		run: func(ctx context.Context) error {
			go d.mysqlJanitor(ctx, targets)
			if err := srv.Serve(ctx, ln); !errors.Is(err, mysql.ErrServerClosed) {
				return err
			}
			return nil
		},
		shutdown: srv.Shutdown,
		listener: true,
	}, nil
}

// mysqlTargets builds each mysql target from its config: the admin DSN
// (go-sql-driver format) from the variable admin_dsn_env names, pointed at
// the target's address, with TLS as its tls block says. A target without one is left out (and logged):
// sessions to it are refused.
func (d *serveDeps) mysqlTargets() (map[string]*mysql.Target, error) {
	out := map[string]*mysql.Target{}
	for _, tc := range d.ap.cfg.Targets {
		if tc.Kind != "mysql" {
			continue
		}
		dsn := os.Getenv(tc.AdminDSNEnv)
		if dsn == "" {
			d.log.Error("mysql target has no admin DSN; its sessions are refused",
				"target", tc.Name, "admin_dsn_env", tc.AdminDSNEnv)
			continue
		}
		t, err := mysqlTarget(tc, dsn)
		if err != nil {
			return nil, err
		}
		out[tc.Name] = t
	}
	return out, nil
}

func mysqlTarget(tc TargetConfig, dsn string) (*mysql.Target, error) {
	conf, err := gomysql.ParseDSN(dsn)
	if err != nil {
		// go-sql-driver's parse errors do not quote the DSN.
		return nil, configErrorf("target %s: admin DSN in %s: %v", tc.Name, tc.AdminDSNEnv, err)
	}
	if tc.Address != "" {
		conf.Net, conf.Addr = "tcp", tc.Address
	}
	if conf.Net != "tcp" {
		return nil, configErrorf("target %s: admin DSN in %s: want tcp(host:port), the address sessions use too", tc.Name, tc.AdminDSNEnv)
	}
	host, _, err := net.SplitHostPort(conf.Addr)
	if err != nil {
		return nil, configErrorf("target %s: address %q: want host:port", tc.Name, conf.Addr)
	}
	// The target's tls block decides, for sessions and the admin pool alike.
	tlsCfg, err := tc.TLS.clientConfig(host)
	if err != nil {
		return nil, configErrorf("target %s: %v", tc.Name, err)
	}
	conf.DBName, conf.TLS, conf.TLSConfig, conf.AllowFallbackToPlaintext = "", tlsCfg, "", false
	conn, err := gomysql.NewConnector(conf)
	if err != nil {
		return nil, configErrorf("target %s: admin DSN in %s: %v", tc.Name, tc.AdminDSNEnv, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(mysqlAdminConns)
	return &mysql.Target{Name: tc.Name, Address: conf.Addr, Database: tc.Database, TLS: tlsCfg, Users: &camysql.Issuer{DB: db}}, nil
}

// mysqlJanitor sweeps leftover per-session users from every target at
// start and every cluster.janitor_interval until ctx ends, while this
// replica leads.
func (d *serveDeps) mysqlJanitor(ctx context.Context, targets map[string]*mysql.Target) {
	d.cluster.janitorRounds(ctx, func() {
		for name, t := range targets {
			if issuer, ok := t.Users.(*camysql.Issuer); ok {
				d.sweepMySQL(ctx, name, issuer)
			}
		}
	})
}

// sweepMySQL drops the users of sessions that ended or whose replica is
// gone; without the session index it drops nothing.
func (d *serveDeps) sweepMySQL(ctx context.Context, name string, issuer *camysql.Issuer) {
	ctx, cancel := context.WithTimeout(ctx, mysqlJanitorTimeout)
	defer cancel()
	held, err := d.cluster.sessionHolders(ctx, d.live)
	if err != nil {
		d.log.Warn("mysql janitor skipped a sweep", "target", name, "err", err)
		return
	}
	dropped, err := issuer.SweepSessions(ctx, func(user string) ca.Verdict {
		return held.of(strings.TrimPrefix(user, camysql.UserPrefix))
	})
	if err != nil {
		d.log.Warn("mysql janitor", "target", name, "err", err)
	}
	if len(dropped) > 0 {
		d.log.Info("mysql janitor dropped leftover session users", "target", name, "users", dropped)
	}
}
