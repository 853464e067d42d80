package iga

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/when"
)

// This file holds certification campaigns (DESIGN §8): a named round in
// which each identity in scope is certified or revoked by its owner before
// a deadline. A campaign certification is an ordinary certification by the
// owner, so admission rule 4 counts it; a revoke suspends the identity and
// the session watcher ends its live sessions.

// Campaign scopes.
const (
	ScopeAll      = "all"
	scopeOwner    = "owner:"
	scopeTarget   = "target:"
	scopeExpiring = "expiring:"
)

// campaignIDAttempts bounds the retries when a random campaign id is taken.
const campaignIDAttempts = 5

// Campaign is one certification campaign.
type Campaign struct {
	ID        string // "cp-" and 8 hex digits
	Name      string
	Scope     string // all, owner:PERSON, target:T or expiring:30d
	StartedBy string
	StartedAt time.Time
	DueAt     time.Time
	ClosedAt  time.Time // zero while open
	ClosedBy  string
}

// CampaignItem is one identity to decide in a campaign.
type CampaignItem struct {
	Campaign string
	Identity string
	// Reviewer is the identity's owner when the campaign started; empty
	// for an unowned identity, which nobody can decide here.
	Reviewer  string
	Decision  string // "" while undecided, DecisionCertify or DecisionRevoke
	DecidedBy string
	DecidedAt time.Time
	Note      string
	// Entitlements are what the identity may do as the registry holds it
	// when the item is read (targets, logins, actions and commands): what a
	// certify decision confirms. They are not stored with the item.
	Entitlements []Entitlement
}

// WithEntitlements sets each item's Entitlements from ids, the registry's
// identities as they are now; an identity no longer there has none.
func WithEntitlements(items []CampaignItem, ids []Identity) []CampaignItem {
	byID := make(map[string][]Entitlement, len(ids))
	for _, id := range ids {
		byID[id.ID] = id.Entitlements
	}
	out := make([]CampaignItem, len(items))
	for i, it := range items {
		it.Entitlements = byID[it.Identity]
		out[i] = it
	}
	return out
}

// withEntitlements is WithEntitlements over the identities rd holds.
func withEntitlements(ctx context.Context, rd Reader, items []CampaignItem) ([]CampaignItem, error) {
	ids, err := rd.Identities(ctx)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	return WithEntitlements(items, ids), nil
}

// CampaignReader reads campaigns; the stores of package sqlstore have it.
type CampaignReader interface {
	// Campaign returns one campaign, or ErrNotFound.
	Campaign(ctx context.Context, id string) (Campaign, error)
	// Campaigns returns every campaign, oldest first.
	Campaigns(ctx context.Context) ([]Campaign, error)
	// CampaignItems returns a campaign's items sorted by identity.
	CampaignItems(ctx context.Context, campaign string) ([]CampaignItem, error)
}

// CampaignTx is a Tx that also keeps campaigns.
type CampaignTx interface {
	Tx
	CampaignReader
	// PutCampaign inserts or replaces a campaign.
	PutCampaign(ctx context.Context, c Campaign) error
	// PutCampaignItem inserts or replaces an item.
	PutCampaignItem(ctx context.Context, it CampaignItem) error
}

var errNoCampaigns = errors.New("the registry store does not keep campaigns")

func campaignTx(tx Tx) (CampaignTx, error) {
	ct, ok := tx.(CampaignTx)
	if !ok {
		return nil, errNoCampaigns
	}
	return ct, nil
}

// CampaignRequest starts a campaign.
type CampaignRequest struct {
	Name  string
	Scope string        // empty: all
	Due   time.Duration // from now; must be positive
	By    string        // who starts it, for the audit trail
}

// CampaignReport is a campaign with its items and where they stand.
type CampaignReport struct {
	Campaign  Campaign
	Items     []CampaignItem
	Certified []string
	Revoked   []string
	Undecided []string
	// Overdue is true when the deadline passed with items undecided.
	Overdue bool
}

// StartCampaign creates a campaign with one item per identity in scope
// that is not deprovisioned and not a human account.
func (r *Registry) StartCampaign(ctx context.Context, req CampaignRequest) (CampaignReport, error) {
	sel, err := r.checkCampaignRequest(&req)
	if err != nil {
		return CampaignReport{}, fmt.Errorf("start campaign %q: %w", req.Name, err)
	}
	now := r.now().Truncate(time.Second)
	c := Campaign{Name: req.Name, Scope: req.Scope, StartedBy: orSystem(req.By), StartedAt: now, DueAt: now.Add(req.Due)}
	var items []CampaignItem
	err = r.Store.Update(ctx, func(tx Tx) error {
		ct, err := campaignTx(tx)
		if err != nil {
			return err
		}
		if c.ID, err = newCampaignID(ctx, ct); err != nil {
			return err
		}
		if items, err = campaignItems(ctx, ct, c.ID, sel, now); err != nil {
			return err
		}
		return storeCampaign(ctx, ct, c, items)
	})
	if err != nil {
		return CampaignReport{}, fmt.Errorf("start campaign %q: %w", req.Name, err)
	}
	return reportOf(c, items, now), nil
}

func (r *Registry) checkCampaignRequest(req *CampaignRequest) (func(Identity, time.Time) bool, error) {
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		return nil, refusef("a campaign needs a name")
	}
	if req.Due <= 0 {
		return nil, refusef("the due period must be positive, e.g. 14d")
	}
	if req.Scope == "" {
		req.Scope = ScopeAll
	}
	return scopeSelector(req.Scope)
}

// scopeSelector returns the predicate of a scope, or why it is malformed.
func scopeSelector(scope string) (func(Identity, time.Time) bool, error) {
	kind, arg, _ := strings.Cut(scope, ":")
	switch {
	case scope == ScopeAll:
		return func(Identity, time.Time) bool { return true }, nil
	case kind+":" == scopeOwner && arg != "":
		return func(id Identity, _ time.Time) bool { return id.Owner == arg }, nil
	case kind+":" == scopeTarget && arg != "":
		return func(id Identity, _ time.Time) bool { return len(entitlementsOn(id.Entitlements, arg)) > 0 }, nil
	case kind+":" == scopeExpiring && arg != "":
		within, err := parseDays(arg)
		if err != nil {
			return nil, refusef("scope %q: %v", scope, err)
		}
		return func(id Identity, now time.Time) bool { return certificationEndsWithin(id, now, within) }, nil
	}
	return nil, refusef("scope %q: want all, owner:PERSON, target:T or expiring:30d", scope)
}

// parseDays parses "30d" or a Go duration (when.ParseDuration), which
// must be more than zero.
func parseDays(s string) (time.Duration, error) {
	d, err := when.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: want a duration of more than zero, such as 30d", s)
	}
	return d, nil
}

// certificationEndsWithin: never certified, revoked, or certified until
// before now+within.
func certificationEndsWithin(id Identity, now time.Time, within time.Duration) bool {
	c := id.Certification
	return c == nil || c.Decision != DecisionCertify || c.Until.Before(now.Add(within))
}

func campaignItems(ctx context.Context, rd Reader, campaign string, sel func(Identity, time.Time) bool, now time.Time) ([]CampaignItem, error) {
	ids, err := rd.Identities(ctx)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	var items []CampaignItem
	for _, id := range ids {
		if id.State == StateDeprovisioned || id.Kind == KindHuman || !sel(id, now) {
			continue
		}
		items = append(items, CampaignItem{Campaign: campaign, Identity: id.ID, Reviewer: id.Owner, Entitlements: id.Entitlements})
	}
	if len(items) == 0 {
		return nil, refusef("no identity is in scope; nothing to certify")
	}
	return items, nil
}

func storeCampaign(ctx context.Context, ct CampaignTx, c Campaign, items []CampaignItem) error {
	if err := ct.PutCampaign(ctx, c); err != nil {
		return fmt.Errorf("store campaign: %w", err)
	}
	for _, it := range items {
		if err := ct.PutCampaignItem(ctx, it); err != nil {
			return fmt.Errorf("store campaign item %s: %w", it.Identity, err)
		}
	}
	return appendAudit(ctx, ct, AuditEvent{Time: c.StartedAt, Type: "campaign_start", Actor: c.StartedBy,
		Detail: fmt.Sprintf("campaign %s %q scope %s: %d identities, due %s", c.ID, c.Name, c.Scope, len(items), c.DueAt.Format(time.RFC3339))})
}

// newCampaignID returns a short random id ("cp-" and 8 hex digits) not yet taken.
func newCampaignID(ctx context.Context, rd CampaignReader) (string, error) {
	for range campaignIDAttempts {
		b := make([]byte, 4)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("make campaign id: %w", err)
		}
		id := "cp-" + hex.EncodeToString(b)
		_, err := rd.Campaign(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", fmt.Errorf("check campaign id: %w", err)
		}
	}
	return "", fmt.Errorf("make campaign id: %d random ids were all taken", campaignIDAttempts)
}

// CampaignDecision is a reviewer's decision on one campaign item.
type CampaignDecision struct {
	Campaign string
	Identity string
	By       string
	Decision string // DecisionCertify or DecisionRevoke
	Note     string
}

// DecideCampaignItem records the item's reviewer's decision. Certify adds a
// certification for Policy.MaxCertification; revoke adds a revoke decision
// and suspends the identity. Anyone but the reviewer is refused, and so is
// a decision in a closed campaign.
func (r *Registry) DecideCampaignItem(ctx context.Context, d CampaignDecision) (CampaignItem, error) {
	if d.Decision != DecisionCertify && d.Decision != DecisionRevoke {
		return CampaignItem{}, fmt.Errorf("decide %s in campaign %s: %w", d.Identity, d.Campaign,
			refusef("decision %q: want certify or revoke", d.Decision))
	}
	now := r.now().Truncate(time.Second)
	var it CampaignItem
	err := r.Store.Update(ctx, func(tx Tx) error {
		ct, err := campaignTx(tx)
		if err != nil {
			return err
		}
		if it, err = openItem(ctx, ct, d); err != nil {
			return err
		}
		it.Decision, it.DecidedBy, it.DecidedAt, it.Note = d.Decision, d.By, now, strings.TrimSpace(d.Note)
		if err := r.applyDecision(ctx, ct, it); err != nil {
			return err
		}
		if err := ct.PutCampaignItem(ctx, it); err != nil {
			return err
		}
		// What was certified (or revoked), for the reviewer's confirmation.
		id, err := findIdentity(ctx, ct, it.Identity)
		it.Entitlements = id.Entitlements
		return err
	})
	if err != nil {
		return CampaignItem{}, fmt.Errorf("decide %s in campaign %s: %w", d.Identity, d.Campaign, err)
	}
	return it, nil
}

// openItem reads the item d decides, checking the campaign is open and d.By
// is its reviewer.
func openItem(ctx context.Context, ct CampaignTx, d CampaignDecision) (CampaignItem, error) {
	c, err := findCampaign(ctx, ct, d.Campaign)
	if err != nil {
		return CampaignItem{}, err
	}
	if !c.ClosedAt.IsZero() {
		return CampaignItem{}, refusef("campaign %s was closed at %s; certify with `sallyport iga certify`", c.ID, c.ClosedAt.Format(time.RFC3339))
	}
	items, err := ct.CampaignItems(ctx, c.ID)
	if err != nil {
		return CampaignItem{}, fmt.Errorf("read campaign items: %w", err)
	}
	for _, it := range items {
		if it.Identity != d.Identity {
			continue
		}
		if it.Reviewer == "" {
			return CampaignItem{}, refusef("%s has no owner, so nobody can decide it here; assign an owner and apply", it.Identity)
		}
		if d.By != it.Reviewer {
			return CampaignItem{}, refusef("%s is not the reviewer of %s; its owner %s decides it", d.By, it.Identity, it.Reviewer)
		}
		return it, nil
	}
	return CampaignItem{}, notFoundf("%s is not in campaign %s; see `sallyport iga campaign show %s`", d.Identity, c.ID, c.ID)
}

func findCampaign(ctx context.Context, rd CampaignReader, id string) (Campaign, error) {
	c, err := rd.Campaign(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Campaign{}, notFoundf("no campaign %s; list campaigns with `sallyport iga campaign list`", id)
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("read campaign %s: %w", id, err)
	}
	return c, nil
}

// applyDecision writes the certification or the revocation of an item.
func (r *Registry) applyDecision(ctx context.Context, tx Tx, it CampaignItem) error {
	id, err := findIdentity(ctx, tx, it.Identity)
	if err != nil {
		return err
	}
	if it.DecidedBy != id.Owner { // the owner changed since the campaign started
		return refusef("%s is now owned by %s, not %s; the new owner certifies it with `sallyport iga certify`", id.ID, id.Owner, it.DecidedBy)
	}
	c := Certification{Decision: it.Decision, By: it.DecidedBy, At: it.DecidedAt,
		Note: fmt.Sprintf("campaign %s%s", it.Campaign, noteSuffix(it.Note))}
	detail := ""
	if it.Decision == DecisionCertify {
		if err := checkCertifier(ctx, tx, id, it.DecidedBy); err != nil {
			return err
		}
		c.Until = it.DecidedAt.Add(r.maxCertification())
		detail = "certified until " + formatTime(c.Until)
	} else if _, err := activePerson(ctx, tx, it.DecidedBy, "reviewer"); err != nil {
		return err
	}
	if err := tx.AddCertification(ctx, id.ID, c); err != nil {
		return fmt.Errorf("add certification: %w", err)
	}
	if it.Decision == DecisionRevoke {
		s, err := suspend(ctx, tx, id)
		if err != nil {
			return err
		}
		detail = "revoked" + s
	}
	return appendAudit(ctx, tx, AuditEvent{Time: it.DecidedAt, Type: it.Decision, Actor: it.DecidedBy, Identity: id.ID,
		Detail: fmt.Sprintf("campaign %s: %s%s", it.Campaign, detail, noteSuffix(it.Note))})
}

// CampaignReport returns a campaign with its items and where they stand.
func (r *Registry) CampaignReport(ctx context.Context, id string) (CampaignReport, error) {
	rd, ok := r.Store.(CampaignReader)
	if !ok {
		return CampaignReport{}, errNoCampaigns
	}
	c, err := findCampaign(ctx, rd, id)
	if err != nil {
		return CampaignReport{}, err
	}
	items, err := rd.CampaignItems(ctx, id)
	if err != nil {
		return CampaignReport{}, fmt.Errorf("read campaign %s items: %w", id, err)
	}
	if items, err = withEntitlements(ctx, r.Store, items); err != nil {
		return CampaignReport{}, fmt.Errorf("read campaign %s items: %w", id, err)
	}
	return reportOf(c, items, r.now()), nil
}

// CloseCampaign closes a campaign: no more decisions. Undecided items keep
// their current certification and are listed in the report.
func (r *Registry) CloseCampaign(ctx context.Context, id, by string) (CampaignReport, error) {
	now := r.now().Truncate(time.Second)
	var rep CampaignReport
	err := r.Store.Update(ctx, func(tx Tx) error {
		ct, err := campaignTx(tx)
		if err != nil {
			return err
		}
		c, err := findCampaign(ctx, ct, id)
		if err != nil {
			return err
		}
		if !c.ClosedAt.IsZero() {
			return refusef("it was already closed at %s", c.ClosedAt.Format(time.RFC3339))
		}
		items, err := ct.CampaignItems(ctx, id)
		if err != nil {
			return fmt.Errorf("read campaign items: %w", err)
		}
		if items, err = withEntitlements(ctx, ct, items); err != nil {
			return err
		}
		c.ClosedAt, c.ClosedBy = now, orSystem(by)
		if err := ct.PutCampaign(ctx, c); err != nil {
			return fmt.Errorf("store campaign: %w", err)
		}
		rep = reportOf(c, items, now)
		return appendAudit(ctx, tx, AuditEvent{Time: now, Type: "campaign_close", Actor: c.ClosedBy, Detail: rep.Summary()})
	})
	if err != nil {
		return CampaignReport{}, fmt.Errorf("close campaign %s: %w", id, err)
	}
	return rep, nil
}

func reportOf(c Campaign, items []CampaignItem, now time.Time) CampaignReport {
	rep := CampaignReport{Campaign: c, Items: items}
	for _, it := range items {
		switch it.Decision {
		case DecisionCertify:
			rep.Certified = append(rep.Certified, it.Identity)
		case DecisionRevoke:
			rep.Revoked = append(rep.Revoked, it.Identity)
		default:
			rep.Undecided = append(rep.Undecided, it.Identity)
		}
	}
	end := now
	if !c.ClosedAt.IsZero() {
		end = c.ClosedAt
	}
	rep.Overdue = len(rep.Undecided) > 0 && !end.Before(c.DueAt)
	return rep
}

// Summary is one line on where the campaign stands.
func (rep CampaignReport) Summary() string {
	s := fmt.Sprintf("campaign %s %q: %d certified, %d revoked, %d undecided", rep.Campaign.ID, rep.Campaign.Name,
		len(rep.Certified), len(rep.Revoked), len(rep.Undecided))
	if len(rep.Undecided) > 0 {
		s += " (" + strings.Join(rep.Undecided, ", ") + ": they keep their current state)"
	}
	return s
}
