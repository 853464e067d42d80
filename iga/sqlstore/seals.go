package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// Kinds of lost_replica_seals rows.
const (
	sealKindSeal      = "seal"      // a survivor seals the recording from the store
	sealKindRecovered = "recovered" // the lost replica's spool came back first
)

// LostSession is a session whose recording was still live or uploading
// when the replica that ran it was lost: that replica's lease lapsed long
// enough ago (see LostSessions) and no seal of it is done.
type LostSession struct {
	ID        string
	Replica   string
	Dir       string // the recording's key prefix in the store
	StartedAt time.Time
	EndedAt   time.Time // zero: it was live
	// LeaseUntil is when the replica's lease ended; zero when the replica's
	// row is gone (pruned a week after it ended).
	LeaseUntil time.Time
}

// LostSessions returns the sessions of replicas whose lease ended before
// lostBefore (the grace after which a lapsed replica counts as lost) and
// whose recording is still live or uploading in the index, without a
// finished seal or a recovery by a restarted replica; oldest first.
func (s *Store) LostSessions(ctx context.Context, lostBefore time.Time) ([]LostSession, error) {
	var e encoder
	at := e.time(lostBefore)
	if e.err != nil {
		return nil, e.err
	}
	rows, err := s.query(ctx, `SELECT s.id, s.replica, s.object_dir, s.started_at, s.ended_at, r.lease_until
		FROM sessions s LEFT JOIN replicas r ON r.id = s.replica
		LEFT JOIN lost_replica_seals l ON l.session_id = s.id
		WHERE s.replica <> '' AND s.state IN ('live', 'uploading')
		AND (r.lease_until IS NULL OR r.lease_until < ?) AND l.sealed_at IS NULL
		ORDER BY s.started_at, s.id`, at)
	out, err := collect(rows, err, func(sc scanner) (l LostSession, err error) {
		return l, sc.Scan(&l.ID, &l.Replica, &l.Dir, timeCol{&l.StartedAt}, timeCol{&l.EndedAt}, timeCol{&l.LeaseUntil})
	})
	if err != nil {
		return nil, fmt.Errorf("read the sessions of lost replicas: %w", err)
	}
	return out, nil
}

// SealClaim asks for the right to seal one lost session.
type SealClaim struct {
	Session LostSession
	Sealer  string    // the claiming replica
	At      time.Time // now
	// StaleBefore: a claim by another sealer made before it, never
	// finished (that sealer died while sealing), may be taken over.
	StaleBefore time.Time
}

// ClaimSeal records c's sealer as the one replica that seals c's session,
// unless another holds a claim newer than c.StaleBefore, the seal is done,
// or a restarted replica recovered the session. It reports whether c's
// sealer holds the claim now; claiming again what one holds is allowed
// (a seal that failed half way is tried again).
func (s *Store) ClaimSeal(ctx context.Context, c SealClaim) (bool, error) {
	var won bool
	err := s.Update(ctx, func(t iga.Tx) error {
		w := t.(*tx)
		var e encoder
		err := w.insert(ctx, &e, `INSERT INTO lost_replica_seals (session_id, kind, replica, lease_until, sealer, claimed_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (session_id) DO UPDATE SET sealer = excluded.sealer, claimed_at = excluded.claimed_at
			WHERE lost_replica_seals.kind = ? AND lost_replica_seals.sealed_at IS NULL
			AND (lost_replica_seals.sealer = excluded.sealer OR lost_replica_seals.claimed_at < ?)`,
			c.Session.ID, sealKindSeal, c.Session.Replica, e.time(c.Session.LeaseUntil), c.Sealer, e.time(c.At),
			sealKindSeal, e.time(c.StaleBefore))
		if err != nil {
			return err
		}
		row, err := w.sealRow(ctx, c.Session.ID)
		won = row.kind == sealKindSeal && row.sealer == c.Sealer && row.sealedAt.IsZero()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim the seal of session %s: %w", c.Session.ID, err)
	}
	return won, nil
}

type sealRow struct {
	kind, sealer string
	sealedAt     time.Time
}

func (r reader) sealRow(ctx context.Context, id string) (sealRow, error) {
	var row sealRow
	err := r.queryRow(ctx, "SELECT kind, sealer, sealed_at FROM lost_replica_seals WHERE session_id = ?", id).
		Scan(&row.kind, &row.sealer, timeCol{&row.sealedAt})
	return row, err
}

// SealDone is what a sealer reports once the signed manifest is in the store.
type SealDone struct {
	Session string
	Sealer  string
	At      time.Time
	Chunks  int
	// Reason is the manifest's; the session index shows it.
	Reason  string
	EndedAt time.Time // the manifest's end: the last record stored
	// State is the index state the manifest means (a manifest found in the
	// store may be the lost replica's own, complete); empty: incomplete.
	State string
}

// MarkSealed finishes d's claim and shows the session in the index as an
// incomplete recording with the seal's reason. Sessions whose state moved
// on meanwhile (a restarted replica stored them) keep theirs.
func (s *Store) MarkSealed(ctx context.Context, d SealDone) error {
	err := s.Update(ctx, func(t iga.Tx) error {
		w := t.(*tx)
		var e encoder
		err := w.insert(ctx, &e, `UPDATE lost_replica_seals SET sealed_at = ?, chunks = ?, reason = ?
			WHERE session_id = ? AND sealer = ? AND kind = ?`, e.time(d.At), d.Chunks, d.Reason, d.Session, d.Sealer, sealKindSeal)
		if err != nil {
			return err
		}
		state := d.State
		if state == "" {
			state = "incomplete"
		}
		return w.insert(ctx, &e, `UPDATE sessions SET state = ?, reason = ?, ended_at = COALESCE(ended_at, ?)
			WHERE id = ? AND state IN ('live', 'uploading')`, state, d.Reason, e.time(d.EndedAt), d.Session)
	})
	if err != nil {
		return fmt.Errorf("record the seal of session %s: %w", d.Session, err)
	}
	return nil
}

// ClaimRecovered records that replica, restarted on a lost replica's
// spool, recovered session id and stores its recording itself, so that no
// survivor starts sealing it from the store. It reports false, changing
// nothing, when a survivor claimed or sealed the session first: the
// recorder then finds the survivor's manifest and uploads a continuation.
func (s *Store) ClaimRecovered(ctx context.Context, id, replica string, at time.Time) (bool, error) {
	var mine bool
	err := s.Update(ctx, func(t iga.Tx) error {
		w := t.(*tx)
		var e encoder
		err := w.insert(ctx, &e, `INSERT INTO lost_replica_seals (session_id, kind, replica, sealer, claimed_at, sealed_at)
			VALUES (?, ?, COALESCE((SELECT replica FROM sessions WHERE id = ?), ''), ?, ?, ?)
			ON CONFLICT (session_id) DO NOTHING`, id, sealKindRecovered, id, replica, e.time(at), e.time(at))
		if err != nil {
			return err
		}
		row, err := w.sealRow(ctx, id)
		mine = row.kind == sealKindRecovered && row.sealer == replica
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record the recovery of session %s: %w", id, err)
	}
	return mine, nil
}

// LostSeal is one lost_replica_seals row, for readers of the index.
type LostSeal struct {
	Session  string
	Kind     string // "seal" or "recovered"
	Replica  string // the lost replica
	Sealer   string
	SealedAt time.Time // zero while claimed
	Chunks   int
	Reason   string
}

// SealOf returns the seal row of session id, or an error wrapping
// iga.ErrNotFound when nothing claimed it.
func (s *Store) SealOf(ctx context.Context, id string) (LostSeal, error) {
	l := LostSeal{Session: id}
	err := s.queryRow(ctx, `SELECT kind, replica, sealer, sealed_at, chunks, reason FROM lost_replica_seals
		WHERE session_id = ?`, id).Scan(&l.Kind, &l.Replica, &l.Sealer, timeCol{&l.SealedAt}, &l.Chunks, &l.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("seal of session %q: %w", id, iga.ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("read the seal of session %q: %w", id, err)
	}
	return l, nil
}
