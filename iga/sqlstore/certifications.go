package sqlstore

import (
	"context"
	"fmt"

	"github.com/sallyport/sallyport/iga"
)

// Certifications returns the certification history of an identity, oldest
// first; empty for an identity never certified or unknown.
func (r reader) Certifications(ctx context.Context, identity string) ([]iga.Certification, error) {
	rows, err := r.query(ctx, `SELECT decision, decided_by, decided_at, valid_until, note
		FROM certifications WHERE identity_id = ? ORDER BY id`, identity)
	cs, err := collect(rows, err, func(s scanner) (c iga.Certification, err error) {
		return c, s.Scan(&c.Decision, &c.By, timeCol{&c.At}, timeCol{&c.Until}, &c.Note)
	})
	if err != nil {
		return nil, fmt.Errorf("read certifications of %q: %w", identity, err)
	}
	return cs, nil
}

// AddCertification appends a certification decision, which becomes the
// identity's latest. The identity must exist (else iga.ErrNotFound).
func (t *tx) AddCertification(ctx context.Context, identity string, c iga.Certification) error {
	var exists int
	err := t.queryRow(ctx, "SELECT COUNT(*) FROM identities WHERE id = ?", identity).Scan(&exists)
	if err != nil {
		return fmt.Errorf("certify %q: %w", identity, err)
	}
	if exists == 0 {
		return fmt.Errorf("certify identity %q: %w", identity, iga.ErrNotFound)
	}
	var e encoder
	err = t.insert(ctx, &e, `INSERT INTO certifications (identity_id, decision, decided_by, decided_at, valid_until, note)
		VALUES (?, ?, ?, ?, ?, ?)`, identity, c.Decision, c.By, e.time(c.At), e.time(c.Until), c.Note)
	if err != nil {
		return fmt.Errorf("store certification of %q: %w", identity, err)
	}
	return nil
}
