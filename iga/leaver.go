package iga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file is the leaver flow both ways a person leaves share: iga
// offboard (Registry.OffboardPerson) and the identity provider over SCIM.
// In the transaction that marks the person inactive it audits the
// offboarding and opens an ownership-transfer item per live identity they
// owned; the owner_inactive alerts go out once it commits.

// TransferReader is the optional part of a Store (and its Tx) that reads
// ownership-transfer items; package sqlstore implements it.
type TransferReader interface {
	// Transfers returns every ownership-transfer item, oldest first.
	Transfers(ctx context.Context) ([]Transfer, error)
}

// TransferWriter is the optional part of a Tx that keeps
// ownership-transfer items. A store without it opens no items.
type TransferWriter interface {
	TransferReader
	// PutTransfer inserts or replaces an ownership-transfer item.
	PutTransfer(ctx context.Context, t Transfer) error
}

// leaver is an owner who left, as the audit events, transfer items and
// alerts of the leaver flow describe them.
type leaver struct {
	person Person // Manager filled when known
	actor  string // who marked them inactive: scim, or the operator
	reqID  string // the SCIM request; empty from iga offboard
	source string // what made them leave, for the alert: "identity provider"
	reason string // the items' reason after "owner ID ": "was deactivated by the identity provider"
}

// prefix starts the audit details of a SCIM leaver with the request id.
func (l leaver) prefix() string {
	if l.reqID == "" {
		return ""
	}
	return "scim request " + l.reqID + ": "
}

// cliLeaver is a person offboarded with iga offboard by actor.
func cliLeaver(p Person, actor string) leaver {
	return leaver{person: p, actor: actor, source: "iga offboard by " + actor,
		reason: "was offboarded with `iga offboard` by " + actor}
}

// scimLeaver is a person the identity provider deactivated or deleted.
func scimLeaver(p Person, reqID string) leaver {
	return leaver{person: p, actor: scimActor, reqID: reqID, source: "identity provider",
		reason: "was deactivated by the identity provider"}
}

// offboardLeaver audits l's offboarding (owned: the live identities they
// owned), opens a transfer item for each identity that has none open yet
// and audits it. It returns the items opened and the alerts to send once
// the transaction commits.
func offboardLeaver(ctx context.Context, tx Tx, l leaver, owned []string, now time.Time) ([]Transfer, []Alert, error) {
	off := offboardEvent(l.person.ID, l.actor, owned, now)
	off.Detail = l.prefix() + off.Detail
	if err := appendAudit(ctx, tx, off); err != nil {
		return nil, nil, err
	}
	w, ok := tx.(TransferWriter)
	if !ok {
		return nil, nil, nil
	}
	open, err := openTransfers(ctx, w)
	if err != nil {
		return nil, nil, err
	}
	to, err := transferAssignee(ctx, tx, l.person)
	if err != nil {
		return nil, nil, err
	}
	var opened []Transfer
	var alerts []Alert
	for _, id := range owned {
		if slices.ContainsFunc(open, func(t Transfer) bool { return t.Identity == id }) {
			continue
		}
		t, err := openTransfer(ctx, tx, w, l, id, to, now)
		if err != nil {
			return nil, nil, err
		}
		opened, alerts = append(opened, t), append(alerts, ownerInactiveAlert(t, l.source, now))
	}
	return opened, alerts, nil
}

// openTransfer stores and audits the item of identity id, assigned to to.
func openTransfer(ctx context.Context, tx Tx, w TransferWriter, l leaver, id, to string, now time.Time) (Transfer, error) {
	t := Transfer{ID: newTransferID(), Identity: id, From: l.person.ID, AssignedTo: to, RequestID: l.reqID, Created: now,
		Reason: "owner " + l.person.ID + " " + l.reason}
	if err := w.PutTransfer(ctx, t); err != nil {
		return Transfer{}, fmt.Errorf("open transfer of %s: %w", id, err)
	}
	return t, appendAudit(ctx, tx, AuditEvent{Time: now, Type: "transfer_open", Actor: l.actor, Identity: id,
		Detail: l.prefix() + fmt.Sprintf("owner %s inactive; identity denied owner_inactive; transfer %s assigned to %s",
			l.person.ID, t.ID, orAdmins(to))})
}

func ownerInactiveAlert(t Transfer, source string, now time.Time) Alert {
	return Alert{ID: AlertOwnerInactive + "/" + t.Identity + "/" + t.ID, Kind: AlertOwnerInactive, Time: now,
		Identity: t.Identity, AssignedTo: t.AssignedTo, Review: t.ID,
		Summary: fmt.Sprintf("owner %s of %s left (%s); %s is denied owner_inactive until %s assigns a new owner: sallyport iga transfer %s --to PERSON",
			t.From, t.Identity, source, t.Identity, orAdmins(t.AssignedTo), t.Identity)}
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

// withManager fills p.Manager from p's SCIM record, when the identity
// provider sent one: the store's Person leaves it empty.
func withManager(ctx context.Context, rd Reader, p Person) (Person, error) {
	managed, err := SCIMManaged(ctx, rd)
	if err != nil {
		return Person{}, err
	}
	if rec, ok := managed[p.ID]; ok {
		p.Manager = rec.Manager
	}
	return p, nil
}

// sendAlerts hands alerts, after a commit, to sink, or logs them at WARN
// when sink is nil.
func (r *Registry) sendAlerts(sink func(Alert), alerts []Alert) {
	for _, a := range alerts {
		if sink != nil {
			sink(a)
			continue
		}
		r.logger().Warn("alert", "kind", a.Kind, "summary", a.Summary)
	}
}
