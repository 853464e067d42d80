package iga

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Audit event types written by admission and token issue.
const (
	decisionEventType   = "decision"    // a real admission, at connect or re-check
	checkEventType      = "check"       // a dry run: iga check
	tokenIssueEventType = "token_issue" // a minted token (its id, never the token)
)

// auditActorBastion is the actor of events sallyport writes on its own.
const auditActorBastion = "sallyport"

// Request asks whether an identity may act on a target right now.
type Request struct {
	Identity string
	Target   string
	Action   Action
	// Source is the caller's address. Zero: not known (iga check without
	// --from), and the from-CIDR check of rule 5 is skipped.
	Source netip.Addr
	// Credential is what the caller presented. Nil: rule 6 is not checked
	// (iga check without --key or --token).
	Credential *Credential
	// DryRun marks an iga check: audited as type "check" instead of
	// "decision", and it does not count as a use of the identity.
	DryRun bool
	// Command is an exec request's command line: with ActionExec, checked
	// against the entitlement's commands when it has any. Empty: not an
	// exec, or iga check without --command.
	Command string
	// Asked is what the client asked for in its own words — an exec
	// command line, a forward's destination — named in the audit event of
	// a refusal, and of an admitted exec (quoted, and cut at
	// maxAskedInAudit bytes). Empty: nothing beyond the action.
	Asked string
	// Session is the id of the proxied session the request belongs to,
	// minted by the proxy before it asks, so the audit event names the
	// session (and its recording) it admits. Empty: no session (iga check,
	// a re-check shared by several sessions).
	Session string
}

// maxAskedInAudit bounds the part of a request kept in its audit event:
// enough to see what was tried or run, not a script's worth.
const maxAskedInAudit = 512

// Decision is the answer to a Request, as `iga check --json` prints it.
type Decision struct {
	Allow bool `json:"allow"`
	// Reasons lists every failing rule; empty (never null) when allowed.
	Reasons  []Reason `json:"reasons"`
	Identity string   `json:"identity"`
	Kind     Kind     `json:"kind,omitempty"`
	Owner    string   `json:"owner,omitempty"`
	Target   string   `json:"target"`
	Action   Action   `json:"action"`
	// Login is the Unix login or database role the entitlement grants.
	Login  string `json:"login,omitempty"`
	Source string `json:"source,omitempty"`
	// Credential describes the credential checked (key fingerprint, token
	// id or OIDC subject), never the secret itself. Empty when unchecked.
	Credential string `json:"credential,omitempty"`
	// Grant is the break-glass grant the session runs under.
	Grant string `json:"breakglass_grant,omitempty"`
	// ForceCommand is the one command an admitted exec may run when its
	// entitlement allows exactly one command line without wildcards: the
	// per-session certificate carries it as force-command, so the target
	// enforces it too.
	ForceCommand string `json:"force_command,omitempty"`
	// Commands lists, for an exec check that names no command (iga check
	// without --command), the command lines the entitlement allows; empty
	// when it allows any.
	Commands []string `json:"commands,omitempty"`
	// Entitled lists, for an admitted connect, the actions the identity's
	// current entitlements on the target cover from the source: what its
	// channels may go on to ask for.
	Entitled []Action  `json:"entitled,omitempty"`
	DryRun   bool      `json:"dry_run,omitempty"`
	Time     time.Time `json:"time"`

	asked   string // Request.Asked, for the audit event of a refusal or an exec
	session string // Request.Session, for the audit event
}

// Err returns nil when the decision allows, else a *Denied with its reasons.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	return deny(d.Identity, d.Reasons...)
}

// Decide evaluates every admission rule of DESIGN §5 for req, records the
// decision in the audit trail and passes it to OnDecision. A refusal is a
// Decision with Allow false, not an error: the error reports only an
// infrastructure failure (the store could not be read or written), and
// the caller must then refuse.
func (r *Registry) Decide(ctx context.Context, req Request) (Decision, error) {
	d, err := r.decide(ctx, req)
	if err != nil {
		return Decision{}, fmt.Errorf("decide %s on %s: %w", req.Identity, req.Target, err)
	}
	if err := r.recordDecision(ctx, d); err != nil {
		return Decision{}, fmt.Errorf("record decision on %s for %s: %w", req.Target, req.Identity, err)
	}
	if r.OnDecision != nil {
		r.OnDecision(d)
	}
	return d, nil
}

// Recheck re-evaluates a live session's admission. It writes nothing when
// the session is still admitted — the watcher calls it every few seconds per
// session — and records the decision like Decide when it is refused, so the
// audit trail shows why the session was ended.
func (r *Registry) Recheck(ctx context.Context, req Request) (Decision, error) {
	d, err := r.decide(ctx, req)
	if err != nil {
		return Decision{}, fmt.Errorf("recheck %s on %s: %w", req.Identity, req.Target, err)
	}
	if d.Allow {
		return d, nil
	}
	if err := r.recordDecision(ctx, d); err != nil {
		return Decision{}, fmt.Errorf("record decision on %s for %s: %w", req.Target, req.Identity, err)
	}
	if r.OnDecision != nil {
		r.OnDecision(d)
	}
	return d, nil
}

// decide reads the facts and runs the rules, without recording anything.
func (r *Registry) decide(ctx context.Context, req Request) (Decision, error) {
	d := Decision{Identity: req.Identity, Target: req.Target, Action: req.Action, DryRun: req.DryRun, Time: r.now(),
		asked: req.Asked, session: req.Session}
	if req.Source.IsValid() {
		d.Source = req.Source.Unmap().String()
	}
	f, alone, err := r.gatherFacts(ctx, req, d.Time)
	if err != nil {
		return Decision{}, err
	}
	if alone != nil {
		d.Reasons = alone
		return d, nil
	}
	d.Kind, d.Owner = f.identity.Kind, f.identity.Owner
	e, used := entitlementUsed(f)
	if used {
		d.Login = e.Login
	}
	if g, ok := openGrant(f); ok && f.identity.Kind == KindBreakGlass {
		d.Grant = g.ID
	}
	d.Reasons, d.Credential = r.evaluate(ctx, f)
	d.Allow = len(d.Reasons) == 0
	if d.Allow && req.Action == ActionConnect {
		d.Entitled = usableActions(f)
	}
	if d.Allow && req.Action == ActionExec && used {
		d.ForceCommand, d.Commands = execLimits(e, req)
	}
	return d, nil
}

// evaluate runs the seven rules in order and keeps every failing reason.
// It also returns what credential it checked, for the audit trail.
func (r *Registry) evaluate(ctx context.Context, f *admissionFacts) ([]Reason, string) {
	reasons := []Reason{}
	reasons = append(reasons, ruleActive(f)...)      // 1
	reasons = append(reasons, ruleKind(f)...)        // 2
	reasons = append(reasons, ruleOwner(f)...)       // 3
	reasons = append(reasons, ruleCertified(f)...)   // 4
	reasons = append(reasons, ruleEntitlement(f)...) // 5
	reasons = append(reasons, ruleEnvironment(f)...) // 5
	credential := ""
	if f.req.Credential != nil { // 6: only when a credential was presented
		check := r.checkCredential(ctx, f.identity, *f.req.Credential)
		reasons, credential = append(reasons, check.reasons...), check.detail
	}
	reasons = append(reasons, ruleBreakglass(f)...) // 7
	return reasons, credential
}

// execLimits is what an admitted exec under e may run: the one command
// the certificate forces when e allows exactly one without wildcards, and
// e's commands when the request named none (a dry run).
func execLimits(e Entitlement, req Request) (force string, allowed []string) {
	if req.Command == "" {
		return "", e.Commands
	}
	if c, ok := SingleCommand(e); ok && c == req.Command {
		return c, nil
	}
	return "", nil
}

// gatherFacts reads what the rules need: a few primary-key reads. When the
// identity or the target is unknown it returns that reason alone.
func (r *Registry) gatherFacts(ctx context.Context, req Request, now time.Time) (*admissionFacts, []Reason, error) {
	id, err := r.Store.Identity(ctx, req.Identity)
	if errors.Is(err, ErrNotFound) {
		return nil, unknownIdentity(req.Identity), nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read identity: %w", err)
	}
	target, ok := r.target(req.Target)
	if !ok {
		return nil, reasonf(ReasonUnknownTarget, "no target named %q is configured; check the target name", req.Target), nil
	}
	f := &admissionFacts{req: req, now: now, identity: id, target: target}
	if err := r.readOwner(ctx, f); err != nil {
		return nil, nil, err
	}
	if id.Kind == KindBreakGlass {
		if f.grants, err = r.Store.Grants(ctx, id.ID); err != nil {
			return nil, nil, fmt.Errorf("read break-glass grants: %w", err)
		}
	}
	return f, nil, nil
}

// readOwner fills in the identity's owner when it names a known person.
func (r *Registry) readOwner(ctx context.Context, f *admissionFacts) error {
	if f.identity.Owner == "" {
		return nil
	}
	p, err := r.Store.Person(ctx, f.identity.Owner)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read owner %s: %w", f.identity.Owner, err)
	}
	f.owner, f.ownerKnown = p, true
	return nil
}

func unknownIdentity(id string) []Reason {
	return reasonf(ReasonUnknownIdentity, "no identity named %q is registered; check the login or ask an administrator to register it", id)
}

// recordDecision appends d to the audit trail. A dry run is appended as a
// plain event so it does not count as a use of the identity.
func (r *Registry) recordDecision(ctx context.Context, d Decision) error {
	e := decisionEvent(d)
	if d.DryRun {
		return r.Store.Update(ctx, func(tx Tx) error { return tx.AppendAudit(ctx, e) })
	}
	return r.Store.RecordDecision(ctx, e)
}

// AuditQuote is how a client's own words appear in an audit event: Go
// quoted (control characters escaped, so one event stays one line) and cut
// at maxAskedInAudit bytes.
func AuditQuote(s string) string {
	if len(s) > maxAskedInAudit {
		return strconv.Quote(strings.ToValidUTF8(s[:maxAskedInAudit], "")) + fmt.Sprintf(" (first %d of %d bytes)", maxAskedInAudit, len(s))
	}
	return strconv.Quote(s)
}

// decisionEvent is the audit event of a decision.
func decisionEvent(d Decision) AuditEvent {
	e := AuditEvent{
		Time: d.Time, Type: decisionEventType, Actor: auditActorBastion,
		Identity: d.Identity, Target: d.Target, Action: d.Action, Source: d.Source,
		Allow: d.Allow, Reasons: d.Reasons,
	}
	if d.DryRun {
		e.Type = checkEventType
	}
	var detail []string
	asked := ""
	if d.asked != "" && (!d.Allow || d.Action == ActionExec) {
		asked = AuditQuote(d.asked) // an admitted exec names what it runs too
	}
	for _, kv := range [][2]string{{"login", d.Login}, {"breakglass_grant", d.Grant}, {"credential", d.Credential},
		{"asked", asked}, {"session", d.session}} {
		if kv[1] != "" {
			detail = append(detail, kv[0]+" "+kv[1])
		}
	}
	e.Detail = strings.Join(detail, "; ")
	return e
}
