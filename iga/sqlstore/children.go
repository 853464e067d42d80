package sqlstore

import (
	"context"
	"fmt"

	"github.com/sallyport/sallyport/iga"
)

// keyed is a child row with the id of the identity it belongs to.
type keyed[T any] struct {
	identity string
	v        T
}

// children are the credentials and entitlements of one or all identities,
// grouped by identity id, each slice in the order it was put.
type children struct {
	keys map[string][]iga.SSHKey
	oidc map[string][]iga.OIDCBinding
	ents map[string][]iga.Entitlement
}

// attach fills id's credentials and entitlements from ch.
func (ch children) attach(id *iga.Identity) {
	id.Credentials.SSHKeys = ch.keys[id.ID]
	id.Credentials.OIDC = ch.oidc[id.ID]
	id.Entitlements = ch.ents[id.ID]
}

// children reads the child rows selected by where ("" for all).
func (r reader) children(ctx context.Context, where string, args ...any) (children, error) {
	var ch children
	var err error
	if ch.keys, err = readChildren(ctx, r, "identity_id, public_key, expires FROM ssh_keys", where, args, scanSSHKey); err != nil {
		return ch, fmt.Errorf("ssh keys: %w", err)
	}
	if ch.oidc, err = readChildren(ctx, r, "identity_id, issuer, subject FROM oidc_bindings", where, args, scanOIDC); err != nil {
		return ch, fmt.Errorf("oidc bindings: %w", err)
	}
	ch.ents, err = readChildren(ctx, r,
		"identity_id, target, login, actions, expires, from_cidrs FROM entitlements", where, args, scanEntitlement)
	if err != nil {
		return ch, fmt.Errorf("entitlements: %w", err)
	}
	return ch, nil
}

// readChildren runs SELECT cols [where] in identity and put order and
// groups the rows by identity.
func readChildren[T any](ctx context.Context, r reader, cols, where string, args []any,
	scan func(scanner) (keyed[T], error)) (map[string][]T, error) {
	rows, err := r.query(ctx, "SELECT "+cols+" "+where+" ORDER BY identity_id, pos", args...)
	all, err := collect(rows, err, scan)
	if err != nil {
		return nil, err
	}
	m := make(map[string][]T)
	for _, k := range all {
		m[k.identity] = append(m[k.identity], k.v)
	}
	return m, nil
}

func scanSSHKey(s scanner) (k keyed[iga.SSHKey], err error) {
	return k, s.Scan(&k.identity, &k.v.Key, timeCol{&k.v.Expires})
}

func scanOIDC(s scanner) (k keyed[iga.OIDCBinding], err error) {
	return k, s.Scan(&k.identity, &k.v.Issuer, &k.v.Subject)
}

func scanEntitlement(s scanner) (k keyed[iga.Entitlement], err error) {
	e := &k.v
	return k, s.Scan(&k.identity, &e.Target, &e.Login, listCol[iga.Action]{&e.Actions},
		timeCol{&e.Expires}, listCol[string]{&e.From})
}

// putChildren inserts an identity's credentials and entitlements, numbered
// in slice order.
func (t *tx) putChildren(ctx context.Context, id iga.Identity) error {
	var e encoder
	for i, k := range id.Credentials.SSHKeys {
		if err := t.insert(ctx, &e, "INSERT INTO ssh_keys (identity_id, pos, public_key, expires) VALUES (?, ?, ?, ?)",
			id.ID, i, k.Key, e.time(k.Expires)); err != nil {
			return fmt.Errorf("ssh key %d: %w", i+1, err)
		}
	}
	for i, b := range id.Credentials.OIDC {
		if err := t.insert(ctx, &e, "INSERT INTO oidc_bindings (identity_id, pos, issuer, subject) VALUES (?, ?, ?, ?)",
			id.ID, i, b.Issuer, b.Subject); err != nil {
			return fmt.Errorf("oidc binding %d: %w", i+1, err)
		}
	}
	for i, en := range id.Entitlements {
		if err := t.insert(ctx, &e, `INSERT INTO entitlements (identity_id, pos, target, login, actions, expires, from_cidrs)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id.ID, i, en.Target, en.Login, list(en.Actions), e.time(en.Expires), list(en.From)); err != nil {
			return fmt.Errorf("entitlement %d (%s): %w", i+1, en.Target, err)
		}
	}
	return nil
}

// insert runs one insert whose arguments e encoded, failing first on any
// value e could not encode.
func (t *tx) insert(ctx context.Context, e *encoder, query string, args ...any) error {
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, query, args...)
	return err
}
