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

// Verdict is what the caller knows of the session a per-session role
// belongs to.
type Verdict int

const (
	// Unknown: no replica is known to run the session. The role is dropped
	// unless a backend is logged in as it (a session of a replica that did
	// not say so) or its session is younger than JanitorGrace (a replica is
	// about to log in).
	Unknown Verdict = iota
	// Live: the session runs on a replica that is alive; the role is kept.
	Live
	// Gone: the replica that ran the session is gone (its lease lapsed).
	// The role is dropped, and any backend still logged in as it ended.
	Gone
)

// Sweep drops every per-session role of the target that has no live session:
// live reports whether this process runs the session of a role. Roles not
// live here are judged as Unknown (see SweepSessions).
func (i *Issuer) Sweep(ctx context.Context, live func(role string) bool) ([]string, error) {
	return i.SweepSessions(ctx, func(role string) Verdict {
		if live(role) {
			return Live
		}
		return Unknown
	})
}

// SweepSessions drops the per-session roles of the target that verdict and
// the rules of Verdict say may go. It returns the roles dropped; roles that
// could not be dropped are locked and reported in err.
func (i *Issuer) SweepSessions(ctx context.Context, verdict func(role string) Verdict) ([]string, error) {
	roles, err := i.leftovers(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	var errs []error
	for _, r := range roles {
		if !i.mayDrop(r, verdict(r.name)) {
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

func (i *Issuer) mayDrop(r leftover, v Verdict) bool {
	switch v {
	case Live:
		return false
	case Gone:
		return true
	}
	return r.backends == 0 && i.pastGrace(r.name)
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
