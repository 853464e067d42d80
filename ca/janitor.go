package ca

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/sessionid"
)

// DefaultJanitorGrace is how old a session must be before a janitor may
// drop its credential when no replica claims it: younger, a replica may be
// about to log in with it.
const DefaultJanitorGrace = time.Minute

// Verdict is what the bastion knows of the session a per-session database
// credential (a PostgreSQL role, a MySQL user) belongs to.
type Verdict int

const (
	// Unknown: no replica is known to run the session. The credential is
	// dropped unless a connection is logged in with it (a session of a
	// replica that did not say so) or its session is younger than the grace.
	Unknown Verdict = iota
	// Live: the session runs on a replica that is alive; the credential stays.
	Live
	// Gone: the replica that ran the session is gone (its lease lapsed). The
	// credential is dropped, and any connection still using it ended.
	Gone
)

// Leftover is a per-session credential a janitor found on a target.
type Leftover[C any] struct {
	Name        string // the role or user name: Prefix + session id
	Connections int    // how many connections are logged in with it
	Cred        C      // what Drop needs
}

// Janitor is the rule the database janitors share.
type Janitor struct {
	Prefix string        // of per-session credential names, before the session id
	Grace  time.Duration // zero: DefaultJanitorGrace
	Now    time.Time
}

// MayDrop applies Verdict's rules to one leftover.
func (j Janitor) MayDrop(name string, connections int, v Verdict) bool {
	switch v {
	case Live:
		return false
	case Gone:
		return true
	}
	return connections == 0 && j.pastGrace(name)
}

// pastGrace reads the session start out of the name (a session id begins
// with its start in Unix seconds); a name that does not parse was not
// minted by sallyport as it is now and counts as old.
func (j Janitor) pastGrace(name string) bool {
	started, ok := sessionid.Started(strings.TrimPrefix(name, j.Prefix))
	if !ok {
		return true
	}
	grace := j.Grace
	if grace <= 0 {
		grace = DefaultJanitorGrace
	}
	return j.Now.Sub(started) >= grace
}

// Sweep drops each leftover that verdict and MayDrop let go, and returns
// the names dropped; what ("roles", "users") names them in the error that
// reports the ones drop failed on.
func Sweep[C any](ctx context.Context, j Janitor, found []Leftover[C], verdict func(name string) Verdict,
	drop func(context.Context, C) error, what string) ([]string, error) {
	var dropped []string
	var errs []error
	for _, l := range found {
		if !j.MayDrop(l.Name, l.Connections, verdict(l.Name)) {
			continue
		}
		if err := drop(ctx, l.Cred); err != nil {
			errs = append(errs, err)
			continue
		}
		dropped = append(dropped, l.Name)
	}
	if len(errs) > 0 {
		return dropped, fmt.Errorf("janitor: %d of %d leftover %s not dropped, first: %w",
			len(errs), len(errs)+len(dropped), what, errs[0])
	}
	return dropped, nil
}
