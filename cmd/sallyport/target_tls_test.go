package main

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/deploy/sandbox"
)

func TestTargetTLSConfig(t *testing.T) {
	files := sandbox.TLSFilesT(t)
	for _, tc := range []struct {
		name     string
		cfg      TargetTLSConfig
		host     string
		wantNil  bool   // plaintext
		wantSkip bool   // encrypted without verifying
		wantName string // verify-full's expected name
		wantCA   bool   // roots from ca_file
		wantErr  string
	}{
		{name: "default off loopback verifies", host: "db.internal", wantName: "db.internal"},
		{name: "default on loopback is plaintext", host: "127.0.0.1", wantNil: true},
		{name: "default on localhost is plaintext", host: "localhost", wantNil: true},
		{name: "default on ::1 is plaintext", host: "::1", wantNil: true},
		{name: "disable", cfg: TargetTLSConfig{Mode: "disable"}, host: "db.internal", wantNil: true},
		{name: "require", cfg: TargetTLSConfig{Mode: "require"}, host: "db.internal", wantSkip: true},
		{name: "verify-full on loopback", cfg: TargetTLSConfig{Mode: "verify-full", CAFile: files.CAFile}, host: "127.0.0.1",
			wantName: "127.0.0.1", wantCA: true},
		{name: "server name", cfg: TargetTLSConfig{Mode: "verify-full", ServerName: "pg.example"}, host: "10.0.0.5", wantName: "pg.example"},
		{name: "ca_file alone on loopback", cfg: TargetTLSConfig{CAFile: files.CAFile}, host: "127.0.0.1",
			wantErr: "tls.ca_file is set but tls.mode is disable"},
		{name: "ca_file with require", cfg: TargetTLSConfig{Mode: "require", CAFile: files.CAFile}, host: "db",
			wantErr: "tls.ca_file is set but tls.mode is require"},
		{name: "missing ca_file", cfg: TargetTLSConfig{Mode: "verify-full", CAFile: files.Dir + "/nope.crt"}, host: "db",
			wantErr: "tls.ca_file: open"},
		{name: "ca_file without a certificate", cfg: TargetTLSConfig{Mode: "verify-full", CAFile: files.KeyFile}, host: "db",
			wantErr: "no PEM certificate in it"},
		{name: "unknown mode", cfg: TargetTLSConfig{Mode: "prefer"}, host: "db", wantErr: `tls.mode "prefer": want disable, require or verify-full`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.clientConfig(tc.host)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.wantNil {
				assert.Nil(t, got, "want plaintext")
				return
			}
			require.NotNil(t, got, "want TLS")
			assert.Equal(t, tc.wantSkip, got.InsecureSkipVerify, "InsecureSkipVerify")
			if !tc.wantSkip {
				assert.Equal(t, tc.wantName, got.ServerName)
				assert.Equal(t, tc.wantCA, got.RootCAs != nil, "roots from ca_file")
			}
		})
	}
}

// TestTargetTLSWiring builds postgres and mysql targets from config as
// serve does, against sandbox servers serving TLS from their own CA: with
// tls.ca_file naming that CA the admin pool is encrypted and sessions get
// the same config; naming another CA, the admin pool cannot connect.
func TestTargetTLSWiring(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other := sandbox.TLSFilesT(t)
	t.Run("postgres", func(t *testing.T) {
		target, files := sandbox.PostgresTLST(t)
		tc := TargetConfig{Name: "analytics", Kind: "postgres", Address: target.Addr(), Database: target.Database,
			AdminDSNEnv: "X", TLS: TargetTLSConfig{Mode: "verify-full", CAFile: files.CAFile}}
		pt, err := postgresTarget(tc, target.AdminDSN()) // its DSN says sslmode=disable: the tls block wins
		require.NoError(t, err)
		pool := pt.Roles.(*capg.Issuer).DB.(*pgxpool.Pool)
		t.Cleanup(pool.Close)
		require.NotNil(t, pt.Conn.TLSConfig, "sessions log in over TLS")
		assert.Empty(t, pt.Conn.Fallbacks, "no plaintext fallback")
		var ssl bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl))
		assert.True(t, ssl, "the admin connection is encrypted")

		tc.TLS.CAFile = other.CAFile
		pt, err = postgresTarget(tc, target.AdminDSN())
		require.NoError(t, err)
		pool = pt.Roles.(*capg.Issuer).DB.(*pgxpool.Pool)
		t.Cleanup(pool.Close)
		require.ErrorContains(t, pool.Ping(ctx), "certificate signed by unknown authority")
	})
	t.Run("mysql", func(t *testing.T) {
		target, files := sandbox.MariaDBTLST(t)
		tc := TargetConfig{Name: "billing", Kind: "mysql", Address: target.Addr(), Database: target.Database,
			AdminDSNEnv: "X", TLS: TargetTLSConfig{Mode: "verify-full", CAFile: files.CAFile}}
		mt, err := mysqlTarget(tc, target.AdminDSN()+"?tls=false") // the tls block wins over the DSN
		require.NoError(t, err)
		db := mt.Users.(*camysql.Issuer).DB.(*sql.DB)
		t.Cleanup(func() { db.Close() })
		require.NotNil(t, mt.TLS, "sessions log in over TLS")
		var name, cipher string
		require.NoError(t, db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher))
		assert.NotEmpty(t, cipher, "the admin connection is encrypted")

		tc.TLS.CAFile = other.CAFile
		mt, err = mysqlTarget(tc, target.AdminDSN())
		require.NoError(t, err)
		db = mt.Users.(*camysql.Issuer).DB.(*sql.DB)
		t.Cleanup(func() { db.Close() })
		require.ErrorContains(t, db.PingContext(ctx), "certificate signed by unknown authority")
	})
}
