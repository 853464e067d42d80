package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

const selectDiscovered = `SELECT target, account, kind, login, password, attributes, ssh_keys, problems,
	first_seen, last_seen, gone_at FROM discovered_accounts`

var _ iga.DiscoveryStore = (*Store)(nil)

func scanDiscovered(s scanner) (a iga.DiscoveredAccount, err error) {
	return a, s.Scan(&a.Target, &a.Account, &a.Kind, &a.Login, &a.Password, listCol[string]{&a.Attributes},
		listCol[iga.DiscoveredKey]{&a.Keys}, listCol[string]{&a.Problems},
		timeCol{&a.FirstSeen}, timeCol{&a.LastSeen}, timeCol{&a.GoneAt})
}

// Discovered returns every discovered account, gone ones too, by target
// and account.
func (r reader) Discovered(ctx context.Context) ([]iga.DiscoveredAccount, error) {
	rows, err := r.query(ctx, selectDiscovered+" ORDER BY target, account")
	out, err := collect(rows, err, scanDiscovered)
	if err != nil {
		return nil, fmt.Errorf("read discovered accounts: %w", err)
	}
	return out, nil
}

// DiscoveryChange is what one discovery of a target changed in the
// registry's view of it.
type DiscoveryChange struct {
	New  []string `json:"new,omitempty"`  // accounts never seen, or seen again after gone
	Gone []string `json:"gone,omitempty"` // accounts this discovery missed
}

// RecordDiscovery keeps what a successful discovery of target found at
// at: new accounts get first_seen, present ones last_seen and their facts,
// and accounts it missed are marked gone. An account seen again after it
// was gone starts a new first_seen. Call it only for a target that was
// discovered: a target that could not be read says nothing of its accounts.
func (s *Store) RecordDiscovery(ctx context.Context, target string, found []iga.DiscoveredAccount, at time.Time) (DiscoveryChange, error) {
	var ch DiscoveryChange
	err := s.Update(ctx, func(t iga.Tx) error {
		ch = DiscoveryChange{}
		return t.(*tx).recordDiscovery(ctx, target, found, at, &ch)
	})
	if err != nil {
		return DiscoveryChange{}, fmt.Errorf("record discovery of %s: %w", target, err)
	}
	return ch, nil
}

func (t *tx) recordDiscovery(ctx context.Context, target string, found []iga.DiscoveredAccount, at time.Time, ch *DiscoveryChange) error {
	rows, err := t.query(ctx, selectDiscovered+" WHERE target = ?", target)
	known, err := collect(rows, err, scanDiscovered)
	if err != nil {
		return fmt.Errorf("read known accounts: %w", err)
	}
	before := map[string]iga.DiscoveredAccount{}
	for _, a := range known {
		before[a.Account] = a
	}
	seen := map[string]bool{}
	for _, a := range found {
		old, ok := before[a.Account]
		a.Target, a.FirstSeen, a.LastSeen, a.GoneAt = target, old.FirstSeen, at, time.Time{}
		if !ok || old.Gone() {
			a.FirstSeen = at
			ch.New = append(ch.New, a.Account)
		}
		seen[a.Account] = true
		if err := t.putDiscovered(ctx, a); err != nil {
			return err
		}
	}
	for _, a := range known {
		if seen[a.Account] || a.Gone() {
			continue
		}
		var e encoder
		if err := t.insert(ctx, &e, "UPDATE discovered_accounts SET gone_at = ? WHERE target = ? AND account = ?",
			e.time(at), target, a.Account); err != nil {
			return fmt.Errorf("mark %s gone: %w", a.Account, err)
		}
		ch.Gone = append(ch.Gone, a.Account)
	}
	return nil
}

func (t *tx) putDiscovered(ctx context.Context, a iga.DiscoveredAccount) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO discovered_accounts
		(target, account, kind, login, password, attributes, ssh_keys, problems, first_seen, last_seen, gone_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (target, account) DO UPDATE SET kind = excluded.kind, login = excluded.login,
		password = excluded.password, attributes = excluded.attributes, ssh_keys = excluded.ssh_keys,
		problems = excluded.problems, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
		gone_at = excluded.gone_at`,
		a.Target, a.Account, a.Kind, a.Login, a.Password, list(a.Attributes), list(a.Keys), list(a.Problems),
		e.time(a.FirstSeen), e.time(a.LastSeen), e.time(a.GoneAt))
	if err != nil {
		return fmt.Errorf("store discovered account %s: %w", a.Account, err)
	}
	return nil
}
