package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/sessionid"
)

type env struct {
	target *sandbox.MariaDBTarget
	admin  *sql.DB
	issuer *camysql.Issuer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	target := sandbox.MariaDBTargetT(t)
	admin, err := sql.Open("mysql", target.AdminDSN())
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	return &env{target: target, admin: admin, issuer: &camysql.Issuer{DB: admin}}
}

// login connects as u, takes the role and the target database.
func (e *env) login(ctx context.Context, u *camysql.User) (*sql.Conn, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = u.Name, u.Password, "tcp", e.target.Addr()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(0)
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{"SET ROLE " + e.target.Role, "USE " + e.target.Database} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	return conn, nil
}

func (e *env) users(t *testing.T) []string {
	t.Helper()
	rows, err := e.admin.Query("SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User LIKE 'sp\\_%'")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	return out
}

func TestIssuerLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := sessionid.New(time.Now())
	u, err := e.issuer.Create(ctx, id, e.target.Role)
	require.NoError(t, err)
	assert.Equal(t, "sp_"+id, u.Name)
	assert.LessOrEqual(t, len(u.Name), 32, "got a %d-character user name, want at most 32 (MySQL's limit)", len(u.Name))
	assert.Equal(t, []string{u.Name + "@127.0.0.1"}, e.users(t), "the account must be for the bastion's exact host")

	conn, err := e.login(ctx, u)
	require.NoError(t, err, "the per-session user must log in and take the role")
	var n int
	require.NoError(t, conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders").Scan(&n))
	assert.Equal(t, sandbox.MariaDBTargetSampleOrders, n)
	_, err = conn.ExecContext(ctx, "SELECT * FROM payroll")
	assert.ErrorContains(t, err, "denied", "only the entitled privileges")
	_, err = conn.ExecContext(ctx, "CREATE USER 'x'@'%'")
	assert.ErrorContains(t, err, "denied", "the session user must not create users")

	_, err = e.login(ctx, u)
	assert.ErrorContains(t, err, "max_user_connections", "a second login as the session user must be refused")

	require.NoError(t, e.issuer.Drop(ctx, u))
	assert.Empty(t, e.users(t), "the user must be gone after Drop")
	assert.Error(t, conn.PingContext(ctx), "Drop must kill the session's connection")
	_, err = e.login(ctx, u)
	assert.Error(t, err, "a dropped user must not log in")
	require.NoError(t, e.issuer.Drop(ctx, u), "dropping twice is not an error")
}

func TestIssuerRefusesBadNames(t *testing.T) {
	e := newEnv(t)
	tests := []struct{ name, session, role string }{
		{"user name over 32 characters", sessionid.New(time.Now()) + "0123456789", e.target.Role},
		{"role with a quote", sessionid.New(time.Now()), "analyst'--"},
		{"empty role", sessionid.New(time.Now()), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.issuer.Create(context.Background(), tt.session, tt.role)
			assert.Error(t, err, "got no error, want a refusal")
			assert.Empty(t, e.users(t), "nothing may be created")
		})
	}
	t.Run("role not held by the admin", func(t *testing.T) {
		_, err := e.issuer.Create(context.Background(), sessionid.New(time.Now()), "nosuchrole")
		assert.Error(t, err)
		assert.Empty(t, e.users(t), "a user whose grant failed must be dropped")
	})
}

func TestSweep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := sessionid.New(time.Now().Add(-time.Hour))
	young := sessionid.New(time.Now())
	busy := sessionid.New(time.Now().Add(-time.Hour))
	live := sessionid.New(time.Now().Add(-time.Hour))
	users := map[string]*camysql.User{}
	for _, id := range []string{old, young, busy, live} {
		u, err := e.issuer.Create(ctx, id, e.target.Role)
		require.NoError(t, err)
		users[id] = u
	}
	conn, err := e.login(ctx, users[busy])
	require.NoError(t, err)
	defer conn.Close()

	dropped, err := e.issuer.Sweep(ctx, func(user string) bool { return user == camysql.UserName(live) })
	require.NoError(t, err)
	assert.Equal(t, []string{camysql.UserName(old)}, dropped,
		"got %v dropped, want only the old user with no session, no connection and past the grace", dropped)
	assert.Len(t, e.users(t), 3)
}
