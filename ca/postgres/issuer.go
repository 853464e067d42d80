// Package postgres issues per-session PostgreSQL roles (DESIGN §6): for each
// admitted session the bastion creates a login role sp_<session-id> with a
// random password it keeps in memory only (the server gets a SCRAM verifier
// computed here), grants it the entitled role, logs in as it, and drops it
// when the session ends. The janitor removes roles left behind by a crash.
// proxy/postgres uses it through its own small interface; cmd wires one
// Issuer per postgres target.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RolePrefix starts the name of every per-session role; it is reserved for
// them. sallyport's own helper roles are named sallyport_*.
const RolePrefix = "sp_"

// Inheritor receives the objects a dropped session role owned.
const Inheritor = "sallyport_inheritor"

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// silently by the server, which would make two roles collide.
const maxIdentifier = 63

// terminateWaitMS is how long dropping a role waits for its backend to exit
// after pg_terminate_backend, so the drop does not race the backend's own
// cleanup of temporary objects.
const terminateWaitMS = 2000

// DB is what the Issuer needs of the admin connection to a target; a
// *pgxpool.Pool has it. The admin login needs CREATEROLE and
// pg_signal_backend, on the target's database.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Issuer creates and drops the per-session roles of one target.
type Issuer struct {
	// DB is the admin connection to the target's database. Required.
	DB DB
	// Now returns the current time. Nil: time.Now.
	Now func() time.Time
	// JanitorGrace is how old a session must be before the janitor may drop
	// a role it does not know: a role another replica minted moments ago is
	// about to log in. Zero: one minute.
	JanitorGrace time.Duration

	mu        sync.Mutex
	inheritor bool // the inheritor role is known to exist
}

// Role is a per-session login. Password lives only in memory.
type Role struct {
	Name       string
	Password   string
	ValidUntil time.Time
}

// RoleName is the role of session id: sp_<id>.
func RoleName(sessionID string) string { return RolePrefix + sessionID }

// Create makes the login role of session sessionID, member of grant, usable
// for logging in until validUntil and by one connection at a time.
func (i *Issuer) Create(ctx context.Context, sessionID, grant string, validUntil time.Time) (*Role, error) {
	r := &Role{Name: RoleName(sessionID), Password: newPassword(), ValidUntil: validUntil.UTC().Truncate(time.Second)}
	if err := checkIdentifier(r.Name); err != nil {
		return nil, fmt.Errorf("create role for session %s: %w", sessionID, err)
	}
	if err := checkIdentifier(grant); err != nil {
		return nil, fmt.Errorf("create role for session %s: entitled role: %w", sessionID, err)
	}
	verifier, err := scramVerifier(r.Password)
	if err != nil {
		return nil, fmt.Errorf("create role for session %s: %w", sessionID, err)
	}
	sql := fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "+
		"CONNECTION LIMIT 1 PASSWORD %s VALID UNTIL %s; GRANT %s TO %s",
		ident(r.Name), literal(verifier), literal(r.ValidUntil.Format("2006-01-02 15:04:05Z07:00")), ident(grant), ident(r.Name))
	if _, err := i.DB.Exec(ctx, sql); err != nil {
		return nil, fmt.Errorf("create role %s for session %s: %w", r.Name, sessionID, err)
	}
	return r, nil
}

// Drop ends role's backends and drops it; objects it owns go to the
// inheritor. When that fails (say, objects in use) the role is locked with
// NOLOGIN and left for the janitor, and the error says so.
func (i *Issuer) Drop(ctx context.Context, role string) error {
	if !strings.HasPrefix(role, RolePrefix) {
		return fmt.Errorf("drop role %s: not a per-session role", role)
	}
	terminate := fmt.Sprintf("SELECT pg_terminate_backend(pid, %d) FROM pg_stat_activity WHERE usename = %s; ",
		terminateWaitMS, literal(role))
	_, err := i.DB.Exec(ctx, terminate+"DROP ROLE IF EXISTS "+ident(role))
	if err == nil {
		return nil
	}
	if err = i.dropOwned(ctx, role); err == nil {
		return nil
	}
	if _, lockErr := i.DB.Exec(ctx, "ALTER ROLE "+ident(role)+" NOLOGIN"); lockErr != nil && !isUndefinedRole(lockErr) {
		return fmt.Errorf("drop role %s: %w; lock it: %w", role, err, lockErr)
	}
	return fmt.Errorf("drop role %s (locked with NOLOGIN for the janitor): %w", role, err)
}

// dropOwned hands what role owns to the inheritor, drops its privileges and
// then the role. The admin joins role first: REASSIGN and DROP OWNED need
// its privileges.
func (i *Issuer) dropOwned(ctx context.Context, role string) error {
	if err := i.ensureInheritor(ctx); err != nil {
		return err
	}
	r := ident(role)
	_, err := i.DB.Exec(ctx, fmt.Sprintf("GRANT %s TO CURRENT_USER; REASSIGN OWNED BY %s TO %s; DROP OWNED BY %s; DROP ROLE %s",
		r, r, ident(Inheritor), r, r))
	if isUndefinedRole(err) {
		return nil
	}
	return err
}

// ensureInheritor creates the inheritor role once and makes the admin a
// member, which REASSIGN OWNED needs.
func (i *Issuer) ensureInheritor(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.inheritor {
		return nil
	}
	sql := fmt.Sprintf(`DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN CREATE ROLE %s NOLOGIN; END IF;
END$$; GRANT %s TO CURRENT_USER`, literal(Inheritor), ident(Inheritor), ident(Inheritor))
	if _, err := i.DB.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create role %s: %w", Inheritor, err)
	}
	i.inheritor = true
	return nil
}

func isUndefinedRole(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42704"
}

// checkIdentifier refuses names PostgreSQL would truncate or cannot hold.
func checkIdentifier(name string) error {
	switch {
	case name == "":
		return errors.New("empty role name")
	case len(name) > maxIdentifier:
		return fmt.Errorf("role name %q is longer than %d bytes", name, maxIdentifier)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("role name %q contains a NUL byte", name)
	}
	return nil
}

// ident quotes an identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes a string constant (standard_conforming_strings is on in
// every supported PostgreSQL, so only quotes need doubling).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}
