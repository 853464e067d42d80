package iga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file is the registry side of SCIM 2.0 provisioning (package scim
// speaks the protocol): the identity provider creates, changes,
// deactivates and deletes people, each change in one transaction with an
// audit event carrying the SCIM request id. A person the IdP has changed
// once is SCIM-managed, and iga apply refuses to change them.

// ErrConflict marks a SCIM change that clashes with what exists: a user or
// group that is already there.
var ErrConflict = errors.New("conflict")

// ErrInvalid marks a SCIM change the registry cannot take: a userName that
// is not an e-mail, a group member who is not a user.
var ErrInvalid = errors.New("invalid")

// scimActor is the audit actor of every SCIM change.
const scimActor = "scim"

// AlertOwnerInactive is the alert kind raised for each identity whose
// owner the identity provider deactivated or deleted.
const AlertOwnerInactive = "owner_inactive"

// SCIMEmail is one e-mail address of a SCIM user.
type SCIMEmail struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// SCIMUser is a person as the SCIM service provider shows them: the
// registry person (UserName is their id) with what the identity provider
// keeps about them.
type SCIMUser struct {
	UserName    string // the person id, an e-mail address
	ExternalID  string
	GivenName   string
	FamilyName  string
	DisplayName string
	Emails      []SCIMEmail
	Manager     string // the manager's person id; empty: none
	Active      bool
	Roles       []string // read-only here: groups set them
	// Managed is false for a registry person the IdP never changed.
	Managed  bool
	Created  time.Time // when the IdP first changed them
	Modified time.Time
	Version  int
	// Deleted is when the IdP deleted them; zero while they exist. Only
	// the store sees deleted users.
	Deleted time.Time

	fresh bool // not in the registry before this change
}

// SCIMGroup is a group the identity provider pushes. Members are user
// names; a group whose display name the config maps to a role gives that
// role to its members.
type SCIMGroup struct {
	ID          string
	DisplayName string
	ExternalID  string
	Members     []string
	Created     time.Time
	Modified    time.Time
	Version     int
}

// SCIMReader is the optional part of a Store (and its Tx) that reads what
// SCIM keeps; package sqlstore implements it.
type SCIMReader interface {
	// SCIMUsers returns the SCIM records of people, deleted ones included,
	// sorted by user name. Person fields (Active, Roles) are not filled.
	SCIMUsers(ctx context.Context) ([]SCIMUser, error)
	// SCIMGroups returns every group, sorted by id.
	SCIMGroups(ctx context.Context) ([]SCIMGroup, error)
	TransferReader
}

// SCIMWriter is the optional part of a Tx that writes what SCIM keeps.
type SCIMWriter interface {
	SCIMReader
	TransferWriter
	// PutSCIMUser inserts or replaces the SCIM record of a person.
	PutSCIMUser(ctx context.Context, u SCIMUser) error
	// PutSCIMGroup inserts or replaces a group.
	PutSCIMGroup(ctx context.Context, g SCIMGroup) error
	// DeleteSCIMGroup removes a group.
	DeleteSCIMGroup(ctx context.Context, id string) error
}

// SCIM applies what the identity provider sends to the registry.
type SCIM struct {
	// Registry is the registry changed. Its Store must implement
	// SCIMReader, and its Tx SCIMWriter (sqlstore's do). Required.
	Registry *Registry
	// GroupRoles maps a group display name to the role (owner, auditor,
	// admin) its members get. Nil: groups give no roles.
	GroupRoles map[string]string
	// Alert receives an owner_inactive alert for each identity a leaver
	// owned. It must not block. Nil: alerts are only logged (at WARN).
	Alert func(Alert)
}

// scimTx runs fn in one registry transaction with the SCIM writer.
func (s *SCIM) scimTx(ctx context.Context, fn func(Tx, SCIMWriter) error) error {
	return s.Registry.Store.Update(ctx, func(tx Tx) error {
		w, ok := tx.(SCIMWriter)
		if !ok {
			return errors.New("the registry store does not keep SCIM data")
		}
		return fn(tx, w)
	})
}

// reader is the registry's store read outside a transaction: IdPs read
// often, and a read should not queue behind writers.
func (s *SCIM) reader() (SCIMReader, error) {
	sr, ok := s.Registry.Store.(SCIMReader)
	if !ok {
		return nil, errors.New("the registry store does not keep SCIM data")
	}
	return sr, nil
}

// Users returns every person as a SCIM user, sorted by user name; people
// the IdP deleted are left out.
func (s *SCIM) Users(ctx context.Context) ([]SCIMUser, error) {
	sr, err := s.reader()
	if err != nil {
		return nil, err
	}
	out, err := scimUsers(ctx, s.Registry.Store, sr)
	if err != nil {
		return nil, fmt.Errorf("list scim users: %w", err)
	}
	return out, nil
}

func scimUsers(ctx context.Context, rd Reader, sr SCIMReader) ([]SCIMUser, error) {
	people, err := rd.People(ctx)
	if err != nil {
		return nil, fmt.Errorf("read people: %w", err)
	}
	records, err := scimRecords(ctx, sr)
	if err != nil {
		return nil, err
	}
	var out []SCIMUser
	for _, p := range people {
		if u := userOf(p, records[p.ID]); u.Deleted.IsZero() {
			out = append(out, u)
		}
	}
	return out, nil
}

func scimRecords(ctx context.Context, sr SCIMReader) (map[string]SCIMUser, error) {
	users, err := sr.SCIMUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read scim users: %w", err)
	}
	m := make(map[string]SCIMUser, len(users))
	for _, u := range users {
		m[u.UserName] = u
	}
	return m, nil
}

// userOf merges a person with their SCIM record (zero when none).
func userOf(p Person, rec SCIMUser) SCIMUser {
	u := rec
	u.UserName, u.Active, u.Roles = p.ID, p.Status == PersonActive, p.Roles
	u.Managed = !rec.Created.IsZero()
	if !u.Managed {
		u.DisplayName = p.Name
		u.Emails = []SCIMEmail{{Value: p.ID, Type: "work", Primary: true}}
	}
	return u
}

// User returns one SCIM user by user name (case-insensitive), or an error
// matching ErrNotFound.
func (s *SCIM) User(ctx context.Context, userName string) (SCIMUser, error) {
	sr, err := s.reader()
	if err != nil {
		return SCIMUser{}, err
	}
	return loadUser(ctx, s.Registry.Store, sr, userName)
}

// loadUser reads a live user, ErrNotFound when there is none.
func loadUser(ctx context.Context, rd Reader, sr SCIMReader, userName string) (SCIMUser, error) {
	users, err := scimUsers(ctx, rd, sr)
	if err != nil {
		return SCIMUser{}, err
	}
	for _, u := range users {
		if strings.EqualFold(u.UserName, userName) {
			return u, nil
		}
	}
	return SCIMUser{}, notFoundf("no user %s", userName)
}

// UserChange is one SCIM write of a user.
type UserChange struct {
	// UserName names the user changed; for Create, the one asked for.
	UserName string
	// Create adds the user: a person already in the registry that the IdP
	// does not manage (or deleted) is adopted; a managed one is ErrConflict.
	Create bool
	// RequestID is the SCIM request id, recorded in the audit trail.
	RequestID string
	// Apply changes the user in place; an error aborts the change.
	Apply func(*SCIMUser) error
}

// ChangeUser reads the user, lets c.Apply change it and writes the result
// in one transaction: person, SCIM record, audit event, and for a leaver
// the transfer items. Nothing is written when Apply fails or the result is
// invalid. The alerts of a leaver go out after the commit.
func (s *SCIM) ChangeUser(ctx context.Context, c UserChange) (SCIMUser, error) {
	var out SCIMUser
	var alerts []Alert
	err := s.scimTx(ctx, func(tx Tx, w SCIMWriter) error {
		cur, err := s.startUser(ctx, tx, w, c)
		if err != nil {
			return err
		}
		next := cur
		next.Emails = slices.Clone(cur.Emails)
		if err := c.Apply(&next); err != nil {
			return err
		}
		if err := checkUser(cur, next, c.Create); err != nil {
			return err
		}
		out, alerts, err = s.writeUser(ctx, tx, w, cur, next, c.RequestID)
		return err
	})
	if err != nil {
		return SCIMUser{}, fmt.Errorf("scim change of user %s: %w", c.UserName, err)
	}
	s.send(alerts)
	return out, nil
}

// startUser returns the user a change starts from.
func (s *SCIM) startUser(ctx context.Context, tx Tx, w SCIMWriter, c UserChange) (SCIMUser, error) {
	cur, err := loadUser(ctx, tx, w, c.UserName)
	switch {
	case err == nil && c.Create && cur.Managed:
		return SCIMUser{}, &govError{msg: fmt.Sprintf("user %s already exists", cur.UserName), kind: ErrConflict}
	case err == nil:
		return cur, nil
	case !errors.Is(err, ErrNotFound) || !c.Create:
		return SCIMUser{}, err
	}
	p, err := tx.Person(ctx, c.UserName)
	if errors.Is(err, ErrNotFound) {
		return SCIMUser{UserName: c.UserName, Active: true, fresh: true}, nil
	}
	if err != nil {
		return SCIMUser{}, fmt.Errorf("read person: %w", err)
	}
	u := userOf(p, SCIMUser{}) // a rejoiner the IdP deleted: adopted afresh
	u.Active = true
	return u, nil
}

// checkUser refuses a result the registry cannot hold.
func checkUser(cur, next SCIMUser, create bool) error {
	switch {
	case !create && !strings.EqualFold(next.UserName, cur.UserName):
		return invalidf("userName is the person's registry id (%s) and cannot change; create a new user instead", cur.UserName)
	case !isEmail(next.UserName):
		return invalidf("userName %q is not an e-mail address; people are keyed by e-mail", next.UserName)
	case next.Manager != "" && !isEmail(next.Manager):
		return invalidf("manager %q is not a user id (an e-mail address)", next.Manager)
	}
	for _, e := range next.Emails {
		if !isEmail(e.Value) {
			return invalidf("emails: %q is not an e-mail address", e.Value)
		}
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return &govError{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// isEmail reports whether s has the shape of a person id: local@domain,
// no spaces or control characters, at most 254 bytes (RFC 5321's
// longest path). Registry files and SCIM both key people by it.
func isEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") && !hasSpaceOrControl(s) && len(s) <= 254
}

// writeUser stores next over cur and does what a change of status means.
func (s *SCIM) writeUser(ctx context.Context, tx Tx, w SCIMWriter, cur, next SCIMUser, reqID string) (SCIMUser, []Alert, error) {
	if cur.Managed && sameUser(cur, next) {
		return cur, nil, nil // the IdP sent what we have: nothing to write or audit
	}
	now := s.Registry.now().Truncate(time.Second)
	p, err := s.putUser(ctx, tx, w, cur, &next, now)
	if err != nil {
		return SCIMUser{}, nil, err
	}
	if err := s.audit(ctx, tx, now, reqID, userDetail(cur, next)); err != nil {
		return SCIMUser{}, nil, err
	}
	var alerts []Alert
	switch {
	case cur.Active && !next.Active:
		alerts, err = s.leave(ctx, tx, p, reqID, now)
	case !cur.Active && next.Active && cur.Managed:
		err = s.rejoin(ctx, tx, w, p.ID, reqID, now)
	}
	return next, alerts, err
}

// putUser writes the person and the SCIM record of next in one write each.
// next.Deleted is zero but for DeleteUser: cur is always a live user (or a
// deleted one adopted afresh, its record zero).
func (s *SCIM) putUser(ctx context.Context, tx Tx, w SCIMWriter, cur SCIMUser, next *SCIMUser, now time.Time) (Person, error) {
	p := Person{ID: cur.UserName, Name: personName(*next, cur), Roles: next.Roles, Status: PersonInactive}
	if p.ID == "" {
		p.ID = next.UserName
	}
	if next.Active {
		p.Status = PersonActive
	}
	if err := tx.PutPerson(ctx, p); err != nil {
		return Person{}, err
	}
	next.UserName, next.Managed, next.Modified, next.Version = p.ID, true, now, cur.Version+1
	next.fresh = false
	if next.Created.IsZero() {
		next.Created = now
	}
	if err := w.PutSCIMUser(ctx, *next); err != nil {
		return Person{}, err
	}
	p.Manager = next.Manager
	return p, nil
}

// personName is the registry name of a user: a displayName the IdP
// changed, else given and family names, else its displayName, else what
// the registry had.
func personName(u, cur SCIMUser) string {
	display := strings.TrimSpace(u.DisplayName)
	if display != "" && display != cur.DisplayName {
		return display
	}
	if n := strings.TrimSpace(u.GivenName + " " + u.FamilyName); n != "" {
		return n
	}
	if display != "" {
		return display
	}
	return cur.DisplayName
}

func sameUser(a, b SCIMUser) bool {
	a.Modified, b.Modified = time.Time{}, time.Time{}
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.GivenName == b.GivenName &&
		a.FamilyName == b.FamilyName && a.DisplayName == b.DisplayName && slices.Equal(a.Emails, b.Emails) &&
		a.Manager == b.Manager && a.Active == b.Active && slices.Equal(a.Roles, b.Roles)
}

func userDetail(cur, next SCIMUser) string {
	var what []string
	switch {
	case cur.fresh:
		what = append(what, "created")
	case !cur.Managed:
		what = append(what, "now managed by the identity provider")
	}
	if cur.Active != next.Active {
		what = append(what, fmt.Sprintf("active %t→%t", cur.Active, next.Active))
	}
	if !slices.Equal(cur.Roles, next.Roles) {
		what = append(what, fmt.Sprintf("roles [%s]→[%s]", strings.Join(cur.Roles, ","), strings.Join(next.Roles, ",")))
	}
	if cur.Manager != next.Manager {
		what = append(what, fmt.Sprintf("manager %s→%s", orNone(cur.Manager), orNone(next.Manager)))
	}
	if len(what) == 0 {
		what = append(what, "attributes updated")
	}
	return "user " + next.UserName + " " + strings.Join(what, "; ")
}

// DeleteUser deletes a user as the IdP asks: the person stays in the
// registry, inactive, with everything a leaver's deactivation does.
func (s *SCIM) DeleteUser(ctx context.Context, userName, reqID string) error {
	var alerts []Alert
	err := s.scimTx(ctx, func(tx Tx, w SCIMWriter) error {
		cur, err := loadUser(ctx, tx, w, userName)
		if err != nil {
			return err
		}
		now := s.Registry.now().Truncate(time.Second)
		next := cur
		next.Active, next.Deleted = false, now
		p, err := s.putUser(ctx, tx, w, cur, &next, now)
		if err != nil {
			return err
		}
		if err := dropMember(ctx, w, cur.UserName, now); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, now, reqID, "user "+cur.UserName+" deleted; person kept inactive, out of every group"); err != nil {
			return err
		}
		if cur.Active {
			alerts, err = s.leave(ctx, tx, p, reqID, now)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("scim delete of user %s: %w", userName, err)
	}
	s.send(alerts)
	return nil
}

// audit appends one SCIM audit event; its detail starts with the request id.
func (s *SCIM) audit(ctx context.Context, tx Tx, now time.Time, reqID, detail string) error {
	return appendAudit(ctx, tx, AuditEvent{Time: now, Type: "scim", Actor: scimActor,
		Detail: "scim request " + reqID + ": " + detail})
}

// send hands alerts to Alert, or logs them when there is none.
func (s *SCIM) send(alerts []Alert) { s.Registry.sendAlerts(s.Alert, alerts) }

// SCIMManaged returns the ids of the people the IdP manages, deleted ones
// included; empty when the store keeps no SCIM data.
func SCIMManaged(ctx context.Context, rd Reader) (map[string]SCIMUser, error) {
	sr, ok := rd.(SCIMReader)
	if !ok {
		return nil, nil
	}
	return scimRecords(ctx, sr)
}

// markManaged fills ManagedBy and Manager of the people the IdP manages.
func markManaged(ctx context.Context, rd Reader, people []Person) error {
	managed, err := SCIMManaged(ctx, rd)
	if err != nil {
		return err
	}
	for i, p := range people {
		if rec, ok := managed[p.ID]; ok {
			people[i].ManagedBy, people[i].Manager = ManagedBySCIM, rec.Manager
		}
	}
	return nil
}

// managedComment is the export's note on a SCIM-managed person: a YAML
// comment, so applying the export back changes nothing.
func managedComment(p Person) string {
	c := "managed by the identity provider (SCIM); iga apply refuses changes to this person"
	if p.Manager != "" {
		c += "; manager " + p.Manager
	}
	return c
}

// checkManaged refuses a file that would change a person the IdP manages.
func (a *applier) checkManaged(managed map[string]SCIMUser) []Problem {
	var out []Problem
	for _, p := range a.f.Doc.People {
		if _, ok := managed[p.ID]; !ok {
			continue
		}
		if stored, ok := a.people[p.ID]; ok && sameFilePerson(stored, p) {
			continue
		}
		out = append(out, a.problem(a.f.people[p.ID],
			"person %s is managed by the identity provider over SCIM; change them there (or leave them out of this file)", p.ID))
	}
	return out
}

func sameFilePerson(stored, p Person) bool {
	stored, p = canonicalPerson(stored), canonicalPerson(p)
	return stored.Name == p.Name && stored.Status == p.Status && slices.Equal(stored.Roles, p.Roles)
}

// dropMember takes a deleted user out of every group, as a deleted
// resource is no group's member (RFC 7644 §3.6); their roles stay, moot
// for an inactive person.
func dropMember(ctx context.Context, w SCIMWriter, userName string, now time.Time) error {
	groups, err := w.SCIMGroups(ctx)
	if err != nil {
		return fmt.Errorf("read groups: %w", err)
	}
	for _, g := range groups {
		n := len(g.Members)
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return strings.EqualFold(m, userName) })
		if len(g.Members) == n {
			continue
		}
		g.Modified, g.Version = now, g.Version+1
		if err := w.PutSCIMGroup(ctx, g); err != nil {
			return err
		}
	}
	return nil
}
