package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

const (
	// sealRoundTimeout bounds one round of sealing lost replicas'
	// recordings: each reads a recording's chunks from the store once.
	sealRoundTimeout = 2 * time.Minute
	// sealClaimStale is how long a claim to seal a session holds when its
	// sealer never finishes (it died while sealing); then the leader of the
	// moment takes it over.
	sealClaimStale = 5 * time.Minute
	// recoveryClaimTimeout bounds recording, at start, that this replica
	// recovered a session from its spool.
	recoveryClaimTimeout = 5 * time.Second
)

// lostSealer seals, from what reached the recording store, the recordings
// of sessions whose replica was lost for good: its lease lapsed (the rule
// the credential janitors use) and it has not come back within the grace,
// one more lease. The leader runs it; a claim in the registry makes one
// replica seal each session, once (see sqlstore.ClaimSeal).
type lostSealer struct {
	c     *cluster
	store recorder.Store
	key   ed25519.PrivateKey
	// grace is how long after a replica's lease ended it counts as lost:
	// a replica cut off from the registry for a moment renews its lease
	// within it and finishes its recordings itself.
	grace time.Duration
}

// newLostSealer opens the recording store and key as the recorder does.
func newLostSealer(cfg *Config, c *cluster) (*lostSealer, error) {
	_, store, key, err := openRecordings(cfg)
	if err != nil {
		return nil, err
	}
	return &lostSealer{c: c, store: store, key: key, grace: c.lease}, nil
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
			s.round(ctx)
		}
	}
}

// round seals what the registry lists as lost now.
func (s *lostSealer) round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, sealRoundTimeout)
	defer cancel()
	now := time.Now()
	lost, err := s.c.store.LostSessions(ctx, now.Add(-s.grace))
	if err != nil {
		s.c.log.Warn("lost replicas' recordings not sealed this round", "err", err)
		return
	}
	for _, l := range lost {
		if err := s.seal(ctx, l, now); err != nil && ctx.Err() == nil {
			s.c.log.Warn("lost replica's recording not sealed; tried again next round", "session", l.ID, "replica", l.Replica, "err", err)
		}
	}
}

// seal claims and seals one session's recording, and records it in the
// index.
func (s *lostSealer) seal(ctx context.Context, l sqlstore.LostSession, now time.Time) error {
	won, err := s.c.store.ClaimSeal(ctx, sqlstore.SealClaim{Session: l, Sealer: s.c.id, At: now, StaleBefore: now.Add(-sealClaimStale)})
	if err != nil || !won {
		return err
	}
	res, err := recorder.SealFromStore(ctx, s.store, s.key, l.ID, l.StartedAt, lostReason(l, s.grace))
	if err != nil {
		return err
	}
	done := sqlstore.SealDone{Session: l.ID, Sealer: s.c.id, At: time.Now(), Chunks: res.Chunks(),
		Reason: res.Manifest.Reason, EndedAt: res.Manifest.EndedAt, State: indexState(res.Manifest.State)}
	if res.NothingStored {
		done.Reason = lostReason(l, s.grace) + "; none of its recording reached the store, so there is nothing to seal"
		done.EndedAt = l.LeaseUntil // it ended with its replica at the latest
		if done.EndedAt.IsZero() {
			done.EndedAt = now // never NULL: that would list it as live
		}
	}
	if err := s.c.store.MarkSealed(ctx, done); err != nil {
		return err
	}
	s.c.log.Warn("sealed the recording of a lost replica's session from the store", "session", l.ID, "replica", l.Replica,
		"chunks", res.Chunks(), "already_sealed", res.Already, "beyond_break", len(res.Beyond))
	return nil
}

// lostReason says which replica was lost and when its lease ended.
func lostReason(l sqlstore.LostSession, grace time.Duration) string {
	if l.LeaseUntil.IsZero() {
		return fmt.Sprintf("replica %s was lost (its lease is no longer on record) while the session was live", l.Replica)
	}
	return fmt.Sprintf("replica %s stopped renewing its lease at %s while the session was live and did not come back within %s: it was lost",
		l.Replica, l.LeaseUntil.UTC().Format(time.RFC3339), grace)
}

// indexState is the index state a manifest's state means.
func indexState(manifest string) string {
	switch manifest {
	case recorder.ManifestComplete:
		return string(recorder.StateStored)
	case recorder.ManifestDegraded:
		return string(recorder.StateDegraded)
	}
	return string(recorder.StateIncomplete)
}

// noteRecovered records in the registry that this replica recovered sc's
// session from its spool, so that no survivor seals it from the store
// meanwhile. When one did first, the recorder finds its manifest and
// uploads the spool's rest as a continuation.
func (c *cluster) noteRecovered(sc recorder.StateChange) {
	if !sc.Recovered {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recoveryClaimTimeout)
	defer cancel()
	mine, err := c.store.ClaimRecovered(ctx, sc.Meta.ID, c.id, time.Now())
	switch {
	case err != nil:
		c.log.Warn("recovered recording not claimed in the registry; a survivor may seal it too, then it is continued", "session", sc.Meta.ID, "err", err)
	case !mine:
		c.log.Info("recovered a recording another replica sealed meanwhile; what the spool has beyond it goes to a continuation", "session", sc.Meta.ID)
	}
}
