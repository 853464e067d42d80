package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// psql runs the real psql client against pg as user with password in the
// environment (never in argv) and returns its unaligned output.
func psql(t *testing.T, pg *Postgres, user, password, db, sql string) (string, error) {
	t.Helper()
	bins, err := findPostgres()
	require.NoError(t, err)
	bin, ok := lookBinary("psql", filepath.Dir(bins.initdb))
	require.True(t, ok, "psql not found next to %s", bins.initdb)
	cmd := exec.Command(bin, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", user, "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=5")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPostgres(t *testing.T) {
	ctx := ctxT(t)
	pg, err := timed(t, "postgres", func() (*Postgres, error) {
		return StartPostgres(ctx, PostgresOptions{Settings: map[string]string{"max_connections": "50"}})
	})
	Need(t, err)
	t.Cleanup(func() { _ = pg.Stop() })
	dumpLogOnFailure(t, pg.proc.logPath)

	require.NoError(t, pg.Exec(ctx, "postgres", "CREATE ROLE app LOGIN PASSWORD 'app-secret'"))
	require.NoError(t, pg.CreateDatabase(ctx, "target db"))
	require.NoError(t, pg.Exec(ctx, "target db", "CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)"))

	tests := []struct {
		name, user, password, db, sql string
		want                          string
		wantErr                       bool
	}{
		{name: "superuser logs in with psql", user: pg.User, password: pg.Password, db: "postgres", sql: "select current_user", want: "postgres"},
		{name: "passwords are stored as SCRAM", user: pg.User, password: pg.Password, db: "postgres", sql: "show password_encryption", want: "scram-sha-256"},
		{name: "listens on loopback only", user: pg.User, password: pg.Password, db: "postgres", sql: "show listen_addresses", want: "127.0.0.1"},
		{name: "settings are applied", user: pg.User, password: pg.Password, db: "postgres", sql: "show max_connections", want: "50"},
		{name: "created database holds data", user: pg.User, password: pg.Password, db: "target db", sql: "select sum(v) from t", want: "42"},
		{name: "new role logs in with SCRAM", user: "app", password: "app-secret", db: "postgres", sql: "select current_user", want: "app"},
		{name: "wrong password is refused", user: "app", password: "wrong", db: "postgres", sql: "select 1", wantErr: true},
		{name: "wrong superuser password is refused", user: pg.User, password: "wrong", db: "postgres", sql: "select 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := psql(t, pg, tt.user, tt.password, tt.db, tt.sql)
			if tt.wantErr {
				assert.Error(t, err, "psql: got output %q, want a refused login", out)
				assert.Contains(t, out, "password authentication failed")
				return
			}
			require.NoError(t, err, "psql output: %s", out)
			assert.Equal(t, tt.want, lines(out)[0], "psql %q: got %q, want %q", tt.sql, out, tt.want)
		})
	}

	t.Run("psql connects with Env alone", func(t *testing.T) {
		bins, err := findPostgres()
		require.NoError(t, err)
		bin, _ := lookBinary("psql", filepath.Dir(bins.initdb))
		cmd := exec.Command(bin, "-X", "-A", "-t", "-c", "select current_user || '@' || host(inet_server_addr())")
		cmd.Env = append(os.Environ(), pg.Env()...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "psql output: %s", out)
		assert.Equal(t, "postgres@127.0.0.1", lines(string(out))[0], "psql with Env: got %q, want postgres@127.0.0.1", out)
	})

	t.Run("pgx connects with AdminDSN", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, pg.AdminDSN())
		require.NoError(t, err)
		defer conn.Close(context.Background())
		var super bool
		require.NoError(t, conn.QueryRow(ctx, "select rolsuper from pg_roles where rolname = current_user").Scan(&super))
		assert.True(t, super, "AdminDSN role: got rolsuper false, want true")
	})

	logIfFailed(t, pg.proc.logPath)
	t.Run("stop leaves nothing behind", func(t *testing.T) {
		pgid, addr, dir := pg.proc.pid(), pg.Addr(), pg.Dir
		require.NoError(t, pg.Stop())
		assertGone(t, pgid, addr, dir)
		assert.NoError(t, pg.Stop(), "second Stop: got an error, want none")
	})
}

func TestPostgresOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    PostgresOptions
		wantErr bool
	}{
		{name: "zero value", opts: PostgresOptions{}},
		{name: "plain setting", opts: PostgresOptions{Settings: map[string]string{"work_mem": "8MB"}}},
		{name: "name with equals", opts: PostgresOptions{Settings: map[string]string{"a=b": "1"}}, wantErr: true},
		{name: "empty name", opts: PostgresOptions{Settings: map[string]string{"": "1"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			assert.Equal(t, tt.wantErr, err != nil, "Validate: got %v, want error %v", err, tt.wantErr)
		})
	}
}

// Clusters are copies of one cached template: each must still be its own
// server with its own superuser password and data.
func TestPostgresClustersAreIndependent(t *testing.T) {
	ctx := ctxT(t)
	var pgs [2]*Postgres
	var errs [2]error
	var wg sync.WaitGroup
	for i := range pgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pgs[i], errs[i] = StartPostgres(ctx, PostgresOptions{})
		}()
	}
	wg.Wait()
	for i := range pgs {
		if pgs[i] != nil {
			t.Cleanup(func() { _ = pgs[i].Stop() })
		}
		Need(t, errs[i])
	}
	a, b := pgs[0], pgs[1]
	require.NotEqual(t, a.Port, b.Port, "ports: got both %d, want two servers", a.Port)
	assert.NotEqual(t, a.Password, b.Password, "superuser passwords: got the same for both clusters, want each its own")
	require.NoError(t, a.Exec(ctx, "postgres", "CREATE TABLE only_in_a (v int)"))

	out, err := psql(t, b, b.User, a.Password, "postgres", "select 1")
	assert.Error(t, err, "cluster b with cluster a's password: got %q, want a refused login", out)
	out, err = psql(t, b, b.User, b.Password, "postgres", "select count(*) from pg_tables where tablename = 'only_in_a'")
	require.NoError(t, err, "psql output: %s", out)
	assert.Equal(t, "0", lines(out)[0], "tables of cluster a seen in cluster b: got %s, want 0", out)
}
