package iga

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// This file is the hygiene report (`sallyport iga report`): risks in the
// registry and its history, each tagged with its OWASP Non-Human
// Identities Top 10 (2025) id.

// OWASP NHI Top 10 ids the report uses.
const (
	NHI1  = "NHI1"  // improper offboarding: dormant, unowned, uncertified
	NHI5  = "NHI5"  // overprivileged NHI
	NHI7  = "NHI7"  // long-lived secrets
	NHI9  = "NHI9"  // NHI reuse
	NHI10 = "NHI10" // human use of NHI
)

// Finding kinds.
const (
	FindingDormant           = "dormant"
	FindingNoOwner           = "no_owner"
	FindingNotCertified      = "not_certified"
	FindingUnusedEntitlement = "unused_entitlement"
	FindingLongLivedKey      = "long_lived_key"
	FindingOldBinding        = "old_binding"
	FindingReusedCredential  = "reused_credential"
	FindingSharedKey         = "shared_key"
	FindingInteractiveShell  = "interactive_shell"
	FindingExecUnrestricted  = "exec_unrestricted"
	FindingStdinInterpreter  = "stdin_interpreter"
)

// Report defaults.
const (
	defaultHygieneWindow = 90 * 24 * time.Hour  // dormancy and unused entitlements look back this far
	defaultMaxKeyAge     = 365 * 24 * time.Hour // a key bound or valid longer than this is long-lived
	defaultMaxSources    = 3                    // more source addresses than this is one credential in many places
	// execUnrestrictedBelow: an identity that ran fewer distinct commands
	// than this with an unrestricted exec could have them listed instead.
	execUnrestrictedBelow = 5
)

// Finding is one hygiene problem of one identity (or one credential).
type Finding struct {
	NHI      string `json:"nhi"`
	Kind     string `json:"kind"`
	Identity string `json:"identity"`
	Detail   string `json:"detail"`
}

// SessionHistory is what the report reads of the session index and the
// admissions; the stores of package sqlstore have it.
type SessionHistory interface {
	// LastSessions returns when each identity's latest session started.
	LastSessions(ctx context.Context) (map[string]time.Time, error)
	// AdmissionUses returns the allowed admissions (not dry runs) since a
	// time, one row per identity, target, action, source and audit detail:
	// months of decisions in a few rows.
	AdmissionUses(ctx context.Context, since time.Time) ([]AdmissionUse, error)
}

// AdmissionUse is how often one identity was admitted to one target for
// one action from one source with one credential.
type AdmissionUse struct {
	Identity string
	Target   string
	Action   Action
	Source   string
	Detail   string // the decision's audit detail: login, grant, credential
	Count    int
	Last     time.Time
}

// HygieneOptions tune the report. Zero fields take the defaults.
type HygieneOptions struct {
	// Window is how far back use counts: an identity with no session in it
	// is dormant, an action never used in it is unused. Zero: 90 days.
	Window time.Duration
	// MaxKeyAge is the longest an SSH key or binding may live. Zero: 365 days.
	MaxKeyAge time.Duration
	// MaxSources is how many source addresses one credential may come
	// from. Zero: 3.
	MaxSources int
	// Observed is what each identity (by id) was seen doing in the window,
	// exec commands included: the recordings' exec events, gathered by the
	// caller as for Suggest. Nil: not read, and the exec_unrestricted
	// check is skipped.
	Observed map[string][]Observation
}

// hygieneFacts is what the report looks at, read once.
type hygieneFacts struct {
	now        time.Time
	opts       HygieneOptions
	identities []Identity
	people     map[string]Person
	lastUse    map[string]time.Time // identity → latest session or admission
	uses       []AdmissionUse       // allowed admissions within the window
	boundAt    map[string]time.Time // identity → when its credentials last changed
}

// Hygiene returns the findings of the registry and its history, sorted by
// NHI id, identity and kind.
func (r *Registry) Hygiene(ctx context.Context, sessions SessionHistory, opts HygieneOptions) ([]Finding, error) {
	f, err := r.hygieneFacts(ctx, sessions, opts)
	if err != nil {
		return nil, fmt.Errorf("hygiene report: %w", err)
	}
	var out []Finding
	for _, check := range []func(*hygieneFacts) []Finding{
		findOwnership, findDormant, findUnusedEntitlements, findLongLivedKeys, findReusedCredentials, findSharedKeys, findShells,
		findExecUnrestricted, findStdinInterpreters,
	} {
		out = append(out, check(f)...)
	}
	found, err := r.discoveredFindings(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("hygiene report: %w", err)
	}
	out = append(out, found...)
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(nhiNumber(a.NHI), nhiNumber(b.NHI)), cmp.Compare(a.Identity, b.Identity), cmp.Compare(a.Kind, b.Kind))
	})
	return out, nil
}

func nhiNumber(id string) int {
	var n int
	fmt.Sscanf(id, "NHI%d", &n)
	return n
}

func (r *Registry) hygieneFacts(ctx context.Context, sessions SessionHistory, opts HygieneOptions) (*hygieneFacts, error) {
	f := &hygieneFacts{now: r.now(), opts: withHygieneDefaults(opts), people: map[string]Person{}}
	var err error
	if f.identities, err = r.Store.Identities(ctx); err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	people, err := r.Store.People(ctx)
	if err != nil {
		return nil, fmt.Errorf("read people: %w", err)
	}
	for _, p := range people {
		f.people[p.ID] = p
	}
	if f.lastUse, err = sessions.LastSessions(ctx); err != nil {
		return nil, err
	}
	for _, id := range f.identities {
		if id.LastUsed.After(f.lastUse[id.ID]) {
			f.lastUse[id.ID] = id.LastUsed
		}
	}
	return f, r.readHistory(ctx, sessions, f)
}

// readHistory reads the allowed admissions in the window and when each
// identity's credentials were last applied.
func (r *Registry) readHistory(ctx context.Context, sessions SessionHistory, f *hygieneFacts) error {
	var err error
	if f.uses, err = sessions.AdmissionUses(ctx, f.now.Add(-f.opts.Window)); err != nil {
		return err
	}
	applied, err := r.Store.Audit(ctx, AuditFilter{Type: "apply"})
	if err != nil {
		return fmt.Errorf("read apply history: %w", err)
	}
	f.boundAt = map[string]time.Time{}
	for _, e := range applied {
		if e.Identity != "" && (strings.HasPrefix(e.Detail, "created:") || strings.Contains(e.Detail, "credentials")) {
			f.boundAt[e.Identity] = e.Time
		}
	}
	return nil
}

func withHygieneDefaults(o HygieneOptions) HygieneOptions {
	if o.Window <= 0 {
		o.Window = defaultHygieneWindow
	}
	if o.MaxKeyAge <= 0 {
		o.MaxKeyAge = defaultMaxKeyAge
	}
	if o.MaxSources <= 0 {
		o.MaxSources = defaultMaxSources
	}
	return o
}

// live reports whether an identity can still be used, so its risks matter.
func live(id Identity) bool {
	return (id.State == StateActive || id.State == StateProposed) && id.Kind != KindHuman
}

// findOwnership: identities without an active owner or a current
// certification (NHI1).
func findOwnership(f *hygieneFacts) []Finding {
	var out []Finding
	for _, id := range f.identities {
		if !live(id) {
			continue
		}
		if p, ok := f.people[id.Owner]; id.Owner == "" || !ok || p.Status != PersonActive {
			out = append(out, Finding{NHI1, FindingNoOwner, id.ID, ownerProblem(id, ok)})
		}
		if why := certificationProblem(id, f.now); why != "" {
			out = append(out, Finding{NHI1, FindingNotCertified, id.ID, why})
		}
	}
	return out
}

func ownerProblem(id Identity, known bool) string {
	switch {
	case id.Owner == "":
		return "no owner; assign one who then certifies it"
	case !known:
		return fmt.Sprintf("owner %s is not a registered person; assign a new owner", id.Owner)
	}
	return fmt.Sprintf("owner %s is no longer active (offboarded); assign a new owner", id.Owner)
}

func certificationProblem(id Identity, now time.Time) string {
	c := id.Certification
	switch {
	case c == nil:
		return "never certified"
	case c.Decision == DecisionRevoke:
		return fmt.Sprintf("certification revoked by %s on %s", c.By, c.At.Format(time.DateOnly))
	case !now.Before(c.Until):
		return fmt.Sprintf("certification expired on %s", c.Until.Format(time.DateOnly))
	}
	return ""
}

// findDormant: active identities with no session in the window (NHI1).
// Break-glass accounts are dormant by design and left out.
func findDormant(f *hygieneFacts) []Finding {
	var out []Finding
	for _, id := range f.identities {
		if !live(id) || id.Kind == KindBreakGlass || f.used(id.ID) {
			continue
		}
		detail := "never used"
		if last := f.lastUse[id.ID]; !last.IsZero() {
			detail = "last session " + last.Format(time.DateOnly)
		}
		out = append(out, Finding{NHI1, FindingDormant, id.ID,
			fmt.Sprintf("no session in %s (%s); deprovision it if nothing needs it", formatPeriod(f.opts.Window), detail)})
	}
	return out
}

func (f *hygieneFacts) used(identity string) bool {
	return !f.lastUse[identity].Before(f.now.Add(-f.opts.Window))
}

// findUnusedEntitlements: granted actions an identity in use never used
// in the window (NHI5). Dormant identities are reported as dormant instead.
func findUnusedEntitlements(f *hygieneFacts) []Finding {
	used := map[string]bool{} // identity/target/action
	for _, u := range f.uses {
		used[u.Identity+"/"+u.Target+"/"+string(u.Action)] = true
	}
	var out []Finding
	for _, id := range f.identities {
		if !live(id) || id.Kind == KindBreakGlass || !f.used(id.ID) {
			continue
		}
		for _, ent := range id.Entitlements {
			var unused []string
			for _, a := range ent.Actions {
				if !used[id.ID+"/"+ent.Target+"/"+string(a)] {
					unused = append(unused, string(a))
				}
			}
			if len(unused) > 0 {
				out = append(out, Finding{NHI5, FindingUnusedEntitlement, id.ID, fmt.Sprintf("%s on %s not used in %s; remove it from the entitlement",
					strings.Join(unused, ","), ent.Target, formatPeriod(f.opts.Window))})
			}
		}
	}
	return out
}

// findLongLivedKeys: SSH keys without expiry or valid beyond the maximum
// age, and credentials unchanged for longer than it (NHI7).
func findLongLivedKeys(f *hygieneFacts) []Finding {
	var out []Finding
	limit := f.now.Add(f.opts.MaxKeyAge)
	for _, id := range f.identities {
		if !live(id) {
			continue
		}
		for _, k := range id.Credentials.SSHKeys {
			switch {
			case k.Expires.IsZero():
				out = append(out, Finding{NHI7, FindingLongLivedKey, id.ID, fmt.Sprintf("ssh key %s never expires; set expires: and rotate it", keyName(k.Key))})
			case k.Expires.After(limit):
				out = append(out, Finding{NHI7, FindingLongLivedKey, id.ID, fmt.Sprintf("ssh key %s is valid until %s, beyond %s; rotate it sooner",
					keyName(k.Key), k.Expires.Format(time.DateOnly), formatPeriod(f.opts.MaxKeyAge))})
			}
		}
		if at, ok := f.boundAt[id.ID]; ok && hasCredentials(id) && at.Before(f.now.Add(-f.opts.MaxKeyAge)) {
			out = append(out, Finding{NHI7, FindingOldBinding, id.ID, fmt.Sprintf("credentials unchanged since %s, older than %s; rotate them",
				at.Format(time.DateOnly), formatPeriod(f.opts.MaxKeyAge))})
		}
	}
	return out
}

func hasCredentials(id Identity) bool {
	return len(id.Credentials.SSHKeys) > 0 || len(id.Credentials.OIDC) > 0
}

// keyName is a key as a person recognises it: its type and the end of its
// base64 body.
func keyName(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return "(unparseable)"
	}
	body := f[1]
	return f[0] + " …" + body[max(0, len(body)-8):]
}

// findReusedCredentials: one credential admitted from more source
// addresses than allowed in the window (NHI9).
func findReusedCredentials(f *hygieneFacts) []Finding {
	type use struct{ identity, credential string }
	sources := map[use]map[string]bool{}
	for _, au := range f.uses {
		cred := decisionCredential(au.Detail)
		if cred == "" || au.Source == "" {
			continue
		}
		u := use{au.Identity, cred}
		if sources[u] == nil {
			sources[u] = map[string]bool{}
		}
		sources[u][au.Source] = true
	}
	var out []Finding
	for u, srcs := range sources {
		if len(srcs) > f.opts.MaxSources {
			out = append(out, Finding{NHI9, FindingReusedCredential, u.identity, fmt.Sprintf("%s used from %d source addresses in %s (more than %d): %s",
				u.credential, len(srcs), formatPeriod(f.opts.Window), f.opts.MaxSources, strings.Join(slices.Sorted(maps.Keys(srcs)), ", "))})
		}
	}
	return out
}

// decisionCredential is the credential a decision's audit detail names.
func decisionCredential(detail string) string {
	for _, part := range strings.Split(detail, "; ") {
		if c, ok := strings.CutPrefix(part, "credential "); ok && c != "none" {
			return c
		}
	}
	return ""
}

// findSharedKeys: one SSH key bound to several identities (NHI9).
func findSharedKeys(f *hygieneFacts) []Finding {
	holders := map[string][]string{}
	for _, id := range f.identities {
		if !live(id) {
			continue
		}
		for _, k := range id.Credentials.SSHKeys {
			if fs := strings.Fields(k.Key); len(fs) >= 2 && !slices.Contains(holders[fs[1]], id.ID) {
				holders[fs[1]] = append(holders[fs[1]], id.ID)
			}
		}
	}
	var out []Finding
	for body, ids := range holders {
		if len(ids) < 2 {
			continue
		}
		for _, id := range ids {
			out = append(out, Finding{NHI9, FindingSharedKey, id, fmt.Sprintf("ssh key …%s is also bound to %s; give each identity its own key",
				body[max(0, len(body)-8):], strings.Join(slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == id }), ", "))})
		}
	}
	return out
}

// findShells: interactive shells opened by pipelines and workloads, which
// run unattended, so a person is likely behind the shell (NHI10).
func findShells(f *hygieneFacts) []Finding {
	kinds := map[string]Kind{}
	for _, id := range f.identities {
		kinds[id.ID] = id.Kind
	}
	count := map[string]int{}
	last := map[string]time.Time{}
	for _, u := range f.uses {
		if k := kinds[u.Identity]; u.Action == ActionShell && (k == KindPipeline || k == KindWorkload) {
			count[u.Identity] += u.Count
			if u.Last.After(last[u.Identity]) {
				last[u.Identity] = u.Last
			}
		}
	}
	var out []Finding
	for id, n := range count {
		out = append(out, Finding{NHI10, FindingInteractiveShell, id, fmt.Sprintf("%s %s opened %d interactive shell(s) in %s, the last on %s; a person is using it",
			kinds[id], id, n, formatPeriod(f.opts.Window), last[id].Format(time.DateOnly))})
	}
	return out
}

// findExecUnrestricted: identities in use that hold exec without commands
// yet ran only a few distinct commands in the window (NHI5): their
// entitlement could name them.
func findExecUnrestricted(f *hygieneFacts) []Finding {
	if f.opts.Observed == nil {
		return nil
	}
	var out []Finding
	for _, id := range f.identities {
		if !live(id) || id.Kind == KindBreakGlass || !f.used(id.ID) {
			continue
		}
		for _, e := range id.Entitlements {
			if !slices.Contains(e.Actions, ActionExec) || len(e.Commands) > 0 || slices.Contains(e.Actions, ActionShell) {
				continue
			}
			ran := distinctCommands(f.opts.Observed[id.ID], e)
			if len(ran) >= execUnrestrictedBelow {
				continue
			}
			out = append(out, Finding{NHI5, FindingExecUnrestricted, id.ID, fmt.Sprintf(
				"may exec any command on %s as %s but ran %d distinct command(s) in %s; restrict it to them: sallyport iga suggest %s --days %d",
				e.Target, e.Login, len(ran), formatPeriod(f.opts.Window), id.ID, int(f.opts.Window.Hours()/24))})
		}
	}
	return out
}

func distinctCommands(obs []Observation, e Entitlement) []string {
	var out []string
	for _, o := range obs {
		if o.Target == e.Target && o.Login == e.Login && o.Action == ActionExec && !slices.Contains(out, o.Command) {
			out = append(out, o.Command)
		}
	}
	return out
}

// findStdinInterpreters: allowed commands that run an interpreter reading
// its program from stdin (NHI5): they allow whatever arrives there.
func findStdinInterpreters(f *hygieneFacts) []Finding {
	var out []Finding
	for _, id := range f.identities {
		if !live(id) {
			continue
		}
		for _, w := range InterpreterWarnings(id.Entitlements) {
			out = append(out, Finding{NHI5, FindingStdinInterpreter, id.ID, w})
		}
	}
	return out
}

// InterpreterWarnings says, one sentence per pattern, which allowed
// commands run an interpreter that reads its program from stdin.
func InterpreterWarnings(es []Entitlement) []string {
	var out []string
	for _, e := range es {
		for _, p := range e.Commands {
			if prog, ok := StdinInterpreter(p); ok {
				out = append(out, fmt.Sprintf("command %q on %s as %s runs %s, which reads its program from stdin: it runs whatever the client sends (the recording keeps stdin); allow the script itself instead",
					p, e.Target, e.Login, prog))
			}
		}
	}
	return out
}
