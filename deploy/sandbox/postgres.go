package sandbox

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// postgresReadyTimeout bounds the wait for a fresh cluster to accept
	// logins; it normally takes a fraction of a second.
	postgresReadyTimeout = 30 * time.Second
	// postgresProbeTimeout bounds one readiness login attempt.
	postgresProbeTimeout = 2 * time.Second
	// postgresStartAttempts is how often a start is retried when another
	// process took the free port between choosing and binding it.
	postgresStartAttempts = 3
	// postgresSuperuser is the cluster's bootstrap superuser.
	postgresSuperuser = "postgres"
	// postgresSystemUser runs initdb and postgres when this process is root,
	// which PostgreSQL refuses to run as.
	postgresSystemUser = "postgres"
	// postgresHBA lets every role log in over IPv4 loopback with SCRAM only;
	// per-session roles minted by sallyport log in the same way.
	postgresHBA = "host all all 127.0.0.1/32 scram-sha-256\n" +
		"host replication all 127.0.0.1/32 scram-sha-256\n"
)

// postgresBinDirs is where Debian installs PostgreSQL, one dir per major version.
var postgresBinDirs = "/usr/lib/postgresql/*/bin"

// PostgresOptions configures StartPostgres. The zero value is ready to use.
type PostgresOptions struct {
	// BaseDir is where the sandbox dir is created; zero means /dev/shm when
	// usable (memory, faster), else os.TempDir().
	// Its parents must be traversable by the postgres user when running as root.
	BaseDir string
	// Settings are extra server settings, passed as -c name=value
	// (e.g. "max_connections": "200"); zero adds none.
	Settings map[string]string
}

// Validate reports settings that postgres would refuse or misread.
func (o PostgresOptions) Validate() error {
	for name := range o.Settings {
		if name == "" || strings.ContainsAny(name, "= \t\n") {
			return fmt.Errorf("postgres setting name %q: must be a bare name", name)
		}
	}
	return nil
}

// Postgres is a running throwaway PostgreSQL cluster listening on loopback TCP only.
type Postgres struct {
	// Host is the listen address, always 127.0.0.1.
	Host string
	// Port is the TCP port the server listens on.
	Port int
	// User is the superuser, "postgres".
	User string
	// Password is the superuser's random password (SCRAM-SHA-256).
	Password string
	// Dir holds the cluster (data/) and the server log (postgres.log); Stop removes it.
	Dir string

	proc     *process
	stopOnce sync.Once
	stopErr  error
}

// StartPostgres creates a new cluster in a temp dir and starts postgres on a
// free loopback port, returning once it accepts logins. The cluster is a
// copy of one initdb made once per machine and PostgreSQL build (kept in
// a cache dir next to the sandbox dirs), with its own superuser password.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	bins, err := findPostgres()
	if err != nil {
		return nil, err
	}
	dir, err := makeBaseDir(opts.BaseDir, "sallyport-postgres-*")
	if err != nil {
		return nil, err
	}
	pg := &Postgres{Host: "127.0.0.1", User: postgresSuperuser, Password: randomSecret(), Dir: dir}
	cred, err := pg.initCluster(ctx, bins)
	if err == nil {
		err = pg.serve(ctx, bins, cred, opts.Settings)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return pg, nil
}

// postgresBins are the absolute paths of the programs the sandbox runs.
type postgresBins struct{ initdb, postgres string }

// findPostgres prefers the newest Debian install, then PATH.
func findPostgres() (postgresBins, error) {
	dirs := versionDirs(postgresBinDirs)
	initdb, ok := lookBinary("initdb", dirs...)
	if !ok {
		return postgresBins{}, missing("initdb", postgresBinDirs+" or PATH", "postgresql")
	}
	// postgres sits next to the initdb that was found, as the versions must match.
	server, ok := lookBinary("postgres", filepath.Dir(initdb))
	if !ok {
		return postgresBins{}, missing("postgres", filepath.Dir(initdb), "postgresql")
	}
	return postgresBins{initdb: initdb, postgres: server}, nil
}

// initCluster copies the template cluster, writes pg_hba.conf and sets
// the superuser's password. It returns the credential the server must run
// with (nil when not root).
func (pg *Postgres) initCluster(ctx context.Context, bins postgresBins) (*syscall.Credential, error) {
	cred, err := pg.credential()
	if err != nil {
		return nil, err
	}
	template, err := postgresTemplate(ctx, bins, cred)
	if err != nil {
		return nil, err
	}
	if err := copyTree(ctx, template, pg.dataDir()); err != nil {
		return nil, err
	}
	// WriteFile truncates the existing file, so it stays owned by the server's user.
	if err := os.WriteFile(filepath.Join(pg.dataDir(), "pg_hba.conf"), []byte(postgresHBA), 0o600); err != nil {
		return nil, fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return cred, pg.setSuperuserPassword(ctx, bins, cred)
}

// credential hands the sandbox dir to the postgres system user when root.
func (pg *Postgres) credential() (*syscall.Credential, error) {
	if !isRoot() {
		return nil, nil
	}
	uid, gid, err := systemUser(postgresSystemUser)
	if err != nil {
		return nil, fmt.Errorf("run postgres as its system user (it refuses root): %w", err)
	}
	if err := chownTree(pg.Dir, uid, gid); err != nil {
		return nil, fmt.Errorf("give sandbox dir to %s: %w", postgresSystemUser, err)
	}
	return &syscall.Credential{Uid: uid, Gid: gid}, nil
}

// serve starts postgres on a free port, retrying when the port was taken.
func (pg *Postgres) serve(ctx context.Context, bins postgresBins, cred *syscall.Credential, settings map[string]string) error {
	var err error
	for range postgresStartAttempts {
		if pg.Port, err = FreePort(); err != nil {
			return err
		}
		cmd := exec.Command(bins.postgres, pg.serverArgs(settings)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		logPath := filepath.Join(pg.Dir, "postgres.log")
		if pg.proc, err = startProcess("postgres", cmd, logPath); err != nil {
			return err
		}
		err = pg.proc.waitReady(ctx, postgresReadyTimeout, pg.probe)
		if err == nil {
			return nil
		}
		_ = pg.proc.stop(syscall.SIGQUIT)
		if !strings.Contains(tailOf(logPath), "could not bind") {
			return err
		}
	}
	return err
}

// serverArgs listens on loopback TCP only (no Unix socket) and turns off
// durability, which a throwaway cluster does not need.
func (pg *Postgres) serverArgs(settings map[string]string) []string {
	args := []string{"-D", pg.dataDir(), "-p", strconv.Itoa(pg.Port),
		"-c", "listen_addresses=" + pg.Host, "-c", "unix_socket_directories=",
		"-c", "password_encryption=scram-sha-256",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"}
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "-c", name+"="+settings[name])
	}
	return args
}

// probe logs in once as the superuser.
func (pg *Postgres) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, postgresProbeTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.AdminDSN())
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func (pg *Postgres) dataDir() string { return filepath.Join(pg.Dir, "data") }

// Addr is host:port of the server.
func (pg *Postgres) Addr() string { return net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port)) }

// AdminDSN is a postgres:// URL for the superuser on database postgres,
// password included, for pgx and psql.
func (pg *Postgres) AdminDSN() string { return pg.DSN("postgres") }

// DSN is a postgres:// URL for the superuser on database db.
func (pg *Postgres) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(pg.User, pg.Password),
		Host:     pg.Addr(),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Env is the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD,
// PGSSLMODE) for running psql or pgbench as the superuser without putting
// the password in argv. Append it to os.Environ().
func (pg *Postgres) Env() []string {
	return []string{"PGHOST=" + pg.Host, "PGPORT=" + strconv.Itoa(pg.Port),
		"PGUSER=" + pg.User, "PGPASSWORD=" + pg.Password, "PGSSLMODE=disable"}
}

// CreateDatabase creates database name, owned by the superuser.
func (pg *Postgres) CreateDatabase(ctx context.Context, name string) error {
	return pg.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// Exec runs sql as the superuser in database db, e.g. to create roles and
// sample data for a target.
func (pg *Postgres) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, pg.DSN(db))
	if err != nil {
		return fmt.Errorf("connect to sandbox postgres database %s: %w", db, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("exec in sandbox postgres database %s: %w", db, err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown), then removes Dir. It is safe
// to call more than once.
func (pg *Postgres) Stop() error {
	pg.stopOnce.Do(func() {
		err := pg.proc.stop(syscall.SIGINT)
		if rmErr := os.RemoveAll(pg.Dir); err == nil && rmErr != nil {
			err = fmt.Errorf("remove postgres sandbox dir: %w", rmErr)
		}
		pg.stopErr = err
	})
	return pg.stopErr
}
