package recorder

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"time"
)

const (
	// lostRoundTimeout bounds one round of sealing lost replicas'
	// recordings: each reads a recording's chunks from the store once.
	lostRoundTimeout = 2 * time.Minute
	// sealClaimStale is how long a claim to seal a session holds when its
	// sealer never finishes (it died while sealing); then the leader of the
	// moment takes it over.
	sealClaimStale = 5 * time.Minute
	// recoveryClaimTimeout bounds recording, at start, that this replica
	// recovered a session from its spool.
	recoveryClaimTimeout = 5 * time.Second
)

// LostSession is a session whose recording was still live or uploading
// when the replica that ran it was lost, as the registry lists it.
type LostSession struct {
	ID        string
	Replica   string // the lost replica
	StartedAt time.Time
	// LeaseUntil is when the replica's lease ended; zero when the registry
	// no longer has it on record.
	LeaseUntil time.Time
}

// LostSeal is what a sealer reports once a lost session's manifest is in
// the store.
type LostSeal struct {
	Session string
	Chunks  int
	// Reason is the manifest's; the session index shows it.
	Reason  string
	EndedAt time.Time // the manifest's end: the last record stored
	// State is the index state the manifest means (a manifest found in the
	// store may be the lost replica's own, complete).
	State State
}

// LostRegistry is what LostSealer needs of the registry (cmd adapts
// iga/sqlstore to it): the leases say which replicas are lost, and a
// claim per session, written in the registry database, makes exactly one
// replica seal each session.
type LostRegistry interface {
	// LostSessions returns the sessions still live or uploading of the
	// replicas whose lease ended before lostBefore, unless a seal of them
	// is done or a restarted replica recovered them; oldest first.
	LostSessions(ctx context.Context, lostBefore time.Time) ([]LostSession, error)
	// ClaimSeal makes sealer the one replica that seals l, unless another
	// holds a claim made after staleBefore, the seal is done, or a
	// restarted replica recovered l; it reports whether sealer holds the
	// claim now. Claiming again what one holds succeeds.
	ClaimSeal(ctx context.Context, l LostSession, sealer string, at, staleBefore time.Time) (bool, error)
	// MarkSealed finishes sealer's claim at at and shows the session in
	// the index as the seal says.
	MarkSealed(ctx context.Context, sealer string, at time.Time, s LostSeal) error
	// ClaimRecovered records that replica, restarted on a lost replica's
	// spool, stores session id itself; false when a survivor claimed or
	// sealed it first.
	ClaimRecovered(ctx context.Context, id, replica string, at time.Time) (bool, error)
}

// LostSealer seals, from what reached the store, the recordings of
// sessions whose replica was lost for good: its lease lapsed (the rule
// the credential janitors use) and it has not come back within Grace. A
// claim in the registry makes one replica seal each session, once;
// SealFromStore never replaces a manifest, so a second seal changes
// nothing. Serve's leader calls Round every janitor interval.
type LostSealer struct {
	Store    Store
	Key      ed25519.PrivateKey
	Registry LostRegistry
	// Replica is this replica's id, the sealer named in the claims.
	// Required.
	Replica string
	// Grace is how long after a replica's lease ended it counts as lost:
	// a replica cut off from the registry for a moment renews its lease
	// within it and finishes its recordings itself. Required (positive).
	Grace time.Duration
	// Logger receives what is sealed and what failed; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Round seals what the registry lists as lost now. A recording that
// fails is logged and tried again at the next round.
func (s *LostSealer) Round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, lostRoundTimeout)
	defer cancel()
	now := s.now()
	lost, err := s.Registry.LostSessions(ctx, now.Add(-s.Grace))
	if err != nil {
		s.logger().Warn("lost replicas' recordings not sealed this round", "err", err)
		return
	}
	for _, l := range lost {
		if err := s.seal(ctx, l, now); err != nil && ctx.Err() == nil {
			s.logger().Warn("lost replica's recording not sealed; tried again next round", "session", l.ID, "replica", l.Replica, "err", err)
		}
	}
}

// seal claims and seals one session's recording, and records it in the
// registry.
func (s *LostSealer) seal(ctx context.Context, l LostSession, now time.Time) error {
	won, err := s.Registry.ClaimSeal(ctx, l, s.Replica, now, now.Add(-sealClaimStale))
	if err != nil || !won {
		return err
	}
	reason := lostReplicaReason(l, s.Grace)
	res, err := SealFromStore(ctx, s.Store, s.Key, l.ID, l.StartedAt, reason)
	if err != nil {
		return err
	}
	done := LostSeal{Session: l.ID, Chunks: res.Chunks(), Reason: res.Manifest.Reason, EndedAt: res.Manifest.EndedAt,
		State: manifestIndexState(res.Manifest.State)}
	if res.NothingStored {
		done.Reason = reason + "; none of its recording reached the store, so there is nothing to seal"
		done.EndedAt = l.LeaseUntil // it ended with its replica at the latest
		if done.EndedAt.IsZero() {
			done.EndedAt = now // never zero: the index would list it as live
		}
	}
	if err := s.Registry.MarkSealed(ctx, s.Replica, s.now(), done); err != nil {
		return err
	}
	s.logger().Warn("sealed the recording of a lost replica's session from the store", "session", l.ID, "replica", l.Replica,
		"chunks", res.Chunks(), "already_sealed", res.Already, "beyond_break", len(res.Beyond))
	return nil
}

// Recovered records in the registry that this replica recovered sc's
// session from its spool (sc.Recovered), so that no survivor seals it
// from the store meanwhile. When one did first, the recorder finds its
// manifest and uploads the spool's rest as a continuation. Other state
// changes are ignored.
func (s *LostSealer) Recovered(sc StateChange) {
	if !sc.Recovered {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recoveryClaimTimeout)
	defer cancel()
	mine, err := s.Registry.ClaimRecovered(ctx, sc.Meta.ID, s.Replica, s.now())
	switch {
	case err != nil:
		s.logger().Warn("recovered recording not claimed in the registry; a survivor may seal it too, then it is continued", "session", sc.Meta.ID, "err", err)
	case !mine:
		s.logger().Info("recovered a recording another replica sealed meanwhile; what the spool has beyond it goes to a continuation", "session", sc.Meta.ID)
	}
}

// lostReplicaReason says which replica was lost and when its lease ended.
func lostReplicaReason(l LostSession, grace time.Duration) string {
	if l.LeaseUntil.IsZero() {
		return fmt.Sprintf("replica %s was lost (its lease is no longer on record) while the session was live", l.Replica)
	}
	return fmt.Sprintf("replica %s stopped renewing its lease at %s while the session was live and did not come back within %s: it was lost",
		l.Replica, l.LeaseUntil.UTC().Format(time.RFC3339), grace)
}

// manifestIndexState is the index state a manifest's state means (the
// uploader reports it for a stored recording, LostSealer for a sealed one).
func manifestIndexState(manifest string) State {
	switch manifest {
	case ManifestComplete:
		return StateStored
	case ManifestDegraded:
		return StateDegraded
	}
	return StateIncomplete
}

func (s *LostSealer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *LostSealer) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
