package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// replicaRetention is how long the row of a replica whose lease ended is
// kept: session rows still name it, and `sessions list` readers may want
// its host. Pruned when a replica registers.
const replicaRetention = 7 * 24 * time.Hour

// Replica is one `sallyport serve` process registered in the registry.
type Replica struct {
	ID         string
	Host       string
	Started    time.Time
	LeaseUntil time.Time
}

// RegisterReplica records r (or renews its lease: LeaseUntil is written
// each time) and forgets replicas whose lease ended long ago. serve calls
// it at start, before it accepts a session, and then every few seconds.
func (s *Store) RegisterReplica(ctx context.Context, r Replica, prune bool) error {
	err := s.Update(ctx, func(t iga.Tx) error {
		w := t.(*tx)
		var e encoder
		err := w.insert(ctx, &e, `INSERT INTO replicas (id, host, started_at, lease_until) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until`,
			r.ID, r.Host, e.time(r.Started), e.time(r.LeaseUntil))
		if err != nil || !prune {
			return err
		}
		return w.insert(ctx, &e, "DELETE FROM replicas WHERE lease_until < ?", e.time(r.LeaseUntil.Add(-replicaRetention)))
	})
	if err != nil {
		return fmt.Errorf("renew lease of replica %s: %w", r.ID, err)
	}
	return nil
}

// Replicas returns every registered replica, by id.
func (s *Store) Replicas(ctx context.Context) ([]Replica, error) {
	rows, err := s.query(ctx, "SELECT id, host, started_at, lease_until FROM replicas ORDER BY id")
	out, err := collect(rows, err, func(sc scanner) (r Replica, err error) {
		return r, sc.Scan(&r.ID, &r.Host, timeCol{&r.Started}, timeCol{&r.LeaseUntil})
	})
	if err != nil {
		return nil, fmt.Errorf("read replicas: %w", err)
	}
	return out, nil
}

// SessionHolders reports, for every session the index holds as live and
// attributes to a replica, whether that replica holds a lease current at
// now. A session whose replica's lease lapsed maps to false: whoever ran it
// is gone or cut off, and its credentials may go. Sessions written with no
// replica (by a sallyport older than leases) are left out. The credential
// janitors use it.
func (s *Store) SessionHolders(ctx context.Context, now time.Time) (map[string]bool, error) {
	var e encoder
	at := e.time(now)
	if e.err != nil {
		return nil, e.err
	}
	rows, err := s.query(ctx, `SELECT s.id, COALESCE(r.lease_until > ?, FALSE) FROM sessions s
		LEFT JOIN replicas r ON r.id = s.replica WHERE s.ended_at IS NULL AND s.replica <> ''`, at)
	type holder struct {
		id   string
		held bool
	}
	hs, err := collect(rows, err, func(sc scanner) (h holder, err error) { return h, sc.Scan(&h.id, &h.held) })
	if err != nil {
		return nil, fmt.Errorf("read the holders of live sessions: %w", err)
	}
	out := make(map[string]bool, len(hs))
	for _, h := range hs {
		out[h.id] = h.held
	}
	return out, nil
}
