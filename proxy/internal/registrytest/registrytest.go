// Package registrytest is the registry the database proxies' tests share:
// an identity that passes every admission rule, and one for each reason
// code a database client can meet.
package registrytest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// OKIdentity passes every rule; each identity of Failing fails the one its
// name says.
const OKIdentity = "svc-report"

// People are the owners: Alice active, Carol offboarded.
var People = []iga.Person{
	{ID: "alice@example.com", Name: "Alice Ng", Roles: []string{"owner"}, Status: iga.PersonActive},
	{ID: "carol@example.com", Name: "Carol Offboarded", Roles: []string{"owner"}, Status: iga.PersonInactive},
}

// Passing is an identity admitted to target for queries as analyst.
func Passing(id, target string) iga.Identity {
	now := time.Now().UTC()
	return iga.Identity{
		ID: id, Kind: iga.KindServiceAccount, State: iga.StateActive, Owner: "alice@example.com",
		Entitlements: []iga.Entitlement{{Target: target, Login: "analyst", Actions: []iga.Action{iga.ActionQuery},
			Expires: now.AddDate(0, 1, 0)}},
		Certification: &iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com",
			At: now.AddDate(0, 0, -7), Until: now.AddDate(0, 2, 0)},
	}
}

// Failing maps each reason code reachable over a database protocol with a
// valid token to an identity that fails exactly that rule on target.
func Failing(target string) map[string]iga.Identity {
	now := time.Now().UTC()
	with := func(id string, f func(*iga.Identity)) iga.Identity { i := Passing(id, target); f(&i); return i }
	return map[string]iga.Identity{
		iga.ReasonNotActive:       with("svc-suspended", func(i *iga.Identity) { i.State = iga.StateSuspended }),
		iga.ReasonKindNotAdmitted: with("person-human", func(i *iga.Identity) { i.Kind = iga.KindHuman }),
		iga.ReasonNoOwner:         with("svc-unowned", func(i *iga.Identity) { i.Owner = ""; i.Certification = nil }),
		iga.ReasonOwnerInactive:   with("svc-orphan", func(i *iga.Identity) { i.Owner = "carol@example.com"; i.Certification.By = "carol@example.com" }),
		iga.ReasonNotCertified:    with("svc-uncertified", func(i *iga.Identity) { i.Certification = nil }),
		iga.ReasonCertificationExpired: with("svc-lapsed", func(i *iga.Identity) {
			i.Certification.At, i.Certification.Until = now.AddDate(0, -3, 0), now.AddDate(0, 0, -1)
		}),
		iga.ReasonCertificationRevoked: with("svc-revoked", func(i *iga.Identity) { i.Certification.Decision = iga.DecisionRevoke }),
		iga.ReasonNoEntitlement:        with("svc-ssh-only", func(i *iga.Identity) { i.Entitlements[0].Target = "web-01" }),
		iga.ReasonEntitlementExpired:   with("svc-expired-grant", func(i *iga.Identity) { i.Entitlements[0].Expires = now.AddDate(0, 0, -1) }),
		iga.ReasonActionNotEntitled: with("svc-exec-only", func(i *iga.Identity) {
			i.Entitlements[0].Actions = []iga.Action{iga.ActionExec}
		}),
		iga.ReasonSourceNotAllowed:    with("svc-elsewhere", func(i *iga.Identity) { i.Entitlements[0].From = []string{"10.0.0.0/8"} }),
		iga.ReasonEnvironmentMismatch: with("svc-prod", func(i *iga.Identity) { i.Environment = "prod" }),
		iga.ReasonBreakglassNoGrant:   with("bg-nogrant", func(i *iga.Identity) { i.Kind = iga.KindBreakGlass; i.Holders = []string{"alice@example.com"} }),
		iga.ReasonBreakglassGrantExpired: with("bg-expired", func(i *iga.Identity) {
			i.Kind = iga.KindBreakGlass
			i.Holders = []string{"alice@example.com"}
		}),
	}
}

// Seed puts People, Passing OKIdentity and svc-other, every Failing
// identity and an expired break-glass grant for bg-expired into s.
func Seed(t testing.TB, s iga.Store, target string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	ids := []iga.Identity{Passing(OKIdentity, target), Passing("svc-other", target)}
	for _, id := range Failing(target) {
		ids = append(ids, id)
	}
	err := s.Update(ctx, func(tx iga.Tx) error {
		for _, p := range People {
			if err := tx.PutPerson(ctx, p); err != nil {
				return err
			}
		}
		for _, id := range ids {
			if err := tx.PutIdentity(ctx, id); err != nil {
				return err
			}
			if id.Certification != nil {
				if err := tx.AddCertification(ctx, id.ID, *id.Certification); err != nil {
					return err
				}
			}
		}
		return tx.PutGrant(ctx, iga.Grant{ID: "g-expired", Identity: "bg-expired", Target: target, OpenedBy: "alice@example.com",
			Reason: "drill", OpenedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	})
	require.NoError(t, err, "seed registry")
}

// FindAudit returns the event of events that match accepts, and fails the
// test naming what when there is none. Failed logins are audited off the
// login's path, so their order in the trail is not the order of the logins.
func FindAudit(t *testing.T, events []iga.AuditEvent, what string, match func(iga.AuditEvent) bool) iga.AuditEvent {
	t.Helper()
	for _, ev := range events {
		if match(ev) {
			return ev
		}
	}
	t.Fatalf("no audit event %s in %+v", what, events)
	return iga.AuditEvent{}
}
