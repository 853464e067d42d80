// Package discover finds standing access around the bastion: login roles on
// PostgreSQL targets, accounts on MySQL and MariaDB targets, and accounts
// with a login shell and the keys in their authorized_keys on SSH targets.
// It only reads: discovery never changes a target.
//
// cmd/sallyport wires one Source per target — the target's admin connection
// for a database, a short-lived certificate from the bastion's own CA for
// an SSH target's discovery login — runs a Discoverer (on demand with `iga
// discover`, or on a schedule in serve) and keeps the results in the
// registry, whose hygiene report turns them into findings (package iga).
package discover

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// DefaultTimeout bounds the discovery of one target when Discoverer.Timeout
// is zero: a few catalogue queries or one short SSH command, so a target
// that hangs does not hold up the others for long.
const DefaultTimeout = 30 * time.Second

// parallelTargets is how many targets are discovered at once: enough that
// a slow target does not serialise the rest, few enough to be gentle on
// the bastion and the network.
const parallelTargets = 4

// Source reads the accounts of one target.
type Source interface {
	// Discover returns the accounts found and notes on what could not be
	// read (a catalogue without rights, a file cut at its cap). An error
	// means the target could not be discovered at all.
	Discover(ctx context.Context) (Found, error)
}

// Found is what a Source read of one target.
type Found struct {
	Accounts []iga.DiscoveredAccount
	Notes    []string
}

// Target is one target to discover.
type Target struct {
	Name   string
	Kind   string // ssh, postgres, mysql
	Source Source
}

// Result is the discovery of one target.
type Result struct {
	Target   string                  `json:"target"`
	Kind     string                  `json:"kind"`
	At       time.Time               `json:"at"`
	Accounts []iga.DiscoveredAccount `json:"accounts"`
	// Notes say what could not be read, the rest being discovered.
	Notes []string `json:"notes,omitempty"`
	// Error says why the target could not be discovered at all; its
	// accounts are then unknown, not gone.
	Error string `json:"error,omitempty"`
}

// OK reports whether the target was discovered.
func (r Result) OK() bool { return r.Error == "" }

// Discoverer discovers a set of targets, each on its own: one that is
// down or refuses is reported and the others are still discovered.
type Discoverer struct {
	// Targets are discovered in parallel, results in this order.
	Targets []Target
	// Timeout bounds each target. Zero: DefaultTimeout.
	Timeout time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Run discovers every target and returns one result per target.
func (d *Discoverer) Run(ctx context.Context) []Result {
	out := make([]Result, len(d.Targets))
	turn := make(chan struct{}, parallelTargets)
	var wg sync.WaitGroup
	for i, t := range d.Targets {
		wg.Go(func() {
			turn <- struct{}{}
			defer func() { <-turn }()
			out[i] = d.one(ctx, t)
		})
	}
	wg.Wait()
	return out
}

func (d *Discoverer) one(ctx context.Context, t Target) Result {
	res := Result{Target: t.Name, Kind: t.Kind, At: d.now()}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if t.Source == nil {
		res.Error = "not configured for discovery"
		return res
	}
	found, err := t.Source.Discover(ctx)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Notes = found.Notes
	for _, a := range found.Accounts {
		a.Target, a.Kind = t.Name, t.Kind
		a.FirstSeen, a.LastSeen = res.At, res.At
		res.Accounts = append(res.Accounts, a)
	}
	slices.SortFunc(res.Accounts, func(a, b iga.DiscoveredAccount) int { return strings.Compare(a.Account, b.Account) })
	return res
}

func (d *Discoverer) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

// Failed is a Source for a target that cannot be discovered as configured
// (no admin DSN, no discovery_login): its result says why.
type Failed struct{ Why string }

// Discover returns the reason as an error.
func (f Failed) Discover(context.Context) (Found, error) {
	return Found{}, errors.New(f.Why)
}
