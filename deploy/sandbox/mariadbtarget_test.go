package sandbox

import (
	"context"
	"database/sql"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMariaDBTarget(t *testing.T) {
	target := MariaDBTargetT(t)
	ctx := context.Background()
	admin, err := sql.Open("mysql", target.AdminDSN())
	require.NoError(t, err)
	defer admin.Close()

	var super string
	require.NoError(t, admin.QueryRowContext(ctx,
		"SELECT Super_priv FROM mysql.user WHERE User = CURRENT_USER() OR CONCAT(User,'@',Host) = CURRENT_USER()").Scan(&super))
	assert.Equal(t, "N", super, "the admin login must not have SUPER")
	_, err = admin.ExecContext(ctx, "SELECT * FROM "+target.Database+".payroll")
	assert.ErrorContains(t, err, "denied", "the admin login must not read the data")

	// A user the admin creates and hands the role sees the sample data and
	// nothing else once it takes the role, which it must do before choosing the
	// database (SET DEFAULT ROLE for another user needs UPDATE on the mysql
	// schema, which the admin does not get).
	for _, q := range []string{
		"CREATE USER 'probe'@'%' IDENTIFIED BY 'probe-pw'",
		"GRANT " + target.Role + " TO 'probe'@'%'",
	} {
		_, err := admin.ExecContext(ctx, q)
		require.NoError(t, err, "as admin: %s", q)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "probe", "probe-pw", "tcp", target.Addr()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	require.NoError(t, err)
	defer db.Close()
	probe, err := db.Conn(ctx)
	require.NoError(t, err)
	defer probe.Close()
	for _, q := range []string{"SET ROLE " + target.Role, "USE " + target.Database} {
		_, err = probe.ExecContext(ctx, q)
		require.NoError(t, err, "as probe: %s", q)
	}
	var n int
	require.NoError(t, probe.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders").Scan(&n))
	assert.Equal(t, MariaDBTargetSampleOrders, n, "got %d orders, want %d", n, MariaDBTargetSampleOrders)
	_, err = probe.ExecContext(ctx, "SELECT * FROM payroll")
	assert.ErrorContains(t, err, "denied", "the entitled role must not read payroll")

	_, err = admin.ExecContext(ctx, "DROP USER 'probe'@'%'")
	require.NoError(t, err, "the admin must drop users")
}
