package iga

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var ruleNow = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// passingFacts are facts every rule accepts; each case breaks one thing.
func passingFacts() *admissionFacts {
	return &admissionFacts{
		req: Request{Identity: "svc-report", Target: "web-01", Action: ActionExec, Source: netip.MustParseAddr("10.1.2.3")},
		now: ruleNow,
		identity: Identity{
			ID: "svc-report", Kind: KindServiceAccount, State: StateActive, Owner: "alice@example.com", Environment: "prod",
			Entitlements: []Entitlement{{Target: "web-01", Login: "report", Actions: []Action{ActionExec, ActionSFTP},
				Expires: ruleNow.AddDate(0, 1, 0), From: []string{"10.1.0.0/16"}}},
			Certification: &Certification{Decision: DecisionCertify, By: "alice@example.com",
				At: ruleNow.AddDate(0, -1, 0), Until: ruleNow.AddDate(0, 2, 0)},
		},
		target:     Target{Name: "web-01", Kind: "ssh", Environment: "prod"},
		owner:      Person{ID: "alice@example.com", Status: PersonActive},
		ownerKnown: true,
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		name   string
		rule   func(*admissionFacts) []Reason
		mutate func(f *admissionFacts)
		code   string // empty: the rule holds
		says   string // a part of the message the client must see
	}{
		{"active holds", ruleActive, func(f *admissionFacts) {}, "", ""},
		{"suspended", ruleActive, func(f *admissionFacts) { f.identity.State = StateSuspended }, ReasonNotActive, "svc-report is suspended"},
		{"proposed", ruleActive, func(f *admissionFacts) { f.identity.State = StateProposed }, ReasonNotActive, "proposed, not yet active"},
		{"deprovisioned", ruleActive, func(f *admissionFacts) { f.identity.State = StateDeprovisioned }, ReasonNotActive, "deprovisioned"},
		{"every NHI kind", ruleKind, func(f *admissionFacts) { f.identity.Kind = KindAgent }, "", ""},
		{"human", ruleKind, func(f *admissionFacts) { f.identity.Kind = KindHuman }, ReasonKindNotAdmitted, "human account"},
		{"no owner", ruleOwner, func(f *admissionFacts) { f.identity.Owner, f.ownerKnown = "", false }, ReasonNoOwner, "has no owner"},
		{"owner not a person", ruleOwner, func(f *admissionFacts) { f.identity.Owner, f.ownerKnown = "ghost@example.com", false },
			ReasonOwnerInactive, "ghost@example.com is not a registered person"},
		{"owner offboarded", ruleOwner, func(f *admissionFacts) { f.owner.Status = PersonInactive }, ReasonOwnerInactive, "no longer active"},
		{"never certified", ruleCertified, func(f *admissionFacts) { f.identity.Certification = nil }, ReasonNotCertified, "never been certified"},
		{"certified by a former owner", ruleCertified, func(f *admissionFacts) { f.identity.Certification.By = "bob@example.com" },
			ReasonNotCertified, "certified by bob@example.com, who is not its current owner; ask its owner alice@example.com"},
		{"certified, but the owner is gone", ruleCertified, func(f *admissionFacts) { f.identity.Owner, f.identity.Certification.By = "", "" },
			ReasonNotCertified, "has no owner, so its certification"},
		{"certification ran out", ruleCertified, func(f *admissionFacts) {
			f.identity.Certification.Until = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
		}, ReasonCertificationExpired, "svc-report was certified until 2026-10-01; ask its owner alice@example.com to recertify"},
		{"certification ends now", ruleCertified, func(f *admissionFacts) { f.identity.Certification.Until = ruleNow },
			ReasonCertificationExpired, "certified until 2026-11-28"},
		{"revoked", ruleCertified, func(f *admissionFacts) {
			f.identity.Certification = &Certification{Decision: DecisionRevoke, By: "alice@example.com", At: ruleNow.AddDate(0, 0, -2)}
		}, ReasonCertificationRevoked, "revoked by alice@example.com on 2026-11-26"},
		{"no entitlement on target", ruleEntitlement, func(f *admissionFacts) { f.req.Target = "db" }, ReasonNoEntitlement, "no entitlement on db"},
		{"entitlement expired", ruleEntitlement, func(f *admissionFacts) { f.identity.Entitlements[0].Expires = ruleNow.AddDate(0, 0, -1) },
			ReasonEntitlementExpired, "expired on 2026-11-27"},
		{"action not entitled", ruleEntitlement, func(f *admissionFacts) { f.req.Action = ActionShell },
			ReasonActionNotEntitled, "may not shell on web-01 (entitled: exec, sftp)"},
		{"source outside every CIDR", ruleEntitlement, func(f *admissionFacts) { f.req.Source = netip.MustParseAddr("192.168.1.1") },
			ReasonSourceNotAllowed, "from 192.168.1.1 (allowed: 10.1.0.0/16)"},
		{"source as IPv4-mapped IPv6", ruleEntitlement, func(f *admissionFacts) { f.req.Source = netip.MustParseAddr("::ffff:10.1.9.9") }, "", ""},
		{"source unknown skips the CIDR check", ruleEntitlement, func(f *admissionFacts) { f.req.Source = netip.Addr{} }, "", ""},
		{"malformed CIDR allows nothing", ruleEntitlement, func(f *admissionFacts) { f.identity.Entitlements[0].From = []string{"10.1/16"} },
			ReasonSourceNotAllowed, "may not connect"},
		{"second entitlement covers the action", ruleEntitlement, func(f *admissionFacts) {
			f.req.Action = ActionShell
			f.identity.Entitlements = append(f.identity.Entitlements, Entitlement{Target: "web-01", Login: "ops", Actions: []Action{ActionShell}})
		}, "", ""},
		{"environments differ", ruleEnvironment, func(f *admissionFacts) { f.identity.Environment = "staging" },
			ReasonEnvironmentMismatch, "belongs to staging but web-01 is in prod"},
		{"target without environment", ruleEnvironment, func(f *admissionFacts) { f.identity.Environment, f.target.Environment = "staging", "" }, "", ""},
		{"not break-glass needs no grant", ruleBreakglass, func(f *admissionFacts) {}, "", ""},
		{"break-glass without grant", ruleBreakglass, func(f *admissionFacts) { f.identity.Kind = KindBreakGlass },
			ReasonBreakglassNoGrant, "sallyport breakglass open svc-report --target web-01"},
		{"break-glass grant on another target", ruleBreakglass, func(f *admissionFacts) {
			f.identity.Kind = KindBreakGlass
			f.grants = []Grant{{ID: "g1", Target: "db", ExpiresAt: ruleNow.Add(time.Hour)}}
		}, ReasonBreakglassNoGrant, "no open break-glass grant on web-01"},
		{"break-glass grant expired", ruleBreakglass, func(f *admissionFacts) {
			f.identity.Kind = KindBreakGlass
			f.grants = []Grant{{ID: "g1", Target: "web-01", OpenedAt: ruleNow.Add(-2 * time.Hour), ExpiresAt: ruleNow.Add(-time.Hour)}}
		}, ReasonBreakglassGrantExpired, "grant g1 on web-01 ended at 2026-11-28 09:00 UTC"},
		{"break-glass grant closed early", ruleBreakglass, func(f *admissionFacts) {
			f.identity.Kind = KindBreakGlass
			f.grants = []Grant{{ID: "g2", Target: "web-01", OpenedAt: ruleNow.Add(-time.Hour),
				ExpiresAt: ruleNow.Add(time.Hour), ClosedAt: ruleNow.Add(-30 * time.Minute)}}
		}, ReasonBreakglassGrantExpired, "ended at 2026-11-28 09:30 UTC"},
		{"break-glass open grant", ruleBreakglass, func(f *admissionFacts) {
			f.identity.Kind = KindBreakGlass
			f.grants = []Grant{{ID: "g3", Target: "web-01", OpenedAt: ruleNow.Add(-time.Minute), ExpiresAt: ruleNow.Add(time.Hour)}}
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := passingFacts()
			tt.mutate(f)
			got := tt.rule(f)
			if tt.code == "" {
				assert.Empty(t, got, "got reasons %v, want none", got)
				return
			}
			if assert.Len(t, got, 1, "got reasons %v, want one %s", got, tt.code) {
				assert.Equal(t, tt.code, got[0].Code, "got code %s, want %s", got[0].Code, tt.code)
				assert.Contains(t, got[0].Message, tt.says)
				assert.NotContains(t, got[0].Message, "\n", "a denial message is one line")
			}
		})
	}
}

func TestEntitlementUsedNamesTheLogin(t *testing.T) {
	tests := []struct {
		name      string
		action    Action
		source    string
		wantLogin string
	}{
		{"exec from the office", ActionExec, "10.1.0.7", "report"},
		{"shell through the second entitlement", ActionShell, "192.168.0.1", "ops"},
		{"nothing covers forward", ActionForward, "10.1.0.7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := passingFacts()
			f.identity.Entitlements = append(f.identity.Entitlements, Entitlement{Target: "web-01", Login: "ops", Actions: []Action{ActionShell}})
			f.req.Action, f.req.Source = tt.action, netip.MustParseAddr(tt.source)
			e, _ := entitlementUsed(f)
			assert.Equal(t, tt.wantLogin, e.Login, "got login %q, want %q", e.Login, tt.wantLogin)
		})
	}
}

func TestDeniedError(t *testing.T) {
	d := &Denied{Identity: "svc-report", Reasons: []Reason{
		{Code: ReasonNotActive, Message: "svc-report is suspended; ask its owner to reactivate it"},
		{Code: ReasonCertificationExpired, Message: "svc-report was certified until 2026-10-01; ask its owner to recertify"},
	}}
	want := "access denied (not_active, certification_expired): svc-report is suspended; ask its owner to reactivate it; " +
		"svc-report was certified until 2026-10-01; ask its owner to recertify"
	assert.Equal(t, want, d.Error())
	assert.True(t, d.Has(ReasonNotActive))
	assert.False(t, d.Has(ReasonNoOwner))
	assert.Equal(t, []string{ReasonNotActive, ReasonCertificationExpired}, d.Codes())
	assert.False(t, strings.Contains(d.Error(), "\n"))
	assert.Equal(t, "access denied", (&Denied{Identity: "svc-report"}).Error())
}
