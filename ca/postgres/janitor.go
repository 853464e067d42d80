package postgres

import (
	"context"
	"fmt"

	"github.com/sallyport/sallyport/ca"
)

// Sweep drops every per-session role of the target that has no live session:
// live reports whether this process runs the session of a role. Roles not
// live here are judged as ca.Unknown (see SweepSessions).
func (i *Issuer) Sweep(ctx context.Context, live func(role string) bool) ([]string, error) {
	return i.SweepSessions(ctx, func(role string) ca.Verdict {
		if live(role) {
			return ca.Live
		}
		return ca.Unknown
	})
}

// SweepSessions drops the per-session roles of the target that verdict and
// the rules of ca.Verdict say may go. It returns the roles dropped; roles
// that could not be dropped are locked and reported in err.
func (i *Issuer) SweepSessions(ctx context.Context, verdict func(role string) ca.Verdict) ([]string, error) {
	roles, err := i.leftovers(ctx)
	if err != nil {
		return nil, err
	}
	j := ca.Janitor{Prefix: RolePrefix, Grace: i.JanitorGrace, Now: i.now()}
	return ca.Sweep(ctx, j, roles, verdict, i.Drop, "roles")
}

// leftovers lists the per-session roles with how many backends use them.
func (i *Issuer) leftovers(ctx context.Context) ([]ca.Leftover[string], error) {
	rows, err := i.DB.Query(ctx, `SELECT r.rolname, (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname)
FROM pg_roles r WHERE starts_with(r.rolname, $1) ORDER BY r.rolname`, RolePrefix)
	if err != nil {
		return nil, fmt.Errorf("janitor: list per-session roles: %w", err)
	}
	defer rows.Close()
	var out []ca.Leftover[string]
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("janitor: read per-session roles: %w", err)
		}
		out = append(out, ca.Leftover[string]{Name: name, Connections: int(n), Cred: name})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("janitor: list per-session roles: %w", err)
	}
	return out, nil
}
