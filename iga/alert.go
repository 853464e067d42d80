package iga

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// This file follows break-glass grants after they open: an alert for each
// new grant, the review when it ends, an alert when the review is overdue.
// Every step is idempotent and claimed in the store, so serve on several
// replicas and the CLI may all sweep without raising anything twice.

// Alert kinds.
const (
	AlertBreakglassOpened = "breakglass_opened"
	AlertReviewOverdue    = "review_overdue"
)

// Alert is something a person must look at now. It is what the alert
// webhook posts, as JSON.
type Alert struct {
	ID       string    `json:"id"` // unique per alert: kind/grant or kind/review
	Kind     string    `json:"kind"`
	Time     time.Time `json:"time"`
	Summary  string    `json:"summary"`
	Grant    string    `json:"grant"`
	Identity string    `json:"identity"`
	Target   string    `json:"target"`
	OpenedBy string    `json:"opened_by"`
	Reason   string    `json:"reason,omitempty"`
	Ticket   string    `json:"ticket,omitempty"`
	// Until is when the grant expires (breakglass_opened).
	Until *time.Time `json:"until,omitempty"`
	// Review, AssignedTo and DueAt describe an overdue review.
	Review     string     `json:"review,omitempty"`
	AssignedTo string     `json:"assigned_to,omitempty"`
	DueAt      *time.Time `json:"due_at,omitempty"`
}

// Oversight runs the break-glass follow-up. serve calls Sweep every few
// seconds; the review commands call it too, so reviews exist even when no
// bastion is serving.
type Oversight struct {
	// Registry is the registry swept. Required.
	Registry *Registry
	// ReviewWithin is how long after a grant ends its review is due.
	// Zero: 72 hours.
	ReviewWithin time.Duration
	// Alert receives each alert once across every process sharing the
	// store. It must not block: cmd queues it for the webhook. Nil: alerts
	// are only logged (at WARN).
	Alert func(Alert)

	// claimed remembers the alerts this process raised or saw claimed, so
	// a sweep does not ask the store again.
	mu      sync.Mutex
	claimed map[string]bool
}

// SweepResult says what one Sweep did and saw.
type SweepResult struct {
	Opened        int // grants alerted as newly opened
	ReviewsOpened int // reviews created for grants that ended
	Overdue       int // reviews pending past their due time (all, not only new)
	OverdueNew    int // overdue reviews alerted by this sweep
}

// Sweep alerts newly opened grants, creates the review of every grant that
// ended, and alerts each review that became overdue.
func (o *Oversight) Sweep(ctx context.Context) (SweepResult, error) {
	now := o.Registry.now().Truncate(time.Second)
	grants, err := o.unreviewedGrants(ctx)
	if err != nil {
		return SweepResult{}, fmt.Errorf("sweep break-glass grants: %w", err)
	}
	var res SweepResult
	for _, g := range grants {
		if err := o.followGrant(ctx, g, now, &res); err != nil {
			return res, fmt.Errorf("sweep break-glass grant %s: %w", g.ID, err)
		}
	}
	if err := o.sweepOverdue(ctx, now, &res); err != nil {
		return res, fmt.Errorf("sweep reviews: %w", err)
	}
	return res, nil
}

// OpenReviews creates the review of every grant that ended and has none,
// raising no alert: the CLI runs it before it lists or completes reviews,
// and leaves alerting to serve. It returns how many it created.
func (o *Oversight) OpenReviews(ctx context.Context) (int, error) {
	now := o.Registry.now().Truncate(time.Second)
	grants, err := o.unreviewedGrants(ctx)
	if err != nil {
		return 0, fmt.Errorf("open reviews: %w", err)
	}
	n := 0
	for _, g := range grants {
		ended, done := grantEnded(g, now)
		if !done {
			continue
		}
		created, err := o.ensureReview(ctx, g, ended)
		if err != nil {
			return n, fmt.Errorf("open review of grant %s: %w", g.ID, err)
		}
		if created {
			n++
		}
	}
	return n, nil
}

// unreviewedGrants returns the grants that have no review yet.
func (o *Oversight) unreviewedGrants(ctx context.Context) ([]Grant, error) {
	grants, err := o.Registry.Store.Grants(ctx, "")
	if err != nil {
		return nil, err
	}
	reviewed, err := o.reviewedGrants(ctx)
	if err != nil {
		return nil, err
	}
	out := grants[:0]
	for _, g := range grants {
		if !reviewed[g.ID] {
			out = append(out, g)
		}
	}
	return out, nil
}

// reviewedGrants is the set of grants that have a review.
func (o *Oversight) reviewedGrants(ctx context.Context) (map[string]bool, error) {
	rvs, err := o.reviews(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(rvs))
	for _, rv := range rvs {
		out[rv.Grant] = true
	}
	return out, nil
}

// followGrant alerts an open grant once and reviews an ended one once.
func (o *Oversight) followGrant(ctx context.Context, g Grant, now time.Time, res *SweepResult) error {
	ended, done := grantEnded(g, now)
	if !done {
		a := openedAlert(g, now)
		raised, err := o.raise(ctx, a)
		if raised {
			res.Opened++
		}
		return err
	}
	created, err := o.ensureReview(ctx, g, ended)
	if created {
		res.ReviewsOpened++
	}
	return err
}

// ensureReview creates the review of an ended grant unless it exists.
func (o *Oversight) ensureReview(ctx context.Context, g Grant, ended time.Time) (bool, error) {
	created := false
	err := o.Registry.Store.Update(ctx, func(tx Tx) error {
		rt, err := reviewTx(tx)
		if err != nil {
			return err
		}
		created = false
		_, err = rt.Review(ctx, reviewID(g.ID))
		if err == nil {
			return nil // another process created it since the sweep began
		}
		if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("read review: %w", err)
		}
		rv, err := newReview(ctx, rt, g, ended, o.reviewWithin())
		if err != nil {
			return err
		}
		if err := rt.PutReview(ctx, rv); err != nil {
			return fmt.Errorf("store review: %w", err)
		}
		created = true
		return appendAudit(ctx, tx, AuditEvent{Time: ended, Type: "review_open", Actor: systemActor, Identity: g.Identity,
			Target: g.Target, Detail: fmt.Sprintf("review %s of grant %s due %s; %s", rv.ID, g.ID, rv.DueAt.Format(time.RFC3339), assigneePhrase(rv))})
	})
	return created, err
}

// sweepOverdue counts the overdue reviews and alerts the new ones.
func (o *Oversight) sweepOverdue(ctx context.Context, now time.Time, res *SweepResult) error {
	rvs, err := o.reviews(ctx)
	if err != nil {
		return err
	}
	for _, rv := range rvs {
		if !rv.Overdue(now) {
			continue
		}
		res.Overdue++
		raised, err := o.raise(ctx, overdueAlert(rv, now))
		if err != nil {
			return err
		}
		if raised {
			res.OverdueNew++
		}
	}
	return nil
}

func (o *Oversight) reviews(ctx context.Context) ([]Review, error) {
	rd, ok := o.Registry.Store.(ReviewReader)
	if !ok {
		return nil, errNoReviews
	}
	return rd.Reviews(ctx)
}

// raise claims the alert and, when this call claimed it, logs it at WARN
// and hands it to Alert.
func (o *Oversight) raise(ctx context.Context, a Alert) (bool, error) {
	if o.seen(a.ID) {
		return false, nil
	}
	claimed := false
	err := o.Registry.Store.Update(ctx, func(tx Tx) error {
		rt, err := reviewTx(tx)
		if err != nil {
			return err
		}
		claimed, err = rt.ClaimAlert(ctx, a.ID, a.Time)
		return err
	})
	if err != nil {
		return false, err
	}
	o.remember(a.ID)
	if !claimed {
		return false, nil
	}
	o.Registry.logger().Warn(a.Summary, "alert", a.Kind, "grant", a.Grant, "identity", a.Identity,
		"target", a.Target, "opened_by", a.OpenedBy, "review", a.Review, "assigned_to", a.AssignedTo)
	if o.Alert != nil {
		o.Alert(a)
	}
	return true, nil
}

func (o *Oversight) seen(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.claimed[key]
}

func (o *Oversight) remember(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.claimed == nil {
		o.claimed = map[string]bool{}
	}
	o.claimed[key] = true
}

func (o *Oversight) reviewWithin() time.Duration {
	if o.ReviewWithin > 0 {
		return o.ReviewWithin
	}
	return defaultReviewWithin
}

func openedAlert(g Grant, now time.Time) Alert {
	until := g.ExpiresAt
	return Alert{ID: AlertBreakglassOpened + "/" + g.ID, Kind: AlertBreakglassOpened, Time: now,
		Summary: fmt.Sprintf("break-glass grant %s opened by %s on %s for %s", g.ID, g.OpenedBy, g.Target, g.Identity),
		Grant:   g.ID, Identity: g.Identity, Target: g.Target, OpenedBy: g.OpenedBy, Reason: g.Reason, Ticket: g.Ticket,
		Until: &until}
}

func overdueAlert(rv Review, now time.Time) Alert {
	due := rv.DueAt
	return Alert{ID: AlertReviewOverdue + "/" + rv.ID, Kind: AlertReviewOverdue, Time: now,
		Summary: fmt.Sprintf("break-glass review %s of grant %s is overdue since %s; %s", rv.ID, rv.Grant,
			rv.DueAt.Format(time.RFC3339), assigneePhrase(rv)),
		Grant: rv.Grant, Identity: rv.Identity, Target: rv.Target, OpenedBy: rv.OpenedBy,
		Review: rv.ID, AssignedTo: rv.AssignedTo, DueAt: &due}
}
