package main

import (
	"context"
	"time"
)

// discoveryCheck is how often the leader looks whether a discovery is
// due (a read of the discovered accounts), and at once when it takes the
// lead: a leader that takes over from another runs the next discovery on
// time, neither at once nor a whole interval late.
const discoveryCheck = time.Minute

// discoveryComponent discovers every target each discovery.interval, on
// the leading replica only; with no interval it only waits for the end.
func (d *serveDeps) discoveryComponent() *component {
	every := d.ap.cfg.Discovery.Interval.D()
	return &component{name: "discovery", run: func(ctx context.Context) error {
		if every <= 0 {
			<-ctx.Done()
			return nil
		}
		d.discoveryRounds(ctx, every)
		return nil
	}}
}

// discoveryRounds follows the leadership every second, which costs
// nothing, and discovers when this replica leads and a discovery is due.
func (d *serveDeps) discoveryRounds(ctx context.Context, every time.Duration) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var ran, checked time.Time // ran: this replica's last run, when the registry shows none
	led := false
	for {
		leading := d.cluster.leading()
		if leading && (!led || time.Since(checked) >= discoveryCheck) {
			checked = time.Now()
			if time.Since(ran) >= every && d.discoveryDue(ctx, every) {
				ran = time.Now()
				d.discoverOnce(ctx)
			}
		}
		led = leading
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// discoveryDue reports whether the registry's latest discovery (by any
// replica) is an interval old.
func (d *serveDeps) discoveryDue(ctx context.Context, every time.Duration) bool {
	accounts, err := d.ap.store.Discovered(ctx)
	if err != nil {
		d.log.Warn("discovery: read the last discovery; retrying", "err", err)
		return false
	}
	var last time.Time
	for _, a := range accounts {
		if a.LastSeen.After(last) {
			last = a.LastSeen
		}
		if a.GoneAt.After(last) {
			last = a.GoneAt
		}
	}
	return time.Since(last) >= every
}

// discoverOnce discovers every target and logs each target's outcome.
func (d *serveDeps) discoverOnce(ctx context.Context) {
	out, err := runDiscovery(ctx, d.ap, "", false, discoveryActor)
	if err != nil {
		d.log.Warn("discovery failed", "err", err)
		return
	}
	for _, t := range out.Targets {
		if !t.OK() {
			d.log.Warn("discovery: target not discovered", "target", t.Target, "err", t.Error)
			continue
		}
		d.log.Info("discovery", "target", t.Target, "accounts", len(t.Accounts), "new", t.Change.New, "gone", t.Change.Gone, "notes", t.Notes)
	}
}
