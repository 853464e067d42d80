package sandbox

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Names in a PostgreSQL target made by NewTarget with zero options.
const (
	// DefaultTargetDatabase is the target database.
	DefaultTargetDatabase = "analytics"
	// DefaultTargetRole is the role identities are entitled to: it may read
	// public.orders and write public.imports, nothing else.
	DefaultTargetRole = "analyst"
	// DefaultTargetAdmin is sallyport's admin login on the target.
	DefaultTargetAdmin = "sallyport_admin"
	// TargetSampleOrders is how many rows public.orders holds.
	TargetSampleOrders = 1000
)

// PostgresTargetOptions names what NewTarget creates; zero fields take the
// Default* names.
type PostgresTargetOptions struct {
	Database string
	Role     string
	Admin    string
}

// PostgresTarget is a database prepared for sallyport to broker: sample
// data, an entitled role, an unrelated table the role may not read, and an
// admin login (CREATEROLE, pg_signal_backend — no superuser) that sallyport
// mints per-session roles with.
type PostgresTarget struct {
	*Postgres
	// Database is the target database.
	Database string
	// Role is the entitled role (NOLOGIN).
	Role string
	// Admin and AdminPassword are sallyport's admin login.
	Admin         string
	AdminPassword string
}

// NewTarget creates database, entitled role, sample data and admin login.
func (pg *Postgres) NewTarget(ctx context.Context, opts PostgresTargetOptions) (*PostgresTarget, error) {
	t := &PostgresTarget{Postgres: pg, Database: orName(opts.Database, DefaultTargetDatabase),
		Role: orName(opts.Role, DefaultTargetRole), Admin: orName(opts.Admin, DefaultTargetAdmin), AdminPassword: randomSecret()}
	if err := pg.CreateDatabase(ctx, t.Database); err != nil {
		return nil, fmt.Errorf("postgres target: %w", err)
	}
	if err := pg.Exec(ctx, t.Database, t.setupSQL()); err != nil {
		return nil, fmt.Errorf("postgres target: %w", err)
	}
	return t, nil
}

// setupSQL is the target's schema, roles and grants.
func (t *PostgresTarget) setupSQL() string {
	db, role, admin := pgIdent(t.Database), pgIdent(t.Role), pgIdent(t.Admin)
	return fmt.Sprintf(`
CREATE ROLE %[2]s NOLOGIN;
CREATE ROLE %[3]s LOGIN CREATEROLE PASSWORD %[4]s;
GRANT pg_signal_backend TO %[3]s;
GRANT %[2]s TO %[3]s WITH ADMIN OPTION;
REVOKE ALL ON DATABASE %[1]s FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE %[1]s TO %[2]s, %[3]s;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE TABLE public.orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric(10,2) NOT NULL);
INSERT INTO public.orders SELECT g, 'customer-' || (g %% 97), (g * 7 %% 1000) / 10.0 FROM generate_series(1, %[5]d) g;
CREATE TABLE public.imports (id int, note text);
CREATE TABLE public.payroll (name text, salary numeric);
INSERT INTO public.payroll VALUES ('ceo', 1000000);
GRANT SELECT ON public.orders TO %[2]s;
GRANT SELECT, INSERT ON public.imports TO %[2]s;`,
		db, role, admin, pgLiteral(t.AdminPassword), TargetSampleOrders)
}

// AdminDSN is a postgres:// URL for the admin login on the target database.
func (t *PostgresTarget) AdminDSN() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(t.Admin, t.AdminPassword),
		Host: t.Addr(), Path: "/" + t.Database, RawQuery: "sslmode=disable"}
	return u.String()
}

// PostgresTargetT starts a PostgreSQL sandbox with a target for the test,
// applying Need's policy when it cannot start.
func PostgresTargetT(t testing.TB, opts ...PostgresTargetOptions) *PostgresTarget {
	t.Helper()
	pg := PostgresT(t)
	target, err := pg.NewTarget(context.Background(), first(opts))
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	return target
}

func pgIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

func pgLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func orName(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
