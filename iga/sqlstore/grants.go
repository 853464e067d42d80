package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sallyport/sallyport/iga"
)

const selectGrants = `SELECT id, identity_id, target, opened_by, reason, ticket, opened_at, expires_at, closed_at
	FROM grants`

func scanGrant(s scanner) (g iga.Grant, err error) {
	return g, s.Scan(&g.ID, &g.Identity, &g.Target, &g.OpenedBy, &g.Reason, &g.Ticket,
		timeCol{&g.OpenedAt}, timeCol{&g.ExpiresAt}, timeCol{&g.ClosedAt})
}

// Grant returns one break-glass grant, or an error wrapping iga.ErrNotFound.
func (r reader) Grant(ctx context.Context, id string) (iga.Grant, error) {
	g, err := scanGrant(r.queryRow(ctx, selectGrants+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return iga.Grant{}, fmt.Errorf("grant %q: %w", id, iga.ErrNotFound)
	}
	if err != nil {
		return iga.Grant{}, fmt.Errorf("read grant %q: %w", id, err)
	}
	return g, nil
}

// Grants returns the grants of an identity (of all identities when empty),
// oldest first.
func (r reader) Grants(ctx context.Context, identity string) ([]iga.Grant, error) {
	query, args := selectGrants, []any(nil)
	if identity != "" {
		query, args = query+" WHERE identity_id = ?", []any{identity}
	}
	rows, err := r.query(ctx, query+" ORDER BY opened_at, id", args...)
	gs, err := collect(rows, err, scanGrant)
	if err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	return gs, nil
}

// PutGrant inserts or replaces a break-glass grant.
func (t *tx) PutGrant(ctx context.Context, g iga.Grant) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO grants
		(id, identity_id, target, opened_by, reason, ticket, opened_at, expires_at, closed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET identity_id = excluded.identity_id, target = excluded.target,
		opened_by = excluded.opened_by, reason = excluded.reason, ticket = excluded.ticket,
		opened_at = excluded.opened_at, expires_at = excluded.expires_at, closed_at = excluded.closed_at`,
		g.ID, g.Identity, g.Target, g.OpenedBy, g.Reason, g.Ticket,
		e.time(g.OpenedAt), e.time(g.ExpiresAt), e.time(g.ClosedAt))
	if err != nil {
		return fmt.Errorf("store grant %q: %w", g.ID, err)
	}
	return nil
}
