package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// selectIdentities reads identity rows with their latest certification
// (the highest certification id) joined in; the certification columns are
// NULL for an identity never certified. revoked_at is the latest time of
// its revoke decisions (stored times are fixed-width UTC text, so MAX is
// the latest), NULL when never revoked.
const selectIdentities = `SELECT i.id, i.kind, i.state, i.owner, i.environment, i.holders,
	i.ssh_keys, i.oidc, i.entitlements, i.last_used,
	c.decision, c.decided_by, c.decided_at, c.valid_until, c.note,
	(SELECT MAX(r.decided_at) FROM certifications r WHERE r.identity_id = i.id AND r.decision = 'revoke') AS revoked_at
	FROM identities i LEFT JOIN certifications c
	ON c.id = (SELECT MAX(id) FROM certifications WHERE identity_id = i.id)`

func scanIdentity(s scanner) (iga.Identity, error) {
	var (
		id                 iga.Identity
		decision, by, note sql.NullString
		c                  iga.Certification
	)
	err := s.Scan(&id.ID, &id.Kind, &id.State, &id.Owner, &id.Environment, listCol[string]{&id.Holders},
		sshKeysCol(&id.Credentials.SSHKeys), oidcCol(&id.Credentials.OIDC), entitlementsCol(&id.Entitlements),
		timeCol{&id.LastUsed}, &decision, &by, timeCol{&c.At}, timeCol{&c.Until}, &note, timeCol{&id.RevokedAt})
	if decision.Valid {
		c.Decision, c.By, c.Note = decision.String, by.String, note.String
		id.Certification = &c
	}
	return id, err
}

// Identity returns one complete identity, or an error wrapping
// iga.ErrNotFound. It is one primary-key query: admission calls it for
// every connection.
func (r reader) Identity(ctx context.Context, id string) (iga.Identity, error) {
	ident, err := scanIdentity(r.queryRow(ctx, selectIdentities+" WHERE i.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return iga.Identity{}, fmt.Errorf("identity %q: %w", id, iga.ErrNotFound)
	}
	if err != nil {
		return iga.Identity{}, fmt.Errorf("read identity %q: %w", id, err)
	}
	return ident, nil
}

// Identities returns every identity, sorted by id, each complete.
func (r reader) Identities(ctx context.Context) ([]iga.Identity, error) {
	rows, err := r.query(ctx, selectIdentities+" ORDER BY i.id")
	ids, err := collect(rows, err, scanIdentity)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	return ids, nil
}

// IdentitiesByOIDC returns the ids of the identities bound to issuer and
// subject, sorted.
func (r reader) IdentitiesByOIDC(ctx context.Context, issuer, subject string) ([]string, error) {
	rows, err := r.query(ctx, `SELECT identity_id FROM oidc_bindings
		WHERE issuer = ? AND subject = ? ORDER BY identity_id`, issuer, subject)
	ids, err := collect(rows, err, func(s scanner) (id string, err error) { return id, s.Scan(&id) })
	if err != nil {
		return nil, fmt.Errorf("find identities bound to %s subject %q: %w", issuer, subject, err)
	}
	return ids, nil
}

// PutIdentity inserts or replaces an identity's own fields, credentials and
// entitlements; certification history and LastUsed stay as they were.
func (t *tx) PutIdentity(ctx context.Context, id iga.Identity) error {
	if err := t.putIdentity(ctx, id); err != nil {
		return fmt.Errorf("store identity %q: %w", id.ID, err)
	}
	return nil
}

func (t *tx) putIdentity(ctx context.Context, id iga.Identity) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO identities
		(id, kind, state, owner, environment, holders, ssh_keys, oidc, entitlements)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, owner = excluded.owner,
		environment = excluded.environment, holders = excluded.holders, ssh_keys = excluded.ssh_keys,
		oidc = excluded.oidc, entitlements = excluded.entitlements`,
		id.ID, string(id.Kind), string(id.State), id.Owner, id.Environment, list(id.Holders),
		e.sshKeys(id.Credentials.SSHKeys), oidcDocs(id.Credentials.OIDC), e.entitlements(id.Entitlements))
	if err != nil {
		return err
	}
	return t.indexOIDC(ctx, id)
}

// indexOIDC makes oidc_bindings list exactly id's bindings.
func (t *tx) indexOIDC(ctx context.Context, id iga.Identity) error {
	if _, err := t.exec(ctx, "DELETE FROM oidc_bindings WHERE identity_id = ?", id.ID); err != nil {
		return fmt.Errorf("clear oidc bindings: %w", err)
	}
	for _, b := range id.Credentials.OIDC {
		_, err := t.exec(ctx, `INSERT INTO oidc_bindings (issuer, subject, identity_id) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, b.Issuer, b.Subject, id.ID)
		if err != nil {
			return fmt.Errorf("index oidc binding %s %q: %w", b.Issuer, b.Subject, err)
		}
	}
	return nil
}

// touch moves an identity's LastUsed forward to at; it never moves it
// back, so replicas recording decisions out of order still agree. An
// unknown identity is left alone: its decision is audited all the same.
func (t *tx) touch(ctx context.Context, identity string, at time.Time) error {
	var e encoder
	v := e.time(at)
	if e.err != nil || v == nil {
		return fmt.Errorf("mark identity %q used: bad time: %v", identity, e.err)
	}
	_, err := t.exec(ctx, "UPDATE identities SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)",
		v, identity, v)
	if err != nil {
		return fmt.Errorf("mark identity %q used: %w", identity, err)
	}
	return nil
}
