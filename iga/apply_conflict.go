package iga

import (
	"context"
	"fmt"
)

// applyForceEventType is the audit type of an apply that overrode a later
// registry decision with --force: one event per identity overridden.
const applyForceEventType = "apply_force"

// Conflict is a registry file's decision about an identity that is older
// than the registry's latest decision about it and would undo that one:
//
//   - the registry revoked the identity (iga revoke, a campaign or an earlier
//     file) after the file's certification, or the file has none, and the
//     file would certify it again or set it active or proposed;
//   - the registry certified it after the file's revoke, and the file would
//     revoke it again.
//
// A file that carries the registry's latest decision (an export does) or a
// decision dated after it never conflicts. Without ApplyOptions.Force the
// registry's decision and the state it set are kept.
type Conflict struct {
	// Identity is the identity both decisions are about.
	Identity string
	// Registry is the registry's latest decision, the later one.
	Registry Certification
	// File is the file's decision; nil when the file has none.
	File *Certification
	// State and FileState are the identity's state in the registry and in
	// the file.
	State, FileState State
	// Forced is true when ApplyOptions.Force applied the file anyway.
	Forced bool
	// Where is the file and line of the identity's certification (or of
	// the identity when it has none), as "file:line"; the file alone when
	// the line is unknown.
	Where string
}

// String says what conflicts, with both dates, and what to do about it.
func (c Conflict) String() string {
	if c.Forced {
		return fmt.Sprintf("%s: identity %s: --force applied %s over the registry's later %s%s",
			c.Where, c.Identity, c.fileDecision(), describeDecision(c.Registry), c.stateChange())
	}
	return fmt.Sprintf("%s: identity %s: the registry's %s is later than %s; kept the registry's decision%s. %s",
		c.Where, c.Identity, describeDecision(c.Registry), c.fileDecision(), c.keptState(), c.advice())
}

// fileDecision describes the file's side: its decision and date, or that
// it has none.
func (c Conflict) fileDecision() string {
	if c.File == nil {
		return fmt.Sprintf("the file's state %s (the file has no certification, so no date)", c.FileState)
	}
	return "the file's " + describeDecision(*c.File)
}

func describeDecision(d Certification) string {
	verb := "certification"
	if d.Decision == DecisionRevoke {
		verb = "revocation"
	}
	return fmt.Sprintf("%s by %s at %s", verb, d.By, formatTime(d.At))
}

// revives reports whether the file would lift the suspension or
// deprovisioning the identity's state has.
func (c Conflict) revives() bool {
	return revives(c.State, c.FileState)
}

func revives(stored, file State) bool {
	down := stored == StateSuspended || stored == StateDeprovisioned
	up := file == StateActive || file == StateProposed
	return down && up
}

func (c Conflict) keptState() string {
	if c.Registry.Decision == DecisionRevoke && c.revives() {
		return fmt.Sprintf(" and state %s (the file says %s)", c.State, c.FileState)
	}
	return ""
}

func (c Conflict) stateChange() string {
	if c.State != c.FileState {
		return fmt.Sprintf("; state %s→%s", c.State, c.FileState)
	}
	return ""
}

func (c Conflict) advice() string {
	if c.Registry.Decision == DecisionRevoke {
		return fmt.Sprintf("To keep it revoked, put the revocation in the file (`sallyport iga export` writes it); "+
			"to reinstate it, its owner certifies it after %s (`sallyport iga certify`, or a certification in the file dated later); "+
			"--force applies the file as it is", formatTime(c.Registry.At))
	}
	return "Update the file from `sallyport iga export`, or re-run with --force to apply the file's older revocation"
}

// findConflict returns the conflict between the file's identity and the
// registry's, or nil.
func (a *applier) findConflict(id Identity, lines *identityLines) *Conflict {
	stored, ok := a.identities[id.ID]
	if !ok || stored.Certification == nil {
		return nil
	}
	latest, fc := *stored.Certification, id.Certification
	if fc != nil && (sameCertification(latest, *fc) || fc.At.After(latest.At)) {
		return nil // the file knows the registry's decision, or decides after it
	}
	opposite := fc != nil && fc.Decision != latest.Decision
	revived := latest.Decision == DecisionRevoke && revives(stored.State, id.State)
	if !opposite && !revived {
		return nil
	}
	where := a.f.Name
	if line := lineOr(lines.certification, lines.at); line > 0 {
		where = fmt.Sprintf("%s:%d", a.f.Name, line)
	}
	return &Conflict{Identity: id.ID, Registry: latest, File: fc, State: stored.State, FileState: id.State,
		Forced: a.opts.Force, Where: where}
}

// olderSameDecision reports whether the file's certification is an older
// decision of the same kind as the registry's latest (a certification the
// registry renewed since, for one): it is not appended, with a warning.
func (a *applier) olderSameDecision(id Identity) bool {
	stored, ok := a.identities[id.ID]
	if !ok || stored.Certification == nil || id.Certification == nil {
		return false
	}
	latest, fc := *stored.Certification, *id.Certification
	return fc.Decision == latest.Decision && fc.At.Before(latest.At)
}

func (a *applier) warnOlder(id Identity, lines *identityLines) {
	latest := a.identities[id.ID].Certification
	a.res.Warnings = append(a.res.Warnings, a.problem(lineOr(lines.certification, lines.at),
		"identity %s: the registry's %s is later than the file's %s; kept the registry's; update the file from `sallyport iga export`",
		id.ID, describeDecision(*latest), describeDecision(*id.Certification)))
}

// resolve returns the identity to write: the file's, with the registry's
// state kept when a conflict that is not forced would revive it.
func (a *applier) resolve(id Identity) Identity {
	if c := a.conflicts[id.ID]; c != nil && !c.Forced && c.Registry.Decision == DecisionRevoke && c.revives() {
		id.State = c.State
	}
	return id
}

// auditForced records that --force overrode a later registry decision.
func (a *applier) auditForced(ctx context.Context, c *Conflict) error {
	detail := fmt.Sprintf("%s replaced the registry's later %s%s", c.fileDecision(), describeDecision(c.Registry), c.stateChange())
	e := AuditEvent{Time: a.now, Type: applyForceEventType, Actor: orSystem(a.opts.Actor), Identity: c.Identity, Detail: detail}
	if err := a.tx.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}
