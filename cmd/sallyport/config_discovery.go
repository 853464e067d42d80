package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"time"

	"github.com/sallyport/sallyport/ca"
	camysql "github.com/sallyport/sallyport/ca/mysql"
	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/discover"
)

// minDiscoveryInterval keeps a scheduled discovery from hammering the
// targets' catalogues and sshds.
const minDiscoveryInterval = time.Minute

// DiscoveryConfig is the discovery block: when serve discovers the
// targets' standing access, and how.
type DiscoveryConfig struct {
	// Interval is how often the leading replica discovers every target.
	// Zero: serve does not discover (iga discover still does); at least 1m.
	Interval Duration `yaml:"interval"`
	// Timeout bounds the discovery of one target. Zero: 30s.
	Timeout Duration `yaml:"timeout"`
	// AuthorizedKeysFile is where SSH targets keep an account's keys, as
	// sshd's AuthorizedKeysFile (%h home, %u login). Empty:
	// %h/.ssh/authorized_keys.
	AuthorizedKeysFile string `yaml:"authorized_keys_file"`
}

var unixLoginRE = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)

// validateDiscovery checks the discovery block and the targets'
// discovery_login.
func (c *Config) validateDiscovery(add func(string, ...any)) {
	d := c.Discovery
	if d.Interval != 0 && d.Interval.D() < minDiscoveryInterval {
		add("discovery.interval %s: want 0 (off) or at least %s", d.Interval.D(), minDiscoveryInterval)
	}
	if _, err := discover.Script(d.AuthorizedKeysFile, discover.DefaultKeysFileCap); err != nil {
		add("discovery.authorized_keys_file: %v", err)
	}
	for i, t := range c.Targets {
		switch {
		case t.DiscoveryLogin == "":
		case t.Kind != "ssh":
			add("targets[%d] (%s).discovery_login: only ssh targets have one; database targets are discovered through admin_dsn_env", i, t.Name)
		case !unixLoginRE.MatchString(t.DiscoveryLogin):
			add("targets[%d] (%s).discovery_login %q: want a Unix login name", i, t.Name, t.DiscoveryLogin)
		}
	}
}

// discoveryTargets builds a discovery source for each configured target
// (only the named one when target is set) and returns a func that closes
// the admin connections they opened. A target that cannot be discovered
// as configured gets a source that says why.
func discoveryTargets(cfg *Config, target string) ([]discover.Target, func(), error) {
	var out []discover.Target
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for _, tc := range cfg.Targets {
		if target != "" && tc.Name != target {
			continue
		}
		src, closer, err := discoverySource(cfg, tc)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if closer != nil {
			closers = append(closers, closer)
		}
		out = append(out, discover.Target{Name: tc.Name, Kind: tc.Kind, Source: src})
	}
	if target != "" && len(out) == 0 {
		return nil, nil, usageErrorf("--target %s: no such target in the config", target)
	}
	return out, closeAll, nil
}

// discoverySource is the discovery source of one target: over SSH, or
// through a database target's admin connection. A kind discovery does not
// know gets a source that says so, never another kind's.
func discoverySource(cfg *Config, tc TargetConfig) (discover.Source, func(), error) {
	switch tc.Kind {
	case "ssh":
		src, err := sshDiscoverySource(cfg, tc)
		return src, nil, err
	case "postgres", "mysql":
	default:
		return discover.Failed{Why: fmt.Sprintf("targets of kind %q cannot be discovered", tc.Kind)}, nil, nil
	}
	dsn := os.Getenv(tc.AdminDSNEnv)
	if dsn == "" {
		return discover.Failed{Why: fmt.Sprintf("no admin DSN: admin_dsn_env %q is unset or empty", tc.AdminDSNEnv)}, nil, nil
	}
	if tc.Kind == "postgres" {
		return postgresDiscoverySource(tc, dsn)
	}
	return mysqlDiscoverySource(tc, dsn)
}

// pgAdmin is what discovery needs of a postgres target's admin
// connection: catalogue queries, then Close (*pgxpool.Pool has both).
type pgAdmin interface {
	discover.PGQuerier
	Close()
}

// mysqlAdmin is what discovery needs of a mysql target's admin
// connection (*sql.DB has it).
type mysqlAdmin interface {
	discover.MySQLQuerier
	Close() error
}

// postgresDiscoverySource opens the admin pool as sessions do
// (postgresTarget: the target's address, database and tls block) and
// discovers through its role issuer's connection.
func postgresDiscoverySource(tc TargetConfig, dsn string) (discover.Source, func(), error) {
	t, err := postgresTarget(tc, dsn)
	if err != nil {
		return nil, nil, err
	}
	if issuer, ok := t.Roles.(*capg.Issuer); ok {
		if db, ok := issuer.DB.(pgAdmin); ok {
			return &discover.Postgres{DB: db}, db.Close, nil
		}
	}
	return nil, nil, fmt.Errorf("target %s: discovery needs the admin connection of its role issuer, and %T has none it can query and close", tc.Name, t.Roles)
}

// mysqlDiscoverySource is postgresDiscoverySource for a mysql target.
func mysqlDiscoverySource(tc TargetConfig, dsn string) (discover.Source, func(), error) {
	t, err := mysqlTarget(tc, dsn)
	if err != nil {
		return nil, nil, err
	}
	if issuer, ok := t.Users.(*camysql.Issuer); ok {
		if db, ok := issuer.DB.(mysqlAdmin); ok {
			return &discover.MySQL{DB: db}, func() { db.Close() }, nil
		}
	}
	return nil, nil, fmt.Errorf("target %s: discovery needs the admin connection of its user issuer, and %T has none it can query and close", tc.Name, t.Users)
}

// sshDiscoverySource logs in as the target's discovery_login with a
// certificate of the bastion's user CA, which discovery never creates: a
// CA no target trusts yet would only fail later.
func sshDiscoverySource(cfg *Config, tc TargetConfig) (discover.Source, error) {
	if tc.DiscoveryLogin == "" {
		return discover.Failed{Why: "no discovery_login configured for this ssh target"}, nil
	}
	path := caKeyPathSSHUser(cfg)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return discover.Failed{Why: fmt.Sprintf("no ssh user ca key at %s yet (serve creates it)", path)}, nil
	}
	key, err := ca.LoadOrCreateKey(path)
	if err != nil {
		return nil, fmt.Errorf("load ssh user ca: %w", err)
	}
	targets, err := sshTargets(cfg)
	if err != nil {
		return nil, err
	}
	t := targets[tc.Name]
	return &discover.SSH{Address: tc.Address, HostKeys: t.HostKeys, HostCA: t.HostCA, Login: tc.DiscoveryLogin,
		CA:       &ca.SSHUserCA{Key: key, TTL: cfg.SSH.CertTTL.D(), SourceAddress: cfg.SSH.SourceAddress},
		KeysFile: cfg.Discovery.AuthorizedKeysFile}, nil
}
