package discover

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
)

const testTimeout = 30 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func pgPool(t *testing.T, dsn string) *pgxpool.Pool {
	pool, err := pgxpool.New(ctxT(t), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func account(found Found, name string) (iga.DiscoveredAccount, bool) {
	i := slices.IndexFunc(found.Accounts, func(a iga.DiscoveredAccount) bool { return a.Account == name })
	if i < 0 {
		return iga.DiscoveredAccount{}, false
	}
	return found.Accounts[i], true
}

func names(found Found) []string {
	var out []string
	for _, a := range found.Accounts {
		out = append(out, a.Account)
	}
	return out
}

// TestPostgresDiscovery: a LOGIN role made behind sallyport's back is
// found with its attributes; sallyport's per-session roles and its admin
// are not; the admin without superuser cannot tell passwords and says so,
// a superuser can.
func TestPostgresDiscovery(t *testing.T) {
	target := sandbox.PostgresTargetT(t)
	ctx := ctxT(t)
	require.NoError(t, target.Exec(ctx, target.Database, `
CREATE ROLE etl_user LOGIN CREATEROLE PASSWORD 'standing-secret' VALID UNTIL '2999-01-01';
CREATE ROLE reporting LOGIN;
CREATE ROLE sp_0123abcd LOGIN PASSWORD 'x';
CREATE ROLE nologin_group NOLOGIN;`))

	found, err := (&Postgres{DB: pgPool(t, target.AdminDSN())}).Discover(ctx)
	require.NoError(t, err)
	got := names(found)
	assert.Contains(t, got, "etl_user")
	assert.Contains(t, got, "reporting")
	for _, hidden := range []string{"sp_0123abcd", target.Admin, "nologin_group", target.Role} {
		assert.NotContains(t, got, hidden)
	}
	etl, _ := account(found, "etl_user")
	assert.Equal(t, iga.PasswordUnknown, etl.Password, "pg_authid needs superuser")
	assert.Equal(t, []string{"createrole", "valid until 2999-01-01"}, etl.Attributes)
	require.Len(t, found.Notes, 1)
	assert.Contains(t, found.Notes[0], "pg_authid is not readable")

	found, err = (&Postgres{DB: pgPool(t, target.DSN(target.Database))}).Discover(ctx)
	require.NoError(t, err)
	assert.Empty(t, found.Notes)
	etl, _ = account(found, "etl_user")
	assert.Equal(t, iga.PasswordSet, etl.Password)
	rep, _ := account(found, "reporting")
	assert.Equal(t, iga.PasswordNone, rep.Password)
	_, ok := account(found, target.Admin)
	assert.True(t, ok, "sallyport's admin is listed when another login discovers")
}

// TestMySQLDiscovery: accounts made behind sallyport's back are found with
// plugin, password and privileges; per-session users, the admin and roles
// are not; what the admin may not read is noted.
func TestMySQLDiscovery(t *testing.T) {
	target := sandbox.MariaDBTargetT(t)
	ctx := ctxT(t)
	require.NoError(t, target.Exec(ctx, target.Database, `
CREATE USER 'etl'@'%' IDENTIFIED BY 'standing-secret';
GRANT SELECT, INSERT ON *.* TO 'etl'@'%';
CREATE USER 'monitor'@'10.0.0.1';
CREATE USER 'sp_0123abcd'@'%' IDENTIFIED BY 'x';`))
	db, err := sql.Open("mysql", target.AdminDSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })

	found, err := (&MySQL{DB: db}).Discover(ctx)
	require.NoError(t, err)
	got := names(found)
	for _, hidden := range []string{"sp_0123abcd@%", target.Admin + "@%", target.Role + "@"} {
		assert.NotContains(t, got, hidden)
	}
	etl, ok := account(found, "etl@%")
	require.True(t, ok, "found %v", got)
	assert.Equal(t, iga.PasswordSet, etl.Password)
	assert.Equal(t, "etl", etl.Login)
	assert.Contains(t, etl.Attributes, "from any host")
	assert.Contains(t, etl.Attributes, "privileges INSERT, SELECT on *.*")
	mon, ok := account(found, "monitor@10.0.0.1")
	require.True(t, ok)
	assert.Equal(t, iga.PasswordNone, mon.Password)
	assert.Contains(t, mon.Attributes, "privileges USAGE")
	assert.Contains(t, found.Notes, "mysql.db is not readable by the admin login (grant it SELECT on mysql.db): grants on single databases are unknown")
	assert.Contains(t, got, "mariadb.sys@localhost", "locked or not is unknown, so it is listed")
	assert.Contains(t, found.Notes, "mysql.global_priv is not readable by the admin login (grant it SELECT on mysql.global_priv): locked accounts are listed as if they could log in")

	// Given the rights, locked accounts are left out and grants on single
	// databases summarised.
	require.NoError(t, target.Exec(ctx, target.Database, fmt.Sprintf(`
CREATE USER 'parked'@'%%' IDENTIFIED BY 'x' ACCOUNT LOCK;
GRANT SELECT ON %s.* TO 'monitor'@'10.0.0.1';
GRANT SELECT ON mysql.global_priv TO '%s'@'%%';
GRANT SELECT ON mysql.db TO '%s'@'%%';`, target.Database, target.Admin, target.Admin)))
	found, err = (&MySQL{DB: db}).Discover(ctx)
	require.NoError(t, err)
	assert.Empty(t, found.Notes)
	got = names(found)
	assert.NotContains(t, got, "parked@%")
	assert.NotContains(t, got, "mariadb.sys@localhost")
	mon, _ = account(found, "monitor@10.0.0.1")
	assert.Contains(t, mon.Attributes, "privileges USAGE; grants on "+target.Database)
}

// TestDownTargetReported: a target that is down is reported with why,
// and the others are still discovered.
func TestDownTargetReported(t *testing.T) {
	target := sandbox.PostgresTargetT(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	ln.Close() // nothing listens there any more
	downPool, err := pgxpool.New(ctxT(t), "postgres://x:y@"+down+"/db?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(downPool.Close)

	d := &Discoverer{Targets: []Target{
		{Name: "down", Kind: "postgres", Source: &Postgres{DB: downPool}},
		{Name: "analytics", Kind: "postgres", Source: &Postgres{DB: pgPool(t, target.AdminDSN())}},
		{Name: "web-01", Kind: "ssh", Source: Failed{Why: "no discovery_login configured for this ssh target"}},
	}, Timeout: 5 * time.Second}
	res := d.Run(ctxT(t))
	require.Len(t, res, 3)
	assert.False(t, res[0].OK())
	assert.Contains(t, res[0].Error, "connect")
	assert.True(t, res[1].OK(), res[1].Error)
	assert.NotEmpty(t, res[1].Accounts)
	for _, a := range res[1].Accounts {
		assert.Equal(t, "analytics", a.Target)
		assert.Equal(t, res[1].At, a.LastSeen)
	}
	assert.Equal(t, "no discovery_login configured for this ssh target", res[2].Error)
}
