package iga

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Groups returns every SCIM group, sorted by id.
func (s *SCIM) Groups(ctx context.Context) ([]SCIMGroup, error) {
	sr, err := s.reader()
	if err != nil {
		return nil, err
	}
	out, err := sr.SCIMGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list scim groups: %w", err)
	}
	return out, nil
}

// Group returns one group by id, or an error matching ErrNotFound.
func (s *SCIM) Group(ctx context.Context, id string) (SCIMGroup, error) {
	groups, err := s.Groups(ctx)
	if err != nil {
		return SCIMGroup{}, err
	}
	if i := slices.IndexFunc(groups, func(g SCIMGroup) bool { return g.ID == id }); i >= 0 {
		return groups[i], nil
	}
	return SCIMGroup{}, notFoundf("no group %s", id)
}

// GroupChange is one SCIM write of a group.
type GroupChange struct {
	// ID names the group changed; empty creates one.
	ID string
	// RequestID is the SCIM request id, recorded in the audit trail.
	RequestID string
	// Apply changes the group in place; an error aborts the change.
	Apply func(*SCIMGroup) error
}

// ChangeGroup reads the group, lets c.Apply change it and writes it in one
// transaction with the roles its members gain or lose (GroupRoles) and an
// audit event. A member who is not a user is ErrInvalid, a display name
// another group has ErrConflict; then nothing is written.
func (s *SCIM) ChangeGroup(ctx context.Context, c GroupChange) (SCIMGroup, error) {
	var out SCIMGroup
	err := s.scimTx(ctx, func(tx Tx, w SCIMWriter) error {
		groups, err := w.SCIMGroups(ctx)
		if err != nil {
			return fmt.Errorf("read groups: %w", err)
		}
		cur, err := startGroup(groups, c.ID)
		if err != nil {
			return err
		}
		next := cur
		next.Members = slices.Clone(cur.Members)
		if err := c.Apply(&next); err != nil {
			return err
		}
		out, err = s.writeGroup(ctx, tx, w, groups, cur, next, c.RequestID)
		return err
	})
	if err != nil {
		return SCIMGroup{}, fmt.Errorf("scim change of group %s: %w", orNone(c.ID), err)
	}
	return out, nil
}

func startGroup(groups []SCIMGroup, id string) (SCIMGroup, error) {
	if id == "" {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return SCIMGroup{}, fmt.Errorf("make group id: %w", err)
		}
		return SCIMGroup{ID: "g-" + hex.EncodeToString(b)}, nil
	}
	if i := slices.IndexFunc(groups, func(g SCIMGroup) bool { return g.ID == id }); i >= 0 {
		return groups[i], nil
	}
	return SCIMGroup{}, notFoundf("no group %s", id)
}

// writeGroup checks next, stores it and moves its members' roles.
func (s *SCIM) writeGroup(ctx context.Context, tx Tx, w SCIMWriter, groups []SCIMGroup, cur, next SCIMGroup, reqID string) (SCIMGroup, error) {
	next.Members = dedupeFold(next.Members)
	if err := checkGroup(groups, next); err != nil {
		return SCIMGroup{}, err
	}
	if cur.Version > 0 && sameGroup(cur, next) {
		return cur, nil
	}
	now := s.Registry.now().Truncate(time.Second)
	next.Modified, next.Version = now, cur.Version+1
	if next.Created.IsZero() {
		next.Created = now
	}
	if err := w.PutSCIMGroup(ctx, next); err != nil {
		return SCIMGroup{}, err
	}
	after := replaceGroup(groups, next)
	if err := s.moveRoles(ctx, tx, w, groups, after, reqID, now); err != nil {
		return SCIMGroup{}, err
	}
	return next, s.audit(ctx, tx, now, reqID, groupDetail(cur, next))
}

func checkGroup(groups []SCIMGroup, g SCIMGroup) error {
	if strings.TrimSpace(g.DisplayName) == "" {
		return invalidf("displayName is required")
	}
	for _, o := range groups {
		if o.ID != g.ID && strings.EqualFold(o.DisplayName, g.DisplayName) {
			return &govError{msg: fmt.Sprintf("group %q already exists", g.DisplayName), kind: ErrConflict}
		}
	}
	return nil
}

func sameGroup(a, b SCIMGroup) bool {
	return a.DisplayName == b.DisplayName && a.ExternalID == b.ExternalID && slices.Equal(a.Members, b.Members)
}

// dedupeFold sorts user names and drops duplicates, case-insensitively.
func dedupeFold(names []string) []string {
	out := slices.Clone(names)
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return slices.CompactFunc(out, strings.EqualFold)
}

func replaceGroup(groups []SCIMGroup, g SCIMGroup) []SCIMGroup {
	out := slices.DeleteFunc(slices.Clone(groups), func(o SCIMGroup) bool { return o.ID == g.ID })
	if g.ID != "" {
		out = append(out, g)
	}
	return out
}

func groupDetail(cur, next SCIMGroup) string {
	if next.ID == "" {
		return fmt.Sprintf("group %s (%s) deleted", cur.ID, cur.DisplayName)
	}
	added, removed := diffMembers(cur.Members, next.Members)
	return fmt.Sprintf("group %s (%s) version %d; members added: %s; removed: %s", next.ID, next.DisplayName,
		next.Version, orNone(strings.Join(added, ", ")), orNone(strings.Join(removed, ", ")))
}

func diffMembers(before, after []string) (added, removed []string) {
	for _, m := range after {
		if !slices.ContainsFunc(before, func(b string) bool { return strings.EqualFold(b, m) }) {
			added = append(added, m)
		}
	}
	for _, m := range before {
		if !slices.ContainsFunc(after, func(a string) bool { return strings.EqualFold(a, m) }) {
			removed = append(removed, m)
		}
	}
	return added, removed
}

// DeleteGroup removes a group; its members lose the role it gave them.
func (s *SCIM) DeleteGroup(ctx context.Context, id, reqID string) error {
	err := s.scimTx(ctx, func(tx Tx, w SCIMWriter) error {
		groups, err := w.SCIMGroups(ctx)
		if err != nil {
			return fmt.Errorf("read groups: %w", err)
		}
		cur, err := startGroup(groups, id)
		if err != nil || id == "" {
			return errors.Join(err, notFoundf("no group %q", id))
		}
		if err := w.DeleteSCIMGroup(ctx, id); err != nil {
			return err
		}
		now := s.Registry.now().Truncate(time.Second)
		if err := s.moveRoles(ctx, tx, w, groups, replaceGroup(groups, SCIMGroup{ID: id}), reqID, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, reqID, groupDetail(cur, SCIMGroup{}))
	})
	if err != nil {
		return fmt.Errorf("scim delete of group %s: %w", id, err)
	}
	return nil
}

// moveRoles gives and takes the mapped roles of every user whose groups
// changed between before and after. A role not given by a group (from the
// registry file) stays unless a group that gave it no longer does.
func (s *SCIM) moveRoles(ctx context.Context, tx Tx, w SCIMWriter, before, after []SCIMGroup, reqID string, now time.Time) error {
	users, err := scimUsers(ctx, tx, w)
	if err != nil {
		return err
	}
	known := map[string]SCIMUser{}
	for _, u := range users {
		known[strings.ToLower(u.UserName)] = u
	}
	was := membersOf(before)
	for _, name := range membersOf(after) {
		if _, ok := known[name]; !ok && !slices.Contains(was, name) {
			return invalidf("member %s is not a user; create the user first", name)
		}
	}
	for _, name := range membersOf(append(slices.Clone(before), after...)) {
		u, ok := known[name]
		if !ok {
			continue // a member that left the registry: nothing to move
		}
		if err := s.moveUserRoles(ctx, tx, w, u, s.rolesVia(before, name), s.rolesVia(after, name), reqID, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *SCIM) moveUserRoles(ctx context.Context, tx Tx, w SCIMWriter, u SCIMUser, was, is []string, reqID string, now time.Time) error {
	roles := slices.DeleteFunc(slices.Clone(u.Roles), func(r string) bool {
		return slices.Contains(was, r) && !slices.Contains(is, r)
	})
	for _, r := range is {
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	slices.Sort(roles)
	if slices.Equal(roles, sortedStrings(u.Roles)) {
		return nil
	}
	next := u
	next.Roles = roles
	if _, err := s.putUser(ctx, tx, w, u, &next, now); err != nil {
		return err
	}
	return s.audit(ctx, tx, now, reqID, userDetail(u, next))
}

// membersOf returns the lower-cased members of groups, sorted, once each.
func membersOf(groups []SCIMGroup) []string {
	var out []string
	for _, g := range groups {
		for _, m := range g.Members {
			out = append(out, strings.ToLower(m))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rolesVia returns the roles the mapped groups among groups give name.
func (s *SCIM) rolesVia(groups []SCIMGroup, name string) []string {
	var out []string
	for _, g := range groups {
		role, ok := s.groupRole(g.DisplayName)
		if ok && slices.ContainsFunc(g.Members, func(m string) bool { return strings.EqualFold(m, name) }) && !slices.Contains(out, role) {
			out = append(out, role)
		}
	}
	return out
}

func (s *SCIM) groupRole(displayName string) (string, bool) {
	for name, role := range s.GroupRoles {
		if strings.EqualFold(name, displayName) {
			return role, true
		}
	}
	return "", false
}
