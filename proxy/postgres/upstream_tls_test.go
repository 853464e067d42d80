package postgres_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/syncbuf"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/proxy/postgres"
	"github.com/sallyport/sallyport/proxy/tlscert"
)

// TestUpstreamTLS logs in to a target that serves TLS from its own CA:
// verified against that CA the session is encrypted end to end and a
// cancel reaches the backend; verified against another CA the client is
// told why it cannot connect, the log says it too, and the role minted
// for the session is dropped; so too when the target serves no TLS.
func TestUpstreamTLS(t *testing.T) {
	target, files := sandbox.PostgresTLST(t)
	good, err := files.ClientConfig("127.0.0.1")
	require.NoError(t, err)
	wrong, err := sandbox.TLSFilesT(t).ClientConfig("127.0.0.1")
	require.NoError(t, err)

	t.Run("verified", func(t *testing.T) {
		e, _ := newTLSEnv(t, target, good)
		ctx := context.Background()
		conn := e.pgxCancelling(t, okIdentity, e.token(okIdentity))
		var ssl bool
		var role string
		require.NoError(t, conn.QueryRow(ctx, "SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &role))
		assert.True(t, ssl, "the target sees an encrypted session")
		assert.Regexp(t, `^sp_`, role)

		took, err := e.sleepCancelled(t, conn)
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "got %v, want query_canceled", err)
		assert.Equal(t, "57014", pgErr.Code, "the cancel reached the backend over TLS")
		assert.Less(t, took, 2*time.Second)
		require.NoError(t, conn.Close(ctx))
		e.waitNoRoles(t, 5*time.Second)
	})

	t.Run("wrong CA", func(t *testing.T) {
		e, roles := newTLSEnv(t, target, wrong)
		_, err := e.connectPgx(okIdentity, e.token(okIdentity))
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "got %v, want the bastion's FATAL", err)
		assert.Equal(t, "08006", pgErr.Code)
		assert.Contains(t, pgErr.Message, "cannot connect securely to target analytics")
		assert.Contains(t, pgErr.Message, "certificate signed by unknown authority")
		assert.Contains(t, pgErr.Message, "tls.ca_file", "the message says what to check")
		assert.Contains(t, e.logs.String(), "certificate signed by unknown authority", "the log says why")

		assert.Equal(t, 1, roles.created(), "the role was minted before the login")
		e.waitNoRoles(t, 5*time.Second)
	})

	t.Run("target without TLS", func(t *testing.T) {
		e, roles := newTLSEnv(t, sandbox.PostgresTargetT(t), good)
		_, err := e.connectPgx(okIdentity, e.token(okIdentity))
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "got %v, want the bastion's FATAL", err)
		assert.Equal(t, "08006", pgErr.Code)
		assert.Contains(t, pgErr.Message, "cannot connect securely to target analytics: the target does not accept TLS")
		assert.Equal(t, 1, roles.created())
		e.waitNoRoles(t, 5*time.Second)
	})
}

// newTLSEnv is newEnv in front of target, logging in to it with tlsCfg;
// roles counts the roles minted. The log is kept in e.logs.
func newTLSEnv(t *testing.T, target *sandbox.PostgresTarget, tlsCfg *tls.Config) (*tlsEnv, *countingRoles) {
	t.Helper()
	e := &tlsEnv{env: &env{t: t, target: target, opened: &openLog{}}}
	ctx := context.Background()
	var err error
	e.admin, err = pgxpool.New(ctx, target.AdminDSN())
	require.NoError(t, err)
	t.Cleanup(e.admin.Close)
	e.issuer = &capg.Issuer{DB: e.admin}
	e.newRegistry(t)
	e.newRecorder(t)
	e.live = &proxy.Live{Gate: e.reg, Recheck: 500 * time.Millisecond}

	connCfg, err := pgconn.ParseConfig(target.AdminDSN())
	require.NoError(t, err)
	connCfg.TLSConfig, connCfg.Fallbacks = tlsCfg, nil
	roles := &countingRoles{Roles: e.issuer}
	pgTarget := &postgres.Target{Name: targetName, Database: target.Database, Conn: connCfg, Roles: roles}
	dir := t.TempDir()
	cert, _, err := tlscert.LoadOrCreate(filepath.Join(dir, "pg.crt"), filepath.Join(dir, "pg.key"), tlscert.ParseNames("localhost"), time.Now())
	require.NoError(t, err)
	e.srv = &postgres.Server{
		Gate: e.reg, Live: e.live, Recorder: recorderFunc(e.open),
		Targets:   func(name string) (*postgres.Target, bool) { return pgTarget, name == targetName },
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Logger:    slog.New(slog.NewTextHandler(&e.logs, nil)),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr = ln.Addr().(*net.TCPAddr)
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, e.srv.Shutdown(ctx))
		require.ErrorIs(t, <-done, postgres.ErrServerClosed)
	})
	return e, roles
}

type tlsEnv struct {
	*env
	logs syncbuf.Buffer
}

// connectPgx tries a pgx login through the bastion and returns its error.
func (e *tlsEnv) connectPgx(identity, token string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = "127.0.0.1", uint16(e.addr.Port), identity, token, targetName
	cfg.TLSConfig, cfg.Fallbacks = &tls.Config{InsecureSkipVerify: true}, nil
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err == nil {
		e.t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

// countingRoles counts the roles a target mints.
type countingRoles struct {
	postgres.Roles
	mu sync.Mutex
	n  int
}

func (r *countingRoles) Create(ctx context.Context, sessionID, grant string, validUntil time.Time) (*capg.Role, error) {
	role, err := r.Roles.Create(ctx, sessionID, grant, validUntil)
	if err == nil {
		r.mu.Lock()
		r.n++
		r.mu.Unlock()
	}
	return role, err
}

func (r *countingRoles) created() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
