package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// This file keeps the governance workflows of iga: break-glass reviews,
// alert claims, certification campaigns, and the session history the
// hygiene report reads (migration 0003_governance).

var (
	_ iga.ReviewTx       = (*tx)(nil)
	_ iga.CampaignTx     = (*tx)(nil)
	_ iga.ReviewReader   = (*Store)(nil)
	_ iga.CampaignReader = (*Store)(nil)
	_ iga.SessionHistory = (*Store)(nil)
)

const reviewColumns = `id, grant_id, identity_id, target, opened_by, assigned_to, created_at, due_at,
	completed_at, completed_by, outcome, note`

func scanReview(s scanner) (r iga.Review, err error) {
	return r, s.Scan(&r.ID, &r.Grant, &r.Identity, &r.Target, &r.OpenedBy, &r.AssignedTo, timeCol{&r.CreatedAt},
		timeCol{&r.DueAt}, timeCol{&r.CompletedAt}, &r.CompletedBy, &r.Outcome, &r.Note)
}

// Review returns one review, or an error wrapping iga.ErrNotFound.
func (r reader) Review(ctx context.Context, id string) (iga.Review, error) {
	rv, err := scanReview(r.queryRow(ctx, "SELECT "+reviewColumns+" FROM reviews WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return iga.Review{}, fmt.Errorf("review %q: %w", id, iga.ErrNotFound)
	}
	if err != nil {
		return iga.Review{}, fmt.Errorf("read review %q: %w", id, err)
	}
	return rv, nil
}

// Reviews returns every review, earliest due first.
func (r reader) Reviews(ctx context.Context) ([]iga.Review, error) {
	rows, err := r.query(ctx, "SELECT "+reviewColumns+" FROM reviews ORDER BY due_at, id")
	rvs, err := collect(rows, err, scanReview)
	if err != nil {
		return nil, fmt.Errorf("read reviews: %w", err)
	}
	return rvs, nil
}

// PutReview inserts or replaces a review.
func (t *tx) PutReview(ctx context.Context, rv iga.Review) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO reviews (`+reviewColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET assigned_to = excluded.assigned_to, due_at = excluded.due_at,
		completed_at = excluded.completed_at, completed_by = excluded.completed_by,
		outcome = excluded.outcome, note = excluded.note`,
		rv.ID, rv.Grant, rv.Identity, rv.Target, rv.OpenedBy, rv.AssignedTo, e.time(rv.CreatedAt), e.time(rv.DueAt),
		e.time(rv.CompletedAt), rv.CompletedBy, rv.Outcome, rv.Note)
	if err != nil {
		return fmt.Errorf("store review %q: %w", rv.ID, err)
	}
	return nil
}

// ClaimAlert records the alert key and reports whether it was new.
func (t *tx) ClaimAlert(ctx context.Context, key string, at time.Time) (bool, error) {
	var e encoder
	claimedAt := e.time(at)
	if e.err != nil {
		return false, fmt.Errorf("claim alert %s: %w", key, e.err)
	}
	res, err := t.exec(ctx, "INSERT INTO alert_claims (alert_key, claimed_at) VALUES (?, ?) ON CONFLICT (alert_key) DO NOTHING",
		key, claimedAt)
	if err != nil {
		return false, fmt.Errorf("claim alert %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim alert %s: %w", key, err)
	}
	return n == 1, nil
}

const campaignColumns = `id, name, scope, started_by, started_at, due_at, closed_at, closed_by`

func scanCampaign(s scanner) (c iga.Campaign, err error) {
	return c, s.Scan(&c.ID, &c.Name, &c.Scope, &c.StartedBy, timeCol{&c.StartedAt}, timeCol{&c.DueAt},
		timeCol{&c.ClosedAt}, &c.ClosedBy)
}

// Campaign returns one campaign, or an error wrapping iga.ErrNotFound.
func (r reader) Campaign(ctx context.Context, id string) (iga.Campaign, error) {
	c, err := scanCampaign(r.queryRow(ctx, "SELECT "+campaignColumns+" FROM campaigns WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return iga.Campaign{}, fmt.Errorf("campaign %q: %w", id, iga.ErrNotFound)
	}
	if err != nil {
		return iga.Campaign{}, fmt.Errorf("read campaign %q: %w", id, err)
	}
	return c, nil
}

// Campaigns returns every campaign, oldest first.
func (r reader) Campaigns(ctx context.Context) ([]iga.Campaign, error) {
	rows, err := r.query(ctx, "SELECT "+campaignColumns+" FROM campaigns ORDER BY started_at, id")
	cs, err := collect(rows, err, scanCampaign)
	if err != nil {
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	return cs, nil
}

// PutCampaign inserts or replaces a campaign.
func (t *tx) PutCampaign(ctx context.Context, c iga.Campaign) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO campaigns (`+campaignColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, due_at = excluded.due_at,
		closed_at = excluded.closed_at, closed_by = excluded.closed_by`,
		c.ID, c.Name, c.Scope, c.StartedBy, e.time(c.StartedAt), e.time(c.DueAt), e.time(c.ClosedAt), c.ClosedBy)
	if err != nil {
		return fmt.Errorf("store campaign %q: %w", c.ID, err)
	}
	return nil
}

const itemColumns = `campaign_id, identity_id, reviewer, decision, decided_by, decided_at, note`

// CampaignItems returns a campaign's items sorted by identity.
func (r reader) CampaignItems(ctx context.Context, campaign string) ([]iga.CampaignItem, error) {
	rows, err := r.query(ctx, "SELECT "+itemColumns+" FROM campaign_items WHERE campaign_id = ? ORDER BY identity_id", campaign)
	items, err := collect(rows, err, func(s scanner) (it iga.CampaignItem, err error) {
		return it, s.Scan(&it.Campaign, &it.Identity, &it.Reviewer, &it.Decision, &it.DecidedBy, timeCol{&it.DecidedAt}, &it.Note)
	})
	if err != nil {
		return nil, fmt.Errorf("read items of campaign %q: %w", campaign, err)
	}
	return items, nil
}

// PutCampaignItem inserts or replaces a campaign item.
func (t *tx) PutCampaignItem(ctx context.Context, it iga.CampaignItem) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO campaign_items (`+itemColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (campaign_id, identity_id) DO UPDATE SET reviewer = excluded.reviewer,
		decision = excluded.decision, decided_by = excluded.decided_by, decided_at = excluded.decided_at,
		note = excluded.note`,
		it.Campaign, it.Identity, it.Reviewer, it.Decision, it.DecidedBy, e.time(it.DecidedAt), it.Note)
	if err != nil {
		return fmt.Errorf("store item %s of campaign %q: %w", it.Identity, it.Campaign, err)
	}
	return nil
}

// LastSessions returns when each identity's latest session started.
func (s *Store) LastSessions(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.query(ctx, "SELECT identity_id, MAX(started_at) FROM sessions GROUP BY identity_id")
	type last struct {
		id string
		at time.Time
	}
	ls, err := collect(rows, err, func(sc scanner) (l last, err error) { return l, sc.Scan(&l.id, timeCol{&l.at}) })
	if err != nil {
		return nil, fmt.Errorf("read last sessions: %w", err)
	}
	out := make(map[string]time.Time, len(ls))
	for _, l := range ls {
		out[l.id] = l.at
	}
	return out, nil
}

// AdmissionUses returns the allowed admission decisions since a time,
// grouped by identity, target, action, source and detail.
func (s *Store) AdmissionUses(ctx context.Context, since time.Time) ([]iga.AdmissionUse, error) {
	var e encoder
	from := e.time(since)
	if e.err != nil {
		return nil, fmt.Errorf("read admissions: since: %w", e.err)
	}
	rows, err := s.query(ctx, `SELECT identity_id, target, action, source, detail, COUNT(*), MAX(occurred_at)
		FROM audit_events WHERE event_type = 'decision' AND allowed = 1 AND occurred_at >= ?
		GROUP BY identity_id, target, action, source, detail`, from)
	uses, err := collect(rows, err, func(sc scanner) (u iga.AdmissionUse, err error) {
		return u, sc.Scan(&u.Identity, &u.Target, &u.Action, &u.Source, &u.Detail, &u.Count, timeCol{&u.Last})
	})
	if err != nil {
		return nil, fmt.Errorf("read admissions: %w", err)
	}
	return uses, nil
}
