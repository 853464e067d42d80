package mysql_test

import (
	"context"
	"crypto/tls"
	"database/sql"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/proxy/mysql"
	"github.com/sallyport/sallyport/proxy/tlscert"
)

// TestUpstreamTLS logs in to a MariaDB target that serves TLS from its own
// CA: verified against that CA the target sees an encrypted session that
// relays text and prepared statements; verified against another CA the
// client is told why it cannot connect, the log says it too, and the user
// minted for the session is dropped; so too when the target serves no TLS.
func TestUpstreamTLS(t *testing.T) {
	target, files := sandbox.MariaDBTLST(t)
	good, err := files.ClientConfig("127.0.0.1")
	require.NoError(t, err)
	wrong, err := sandbox.TLSFilesT(t).ClientConfig("127.0.0.1")
	require.NoError(t, err)

	t.Run("verified", func(t *testing.T) {
		e, users := newTLSEnv(t, target, good)
		db := e.db(t, okIdentity, e.token(okIdentity))
		db.SetMaxOpenConns(1)
		var name, cipher string
		require.NoError(t, db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher))
		assert.NotEmpty(t, cipher, "the target sees an encrypted session")
		var n int
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM orders WHERE id > ?", 990).Scan(&n), "a prepared statement")
		assert.Equal(t, 10, n)
		rows, err := db.Query("SELECT id, customer, amount FROM orders")
		require.NoError(t, err)
		n = 0
		for rows.Next() {
			n++
		}
		require.NoError(t, rows.Err())
		assert.Equal(t, sandbox.MariaDBTargetSampleOrders, n, "a result set spanning many TLS records")

		out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "--ssl", "--ssl-verify-server-cert=0", "-D", targetName,
			"-e", "SELECT VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'")
		require.NoError(t, err, "mariadb: %s", out)
		assert.Equal(t, "1\n", out, "the mariadb client's session is encrypted on the target's side too")
		require.NoError(t, db.Close())
		e.waitNoUsers(t, 5*time.Second)
		assert.Equal(t, 2, users.created())
	})

	t.Run("wrong CA", func(t *testing.T) {
		e, users := newTLSEnv(t, target, wrong)
		out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "--ssl", "--ssl-verify-server-cert=0", "-D", targetName, "-e", "SELECT 1")
		require.Error(t, err, "mariadb: %s", out)
		assert.Contains(t, out, "cannot connect securely to target billing", "the client is told")
		assert.Contains(t, out, "certificate signed by unknown authority")
		assert.Contains(t, out, "tls.ca_file", "the message says what to check")
		assert.Contains(t, e.logs.String(), "certificate signed by unknown authority", "the log says why")

		assert.Equal(t, 1, users.created(), "the user was minted before the login")
		e.waitNoUsers(t, 5*time.Second)
	})

	t.Run("target without TLS", func(t *testing.T) {
		e, users := newTLSEnv(t, sandbox.MariaDBTargetT(t), good)
		out, err := e.mariadb(t, okIdentity, e.token(okIdentity), "", "--ssl", "--ssl-verify-server-cert=0", "-D", targetName, "-e", "SELECT 1")
		require.Error(t, err, "mariadb: %s", out)
		assert.Contains(t, out, "cannot connect securely to target billing: the target does not offer TLS")
		assert.Equal(t, 1, users.created())
		e.waitNoUsers(t, 5*time.Second)
	})
}

// newTLSEnv is newEnv in front of target, logging in to it with tlsCfg;
// users counts the users minted. The log is kept in e.logs.
func newTLSEnv(t *testing.T, target *sandbox.MariaDBTarget, tlsCfg *tls.Config) (*tlsEnv, *countingUsers) {
	t.Helper()
	e := &tlsEnv{env: &env{t: t, target: target, opened: &openLog{}}}
	var err error
	e.admin, err = sql.Open("mysql", target.AdminDSN())
	require.NoError(t, err)
	t.Cleanup(func() { e.admin.Close() })
	e.issuer = &camysql.Issuer{DB: e.admin}
	e.newRegistry(t)
	e.newRecorder(t)
	e.live = &proxy.Live{Gate: e.reg, Recheck: 500 * time.Millisecond}

	users := &countingUsers{Users: e.issuer}
	myTarget := &mysql.Target{Name: targetName, Address: target.Addr(), Database: target.Database, TLS: tlsCfg, Users: users}
	dir := t.TempDir()
	cert, _, err := tlscert.LoadOrCreate(filepath.Join(dir, "my.crt"), filepath.Join(dir, "my.key"), tlscert.ParseNames("localhost"), time.Now())
	require.NoError(t, err)
	e.srv = &mysql.Server{
		Gate: e.reg, Live: e.live, Recorder: recorderFunc(e.open),
		Targets:   func(name string) (*mysql.Target, bool) { return myTarget, name == targetName },
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Logger:    slog.New(slog.NewTextHandler(&e.logs, nil)),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr = ln.Addr().(*net.TCPAddr)
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, e.srv.Shutdown(ctx))
		require.ErrorIs(t, <-done, mysql.ErrServerClosed)
	})
	return e, users
}

type tlsEnv struct {
	*env
	logs syncbuf.Buffer
}

// countingUsers counts the users a target mints.
type countingUsers struct {
	mysql.Users
	mu sync.Mutex
	n  int
}

func (u *countingUsers) Create(ctx context.Context, sessionID, role string) (*camysql.User, error) {
	user, err := u.Users.Create(ctx, sessionID, role)
	if err == nil {
		u.mu.Lock()
		u.n++
		u.mu.Unlock()
	}
	return user, err
}

func (u *countingUsers) created() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}
