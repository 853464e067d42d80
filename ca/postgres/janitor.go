package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sallyport/sallyport/proxy"
)

// defaultJanitorGrace: see Issuer.JanitorGrace.
const defaultJanitorGrace = time.Minute

// leftover is a per-session role found on the target.
type leftover struct {
	name     string
	backends int
}

// Sweep drops every per-session role of the target that has no live session:
// live reports whether this process runs the session of a role. A role not
// live here is still left alone while a backend is logged in as it (a
// session of another replica) or while its session is younger than
// JanitorGrace (another replica is about to log in). It returns the roles
// dropped; roles that could not be dropped are locked and reported in err.
func (i *Issuer) Sweep(ctx context.Context, live func(role string) bool) ([]string, error) {
	roles, err := i.leftovers(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	var errs []error
	for _, r := range roles {
		if live(r.name) || r.backends > 0 || !i.pastGrace(r.name) {
			continue
		}
		if err := i.Drop(ctx, r.name); err != nil {
			errs = append(errs, err)
			continue
		}
		dropped = append(dropped, r.name)
	}
	if len(errs) > 0 {
		return dropped, fmt.Errorf("janitor: %d of %d leftover roles not dropped, first: %w", len(errs), len(errs)+len(dropped), errs[0])
	}
	return dropped, nil
}

// leftovers lists the per-session roles with how many backends use them.
func (i *Issuer) leftovers(ctx context.Context) ([]leftover, error) {
	rows, err := i.DB.Query(ctx, `SELECT r.rolname, (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname)
FROM pg_roles r WHERE starts_with(r.rolname, $1) ORDER BY r.rolname`, RolePrefix)
	if err != nil {
		return nil, fmt.Errorf("janitor: list per-session roles: %w", err)
	}
	defer rows.Close()
	var out []leftover
	for rows.Next() {
		var l leftover
		var n int64
		if err := rows.Scan(&l.name, &n); err != nil {
			return nil, fmt.Errorf("janitor: read per-session roles: %w", err)
		}
		l.backends = int(n)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("janitor: list per-session roles: %w", err)
	}
	return out, nil
}

// pastGrace reads the session start out of the role name (a session id
// begins with its start in Unix seconds, 8 hex digits); a name that does not
// parse was not minted by sallyport as it is now and counts as old.
func (i *Issuer) pastGrace(role string) bool {
	started, ok := proxy.IDStarted(strings.TrimPrefix(role, RolePrefix))
	if !ok {
		return true
	}
	grace := i.JanitorGrace
	if grace <= 0 {
		grace = defaultJanitorGrace
	}
	return i.now().Sub(started) >= grace
}
