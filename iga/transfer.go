package iga

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file is the leaver flow's second half: when an owner leaves (iga
// offboard, or the identity provider deactivates or deletes them), each
// identity they own gets an ownership-transfer item for their manager (or
// an admin), opened in leaver.go. Admission already denies those
// identities owner_inactive; assigning a new active owner closes the item,
// and the new owner must then certify.

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

// leave is the leaver flow of a person the identity provider deactivated
// or deleted: offboardLeaver, as iga offboard runs it, with the request id.
func (s *SCIM) leave(ctx context.Context, tx Tx, p Person, reqID string, now time.Time) ([]Alert, error) {
	owned, err := ownedBy(ctx, tx, p.ID)
	if err != nil {
		return nil, err
	}
	_, alerts, err := offboardLeaver(ctx, tx, scimLeaver(p, reqID), owned, now)
	return alerts, err
}

func newTransferID() string {
	b := make([]byte, 6)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return "tr-" + hex.EncodeToString(b)
}

func openTransfers(ctx context.Context, sr TransferReader) ([]Transfer, error) {
	all, err := sr.Transfers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	return slices.DeleteFunc(all, func(t Transfer) bool { return !t.Open() }), nil
}

// rejoin closes the open items of an owner the IdP activated again.
func (s *SCIM) rejoin(ctx context.Context, tx Tx, w TransferWriter, person, reqID string, now time.Time) error {
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

func closeTransfer(ctx context.Context, tx Tx, w TransferWriter, t Transfer, detail string) error {
	if err := w.PutTransfer(ctx, t); err != nil {
		return fmt.Errorf("close transfer %s: %w", t.ID, err)
	}
	return appendAudit(ctx, tx, AuditEvent{Time: t.Closed, Type: "transfer_close", Actor: t.ClosedBy, Identity: t.Identity,
		Detail: fmt.Sprintf("transfer %s %s: %s", t.ID, t.Outcome, detail)})
}

// Transfers returns the ownership-transfer items, oldest first: the open
// ones, or all with all. It only reads, so it never waits for writers and
// works on a read-only replica: an open item whose identity has since got
// an active new owner some other way, or was deprovisioned, is shown
// closed as the next write (iga apply) will close it.
func (r *Registry) Transfers(ctx context.Context, all bool) ([]Transfer, error) {
	tr, ok := r.Store.(TransferReader)
	if !ok {
		return nil, nil
	}
	items, err := tr.Transfers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list transfers: %w", err)
	}
	now := r.now().Truncate(time.Second)
	for i, t := range items {
		if items[i], _, err = settled(ctx, r.Store, t, now); err != nil {
			return nil, fmt.Errorf("list transfers: %w", err)
		}
	}
	if !all {
		items = slices.DeleteFunc(items, func(t Transfer) bool { return !t.Open() })
	}
	return items, nil
}

// settleTransfers closes the open items that no longer need anyone and
// returns every item; none when the store keeps no transfers. Apply calls
// it, so a file that gives an identity a new owner closes its item.
func (r *Registry) settleTransfers(ctx context.Context, tx Tx) ([]Transfer, error) {
	w, ok := tx.(TransferWriter)
	if !ok {
		return nil, nil
	}
	items, err := w.Transfers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	now := r.now().Truncate(time.Second)
	for i, t := range items {
		t, closed, err := settled(ctx, tx, t, now)
		if err != nil {
			return nil, err
		}
		if closed {
			if err := closeTransfer(ctx, tx, w, t, settledDetail(t)); err != nil {
				return nil, err
			}
		}
		items[i] = t
	}
	return items, nil
}

// settledDetail says, for the audit trail, why settled closed t.
func settledDetail(t Transfer) string {
	switch t.Outcome {
	case TransferGone:
		return "the identity is deprovisioned or gone"
	case TransferReactivated:
		return "owner " + t.From + " active again (iga apply)"
	}
	return "the identity's owner changed outside iga transfer"
}

// settled returns t closed as of now, and true, when it is open and no
// longer needs anyone: its identity is gone or deprovisioned, or its owner
// is active: a new one, or the one who left, made active again by a file.
func settled(ctx context.Context, rd Reader, t Transfer, now time.Time) (Transfer, bool, error) {
	if !t.Open() {
		return t, false, nil
	}
	id, err := rd.Identity(ctx, t.Identity)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return t, false, fmt.Errorf("read identity %s: %w", t.Identity, err)
	}
	switch {
	case err != nil || id.State == StateDeprovisioned:
		t.Closed, t.ClosedBy, t.Outcome = now, systemActor, TransferGone
	case id.Owner == "":
		return t, false, nil
	default:
		owner, err := rd.Person(ctx, id.Owner)
		if err != nil || owner.Status != PersonActive {
			return t, false, nil
		}
		t.Closed, t.ClosedBy, t.Outcome, t.NewOwner = now, systemActor, TransferAssigned, id.Owner
		if id.Owner == t.From {
			t.Outcome, t.NewOwner = TransferReactivated, "" // a file made the leaver active again
		}
	}
	return t, true, nil
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
	w, ok := tx.(TransferWriter)
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
