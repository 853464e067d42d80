package iga

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// systemActor is the audit actor when nobody is named.
const systemActor = "sallyport"

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	// Prune deprovisions identities the registry holds but the file does
	// not list. False: they are left as they are.
	Prune bool
	// Actor is who applied the file, recorded on every audit event.
	// Empty: "sallyport".
	Actor string
	// Force applies the file's decisions even where they are older than a
	// later registry decision they would undo (see Conflict); each such
	// identity gets an audit event of type "apply_force". False: the
	// registry's decision, and the state it set, are kept.
	Force bool
}

// ApplyResult says what an apply changed. Every list holds ids, sorted.
type ApplyResult struct {
	// Created, Updated and Unchanged partition the file's identities.
	// An identity whose only change is a new certification is Updated.
	Created, Updated, Unchanged []string
	// Certified lists identities whose certification history received the
	// file's decision (it differed from their latest one).
	Certified []string
	// Deprovisioned lists identities missing from the file that Prune
	// deprovisioned.
	Deprovisioned []string
	// PeopleCreated and PeopleUpdated list the people written.
	PeopleCreated, PeopleUpdated []string
	// Warnings are kept but suspicious entries, such as an entitlement to
	// a target the config does not define.
	Warnings []Problem
	// Conflicts are the file's decisions that are older than a later
	// registry decision they would undo, sorted by identity: kept out of
	// the registry, or applied when Forced. The rest of the file is
	// applied either way.
	Conflicts []Conflict
}

// Unresolved returns the conflicts that were not forced: registry
// decisions kept against the file.
func (res ApplyResult) Unresolved() []Conflict {
	var out []Conflict
	for _, c := range res.Conflicts {
		if !c.Forced {
			out = append(out, c)
		}
	}
	return out
}

// Changed reports whether the apply wrote anything.
func (res ApplyResult) Changed() bool {
	return len(res.Created)+len(res.Updated)+len(res.Deprovisioned)+len(res.PeopleCreated)+len(res.PeopleUpdated) > 0
}

// Apply makes the registry match a registry file, in one transaction:
// people and identities are upserted, a certification is appended only when
// it differs from the identity's latest decision (so applying twice adds
// nothing), and with Prune identities missing from the file are
// deprovisioned. Every change is an audit event of type "apply".
//
// A file's decision never silently undoes a later one in the registry: a
// file certification older than the registry's latest decision of the same
// kind is not appended (a warning), and one that would undo a later revoke
// or certify is a Conflict, kept out unless opts.Force.
//
// Apply first checks what ParseFile could not: that every owner, holder and
// certifier is a person in the file or the registry, and that no new
// certification is longer than Policy.MaxCertification. It then returns a
// *FileError listing every problem, and changes nothing.
func (r *Registry) Apply(ctx context.Context, f *File, opts ApplyOptions) (ApplyResult, error) {
	if f == nil || f.people == nil {
		return ApplyResult{}, errors.New("apply registry file: the file was not parsed; read it with iga.ParseFile or iga.FileFromDoc")
	}
	var res ApplyResult
	err := r.Store.Update(ctx, func(tx Tx) error {
		a, err := r.newApplier(ctx, tx, f, opts)
		if err != nil {
			return err
		}
		managed, err := SCIMManaged(ctx, tx)
		if err != nil {
			return err
		}
		if problems := append(a.check(), a.checkManaged(managed)...); len(problems) > 0 || len(f.problems) > 0 {
			problems = append(problems, f.problems...)
			slices.SortStableFunc(problems, func(x, y Problem) int { return x.Line - y.Line })
			return &FileError{Problems: problems}
		}
		if err := a.write(ctx); err != nil {
			return err
		}
		if _, err := r.settleTransfers(ctx, tx); err != nil {
			return err
		}
		res = a.result()
		return nil
	})
	var fe *FileError
	if errors.As(err, &fe) {
		return ApplyResult{}, fe
	}
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply %s: %w", f.Name, err)
	}
	r.logger().Info("registry file applied", "file", f.Name, "actor", orSystem(opts.Actor),
		"created", len(res.Created), "updated", len(res.Updated), "unchanged", len(res.Unchanged),
		"deprovisioned", len(res.Deprovisioned), "warnings", len(res.Warnings), "conflicts kept", len(res.Unresolved()))
	for _, c := range res.Conflicts {
		if c.Forced {
			r.logger().Warn("registry file forced over a later registry decision", "identity", c.Identity, "file", f.Name,
				"actor", orSystem(opts.Actor), "registry_decision", c.Registry.Decision, "registry_at", c.Registry.At)
		}
	}
	return res, nil
}

// applier holds one Apply's view of the store, read once inside the
// transaction, and what it has done so far.
type applier struct {
	r          *Registry
	tx         Tx
	f          *File
	opts       ApplyOptions
	now        time.Time
	people     map[string]Person
	identities map[string]Identity
	// conflicts holds the Conflict of each identity that has one.
	conflicts map[string]*Conflict
	res       ApplyResult
}

func (r *Registry) newApplier(ctx context.Context, tx Tx, f *File, opts ApplyOptions) (*applier, error) {
	people, err := tx.People(ctx)
	if err != nil {
		return nil, fmt.Errorf("read people: %w", err)
	}
	identities, err := tx.Identities(ctx)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	a := &applier{r: r, tx: tx, f: f, opts: opts, now: r.now(),
		people: make(map[string]Person, len(people)), identities: make(map[string]Identity, len(identities)),
		conflicts: map[string]*Conflict{}}
	for _, p := range people {
		a.people[p.ID] = p
	}
	for _, id := range identities {
		a.identities[id.ID] = id
	}
	return a, nil
}

// check returns the problems that refuse the file and records warnings.
func (a *applier) check() []Problem {
	var problems []Problem
	for _, id := range a.f.Doc.Identities {
		lines := a.f.lines(id.ID)
		problems = append(problems, a.checkPeople(id, lines)...)
		a.checkDecision(id, lines)
		if c := a.newCertification(id); c != nil {
			problems = append(problems, a.checkCertification(id, *c, lines)...)
		}
		a.checkTargets(id, lines)
	}
	slices.SortStableFunc(problems, func(x, y Problem) int { return x.Line - y.Line })
	slices.SortStableFunc(a.res.Warnings, func(x, y Problem) int { return x.Line - y.Line })
	slices.SortFunc(a.res.Conflicts, func(x, y Conflict) int { return strings.Compare(x.Identity, y.Identity) })
	return problems
}

// checkDecision compares the file's decision about id with the registry's
// latest and records a conflict or a warning when the registry's is later.
func (a *applier) checkDecision(id Identity, lines *identityLines) {
	if c := a.findConflict(id, lines); c != nil {
		a.conflicts[id.ID] = c
		a.res.Conflicts = append(a.res.Conflicts, *c)
	} else if a.olderSameDecision(id) {
		a.warnOlder(id, lines)
	}
}

// lines returns where an identity is in the file; an empty set for a File
// not made by ParseFile.
func (f *File) lines(id string) *identityLines {
	if l, ok := f.identities[id]; ok {
		return l
	}
	return &identityLines{}
}

func (a *applier) problem(line int, format string, args ...any) Problem {
	return Problem{File: a.f.Name, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// knownPerson reports whether id is a person in the file or the registry.
func (a *applier) knownPerson(id string) bool {
	_, inFile := a.f.people[id]
	_, inStore := a.people[id]
	return inFile || inStore
}

// inactivePerson reports whether id is inactive, going by the file first
// since the apply is about to write it.
func (a *applier) inactivePerson(id string) bool {
	for _, p := range a.f.Doc.People {
		if p.ID == id {
			return p.Status == PersonInactive
		}
	}
	p, ok := a.people[id]
	return ok && p.Status == PersonInactive
}

func (a *applier) checkPeople(id Identity, lines *identityLines) []Problem {
	var out []Problem
	unknown := func(line int, role, person string) {
		out = append(out, a.problem(line, "identity %s: %s %s is not a person in this file or the registry; add them under people:", id.ID, role, person))
	}
	if id.Owner != "" && !a.knownPerson(id.Owner) {
		unknown(lineOr(lines.owner, lines.at), "owner", id.Owner)
	} else if id.Owner != "" && id.State == StateActive && a.inactivePerson(id.Owner) {
		a.res.Warnings = append(a.res.Warnings, a.problem(lineOr(lines.owner, lines.at),
			"identity %s: owner %s is inactive; admission denies it owner_inactive until a new owner is assigned and certifies it", id.ID, id.Owner))
	}
	for _, h := range id.Holders {
		if !a.knownPerson(h) {
			unknown(lineOr(lines.holders[h], lines.at), "holder", h)
		}
	}
	if c := id.Certification; c != nil && !a.knownPerson(c.By) {
		unknown(lineOr(lines.certification, lines.at), "certifier", c.By)
	}
	return out
}

func lineOr(line, fallback int) int {
	if line > 0 {
		return line
	}
	return fallback
}

// newCertification returns the file's certification of id when it differs
// from the latest one in the registry and is not older than it (unless
// forced over a conflict), nil when there is nothing to add.
func (a *applier) newCertification(id Identity) *Certification {
	c := id.Certification
	if c == nil {
		return nil
	}
	if conflict := a.conflicts[id.ID]; conflict != nil {
		if conflict.Forced {
			return c
		}
		return nil
	}
	if stored, ok := a.identities[id.ID]; ok && stored.Certification != nil && sameCertification(*stored.Certification, *c) {
		return nil
	}
	if a.olderSameDecision(id) {
		return nil
	}
	return c
}

func sameCertification(x, y Certification) bool {
	return x.Decision == y.Decision && x.By == y.By && x.Note == y.Note &&
		canonicalTime(x.At).Equal(canonicalTime(y.At)) && canonicalTime(x.Until).Equal(canonicalTime(y.Until))
}

func (a *applier) checkCertification(id Identity, c Certification, lines *identityLines) []Problem {
	line := lineOr(lines.certification, lines.at)
	if c.Decision != DecisionCertify {
		return nil
	}
	if max := a.r.maxCertification(); c.Until.Sub(c.At) > max {
		return []Problem{a.problem(line, "identity %s: certification from %s until %s lasts %s, longer than the maximum of %s (certification.max_period); move until earlier",
			id.ID, formatTime(c.At), formatTime(c.Until), formatPeriod(c.Until.Sub(c.At)), formatPeriod(max))}
	}
	if id.Owner != "" && c.By != id.Owner {
		a.res.Warnings = append(a.res.Warnings, a.problem(line, "identity %s: certified by %s, who is not its owner %s; admission will deny it not_certified until the owner certifies", id.ID, c.By, id.Owner))
	}
	return nil
}

func (a *applier) checkTargets(id Identity, lines *identityLines) {
	seen := map[string]bool{}
	for _, e := range id.Entitlements {
		if _, ok := a.r.target(e.Target); ok || seen[e.Target] {
			continue
		}
		seen[e.Target] = true
		a.res.Warnings = append(a.res.Warnings, a.problem(lineOr(lines.targets[e.Target], lines.at),
			"identity %s: target %s is not in the config's targets; the entitlement is kept but admits nothing until the target is added", id.ID, e.Target))
	}
}

// formatPeriod writes a duration in whole days when it is one, as the
// config's max_period is written (90d), else as formatDuration does.
func formatPeriod(d time.Duration) string {
	const dayLen = 24 * time.Hour
	if d%dayLen == 0 && d != 0 {
		return fmt.Sprintf("%dd", d/dayLen)
	}
	return formatDuration(d)
}

// formatDuration writes a duration without the zero units Go adds
// (1h, 1h30m, 45m rather than 1h0m0s).
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// write upserts people, identities and certifications, then prunes.
func (a *applier) write(ctx context.Context) error {
	for _, p := range a.f.Doc.People {
		if err := a.writePerson(ctx, p); err != nil {
			return err
		}
	}
	for _, id := range a.f.Doc.Identities {
		if err := a.writeIdentity(ctx, id); err != nil {
			return err
		}
	}
	if a.opts.Prune {
		return a.prune(ctx)
	}
	return nil
}

func (a *applier) writePerson(ctx context.Context, p Person) error {
	stored, exists := a.people[p.ID]
	var detail string
	switch {
	case !exists:
		detail = fmt.Sprintf("person %s created (status %s)", p.ID, p.Status)
		a.res.PeopleCreated = append(a.res.PeopleCreated, p.ID)
	case reflect.DeepEqual(canonicalPerson(stored), canonicalPerson(p)):
		return nil
	default:
		detail = fmt.Sprintf("person %s updated: %s", p.ID, strings.Join(diffPerson(stored, p), ", "))
		a.res.PeopleUpdated = append(a.res.PeopleUpdated, p.ID)
	}
	if err := a.tx.PutPerson(ctx, p); err != nil {
		return fmt.Errorf("write person %s: %w", p.ID, err)
	}
	a.people[p.ID] = p
	return a.audit(ctx, "", detail)
}

func diffPerson(old, p Person) []string {
	var out []string
	if old.Name != p.Name {
		out = append(out, "name")
	}
	if !slices.Equal(sortedStrings(old.Roles), sortedStrings(p.Roles)) {
		out = append(out, fmt.Sprintf("roles [%s]→[%s]", strings.Join(old.Roles, " "), strings.Join(p.Roles, " ")))
	}
	if old.Status != p.Status {
		out = append(out, fmt.Sprintf("status %s→%s", old.Status, p.Status))
	}
	return out
}

func (a *applier) writeIdentity(ctx context.Context, id Identity) error {
	id = a.resolve(id)
	stored, exists := a.identities[id.ID]
	changes := diffIdentity(stored, id)
	cert := a.newCertification(id)
	switch {
	case !exists:
		a.res.Created = append(a.res.Created, id.ID)
		changes = []string{fmt.Sprintf("created: kind %s, state %s, owner %s", id.Kind, id.State, orNone(id.Owner))}
	case len(changes) > 0 || cert != nil:
		a.res.Updated = append(a.res.Updated, id.ID)
	default:
		a.res.Unchanged = append(a.res.Unchanged, id.ID)
		return nil
	}
	if len(changes) > 0 {
		if err := a.tx.PutIdentity(ctx, id); err != nil {
			return fmt.Errorf("write identity %s: %w", id.ID, err)
		}
	}
	if cert != nil {
		if err := a.tx.AddCertification(ctx, id.ID, *cert); err != nil {
			return fmt.Errorf("add certification of %s: %w", id.ID, err)
		}
		a.res.Certified = append(a.res.Certified, id.ID)
		changes = append(changes, certificationDetail(*cert))
	}
	if err := a.audit(ctx, id.ID, strings.Join(changes, "; ")); err != nil {
		return err
	}
	if c := a.conflicts[id.ID]; c != nil && c.Forced {
		return a.auditForced(ctx, c)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func certificationDetail(c Certification) string {
	detail := fmt.Sprintf("certification added: %s by %s at %s", c.Decision, c.By, formatTime(c.At))
	if c.Decision == DecisionCertify {
		detail += " until " + formatTime(c.Until)
	}
	return detail
}

// diffIdentity names the fields of the file's identity that differ from the
// stored one; certification and LastUsed are not the file's to compare here.
func diffIdentity(old, id Identity) []string {
	old, id = canonicalIdentity(old), canonicalIdentity(id)
	var out []string
	for _, f := range []struct {
		name     string
		old, new string
	}{
		{"kind", string(old.Kind), string(id.Kind)},
		{"state", string(old.State), string(id.State)},
		{"owner", orNone(old.Owner), orNone(id.Owner)},
		{"environment", orNone(old.Environment), orNone(id.Environment)},
	} {
		if f.old != f.new {
			out = append(out, fmt.Sprintf("%s %s→%s", f.name, f.old, f.new))
		}
	}
	if !slices.Equal(old.Holders, id.Holders) {
		out = append(out, "holders")
	}
	if !reflect.DeepEqual(old.Credentials, id.Credentials) {
		out = append(out, "credentials")
	}
	if !reflect.DeepEqual(old.Entitlements, id.Entitlements) {
		out = append(out, "entitlements")
	}
	return out
}

// prune deprovisions every identity of the registry the file leaves out.
func (a *applier) prune(ctx context.Context) error {
	inFile := make(map[string]bool, len(a.f.Doc.Identities))
	for _, id := range a.f.Doc.Identities {
		inFile[id.ID] = true
	}
	for _, id := range sortedIdentities(a.identities) {
		if inFile[id.ID] || id.State == StateDeprovisioned {
			continue
		}
		detail := fmt.Sprintf("state %s→%s: not in %s (prune)", id.State, StateDeprovisioned, a.f.Name)
		id.State = StateDeprovisioned
		if err := a.tx.PutIdentity(ctx, id); err != nil {
			return fmt.Errorf("deprovision identity %s: %w", id.ID, err)
		}
		if err := a.audit(ctx, id.ID, detail); err != nil {
			return err
		}
		a.res.Deprovisioned = append(a.res.Deprovisioned, id.ID)
	}
	return nil
}

func sortedIdentities(m map[string]Identity) []Identity {
	out := make([]Identity, 0, len(m))
	for _, id := range m {
		out = append(out, id)
	}
	slices.SortFunc(out, func(x, y Identity) int { return strings.Compare(x.ID, y.ID) })
	return out
}

func (a *applier) audit(ctx context.Context, identity, detail string) error {
	e := AuditEvent{Time: a.now, Type: "apply", Actor: orSystem(a.opts.Actor), Identity: identity, Detail: detail}
	if err := a.tx.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// result returns what was done, every list sorted.
func (a *applier) result() ApplyResult {
	res := a.res
	for _, l := range []*[]string{&res.Created, &res.Updated, &res.Unchanged, &res.Certified, &res.Deprovisioned, &res.PeopleCreated, &res.PeopleUpdated} {
		slices.Sort(*l)
	}
	return res
}
