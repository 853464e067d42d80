package iga

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the governance writes: certify, revoke, offboard, and
// break-glass grants. Each runs in one Store.Update and leaves an audit event.

// ErrRefused marks a governance request that breaks a rule: a certifier who
// is not the owner, a period over the maximum, a grant by a non-holder.
// The error's text says which rule and what to do; callers branch on it
// with errors.Is (the CLI exits 1, the web API answers 403).
var ErrRefused = errors.New("refused")

// Governance limits (DESIGN §8).
const (
	// minGrantReason is the shortest break-glass reason accepted: enough to
	// say what broke, so the post-event review has something to check.
	minGrantReason = 10
	// defaultGrantPeriod is how long a grant lasts when no duration is asked:
	// long enough to fix an outage, short enough to lapse on its own.
	defaultGrantPeriod = 30 * time.Minute
	// grantIDAttempts bounds the retries when a random grant id is taken.
	grantIDAttempts = 5
)

// govError is a governance error whose text is its whole message and which
// matches a sentinel (ErrRefused, ErrNotFound) under errors.Is.
type govError struct {
	msg  string
	kind error
}

func (e *govError) Error() string        { return e.msg }
func (e *govError) Is(target error) bool { return target == e.kind }

func refusef(format string, args ...any) error {
	return &govError{msg: fmt.Sprintf(format, args...), kind: ErrRefused}
}

func notFoundf(format string, args ...any) error {
	return &govError{msg: fmt.Sprintf(format, args...), kind: ErrNotFound}
}

// findIdentity reads an identity, turning ErrNotFound into a message that
// says how to find the right id.
func findIdentity(ctx context.Context, rd Reader, id string) (Identity, error) {
	ident, err := rd.Identity(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Identity{}, notFoundf("no identity %s in the registry; list identities with `sallyport iga export`", id)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("read identity %s: %w", id, err)
	}
	return ident, nil
}

// activePerson reads a person who must be active to act, naming their role
// in the message when they are not.
func activePerson(ctx context.Context, rd Reader, id, role string) (Person, error) {
	p, err := rd.Person(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Person{}, refusef("%s %s is not a person in the registry; add them under people: and apply", role, id)
	}
	if err != nil {
		return Person{}, fmt.Errorf("read person %s: %w", id, err)
	}
	if p.Status != PersonActive {
		return Person{}, refusef("%s %s is %s; only active people may act", role, id, p.Status)
	}
	return p, nil
}

func appendAudit(ctx context.Context, tx Tx, e AuditEvent) error {
	if err := tx.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// Certify records that by, the identity's current owner, certifies it for
// period from now; zero means Policy.MaxCertification, and a longer period
// is refused. Campaign reviewers certify through campaigns, not here.
func (r *Registry) Certify(ctx context.Context, identity, by string, period time.Duration, note string) (Certification, error) {
	period, err := r.certificationPeriod(period)
	if err != nil {
		return Certification{}, fmt.Errorf("certify %s: %w", identity, err)
	}
	now := r.now().Truncate(time.Second)
	c := Certification{Decision: DecisionCertify, By: by, At: now, Until: now.Add(period), Note: note}
	err = r.Store.Update(ctx, func(tx Tx) error {
		id, err := findIdentity(ctx, tx, identity)
		if err != nil {
			return err
		}
		if err := checkCertifier(ctx, tx, id, by); err != nil {
			return err
		}
		if err := tx.AddCertification(ctx, identity, c); err != nil {
			return fmt.Errorf("add certification: %w", err)
		}
		return appendAudit(ctx, tx, AuditEvent{Time: now, Type: "certify", Actor: by, Identity: identity,
			Detail: fmt.Sprintf("certified until %s (%s)%s", formatTime(c.Until), formatPeriod(period), noteSuffix(note))})
	})
	if err != nil {
		return Certification{}, fmt.Errorf("certify %s: %w", identity, err)
	}
	return c, nil
}

func (r *Registry) certificationPeriod(period time.Duration) (time.Duration, error) {
	max := r.maxCertification()
	switch {
	case period == 0:
		return max, nil
	case period < 0:
		return 0, refusef("the period %s is negative; give a duration such as 90d", formatDuration(period))
	case period > max:
		return 0, refusef("a certification of %s is longer than the maximum of %s (certification.max_period); certify for %s or less",
			formatPeriod(period), formatPeriod(max), formatPeriod(max))
	}
	return period, nil
}

// checkCertifier enforces that only the current, active owner certifies.
func checkCertifier(ctx context.Context, rd Reader, id Identity, by string) error {
	switch {
	case id.State == StateDeprovisioned:
		return refusef("%s is deprovisioned; set its state in the registry file and apply before certifying", id.ID)
	case id.Owner == "":
		return refusef("%s has no owner; assign one (owner:) in the registry file and apply, then the owner certifies", id.ID)
	case by != id.Owner:
		return refusef("%s is not the owner of %s; ask its owner %s to certify it", by, id.ID, id.Owner)
	}
	p, err := rd.Person(ctx, by)
	switch {
	case errors.Is(err, ErrNotFound):
		return refusef("owner %s is not a person in the registry; add them under people: and apply", by)
	case err != nil:
		return fmt.Errorf("read person %s: %w", by, err)
	case p.Status != PersonActive:
		return refusef("owner %s is %s (offboarded); assign %s a new owner, who then certifies it", by, p.Status, id.ID)
	}
	return nil
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return ": " + note
}

// Revoke records a revoke decision by an active person with a reason and
// suspends the identity, so admission denies it (certification_revoked,
// not_active) until it is re-activated and recertified. Anyone active in
// the registry may revoke: taking access away must never wait for the owner.
func (r *Registry) Revoke(ctx context.Context, identity, by, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return fmt.Errorf("revoke %s: %w", identity, refusef("a reason is required; say why the access goes"))
	}
	now := r.now().Truncate(time.Second)
	err := r.Store.Update(ctx, func(tx Tx) error {
		id, err := findIdentity(ctx, tx, identity)
		if err != nil {
			return err
		}
		if _, err := activePerson(ctx, tx, by, "revoker"); err != nil {
			return err
		}
		c := Certification{Decision: DecisionRevoke, By: by, At: now, Note: reason}
		if err := tx.AddCertification(ctx, identity, c); err != nil {
			return fmt.Errorf("add revoke decision: %w", err)
		}
		detail, err := suspend(ctx, tx, id)
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, AuditEvent{Time: now, Type: "revoke", Actor: by, Identity: identity, Detail: "revoked: " + reason + detail})
	})
	if err != nil {
		return fmt.Errorf("revoke %s: %w", identity, err)
	}
	return nil
}

// suspend moves a proposed or active identity to suspended and says so
// for the audit detail; suspended and deprovisioned ones stay as they are.
func suspend(ctx context.Context, tx Tx, id Identity) (string, error) {
	if id.State != StateActive && id.State != StateProposed {
		return "", nil
	}
	detail := fmt.Sprintf("; state %s→%s", id.State, StateSuspended)
	id.State = StateSuspended
	if err := tx.PutIdentity(ctx, id); err != nil {
		return "", fmt.Errorf("suspend: %w", err)
	}
	return detail, nil
}

// Offboarding is what OffboardPerson did.
type Offboarding struct {
	// Orphaned are the identities the person owns that are not
	// deprovisioned, sorted: admission denies them owner_inactive until
	// they get a new owner who recertifies them.
	Orphaned []string
	// Transfers are the ownership-transfer items opened, one per orphaned
	// identity that had none open. None when the store keeps no transfers.
	Transfers []Transfer
	// Already is true when the person was inactive before: nothing changed.
	Already bool
}

// OffboardPerson runs the leaver flow for a person who left, as the
// identity provider's deactivation does over SCIM: in one transaction it
// marks them inactive, audits it and opens an ownership-transfer item per
// live identity they owned, assigned to their active manager or else an
// admin. Once it commits, alert receives an owner_inactive alert per item
// (nil: they are logged at WARN). A person already inactive changes
// nothing.
func (r *Registry) OffboardPerson(ctx context.Context, person, actor string, alert func(Alert)) (Offboarding, error) {
	now := r.now().Truncate(time.Second)
	var off Offboarding
	var alerts []Alert
	err := r.Store.Update(ctx, func(tx Tx) error {
		var err error
		off, alerts, err = offboardTx(ctx, tx, person, orSystem(actor), now)
		return err
	})
	if err != nil {
		return Offboarding{}, fmt.Errorf("offboard %s: %w", person, err)
	}
	r.sendAlerts(alert, alerts)
	return off, nil
}

// offboardTx is OffboardPerson's transaction.
func offboardTx(ctx context.Context, tx Tx, person, actor string, now time.Time) (Offboarding, []Alert, error) {
	p, err := tx.Person(ctx, person)
	if errors.Is(err, ErrNotFound) {
		return Offboarding{}, nil, notFoundf("no person %s in the registry; people are keyed by e-mail", person)
	}
	if err != nil {
		return Offboarding{}, nil, fmt.Errorf("read person: %w", err)
	}
	off := Offboarding{Already: p.Status == PersonInactive}
	if off.Orphaned, err = ownedBy(ctx, tx, person); err != nil || off.Already {
		return off, nil, err // already offboarded: nothing changes, so nothing to audit
	}
	p.Status = PersonInactive
	if err := tx.PutPerson(ctx, p); err != nil {
		return Offboarding{}, nil, fmt.Errorf("mark person inactive: %w", err)
	}
	if p, err = withManager(ctx, tx, p); err != nil {
		return Offboarding{}, nil, err
	}
	var alerts []Alert
	off.Transfers, alerts, err = offboardLeaver(ctx, tx, cliLeaver(p, actor), off.Orphaned, now)
	return off, alerts, err
}

// offboardEvent is the audit event of a leaver, whoever marked them
// inactive (iga offboard, or the identity provider over SCIM): one event
// type for a SIEM to alert on.
func offboardEvent(person, actor string, orphaned []string, now time.Time) AuditEvent {
	return AuditEvent{Time: now, Type: "offboard", Actor: actor,
		Detail: fmt.Sprintf("person %s offboarded; orphaned: %s", person, orNone(strings.Join(orphaned, ", ")))}
}

// ownedBy lists the ids of the live identities person owns, sorted.
func ownedBy(ctx context.Context, rd Reader, person string) ([]string, error) {
	all, err := rd.Identities(ctx)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	var out []string
	for _, id := range all {
		if id.Owner == person && id.State != StateDeprovisioned {
			out = append(out, id.ID)
		}
	}
	slices.Sort(out)
	return out, nil
}

func orSystem(actor string) string {
	if actor == "" {
		return systemActor
	}
	return actor
}

// GrantRequest asks for break-glass access.
type GrantRequest struct {
	// Identity is the break-glass identity to open.
	Identity string
	// Target is the target the grant covers; it must be in the config.
	Target string
	// By is the person opening the grant; they must be one of the
	// identity's holders and active.
	By string
	// Reason says why, at least 10 characters; it goes to the review.
	Reason string
	// Ticket is an optional incident or change reference.
	Ticket string
	// For is how long the grant lasts. Zero: 30 minutes. It may not exceed
	// Policy.MaxBreakglass.
	For time.Duration
}

// OpenGrant opens a break-glass grant: a holder of a break-glass identity
// gets time-bound access to one target, with a reason. The grant is
// audited (breakglass_open) and logged at WARN.
func (r *Registry) OpenGrant(ctx context.Context, req GrantRequest) (Grant, error) {
	period, err := r.checkGrantRequest(req)
	if err != nil {
		return Grant{}, fmt.Errorf("open break-glass grant on %s: %w", req.Identity, err)
	}
	now := r.now().Truncate(time.Second)
	g := Grant{Identity: req.Identity, Target: req.Target, OpenedBy: req.By, Reason: strings.TrimSpace(req.Reason),
		Ticket: req.Ticket, OpenedAt: now, ExpiresAt: now.Add(period)}
	err = r.Store.Update(ctx, func(tx Tx) error {
		if err := checkHolder(ctx, tx, req); err != nil {
			return err
		}
		if g.ID, err = newGrantID(ctx, tx); err != nil {
			return err
		}
		if err := tx.PutGrant(ctx, g); err != nil {
			return fmt.Errorf("store grant: %w", err)
		}
		return appendAudit(ctx, tx, AuditEvent{Time: now, Type: "breakglass_open", Actor: req.By, Identity: req.Identity,
			Target: req.Target, Detail: grantDetail(g)})
	})
	if err != nil {
		return Grant{}, fmt.Errorf("open break-glass grant on %s: %w", req.Identity, err)
	}
	r.logger().Warn("break-glass grant opened", "grant", g.ID, "identity", g.Identity, "target", g.Target,
		"by", g.OpenedBy, "until", g.ExpiresAt, "reason", g.Reason, "ticket", g.Ticket)
	return g, nil
}

// checkGrantRequest checks what needs no store and returns the duration.
func (r *Registry) checkGrantRequest(req GrantRequest) (time.Duration, error) {
	if n := utf8.RuneCountInString(strings.TrimSpace(req.Reason)); n < minGrantReason {
		return 0, refusef("the reason has %d characters; give at least %d that say what broke", n, minGrantReason)
	}
	if _, ok := r.target(req.Target); !ok {
		return 0, refusef("unknown target %q; grants name a target from the config's targets", req.Target)
	}
	period, max := req.For, r.maxBreakglass()
	if period == 0 {
		period = min(defaultGrantPeriod, max)
	}
	if period < 0 || period > max {
		return 0, refusef("a grant of %s is not allowed: the maximum is %s (breakglass.max_duration); ask for %s or less",
			formatDuration(period), formatDuration(max), formatDuration(max))
	}
	return period, nil
}

// checkHolder checks the identity is an active break-glass account entitled
// to the target, and that the requester is one of its active holders.
func checkHolder(ctx context.Context, rd Reader, req GrantRequest) error {
	id, err := findIdentity(ctx, rd, req.Identity)
	if err != nil {
		return err
	}
	switch {
	case id.Kind != KindBreakGlass:
		return refusef("%s is a %s identity, not break-glass; grants open break-glass accounts only", id.ID, id.Kind)
	case id.State != StateActive:
		return refusef("%s is %s, so a grant would not admit it; activate it in the registry first", id.ID, id.State)
	case !slices.Contains(id.Holders, req.By):
		return refusef("%s is not a holder of %s; its holders are %s", req.By, id.ID, orNone(strings.Join(id.Holders, ", ")))
	case !slices.ContainsFunc(id.Entitlements, func(e Entitlement) bool { return e.Target == req.Target }):
		return refusef("%s has no entitlement to %s, so a grant would not admit it; add one in the registry file", id.ID, req.Target)
	}
	_, err = activePerson(ctx, rd, req.By, "holder")
	return err
}

// newGrantID returns a short random id ("bg-" and 8 hex digits) not yet taken.
func newGrantID(ctx context.Context, rd Reader) (string, error) {
	for range grantIDAttempts {
		b := make([]byte, 4)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("make grant id: %w", err)
		}
		id := "bg-" + hex.EncodeToString(b)
		_, err := rd.Grant(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", fmt.Errorf("check grant id: %w", err)
		}
	}
	return "", fmt.Errorf("make grant id: %d random ids were all taken", grantIDAttempts)
}

func grantDetail(g Grant) string {
	d := fmt.Sprintf("grant %s on %s open until %s: %s", g.ID, g.Target, g.ExpiresAt.Format(time.RFC3339), g.Reason)
	if g.Ticket != "" {
		d += " (ticket " + g.Ticket + ")"
	}
	return d
}

// CloseGrant ends a break-glass grant now; by is recorded as who closed it
// (empty: "sallyport"). Closing a closed grant is refused.
func (r *Registry) CloseGrant(ctx context.Context, id, by string) (Grant, error) {
	now := r.now().Truncate(time.Second)
	var g Grant
	err := r.Store.Update(ctx, func(tx Tx) error {
		var err error
		g, err = tx.Grant(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return notFoundf("no grant %s; grant ids look like bg-1a2b3c4d", id)
		}
		if err != nil {
			return fmt.Errorf("read grant: %w", err)
		}
		if !g.ClosedAt.IsZero() {
			return refusef("it was already closed at %s", g.ClosedAt.UTC().Format(time.RFC3339))
		}
		g.ClosedAt = now
		if err := tx.PutGrant(ctx, g); err != nil {
			return fmt.Errorf("store grant: %w", err)
		}
		return appendAudit(ctx, tx, AuditEvent{Time: now, Type: "breakglass_close", Actor: orSystem(by), Identity: g.Identity,
			Target: g.Target, Detail: fmt.Sprintf("grant %s closed (opened by %s at %s)", g.ID, g.OpenedBy, g.OpenedAt.UTC().Format(time.RFC3339))})
	})
	if err != nil {
		return Grant{}, fmt.Errorf("close break-glass grant %s: %w", id, err)
	}
	return g, nil
}
