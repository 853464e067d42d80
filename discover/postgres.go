package discover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/iga"
)

// pgInsufficientPrivilege is SQLSTATE 42501: the admin may not read
// pg_authid (only superusers may).
const pgInsufficientPrivilege = "42501"

// PGQuerier is what Postgres needs of the admin connection; a
// *pgxpool.Pool or *pgx.Conn has it.
type PGQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Postgres discovers the login roles of a PostgreSQL server (roles are
// cluster-wide, so any database of it will do) through the target's admin
// connection, leaving out sallyport's per-session roles (sp_*) and the
// admin itself. Whether a role has a password is in pg_authid, which only
// a superuser reads; otherwise pg_roles gives the rest and a note says
// what is unknown.
type Postgres struct {
	// DB is the admin connection. Required.
	DB PGQuerier
	// Now is the clock, for expired passwords. Nil: time.Now.
	Now func() time.Time
}

// The catalogue queries: with pg_authid whether a password is set is
// known; pg_roles shows '********' for every role.
const (
	pgAuthidQuery = `SELECT rolname, rolsuper, rolcreaterole, NULLIF(rolvaliduntil, 'infinity'), rolpassword IS NOT NULL
FROM pg_authid WHERE rolcanlogin AND rolname <> current_user ORDER BY rolname`
	pgRolesQuery = `SELECT rolname, rolsuper, rolcreaterole, NULLIF(rolvaliduntil, 'infinity'), NULL::bool
FROM pg_roles WHERE rolcanlogin AND rolname <> current_user ORDER BY rolname`
)

// Discover lists the login roles.
func (p *Postgres) Discover(ctx context.Context) (Found, error) {
	var found Found
	accounts, err := p.roles(ctx, pgAuthidQuery)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == pgInsufficientPrivilege {
		found.Notes = append(found.Notes, "pg_authid is not readable by the admin login (it needs superuser): whether each role has a password is unknown; superuser, createrole and valid until were read from pg_roles")
		accounts, err = p.roles(ctx, pgRolesQuery)
	}
	if err != nil {
		return Found{}, fmt.Errorf("list login roles: %w", err)
	}
	found.Accounts = accounts
	return found, nil
}

func (p *Postgres) roles(ctx context.Context, query string) ([]iga.DiscoveredAccount, error) {
	rows, err := p.DB.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []iga.DiscoveredAccount
	for rows.Next() {
		var r pgRole
		if err := rows.Scan(&r.name, &r.super, &r.createRole, &r.validUntil, &r.password); err != nil {
			return nil, err
		}
		if strings.HasPrefix(r.name, capg.RolePrefix) {
			continue // a session's role, dropped when the session ends
		}
		out = append(out, r.account(p.now()))
	}
	return out, rows.Err()
}

// pgRole is one row of the catalogue.
type pgRole struct {
	name              string
	super, createRole bool
	validUntil        *time.Time
	password          *bool // nil: unknown
}

func (r pgRole) account(now time.Time) iga.DiscoveredAccount {
	a := iga.DiscoveredAccount{Account: r.name, Login: r.name, Password: iga.PasswordUnknown}
	if r.password != nil {
		a.Password = iga.PasswordNone
		if *r.password {
			a.Password = iga.PasswordSet
		}
	}
	if r.super {
		a.Attributes = append(a.Attributes, "superuser")
	}
	if r.createRole {
		a.Attributes = append(a.Attributes, "createrole")
	}
	if v := r.validUntil; v != nil {
		phrase := "valid until " + v.UTC().Format(time.DateOnly)
		if v.Before(now) {
			phrase = "password expired " + v.UTC().Format(time.DateOnly)
		}
		a.Attributes = append(a.Attributes, phrase)
	}
	return a
}

func (p *Postgres) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
