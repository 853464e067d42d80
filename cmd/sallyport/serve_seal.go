package main

import (
	"context"
	"time"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// lostSealer runs recorder.LostSealer, which seals the recordings of a
// replica lost for good from the store, on the leader. The grace after
// which a lapsed replica counts as lost is one more lease.
type lostSealer struct {
	c      *cluster
	sealer *recorder.LostSealer
}

// newLostSealer seals with the recorder's store and key.
func newLostSealer(c *cluster, rec *recorder.Recorder) *lostSealer {
	return &lostSealer{c: c, sealer: &recorder.LostSealer{Store: rec.Store, Key: rec.Key, Registry: lostRegistry{c.store},
		Replica: c.id, Grace: c.lease, Logger: c.log}}
}

// run seals every janitor interval, while this replica leads, until ctx
// ends. The first round waits one interval, so that a replica restarting
// on its own spool recovers its sessions before anyone seals them. On
// SQLite it does nothing: one process serves that registry, from the
// data_dir that holds the spool, so it recovers its own sessions.
func (s *lostSealer) run(ctx context.Context) {
	if !s.c.store.Notifies() {
		return
	}
	t := time.NewTicker(s.c.janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.c.leading() {
			s.sealer.Round(ctx)
		}
	}
}

// noteRecovered claims in the registry the sessions this replica
// recovered from its spool (recorder.LostSealer.Recovered).
func (c *cluster) noteRecovered(sc recorder.StateChange) { c.sealer.sealer.Recovered(sc) }

// lostRegistry is the registry as the lost-replica sealer sees it.
type lostRegistry struct{ s *sqlstore.Store }

func (x lostRegistry) LostSessions(ctx context.Context, lostBefore time.Time) ([]recorder.LostSession, error) {
	ls, err := x.s.LostSessions(ctx, lostBefore)
	out := make([]recorder.LostSession, 0, len(ls))
	for _, l := range ls {
		out = append(out, recorder.LostSession{ID: l.ID, Replica: l.Replica, StartedAt: l.StartedAt, LeaseUntil: l.LeaseUntil})
	}
	return out, err
}

func (x lostRegistry) ClaimSeal(ctx context.Context, l recorder.LostSession, sealer string, at, staleBefore time.Time) (bool, error) {
	return x.s.ClaimSeal(ctx, sqlstore.SealClaim{Session: sqlstore.LostSession{ID: l.ID, Replica: l.Replica,
		StartedAt: l.StartedAt, LeaseUntil: l.LeaseUntil}, Sealer: sealer, At: at, StaleBefore: staleBefore})
}

func (x lostRegistry) MarkSealed(ctx context.Context, sealer string, at time.Time, d recorder.LostSeal) error {
	return x.s.MarkSealed(ctx, sqlstore.SealDone{Session: d.Session, Sealer: sealer, At: at, Chunks: d.Chunks,
		Reason: d.Reason, EndedAt: d.EndedAt, State: string(d.State)})
}

func (x lostRegistry) ClaimRecovered(ctx context.Context, id, replica string, at time.Time) (bool, error) {
	return x.s.ClaimRecovered(ctx, id, replica, at)
}
