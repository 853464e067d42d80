package iga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds the post-event review of break-glass use: when a grant
// ends, someone other than the person who opened it checks what was done
// with it (dual control) before review_within runs out.

// Review outcomes.
const (
	OutcomeLegitimate = "legitimate" // the emergency was real and the access fitted it
	OutcomeMisuse     = "misuse"     // the access was not justified or went further than it should
	OutcomeDrill      = "drill"      // a planned exercise
)

// Outcomes lists every review outcome.
var Outcomes = []string{OutcomeLegitimate, OutcomeMisuse, OutcomeDrill}

// roleAuditor is the person role that may take any review but their own.
const roleAuditor = "auditor"

// defaultReviewWithin is how long after a grant ends its review is due
// when Oversight.ReviewWithin is zero (DESIGN §4 breakglass.review_within).
const defaultReviewWithin = 72 * time.Hour

// Review is the post-event review of one break-glass grant.
type Review struct {
	ID       string // "rv-" and the grant id's random part
	Grant    string
	Identity string
	Target   string
	OpenedBy string
	// AssignedTo is the identity's owner; empty when the owner opened the
	// grant (or there is no active owner): then any auditor but the opener.
	AssignedTo  string
	CreatedAt   time.Time // when the grant ended
	DueAt       time.Time
	CompletedAt time.Time // zero while pending
	CompletedBy string
	Outcome     string
	Note        string
}

// Pending reports whether the review still waits for a reviewer.
func (r Review) Pending() bool { return r.CompletedAt.IsZero() }

// Overdue reports whether the review is pending past its due time at now.
func (r Review) Overdue(now time.Time) bool { return r.Pending() && !now.Before(r.DueAt) }

// ReviewReader reads reviews; the stores of package sqlstore have it.
type ReviewReader interface {
	// Review returns one review, or ErrNotFound.
	Review(ctx context.Context, id string) (Review, error)
	// Reviews returns every review, earliest due first.
	Reviews(ctx context.Context) ([]Review, error)
}

// ReviewTx is a Tx that also keeps reviews and alert claims.
type ReviewTx interface {
	Tx
	ReviewReader
	// PutReview inserts or replaces a review.
	PutReview(ctx context.Context, r Review) error
	// ClaimAlert records that the alert named key is being raised and
	// reports whether this call was the first to claim it.
	ClaimAlert(ctx context.Context, key string, at time.Time) (bool, error)
}

// errNoReviews says the store cannot keep reviews.
var errNoReviews = errors.New("the registry store does not keep break-glass reviews")

func reviewTx(tx Tx) (ReviewTx, error) {
	rt, ok := tx.(ReviewTx)
	if !ok {
		return nil, errNoReviews
	}
	return rt, nil
}

// reviewID is the id of the review of grant g: one review per grant.
func reviewID(grant string) string { return "rv-" + strings.TrimPrefix(grant, "bg-") }

// grantEnded is when g stopped admitting sessions, and whether it has.
func grantEnded(g Grant, now time.Time) (time.Time, bool) {
	end := g.ExpiresAt
	if !g.ClosedAt.IsZero() && g.ClosedAt.Before(end) {
		end = g.ClosedAt
	}
	return end, !now.Before(end)
}

// newReview is the review of an ended grant, assigned per dual control:
// the identity's active owner unless they opened it, else the auditors.
func newReview(ctx context.Context, rd Reader, g Grant, ended time.Time, within time.Duration) (Review, error) {
	rv := Review{ID: reviewID(g.ID), Grant: g.ID, Identity: g.Identity, Target: g.Target, OpenedBy: g.OpenedBy,
		CreatedAt: ended, DueAt: ended.Add(within)}
	id, err := rd.Identity(ctx, g.Identity)
	if errors.Is(err, ErrNotFound) {
		return rv, nil
	}
	if err != nil {
		return Review{}, fmt.Errorf("read identity %s: %w", g.Identity, err)
	}
	if id.Owner == "" || id.Owner == g.OpenedBy {
		return rv, nil
	}
	owner, err := rd.Person(ctx, id.Owner)
	if err == nil && owner.Status == PersonActive {
		rv.AssignedTo = id.Owner
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return Review{}, fmt.Errorf("read owner %s: %w", id.Owner, err)
	}
	return rv, nil
}

// ReviewCompletion is a reviewer's verdict on a review.
type ReviewCompletion struct {
	ID      string
	By      string
	Outcome string // OutcomeLegitimate, OutcomeMisuse or OutcomeDrill
	Note    string
}

// CompleteReview records a reviewer's verdict. The opener of the grant is
// always refused (dual control); otherwise the assignee, or any active
// auditor, may complete it. Call Oversight.Sweep first so a just-ended
// grant has its review.
func (r *Registry) CompleteReview(ctx context.Context, c ReviewCompletion) (Review, error) {
	if err := checkCompletion(c); err != nil {
		return Review{}, fmt.Errorf("complete review %s: %w", c.ID, err)
	}
	now := r.now().Truncate(time.Second)
	var rv Review
	err := r.Store.Update(ctx, func(tx Tx) error {
		rt, err := reviewTx(tx)
		if err != nil {
			return err
		}
		if rv, err = pendingReview(ctx, rt, c.ID); err != nil {
			return err
		}
		if err := checkReviewer(ctx, rt, rv, c.By); err != nil {
			return err
		}
		rv.CompletedAt, rv.CompletedBy, rv.Outcome, rv.Note = now, c.By, c.Outcome, strings.TrimSpace(c.Note)
		if err := rt.PutReview(ctx, rv); err != nil {
			return fmt.Errorf("store review: %w", err)
		}
		return appendAudit(ctx, tx, AuditEvent{Time: now, Type: "review_complete", Actor: c.By, Identity: rv.Identity,
			Target: rv.Target, Detail: fmt.Sprintf("review %s of grant %s: %s: %s", rv.ID, rv.Grant, rv.Outcome, rv.Note)})
	})
	if err != nil {
		return Review{}, fmt.Errorf("complete review %s: %w", c.ID, err)
	}
	return rv, nil
}

func checkCompletion(c ReviewCompletion) error {
	if !slices.Contains(Outcomes, c.Outcome) {
		return refusef("outcome %q is not one of %s", c.Outcome, strings.Join(Outcomes, ", "))
	}
	if strings.TrimSpace(c.Note) == "" {
		return refusef("a note is required; say what the sessions did and why the outcome fits")
	}
	return nil
}

// pendingReview reads a review that is still waiting for its verdict.
func pendingReview(ctx context.Context, rd ReviewReader, id string) (Review, error) {
	rv, err := rd.Review(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Review{}, notFoundf("no review %s; list reviews with `sallyport review list`", id)
	}
	if err != nil {
		return Review{}, fmt.Errorf("read review: %w", err)
	}
	if !rv.Pending() {
		return Review{}, refusef("it was completed by %s at %s (%s)", rv.CompletedBy, rv.CompletedAt.Format(time.RFC3339), rv.Outcome)
	}
	return rv, nil
}

// checkReviewer enforces dual control: never the opener; the assignee or
// an active auditor.
func checkReviewer(ctx context.Context, rd Reader, rv Review, by string) error {
	if by == rv.OpenedBy {
		return refusef("%s opened grant %s and may not review it (dual control); %s", by, rv.Grant, assigneePhrase(rv))
	}
	p, err := activePerson(ctx, rd, by, "reviewer")
	if err != nil {
		return err
	}
	if by == rv.AssignedTo || slices.Contains(p.Roles, roleAuditor) {
		return nil
	}
	return refusef("%s is neither the assigned reviewer nor an auditor; %s", by, assigneePhrase(rv))
}

func assigneePhrase(rv Review) string {
	if rv.AssignedTo != "" {
		return "it is assigned to " + rv.AssignedTo
	}
	return "any auditor other than " + rv.OpenedBy + " may complete it"
}
