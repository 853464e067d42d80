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
)

// This file is the leaver flow's second half: when the identity provider
// deactivates or deletes an owner, each identity they own gets an
// ownership-transfer item for their manager (or an admin). Admission
// already denies those identities owner_inactive; assigning a new active
// owner closes the item, and the new owner must then certify.

// Transfer outcomes.
const (
	TransferAssigned    = "assigned"      // a new owner was assigned
	TransferReactivated = "reactivated"   // the owner came back
	TransferGone        = "deprovisioned" // the identity was deprovisioned
)

// Transfer is an ownership-transfer item: an identity whose owner left and
// that needs a new one.
type Transfer struct {
	ID         string    `json:"id"`
	Identity   string    `json:"identity"`
	From       string    `json:"from"`        // the owner who left
	AssignedTo string    `json:"assigned_to"` // manager or admin; empty: any admin
	Reason     string    `json:"reason"`
	RequestID  string    `json:"request_id,omitempty"` // the SCIM request that opened it
	Created    time.Time `json:"created"`
	Closed     time.Time `json:"closed,omitzero"` // zero while open
	ClosedBy   string    `json:"closed_by,omitempty"`
	NewOwner   string    `json:"new_owner,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
}

// Open reports whether the item still waits for a new owner.
func (t Transfer) Open() bool { return t.Closed.IsZero() }

// leave audits p's offboarding as iga offboard does, opens a transfer
// item for every live identity p owned, audits each, and returns the
// alerts to send once the transaction commits.
func (s *SCIM) leave(ctx context.Context, tx Tx, w SCIMWriter, p Person, reqID string, now time.Time) ([]Alert, error) {
	owned, err := ownedBy(ctx, tx, p.ID)
	if err != nil {
		return nil, err
	}
	off := offboardEvent(p.ID, scimActor, owned, now)
	off.Detail = "scim request " + reqID + ": " + off.Detail
	if err := appendAudit(ctx, tx, off); err != nil {
		return nil, err
	}
	open, err := openTransfers(ctx, w)
	if err != nil {
		return nil, err
	}
	to, err := transferAssignee(ctx, tx, p)
	if err != nil {
		return nil, err
	}
	var alerts []Alert
	for _, id := range owned {
		if slices.ContainsFunc(open, func(t Transfer) bool { return t.Identity == id }) {
			continue
		}
		t := Transfer{ID: newTransferID(), Identity: id, From: p.ID, AssignedTo: to, RequestID: reqID, Created: now,
			Reason: "owner " + p.ID + " was deactivated by the identity provider"}
		if err := w.PutTransfer(ctx, t); err != nil {
			return nil, fmt.Errorf("open transfer of %s: %w", id, err)
		}
		if err := appendAudit(ctx, tx, AuditEvent{Time: now, Type: "transfer_open", Actor: scimActor, Identity: id,
			Detail: fmt.Sprintf("scim request %s: owner %s inactive; identity denied owner_inactive; transfer %s assigned to %s",
				reqID, p.ID, t.ID, orAdmins(to))}); err != nil {
			return nil, err
		}
		alerts = append(alerts, ownerInactiveAlert(t, now))
	}
	return alerts, nil
}

func ownerInactiveAlert(t Transfer, now time.Time) Alert {
	return Alert{ID: AlertOwnerInactive + "/" + t.Identity + "/" + t.ID, Kind: AlertOwnerInactive, Time: now,
		Identity: t.Identity, AssignedTo: t.AssignedTo, Review: t.ID,
		Summary: fmt.Sprintf("owner %s of %s left (identity provider); %s is denied owner_inactive until %s assigns a new owner: sallyport iga transfer %s --to PERSON",
			t.From, t.Identity, t.Identity, orAdmins(t.AssignedTo), t.Identity)}
}

func orAdmins(to string) string {
	if to == "" {
		return "an admin"
	}
	return to
}

// transferAssignee is p's manager when they are an active person, else the
// first active admin, else empty (any admin).
func transferAssignee(ctx context.Context, rd Reader, p Person) (string, error) {
	if p.Manager != "" && !strings.EqualFold(p.Manager, p.ID) {
		m, err := rd.Person(ctx, p.Manager)
		if err == nil && m.Status == PersonActive {
			return m.ID, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("read manager %s: %w", p.Manager, err)
		}
	}
	people, err := rd.People(ctx)
	if err != nil {
		return "", fmt.Errorf("read people: %w", err)
	}
	for _, a := range people {
		if a.ID != p.ID && a.Status == PersonActive && slices.Contains(a.Roles, "admin") {
			return a.ID, nil
		}
	}
	return "", nil
}

func newTransferID() string {
	b := make([]byte, 6)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return "tr-" + hex.EncodeToString(b)
}

func openTransfers(ctx context.Context, sr SCIMReader) ([]Transfer, error) {
	all, err := sr.Transfers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	return slices.DeleteFunc(all, func(t Transfer) bool { return !t.Open() }), nil
}

// rejoin closes the open items of an owner the IdP activated again.
func (s *SCIM) rejoin(ctx context.Context, tx Tx, w SCIMWriter, person, reqID string, now time.Time) error {
	open, err := openTransfers(ctx, w)
	if err != nil {
		return err
	}
	for _, t := range open {
		if t.From != person {
			continue
		}
		t.Closed, t.ClosedBy, t.Outcome = now, scimActor, TransferReactivated
		if err := closeTransfer(ctx, tx, w, t, "scim request "+reqID+": owner "+person+" active again"); err != nil {
			return err
		}
	}
	return nil
}

func closeTransfer(ctx context.Context, tx Tx, w SCIMWriter, t Transfer, detail string) error {
	if err := w.PutTransfer(ctx, t); err != nil {
		return fmt.Errorf("close transfer %s: %w", t.ID, err)
	}
	return appendAudit(ctx, tx, AuditEvent{Time: t.Closed, Type: "transfer_close", Actor: t.ClosedBy, Identity: t.Identity,
		Detail: fmt.Sprintf("transfer %s %s: %s", t.ID, t.Outcome, detail)})
}

// Transfers returns the ownership-transfer items, oldest first: the open
// ones, or all with all. It first closes the items whose identity got an
// active new owner some other way (iga apply) or was deprovisioned.
func (r *Registry) Transfers(ctx context.Context, all bool) ([]Transfer, error) {
	var out []Transfer
	err := r.Store.Update(ctx, func(tx Tx) error {
		var err error
		out, err = r.settleTransfers(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list transfers: %w", err)
	}
	if !all {
		out = slices.DeleteFunc(out, func(t Transfer) bool { return !t.Open() })
	}
	return out, nil
}

// settleTransfers closes the open items that no longer need anyone and
// returns every item; none when the store keeps no SCIM data. Apply calls
// it too, so a file that gives an identity a new owner closes its item.
func (r *Registry) settleTransfers(ctx context.Context, tx Tx) ([]Transfer, error) {
	w, ok := tx.(SCIMWriter)
	if !ok {
		return nil, nil
	}
	items, err := w.Transfers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	for i, t := range items {
		if items[i], err = r.settleTransfer(ctx, tx, w, t); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// settleTransfer closes an open item that no longer needs anyone.
func (r *Registry) settleTransfer(ctx context.Context, tx Tx, w SCIMWriter, t Transfer) (Transfer, error) {
	if !t.Open() {
		return t, nil
	}
	id, err := tx.Identity(ctx, t.Identity)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return t, fmt.Errorf("read identity %s: %w", t.Identity, err)
	}
	now := r.now().Truncate(time.Second)
	switch {
	case err != nil || id.State == StateDeprovisioned:
		t.Closed, t.ClosedBy, t.Outcome = now, systemActor, TransferGone
	case id.Owner != t.From && id.Owner != "":
		owner, err := tx.Person(ctx, id.Owner)
		if err != nil || owner.Status != PersonActive {
			return t, nil
		}
		t.Closed, t.ClosedBy, t.Outcome, t.NewOwner = now, systemActor, TransferAssigned, id.Owner
	default:
		return t, nil
	}
	return t, closeTransfer(ctx, tx, w, t, "the identity's owner changed outside iga transfer")
}

// TransferOwnership makes to, an active person, the owner of identity and
// closes its open transfer items. The identity stays denied not_certified
// until the new owner certifies it (a change of owner voids the old
// certification). by is who assigned, recorded in the audit trail.
func (r *Registry) TransferOwnership(ctx context.Context, identity, to, by string) (Transfer, error) {
	var closed Transfer
	err := r.Store.Update(ctx, func(tx Tx) error {
		id, err := findIdentity(ctx, tx, identity)
		if err != nil {
			return err
		}
		if _, err := activePerson(ctx, tx, to, "new owner"); err != nil {
			return err
		}
		if id.State == StateDeprovisioned {
			return refusef("identity %s is deprovisioned; it needs no owner", identity)
		}
		now := r.now().Truncate(time.Second)
		from := id.Owner
		id.Owner = to
		if err := tx.PutIdentity(ctx, id); err != nil {
			return fmt.Errorf("set owner: %w", err)
		}
		if err := appendAudit(ctx, tx, AuditEvent{Time: now, Type: "transfer", Actor: orSystem(by), Identity: identity,
			Detail: fmt.Sprintf("owner %s→%s; the new owner must certify it", orNone(from), to)}); err != nil {
			return err
		}
		closed, err = closeOpenTransfers(ctx, tx, identity, to, orSystem(by), now)
		return err
	})
	if err != nil {
		return Transfer{}, fmt.Errorf("transfer %s to %s: %w", identity, to, err)
	}
	return closed, nil
}

// closeOpenTransfers closes identity's open items as assigned to owner and
// returns the last one closed (zero when none was open).
func closeOpenTransfers(ctx context.Context, tx Tx, identity, owner, by string, now time.Time) (Transfer, error) {
	w, ok := tx.(SCIMWriter)
	if !ok {
		return Transfer{}, nil
	}
	open, err := openTransfers(ctx, w)
	if err != nil {
		return Transfer{}, err
	}
	var last Transfer
	for _, t := range open {
		if t.Identity != identity {
			continue
		}
		t.Closed, t.ClosedBy, t.Outcome, t.NewOwner = now, by, TransferAssigned, owner
		if err := closeTransfer(ctx, tx, w, t, "new owner "+owner); err != nil {
			return Transfer{}, err
		}
		last = t
	}
	return last, nil
}
