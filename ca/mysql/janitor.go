package mysql

import (
	"context"
	"fmt"

	"github.com/sallyport/sallyport/ca"
)

// Sweep drops every per-session user of the target that has no live
// session: live reports whether this process runs the session of a user
// name. Users not live here are judged as ca.Unknown (see SweepSessions).
func (i *Issuer) Sweep(ctx context.Context, live func(user string) bool) ([]string, error) {
	return i.SweepSessions(ctx, func(user string) ca.Verdict {
		if live(user) {
			return ca.Live
		}
		return ca.Unknown
	})
}

// SweepSessions drops the per-session users of the target that verdict
// and the rules of ca.Verdict say may go. It returns the users dropped.
func (i *Issuer) SweepSessions(ctx context.Context, verdict func(user string) ca.Verdict) ([]string, error) {
	users, err := i.leftovers(ctx)
	if err != nil {
		return nil, err
	}
	j := ca.Janitor{Prefix: UserPrefix, Grace: i.JanitorGrace, Now: i.now()}
	return ca.Sweep(ctx, j, users, verdict, i.Drop, "users")
}

// leftovers lists the per-session accounts with how many connections use them.
func (i *Issuer) leftovers(ctx context.Context) ([]ca.Leftover[*User], error) {
	rows, err := i.DB.QueryContext(ctx, `SELECT u.User, u.Host,
  (SELECT COUNT(*) FROM information_schema.PROCESSLIST p WHERE p.USER = u.User)
FROM mysql.user u WHERE u.User LIKE 'sp\_%' ORDER BY u.User`)
	if err != nil {
		return nil, fmt.Errorf("janitor: list per-session users: %w", err)
	}
	defer rows.Close()
	var out []ca.Leftover[*User]
	for rows.Next() {
		u := &User{}
		var threads int
		if err := rows.Scan(&u.Name, &u.Host, &threads); err != nil {
			return nil, fmt.Errorf("janitor: read per-session users: %w", err)
		}
		out = append(out, ca.Leftover[*User]{Name: u.Name, Connections: threads, Cred: u})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("janitor: list per-session users: %w", err)
	}
	return out, nil
}
