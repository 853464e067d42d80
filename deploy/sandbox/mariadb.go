package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	// mariadbReadyTimeout bounds the wait for mariadbd to accept logins; it
	// normally takes under a second on a fresh datadir.
	mariadbReadyTimeout = 30 * time.Second
	// mariadbProbeTimeout bounds one readiness login attempt.
	mariadbProbeTimeout = 2 * time.Second
	// mariadbStartAttempts is how often a start is retried when another
	// process took the free port between choosing and binding it.
	mariadbStartAttempts = 3
	// mariadbAdmin is the account with all privileges, reachable over TCP.
	mariadbAdmin = "admin"
)

// mariadbSearch is where the server and its installer are looked for before PATH.
var mariadbSearch = []string{"/usr/sbin", "/usr/bin"}

// MariaDBOptions configures StartMariaDB. The zero value is ready to use.
type MariaDBOptions struct {
	// BaseDir is where the sandbox dir is created; zero means /dev/shm when
	// usable (memory, faster), else os.TempDir().
	BaseDir string
	// Settings are extra server options, passed as --name=value
	// (e.g. "max_connections": "300"); zero adds none.
	Settings map[string]string
}

// Validate reports option names mariadbd would misread.
func (o MariaDBOptions) Validate() error {
	for name := range o.Settings {
		if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(name, "= \t\n") {
			return fmt.Errorf("mariadb setting name %q: must be a bare option name", name)
		}
	}
	return nil
}

// MariaDB is a running throwaway MariaDB server listening on loopback TCP
// (and a Unix socket in Dir).
type MariaDB struct {
	// Host is the listen address, always 127.0.0.1.
	Host string
	// Port is the TCP port the server listens on.
	Port int
	// User is the admin account with all privileges, "admin"; no root
	// or anonymous account exists.
	User string
	// Password is the admin account's random password.
	Password string
	// Dir holds the datadir (data/), the socket and the log (mariadb.log); Stop removes it.
	Dir string

	proc     *process
	stopOnce sync.Once
	stopErr  error
}

// StartMariaDB creates a datadir in a temp dir and starts mariadbd on a free
// loopback port, returning once it accepts logins. The datadir is a copy of
// one mariadb-install-db made once per machine and MariaDB build (kept in a
// cache dir next to the sandbox dirs); the admin gets its own password
// through an init file the server runs before it serves any login.
func StartMariaDB(ctx context.Context, opts MariaDBOptions) (*MariaDB, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("start mariadb: %w", err)
	}
	bins, err := findMariaDB()
	if err != nil {
		return nil, err
	}
	dir, err := makeBaseDir(opts.BaseDir, "sallyport-mariadb-*")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Host: "127.0.0.1", User: mariadbAdmin, Password: randomSecret(), Dir: dir}
	err = m.prepare(ctx, bins)
	if err == nil {
		err = m.serve(ctx, bins.server, opts.Settings)
	}
	// The init file holds a password hash and has been read by now.
	os.Remove(m.initFile())
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return m, nil
}

// mariadbBins are the absolute paths of the programs the sandbox runs.
type mariadbBins struct{ install, server string }

// findMariaDB looks for the installer and the server under both their
// MariaDB and their older MySQL names.
func findMariaDB() (mariadbBins, error) {
	var b mariadbBins
	var ok bool
	if b.install, ok = lookFirst([]string{"mariadb-install-db", "mysql_install_db"}, mariadbSearch); !ok {
		return b, missing("mariadb-install-db", strings.Join(mariadbSearch, ", ")+" or PATH", "mariadb-server")
	}
	if b.server, ok = lookFirst([]string{"mariadbd", "mysqld"}, mariadbSearch); !ok {
		return b, missing("mariadbd", strings.Join(mariadbSearch, ", ")+" or PATH", "mariadb-server")
	}
	return b, nil
}

// lookFirst returns the first of names that lookBinary finds.
func lookFirst(names, dirs []string) (string, bool) {
	for _, n := range names {
		if p, ok := lookBinary(n, dirs...); ok {
			return p, true
		}
	}
	return "", false
}

// mariadbUserArgs lets mariadbd run as root, which it otherwise refuses.
func mariadbUserArgs() []string {
	if isRoot() {
		return []string{"--user=root"}
	}
	return nil
}

// serve starts mariadbd on a free port, retrying when the port was taken.
func (m *MariaDB) serve(ctx context.Context, bin string, settings map[string]string) error {
	var err error
	for range mariadbStartAttempts {
		if m.Port, err = FreePort(); err != nil {
			return err
		}
		logPath := filepath.Join(m.Dir, "mariadb.log")
		if m.proc, err = startProcess("mariadbd", exec.Command(bin, m.serverArgs(settings)...), logPath); err != nil {
			return err
		}
		if err = m.proc.waitReady(ctx, mariadbReadyTimeout, m.probe); err == nil {
			return nil
		}
		_ = m.proc.stop(syscall.SIGKILL)
		if !strings.Contains(tailOf(logPath), "Address already in use") {
			return err
		}
	}
	return err
}

// serverArgs binds loopback only and trades durability and features for
// start-up speed and a small footprint.
func (m *MariaDB) serverArgs(settings map[string]string) []string {
	args := append([]string{"--no-defaults", "--datadir=" + m.dataDir(),
		"--port=" + strconv.Itoa(m.Port), "--bind-address=" + m.Host,
		"--socket=" + m.Socket(), "--pid-file=" + filepath.Join(m.Dir, "mariadbd.pid"),
		"--tmpdir=" + m.tmpDir(), "--init-file=" + m.initFile(), "--skip-name-resolve", "--skip-log-bin", "--performance-schema=OFF",
		"--innodb-buffer-pool-size=8M", "--innodb-log-file-size=8M",
		"--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
		"--max-connections=300"}, mariadbUserArgs()...)
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "--"+name+"="+settings[name])
	}
	return args
}

// probe logs in once as the admin over TCP.
func (m *MariaDB) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, mariadbProbeTimeout)
	defer cancel()
	db, err := sql.Open("mysql", m.AdminDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

func (m *MariaDB) dataDir() string  { return filepath.Join(m.Dir, "data") }
func (m *MariaDB) initFile() string { return filepath.Join(m.Dir, "init.sql") }

// tmpDir is the server's own temp dir: servers sharing /tmp clash over
// temporary table file names while bootstrapping.
func (m *MariaDB) tmpDir() string { return filepath.Join(m.Dir, "tmp") }

// Socket is the path of the server's Unix socket.
func (m *MariaDB) Socket() string { return filepath.Join(m.Dir, "mariadb.sock") }

// Addr is host:port of the server.
func (m *MariaDB) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// AdminDSN is a go-sql-driver/mysql DSN for the admin over TCP with no
// default database, e.g. admin:PASSWORD@tcp(127.0.0.1:PORT)/.
func (m *MariaDB) AdminDSN() string { return m.DSN("") }

// DSN is a go-sql-driver/mysql DSN for the admin on database db.
func (m *MariaDB) DSN(db string) string { return m.config(db).FormatDSN() }

// config is the driver configuration for the admin over TCP on database db.
func (m *MariaDB) config(db string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = m.User, m.Password
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", m.Addr(), db
	return cfg
}

// ClientArgs are the mariadb client flags that reach the server as the
// admin over TCP; the password goes in Env, never in argv.
func (m *MariaDB) ClientArgs() []string {
	return []string{"--protocol=TCP", "-h", m.Host, "-P", strconv.Itoa(m.Port), "-u", m.User}
}

// Env carries the admin password (MYSQL_PWD) for the mariadb client.
// Append it to os.Environ().
func (m *MariaDB) Env() []string { return []string{"MYSQL_PWD=" + m.Password} }

// CreateDatabase creates database name.
func (m *MariaDB) CreateDatabase(ctx context.Context, name string) error {
	return m.Exec(ctx, "", "CREATE DATABASE "+quoteMySQLIdent(name))
}

// quoteMySQLIdent quotes an identifier with backticks.
func quoteMySQLIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Exec runs one or more statements as the admin in database db ("" for
// none), e.g. to create users and sample data for a target.
func (m *MariaDB) Exec(ctx context.Context, db, sqlText string) error {
	cfg := m.config(db)
	cfg.MultiStatements = true
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("configure sandbox mariadb connection: %w", err)
	}
	sqlDB := sql.OpenDB(conn)
	defer sqlDB.Close()
	if _, err := sqlDB.ExecContext(ctx, sqlText); err != nil {
		return fmt.Errorf("exec in sandbox mariadb database %q: %w", db, err)
	}
	return nil
}

// Stop shuts the server down, then removes Dir. It is safe to call more
// than once.
func (m *MariaDB) Stop() error {
	m.stopOnce.Do(func() {
		err := m.proc.stop(syscall.SIGTERM)
		if rmErr := os.RemoveAll(m.Dir); err == nil && rmErr != nil {
			err = fmt.Errorf("remove mariadb sandbox dir: %w", rmErr)
		}
		m.stopErr = err
	})
	return m.stopErr
}
