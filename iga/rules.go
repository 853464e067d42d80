package iga

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The admission rules of DESIGN §5, one function each. A rule looks only at
// the facts read for one decision and returns the reasons it fails with,
// none when it holds. Registry.evaluate runs them in order and keeps every
// reason, so a caller learns everything that stands in its way at once.
// Rule 6 (the credential) needs the network for OIDC tokens and lives in
// authenticate.go.

// admissionFacts is what the rules look at: one request and the registry
// state it concerns, read once before any rule runs.
type admissionFacts struct {
	req      Request
	now      time.Time
	identity Identity
	target   Target
	// owner is the identity's owner; ownerKnown is false when the identity
	// has no owner or names someone who is not a registered person.
	owner      Person
	ownerKnown bool
	// grants are the identity's break-glass grants, read for break-glass
	// identities only.
	grants []Grant
}

// admissionDateFormat is how dates appear in denial messages.
const admissionDateFormat = "2006-01-02"

// admissionTimeFormat is how instants appear in denial messages.
const admissionTimeFormat = "2006-01-02 15:04 MST"

// ruleActive is rule 1: the identity's lifecycle state is active.
func ruleActive(f *admissionFacts) []Reason {
	id := f.identity
	switch id.State {
	case StateActive:
		return nil
	case StateProposed:
		return reasonf(ReasonNotActive, "%s is proposed, not yet active; ask %s to activate it", id.ID, ownerPhrase(f))
	case StateDeprovisioned:
		return reasonf(ReasonNotActive, "%s is deprovisioned and can no longer be used; use another identity", id.ID)
	default:
		return reasonf(ReasonNotActive, "%s is %s; ask %s to reactivate it", id.ID, id.State, ownerPhrase(f))
	}
}

// ruleKind is rule 2: only non-human identities and break-glass accounts
// are admitted; a human account is kept in the registry for visibility only.
func ruleKind(f *admissionFacts) []Reason {
	if f.identity.Kind != KindHuman {
		return nil
	}
	return reasonf(ReasonKindNotAdmitted,
		"%s is a human account and people are never admitted; use a non-human identity or a break-glass account", f.identity.ID)
}

// ruleOwner is rule 3: the identity has an owner who is an active person.
// Offboarding the owner orphans everything they own.
func ruleOwner(f *admissionFacts) []Reason {
	id := f.identity
	switch {
	case id.Owner == "":
		return reasonf(ReasonNoOwner, "%s has no owner; an administrator must assign one, who then certifies it", id.ID)
	case !f.ownerKnown:
		return reasonf(ReasonOwnerInactive,
			"%s's owner %s is not a registered person; an administrator must assign a new owner, who then recertifies it", id.ID, id.Owner)
	case f.owner.Status != PersonActive:
		return reasonf(ReasonOwnerInactive,
			"%s's owner %s is no longer active; an administrator must assign a new owner, who then recertifies it", id.ID, id.Owner)
	}
	return nil
}

// ruleCertified is rule 4: the latest certification decision is certify,
// was made by the current owner (a change of owner voids it: the mover
// rule), and has not run out.
func ruleCertified(f *admissionFacts) []Reason {
	id, c := f.identity, f.identity.Certification
	switch {
	case c == nil:
		return reasonf(ReasonNotCertified, "%s has never been certified; ask %s to certify it", id.ID, ownerPhrase(f))
	case c.Decision == DecisionRevoke:
		return reasonf(ReasonCertificationRevoked, "%s's certification was revoked by %s on %s; ask %s to recertify it",
			id.ID, c.By, c.At.UTC().Format(admissionDateFormat), ownerPhrase(f))
	case c.Decision != DecisionCertify:
		return reasonf(ReasonNotCertified, "%s's latest certification decision %q is not certify; ask %s to certify it",
			id.ID, c.Decision, ownerPhrase(f))
	case id.Owner == "":
		return reasonf(ReasonNotCertified, "%s has no owner, so its certification by %s does not count; ask %s to assign an owner who certifies it",
			id.ID, c.By, ownerPhrase(f))
	case c.By != id.Owner:
		return reasonf(ReasonNotCertified, "%s was certified by %s, who is not its current owner; ask %s to recertify it",
			id.ID, c.By, ownerPhrase(f))
	case !f.now.Before(c.Until):
		return reasonf(ReasonCertificationExpired, "%s was certified until %s; ask %s to recertify",
			id.ID, c.Until.UTC().Format(admissionDateFormat), ownerPhrase(f))
	}
	return nil
}

// ruleEntitlement is rule 5, first half: an unexpired entitlement covers
// the target and the action, from an allowed source address. It names the
// first step that fails: no entitlement on the target at all, only expired
// ones, none for this action, none from this source.
func ruleEntitlement(f *admissionFacts) []Reason {
	id, req := f.identity.ID, f.req
	onTarget := entitlementsOn(f.identity.Entitlements, req.Target)
	if len(onTarget) == 0 {
		return reasonf(ReasonNoEntitlement, "%s has no entitlement on %s; ask %s to request one", id, req.Target, ownerPhrase(f))
	}
	current := unexpiredEntitlements(onTarget, f.now)
	if len(current) == 0 {
		return reasonf(ReasonEntitlementExpired, "%s's entitlement on %s expired on %s; ask %s to renew it",
			id, req.Target, lastExpiry(onTarget).UTC().Format(admissionDateFormat), ownerPhrase(f))
	}
	covering := entitlementsFor(current, req.Action)
	if len(covering) == 0 {
		return reasonf(ReasonActionNotEntitled, "%s may not %s on %s (entitled: %s); ask %s to extend its entitlement",
			id, actionPhrase(req.Action), req.Target, strings.Join(entitledActions(current), ", "), ownerPhrase(f))
	}
	from := entitlementsFrom(covering, req.Source)
	if len(from) == 0 {
		return reasonf(ReasonSourceNotAllowed, "%s may not connect to %s from %s (allowed: %s); connect from an allowed network",
			id, req.Target, req.Source, strings.Join(allowedSources(covering), ", "))
	}
	if len(entitlementsForCommand(from, req)) == 0 {
		return reasonf(ReasonCommandNotEntitled, "%s may not run %s on %s (allowed: %s); ask %s to add it to its entitlement",
			id, commandPhrase(req.Command), req.Target, strings.Join(allowedCommands(from), ", "), ownerPhrase(f))
	}
	return nil
}

// maxCommandInReason bounds the command line quoted in a refusal: enough
// to recognise it on one line of the client's stderr.
const maxCommandInReason = 120

// commandPhrase is the asked-for command as a refusal names it: quoted,
// control characters escaped, cut at maxCommandInReason bytes.
func commandPhrase(c string) string {
	if c == "" {
		return "an empty command"
	}
	if len(c) > maxCommandInReason {
		return strconv.Quote(strings.ToValidUTF8(c[:maxCommandInReason], "")) + fmt.Sprintf("… (%d bytes)", len(c))
	}
	return strconv.Quote(c)
}

// entitlementsForCommand keeps the entitlements that allow the request's
// exec command: those without commands, and those with a matching one.
// Other actions, and an iga check that names no command, keep them all.
func entitlementsForCommand(es []Entitlement, req Request) []Entitlement {
	if req.Action != ActionExec || (req.DryRun && req.Command == "") {
		return es
	}
	return keepEntitlements(es, func(e Entitlement) bool {
		_, ok := MatchCommand(e.Commands, req.Command)
		return len(e.Commands) == 0 || ok
	})
}

// allowedCommands lists the command patterns of restricted entitlements,
// quoted, each once.
func allowedCommands(es []Entitlement) []string {
	var out []string
	for _, e := range es {
		for _, c := range e.Commands {
			if q := strconv.Quote(c); !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	return out
}

// ruleEnvironment is rule 5, second half: when both the identity and the
// target name an environment, they are the same one.
func ruleEnvironment(f *admissionFacts) []Reason {
	idEnv, targetEnv := f.identity.Environment, f.target.Environment
	if idEnv == "" || targetEnv == "" || idEnv == targetEnv {
		return nil
	}
	return reasonf(ReasonEnvironmentMismatch, "%s belongs to %s but %s is in %s; use an identity for %s",
		f.identity.ID, idEnv, f.target.Name, targetEnv, targetEnv)
}

// ruleBreakglass is rule 7: a break-glass account needs an open, unexpired
// grant for this target. Other kinds pass.
func ruleBreakglass(f *admissionFacts) []Reason {
	if f.identity.Kind != KindBreakGlass {
		return nil
	}
	if _, ok := openGrant(f); ok {
		return nil
	}
	id, target := f.identity.ID, f.req.Target
	if last, ok := lastGrant(f); ok {
		return reasonf(ReasonBreakglassGrantExpired, "%s's break-glass grant %s on %s ended at %s; a holder must open a new grant",
			id, last.ID, target, grantEnd(last).UTC().Format(admissionTimeFormat))
	}
	return reasonf(ReasonBreakglassNoGrant,
		"%s has no open break-glass grant on %s; a holder must run: sallyport breakglass open %s --target %s --reason TEXT --by PERSON",
		id, target, id, target)
}

// entitlementUsed is the entitlement a session admitted for f's request
// runs under (it names the login), if there is one.
func entitlementUsed(f *admissionFacts) (Entitlement, bool) {
	onTarget := entitlementsOn(f.identity.Entitlements, f.req.Target)
	usable := entitlementsFrom(entitlementsFor(unexpiredEntitlements(onTarget, f.now), f.req.Action), f.req.Source)
	usable = entitlementsForCommand(usable, f.req)
	if len(usable) == 0 {
		return Entitlement{}, false
	}
	return usable[0], true
}

// usableActions lists the actions that the identity's unexpired
// entitlements on the target cover from the request's source.
func usableActions(f *admissionFacts) []Action {
	onTarget := entitlementsOn(f.identity.Entitlements, f.req.Target)
	var out []Action
	for _, e := range entitlementsFrom(unexpiredEntitlements(onTarget, f.now), f.req.Source) {
		for _, a := range e.Actions {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// openGrant is the grant that admits a break-glass session for f's target.
func openGrant(f *admissionFacts) (Grant, bool) {
	for _, g := range f.grants {
		if g.Target == f.req.Target && g.Open(f.now) {
			return g, true
		}
	}
	return Grant{}, false
}

// lastGrant is the most recently opened grant for f's target, open or not.
func lastGrant(f *admissionFacts) (Grant, bool) {
	var last Grant
	found := false
	for _, g := range f.grants {
		if g.Target == f.req.Target && (!found || g.OpenedAt.After(last.OpenedAt)) {
			last, found = g, true
		}
	}
	return last, found
}

// grantEnd is when a grant stopped admitting sessions.
func grantEnd(g Grant) time.Time {
	if !g.ClosedAt.IsZero() && g.ClosedAt.Before(g.ExpiresAt) {
		return g.ClosedAt
	}
	return g.ExpiresAt
}

func entitlementsOn(es []Entitlement, target string) []Entitlement {
	return keepEntitlements(es, func(e Entitlement) bool { return e.Target == target })
}

func unexpiredEntitlements(es []Entitlement, now time.Time) []Entitlement {
	return keepEntitlements(es, func(e Entitlement) bool { return e.Expires.IsZero() || now.Before(e.Expires) })
}

func entitlementsFor(es []Entitlement, a Action) []Entitlement {
	if a == ActionConnect {
		return keepEntitlements(es, func(e Entitlement) bool { return len(e.Actions) > 0 })
	}
	return keepEntitlements(es, func(e Entitlement) bool { return slices.Contains(e.Actions, a) })
}

// entitlementsFrom keeps the entitlements that allow source. A zero source
// is not known (iga check without --from), so the check is skipped.
func entitlementsFrom(es []Entitlement, source netip.Addr) []Entitlement {
	if !source.IsValid() {
		return es
	}
	return keepEntitlements(es, func(e Entitlement) bool { return sourceAllowed(e.From, source) })
}

// sourceAllowed reports whether addr lies in one of the CIDRs; no CIDRs
// means anywhere. A CIDR that does not parse allows nothing.
func sourceAllowed(cidrs []string, addr netip.Addr) bool {
	if len(cidrs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

func keepEntitlements(es []Entitlement, keep func(Entitlement) bool) []Entitlement {
	var kept []Entitlement
	for _, e := range es {
		if keep(e) {
			kept = append(kept, e)
		}
	}
	return kept
}

// lastExpiry is the latest expiry among entitlements that all expired.
func lastExpiry(es []Entitlement) time.Time {
	var last time.Time
	for _, e := range es {
		if e.Expires.After(last) {
			last = e.Expires
		}
	}
	return last
}

func entitledActions(es []Entitlement) []string {
	var actions []string
	for _, e := range es {
		for _, a := range e.Actions {
			if !slices.Contains(actions, string(a)) {
				actions = append(actions, string(a))
			}
		}
	}
	if len(actions) == 0 {
		return []string{"nothing"}
	}
	return actions
}

func allowedSources(es []Entitlement) []string {
	var cidrs []string
	for _, e := range es {
		cidrs = append(cidrs, e.From...)
	}
	return cidrs
}

func actionPhrase(a Action) string {
	switch a {
	case "":
		return "do an unnamed action"
	case ActionConnect:
		return "do anything"
	}
	return string(a)
}

// ownerPhrase names whom the client should ask about an identity: its
// owner while they are an active person, otherwise an administrator.
func ownerPhrase(f *admissionFacts) string {
	if f.identity.Owner == "" || !f.ownerKnown || f.owner.Status != PersonActive {
		return "an administrator"
	}
	return "its owner " + f.identity.Owner
}

func reasonf(code, format string, args ...any) []Reason {
	return []Reason{{Code: code, Message: fmt.Sprintf(format, args...)}}
}
