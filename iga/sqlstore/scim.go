package sqlstore

import (
	"context"
	"fmt"

	"github.com/sallyport/sallyport/iga"
)

// This file keeps what the SCIM service provider knows of people and
// groups (migration 0008_scim).

var (
	_ iga.SCIMWriter = (*tx)(nil)
	_ iga.SCIMReader = (*Store)(nil)
)

const scimPeopleColumns = `person_id, external_id, given_name, family_name, display_name, emails, manager,
	managed_since, modified_at, deleted_at, version`

func scanSCIMUser(s scanner) (u iga.SCIMUser, err error) {
	err = s.Scan(&u.UserName, &u.ExternalID, &u.GivenName, &u.FamilyName, &u.DisplayName, listCol[iga.SCIMEmail]{&u.Emails},
		&u.Manager, timeCol{&u.Created}, timeCol{&u.Modified}, timeCol{&u.Deleted}, &u.Version)
	u.Managed = true
	return u, err
}

// SCIMUsers returns the SCIM records of people, deleted ones included,
// sorted by person id.
func (r reader) SCIMUsers(ctx context.Context) ([]iga.SCIMUser, error) {
	rows, err := r.query(ctx, "SELECT "+scimPeopleColumns+" FROM scim_people ORDER BY person_id")
	us, err := collect(rows, err, scanSCIMUser)
	if err != nil {
		return nil, fmt.Errorf("read scim users: %w", err)
	}
	return us, nil
}

// PutSCIMUser inserts or replaces the SCIM record of a person.
func (t *tx) PutSCIMUser(ctx context.Context, u iga.SCIMUser) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO scim_people (`+scimPeopleColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (person_id) DO UPDATE SET external_id = excluded.external_id, given_name = excluded.given_name,
		family_name = excluded.family_name, display_name = excluded.display_name, emails = excluded.emails,
		manager = excluded.manager, managed_since = excluded.managed_since, modified_at = excluded.modified_at,
		deleted_at = excluded.deleted_at, version = excluded.version`,
		u.UserName, u.ExternalID, u.GivenName, u.FamilyName, u.DisplayName, list(u.Emails), u.Manager,
		e.time(u.Created), e.time(u.Modified), e.time(u.Deleted), u.Version)
	if err != nil {
		return fmt.Errorf("store scim user %q: %w", u.UserName, err)
	}
	return nil
}

const scimGroupColumns = "id, display_name, external_id, members, created_at, modified_at, version"

func scanSCIMGroup(s scanner) (g iga.SCIMGroup, err error) {
	return g, s.Scan(&g.ID, &g.DisplayName, &g.ExternalID, listCol[string]{&g.Members}, timeCol{&g.Created},
		timeCol{&g.Modified}, &g.Version)
}

// SCIMGroups returns every group, sorted by id.
func (r reader) SCIMGroups(ctx context.Context) ([]iga.SCIMGroup, error) {
	rows, err := r.query(ctx, "SELECT "+scimGroupColumns+" FROM scim_groups ORDER BY id")
	gs, err := collect(rows, err, scanSCIMGroup)
	if err != nil {
		return nil, fmt.Errorf("read scim groups: %w", err)
	}
	return gs, nil
}

// PutSCIMGroup inserts or replaces a group.
func (t *tx) PutSCIMGroup(ctx context.Context, g iga.SCIMGroup) error {
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO scim_groups (`+scimGroupColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, external_id = excluded.external_id,
		members = excluded.members, modified_at = excluded.modified_at, version = excluded.version`,
		g.ID, g.DisplayName, g.ExternalID, list(g.Members), e.time(g.Created), e.time(g.Modified), g.Version)
	if err != nil {
		return fmt.Errorf("store scim group %q: %w", g.ID, err)
	}
	return nil
}

// DeleteSCIMGroup removes a group.
func (t *tx) DeleteSCIMGroup(ctx context.Context, id string) error {
	if _, err := t.exec(ctx, "DELETE FROM scim_groups WHERE id = ?", id); err != nil {
		return fmt.Errorf("delete scim group %q: %w", id, err)
	}
	return nil
}
