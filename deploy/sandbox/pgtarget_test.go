package sandbox

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPostgresTarget(t *testing.T) {
	target := PostgresTargetT(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, target.AdminDSN())
	require.NoError(t, err, "the admin login must work")
	defer admin.Close(ctx)

	var super, createRole bool
	require.NoError(t, admin.QueryRow(ctx, "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user").Scan(&super, &createRole))
	assert.False(t, super, "the admin login must not be a superuser")
	assert.True(t, createRole, "the admin login must be able to create roles")

	// A login that holds the entitled role sees the sample data and nothing else.
	_, err = admin.Exec(ctx, "CREATE ROLE probe LOGIN PASSWORD 'probe-pw'; GRANT "+target.Role+" TO probe")
	require.NoError(t, err)
	cfg, err := pgx.ParseConfig(target.AdminDSN())
	require.NoError(t, err)
	cfg.User, cfg.Password = "probe", "probe-pw"
	probe, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer probe.Close(ctx)
	var n int
	require.NoError(t, probe.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n))
	assert.Equal(t, TargetSampleOrders, n, "got %d orders, want %d", n, TargetSampleOrders)
	_, err = probe.Exec(ctx, "SELECT * FROM payroll")
	assert.ErrorContains(t, err, "permission denied", "the entitled role must not read payroll")
}
