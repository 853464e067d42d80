package sqlstore

import (
	"context"
	"fmt"

	"github.com/sallyport/sallyport/iga"
)

// This file keeps ownership-transfer items (migration 0008_scim).

const transferColumns = `id, identity_id, from_owner, assigned_to, reason, request_id, created_at,
	closed_at, closed_by, new_owner, outcome`

func scanTransfer(s scanner) (t iga.Transfer, err error) {
	return t, s.Scan(&t.ID, &t.Identity, &t.From, &t.AssignedTo, &t.Reason, &t.RequestID, timeCol{&t.Created},
		timeCol{&t.Closed}, &t.ClosedBy, &t.NewOwner, &t.Outcome)
}

// Transfers returns every ownership-transfer item, oldest first.
func (r reader) Transfers(ctx context.Context) ([]iga.Transfer, error) {
	rows, err := r.query(ctx, "SELECT "+transferColumns+" FROM ownership_transfers ORDER BY created_at, id")
	ts, err := collect(rows, err, scanTransfer)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	return ts, nil
}

// PutTransfer inserts or replaces an ownership-transfer item.
func (t *tx) PutTransfer(ctx context.Context, tr iga.Transfer) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO ownership_transfers (`+transferColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET assigned_to = excluded.assigned_to, closed_at = excluded.closed_at,
		closed_by = excluded.closed_by, new_owner = excluded.new_owner, outcome = excluded.outcome`,
		tr.ID, tr.Identity, tr.From, tr.AssignedTo, tr.Reason, tr.RequestID, e.time(tr.Created),
		e.time(tr.Closed), tr.ClosedBy, tr.NewOwner, tr.Outcome)
	if err != nil {
		return fmt.Errorf("store transfer %q: %w", tr.ID, err)
	}
	return nil
}
