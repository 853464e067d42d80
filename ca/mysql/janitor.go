package mysql

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sallyport/sallyport/proxy"
)

// defaultJanitorGrace: see Issuer.JanitorGrace.
const defaultJanitorGrace = time.Minute

// leftover is a per-session account found on the target.
type leftover struct {
	user    User
	threads int
}

// Verdict is what the caller knows of the session a per-session user
// belongs to.
type Verdict int

const (
	// Unknown: no replica is known to run the session. The user is dropped
	// unless a connection is logged in as it (a session of a replica that
	// did not say so) or its session is younger than JanitorGrace (a
	// replica is about to log in).
	Unknown Verdict = iota
	// Live: the session runs on a replica that is alive; the user is kept.
	Live
	// Gone: the replica that ran the session is gone (its lease lapsed).
	// The user is dropped, and any connection still logged in as it killed.
	Gone
)

// Sweep drops every per-session user of the target that has no live
// session: live reports whether this process runs the session of a user
// name. Users not live here are judged as Unknown (see SweepSessions).
func (i *Issuer) Sweep(ctx context.Context, live func(user string) bool) ([]string, error) {
	return i.SweepSessions(ctx, func(user string) Verdict {
		if live(user) {
			return Live
		}
		return Unknown
	})
}

// SweepSessions drops the per-session users of the target that verdict
// and the rules of Verdict say may go. It returns the users dropped.
func (i *Issuer) SweepSessions(ctx context.Context, verdict func(user string) Verdict) ([]string, error) {
	users, err := i.leftovers(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	var errs []error
	for _, l := range users {
		if !i.mayDrop(l, verdict(l.user.Name)) {
			continue
		}
		if err := i.Drop(ctx, &l.user); err != nil {
			errs = append(errs, err)
			continue
		}
		dropped = append(dropped, l.user.Name)
	}
	if len(errs) > 0 {
		return dropped, fmt.Errorf("janitor: %d of %d leftover users not dropped, first: %w", len(errs), len(errs)+len(dropped), errs[0])
	}
	return dropped, nil
}

func (i *Issuer) mayDrop(l leftover, v Verdict) bool {
	switch v {
	case Live:
		return false
	case Gone:
		return true
	}
	return l.threads == 0 && i.pastGrace(l.user.Name)
}

// leftovers lists the per-session accounts with how many connections use them.
func (i *Issuer) leftovers(ctx context.Context) ([]leftover, error) {
	rows, err := i.DB.QueryContext(ctx, `SELECT u.User, u.Host,
  (SELECT COUNT(*) FROM information_schema.PROCESSLIST p WHERE p.USER = u.User)
FROM mysql.user u WHERE u.User LIKE 'sp\_%' ORDER BY u.User`)
	if err != nil {
		return nil, fmt.Errorf("janitor: list per-session users: %w", err)
	}
	defer rows.Close()
	var out []leftover
	for rows.Next() {
		var l leftover
		if err := rows.Scan(&l.user.Name, &l.user.Host, &l.threads); err != nil {
			return nil, fmt.Errorf("janitor: read per-session users: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("janitor: list per-session users: %w", err)
	}
	return out, nil
}

// pastGrace reads the session start out of the user name (a session id
// begins with its start in Unix seconds, 8 hex digits); a name that does
// not parse was not minted by sallyport as it is now and counts as old.
func (i *Issuer) pastGrace(user string) bool {
	started, ok := proxy.IDStarted(strings.TrimPrefix(user, UserPrefix))
	if !ok {
		return true
	}
	grace := i.JanitorGrace
	if grace <= 0 {
		grace = defaultJanitorGrace
	}
	return i.now().Sub(started) >= grace
}
