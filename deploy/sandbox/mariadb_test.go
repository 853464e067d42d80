package sandbox

import (
	"database/sql"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mariadbClient runs the real mariadb client; the password travels in
// MYSQL_PWD, never in argv. An empty socket means TCP to m.
func mariadbClient(t *testing.T, m *MariaDB, socket, user, password, db, query string) (string, error) {
	t.Helper()
	bin, ok := lookFirst([]string{"mariadb", "mysql"}, mariadbSearch)
	if !ok {
		Need(t, missing("mariadb", "PATH", "mariadb-client"))
	}
	args := []string{"--no-defaults", "-N", "-B", "--connect-timeout=5", "-u", user}
	if socket != "" {
		args = append(args, "-S", socket)
	} else {
		args = append(args, "--protocol=TCP", "-h", m.Host, "-P", strconv.Itoa(m.Port))
	}
	if db != "" {
		args = append(args, "-D", db)
	}
	cmd := exec.Command(bin, append(args, "-e", query)...)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMariaDB(t *testing.T) {
	ctx := ctxT(t)
	m, err := timed(t, "mariadb", func() (*MariaDB, error) { return StartMariaDB(ctx, MariaDBOptions{}) })
	Need(t, err)
	t.Cleanup(func() { _ = m.Stop() })
	dumpLogOnFailure(t, m.proc.logPath)

	require.NoError(t, m.CreateDatabase(ctx, "shop"))
	require.NoError(t, m.Exec(ctx, "shop", "CREATE TABLE t (v INT); INSERT INTO t VALUES (40), (2);"+
		"CREATE USER 'app'@'%' IDENTIFIED BY 'app-secret'; GRANT SELECT ON shop.* TO 'app'@'%'"))

	tests := []struct {
		name, socket, user, password, db, query string
		want                                    string
		wantErr                                 bool
	}{
		{name: "admin logs in over TCP", user: m.User, password: m.Password, query: "SELECT CURRENT_USER()", want: "admin@%"},
		{name: "binds loopback only", user: m.User, password: m.Password, query: "SELECT @@bind_address", want: "127.0.0.1"},
		{name: "created database holds data", user: m.User, password: m.Password, db: "shop", query: "SELECT SUM(v) FROM t", want: "42"},
		{name: "new user logs in", user: "app", password: "app-secret", db: "shop", query: "SELECT COUNT(*) FROM t", want: "2"},
		{name: "wrong password is refused", user: "app", password: "wrong", query: "SELECT 1", wantErr: true},
		{name: "root without password is refused over TCP", user: "root", query: "SELECT 1", wantErr: true},
		{name: "root is refused on the socket", socket: m.Socket(), user: "root", query: "SELECT 1", wantErr: true},
		{name: "anonymous is refused", user: "", query: "SELECT 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := mariadbClient(t, m, tt.socket, tt.user, tt.password, tt.db, tt.query)
			if tt.wantErr {
				assert.Error(t, err, "mariadb: got output %q, want a refused login", out)
				assert.Contains(t, out, "Access denied")
				return
			}
			require.NoError(t, err, "mariadb output: %s", out)
			assert.Equal(t, tt.want, lines(out)[0], "mariadb %q: got %q, want %q", tt.query, out, tt.want)
		})
	}

	t.Run("mariadb client connects with ClientArgs and Env", func(t *testing.T) {
		bin, ok := lookFirst([]string{"mariadb", "mysql"}, mariadbSearch)
		require.True(t, ok, "mariadb client not found")
		args := append([]string{"--no-defaults", "-N", "-B"}, m.ClientArgs()...)
		cmd := exec.Command(bin, append(args, "-e", "SELECT CURRENT_USER()")...)
		cmd.Env = append(os.Environ(), m.Env()...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "mariadb output: %s", out)
		assert.Equal(t, "admin@%", lines(string(out))[0], "mariadb with ClientArgs: got %q, want admin@%%", out)
	})

	t.Run("no password hash is left on disk", func(t *testing.T) {
		_, err := os.Stat(m.initFile())
		assert.True(t, os.IsNotExist(err), "init file %s after start: got %v, want it removed", m.initFile(), err)
	})

	t.Run("go-sql-driver connects with AdminDSN", func(t *testing.T) {
		db, err := sql.Open("mysql", m.AdminDSN())
		require.NoError(t, err)
		defer db.Close()
		var user string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&user))
		assert.Equal(t, "admin@%", user, "CURRENT_USER(): got %q, want %q", user, "admin@%")
	})

	logIfFailed(t, m.proc.logPath)
	t.Run("stop leaves nothing behind", func(t *testing.T) {
		pgid, addr, dir := m.proc.pid(), m.Addr(), m.Dir
		require.NoError(t, m.Stop())
		assertGone(t, pgid, addr, dir)
	})
}

func TestMariaDBOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    MariaDBOptions
		wantErr bool
	}{
		{name: "zero value", opts: MariaDBOptions{}},
		{name: "plain option", opts: MariaDBOptions{Settings: map[string]string{"max_connections": "400"}}},
		{name: "dashed name", opts: MariaDBOptions{Settings: map[string]string{"--skip-grant-tables": ""}}, wantErr: true},
		{name: "name with equals", opts: MariaDBOptions{Settings: map[string]string{"a=b": "1"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			assert.Equal(t, tt.wantErr, err != nil, "Validate: got %v, want error %v", err, tt.wantErr)
		})
	}
}

// Servers are copies of one cached template: each must still have its own
// admin password and data.
func TestMariaDBServersAreIndependent(t *testing.T) {
	ctx := ctxT(t)
	var ms [2]*MariaDB
	var errs [2]error
	var wg sync.WaitGroup
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms[i], errs[i] = StartMariaDB(ctx, MariaDBOptions{})
		}()
	}
	wg.Wait()
	for i := range ms {
		if ms[i] != nil {
			t.Cleanup(func() { _ = ms[i].Stop() })
		}
		Need(t, errs[i])
	}
	a, b := ms[0], ms[1]
	assert.NotEqual(t, a.Password, b.Password, "admin passwords: got the same for both servers, want each its own")
	require.NoError(t, a.CreateDatabase(ctx, "only_in_a"))

	out, err := mariadbClient(t, b, "", b.User, a.Password, "", "SELECT 1")
	assert.Error(t, err, "server b with server a's password: got %q, want a refused login", out)
	out, err = mariadbClient(t, b, "", b.User, b.Password, "", "SHOW DATABASES LIKE 'only_in_a'")
	require.NoError(t, err, "mariadb output: %s", out)
	assert.Empty(t, strings.TrimSpace(out), "databases of server a seen in server b: got %q, want none", out)
}
