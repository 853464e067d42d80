package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/sessionid"
)

// newIssuer returns an Issuer on a fresh sandbox target, logged in as the
// target's (non-superuser) admin.
func newIssuer(t *testing.T) (*Issuer, *sandbox.PostgresTarget) {
	t.Helper()
	target := sandbox.PostgresTargetT(t)
	pool, err := pgxpool.New(context.Background(), target.AdminDSN())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &Issuer{DB: pool}, target
}

// login connects to the target as role.
func login(t *testing.T, target *sandbox.PostgresTarget, r *Role) (*pgx.Conn, error) {
	t.Helper()
	cfg, err := pgx.ParseConfig(target.AdminDSN())
	require.NoError(t, err)
	cfg.User, cfg.Password = r.Name, r.Password
	return pgx.ConnectConfig(context.Background(), cfg)
}

func roleExists(t *testing.T, i *Issuer, name string) bool {
	t.Helper()
	var n int
	require.NoError(t, i.DB.(*pgxpool.Pool).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_roles WHERE rolname = $1", name).Scan(&n))
	return n == 1
}

func TestCreateGivesOneEntitledLogin(t *testing.T) {
	i, target := newIssuer(t)
	ctx := context.Background()
	until := time.Now().Add(10 * time.Minute)
	r, err := i.Create(ctx, sessionid.New(time.Now()), target.Role, until)
	require.NoError(t, err)

	var limit int
	var validUntil time.Time
	var super, createRole bool
	require.NoError(t, i.DB.(*pgxpool.Pool).QueryRow(ctx,
		"SELECT rolconnlimit, rolvaliduntil, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = $1", r.Name).
		Scan(&limit, &validUntil, &super, &createRole))
	assert.Equal(t, 1, limit, "got connection limit %d, want 1", limit)
	assert.WithinDuration(t, until, validUntil, time.Second, "got VALID UNTIL %v, want %v", validUntil, until)
	assert.False(t, super || createRole, "a session role must hold no attributes")

	conn, err := login(t, target, r)
	require.NoError(t, err, "the bastion must log in with the password it kept")
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n))
	assert.Equal(t, sandbox.TargetSampleOrders, n)
	_, err = conn.Exec(ctx, "SELECT * FROM payroll")
	assert.ErrorContains(t, err, "permission denied", "only the entitled privileges")
	_, err = login(t, target, r)
	assert.ErrorContains(t, err, "too many connections", "CONNECTION LIMIT 1 must refuse a second login")

	require.NoError(t, i.Drop(ctx, r.Name), "drop while the session is still connected")
	assert.False(t, roleExists(t, i, r.Name), "the role must be gone after Drop")
	assert.Error(t, conn.Ping(ctx), "the session's backend must be terminated")
}

func TestCreateRefusesBadNames(t *testing.T) {
	i := &Issuer{} // never reaches the database
	for _, tc := range []struct{ name, session, grant string }{
		{"long session id", string(make([]byte, 61)), "analyst"},
		{"long grant", "ab", string(make([]byte, 64))},
		{"empty grant", "ab", ""},
		{"nul in grant", "ab", "a\x00b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := i.Create(context.Background(), tc.session, tc.grant, time.Now())
			assert.Error(t, err)
		})
	}
}

func TestDropReassignsOwnedObjects(t *testing.T) {
	i, target := newIssuer(t)
	ctx := context.Background()
	r, err := i.Create(ctx, sessionid.New(time.Now()), target.Role, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.NoError(t, target.Exec(ctx, target.Database,
		"CREATE SCHEMA scratch; GRANT USAGE, CREATE ON SCHEMA scratch TO "+target.Role))
	conn, err := login(t, target, r)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE scratch.kept (x int); INSERT INTO scratch.kept VALUES (1)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	require.NoError(t, i.Drop(ctx, r.Name))
	assert.False(t, roleExists(t, i, r.Name), "the role must be gone after Drop")
	var owner string
	require.NoError(t, i.DB.(*pgxpool.Pool).QueryRow(ctx,
		"SELECT tableowner FROM pg_tables WHERE tablename = 'kept'").Scan(&owner))
	assert.Equal(t, Inheritor, owner, "got owner %s of the session's table, want %s", owner, Inheritor)
}

func TestSweep(t *testing.T) {
	i, target := newIssuer(t)
	ctx := context.Background()
	now := time.Now()
	old := now.Add(-time.Hour)
	mk := func(started time.Time) *Role {
		r, err := i.Create(ctx, sessionid.New(started), target.Role, now.Add(time.Hour))
		require.NoError(t, err)
		return r
	}
	orphan, live, young, connected := mk(old), mk(old), mk(now), mk(old)
	conn, err := login(t, target, connected)
	require.NoError(t, err)
	defer conn.Close(ctx)

	dropped, err := i.Sweep(ctx, func(role string) bool { return role == live.Name })
	require.NoError(t, err)
	assert.Equal(t, []string{orphan.Name}, dropped)
	for _, tc := range []struct {
		role *Role
		want bool
	}{{orphan, false}, {live, true}, {young, true}, {connected, true}} {
		got := roleExists(t, i, tc.role.Name)
		assert.Equal(t, tc.want, got, "role %s exists: got %v, want %v", tc.role.Name, got, tc.want)
	}
}

func TestDropLocksWhatItCannotDrop(t *testing.T) {
	i, target := newIssuer(t)
	ctx := context.Background()
	r, err := i.Create(ctx, sessionid.New(time.Now()), target.Role, time.Now().Add(time.Minute))
	require.NoError(t, err)
	// A superuser's grant to the session role is beyond the admin's reach.
	require.NoError(t, target.Exec(ctx, target.Database, "CREATE SCHEMA held; GRANT USAGE ON SCHEMA held TO "+r.Name))

	err = i.Drop(ctx, r.Name)
	require.ErrorContains(t, err, "locked with NOLOGIN")
	var canLogin bool
	require.NoError(t, i.DB.(*pgxpool.Pool).QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", r.Name).Scan(&canLogin))
	assert.False(t, canLogin, "a role that could not be dropped must be locked")
	_, err = login(t, target, r)
	assert.ErrorContains(t, err, "not permitted to log in")
}
