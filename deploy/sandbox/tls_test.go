package sandbox

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTLSServers: the sandbox PostgreSQL and MariaDB started with TLS
// settings serve TLS that verifies against their own CA, not another one.
func TestTLSServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other := TLSFilesT(t)
	t.Run("postgres", func(t *testing.T) {
		target, files := PostgresTLST(t)
		cfg, err := pgx.ParseConfig(target.AdminDSN())
		require.NoError(t, err)
		cfg.TLSConfig, err = files.ClientConfig("127.0.0.1")
		require.NoError(t, err)
		conn, err := pgx.ConnectConfig(ctx, cfg)
		require.NoError(t, err, "verify-full against the sandbox CA")
		var ssl bool
		require.NoError(t, conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl))
		assert.True(t, ssl, "the connection is encrypted")
		require.NoError(t, conn.Close(ctx))

		cfg.TLSConfig, err = other.ClientConfig("127.0.0.1")
		require.NoError(t, err)
		_, err = pgx.ConnectConfig(ctx, cfg)
		require.ErrorContains(t, err, "certificate signed by unknown authority", "another CA must not verify it")
	})
	t.Run("mariadb", func(t *testing.T) {
		target, files := MariaDBTLST(t)
		cfg, err := mysql.ParseDSN(target.AdminDSN())
		require.NoError(t, err)
		cfg.TLS, err = files.ClientConfig("127.0.0.1")
		require.NoError(t, err)
		var name, cipher string
		require.NoError(t, queryOnce(ctx, cfg, "SHOW SESSION STATUS LIKE 'Ssl_cipher'", &name, &cipher))
		assert.NotEmpty(t, cipher, "the connection is encrypted")

		cfg.TLS, err = other.ClientConfig("127.0.0.1")
		require.NoError(t, err)
		err = queryOnce(ctx, cfg, "SELECT 1", new(int))
		require.ErrorContains(t, err, "certificate signed by unknown authority", "another CA must not verify it")
	})
}

func queryOnce(ctx context.Context, cfg *mysql.Config, q string, dest ...any) error {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	return db.QueryRowContext(ctx, q).Scan(dest...)
}
