-- Issue 22: what the identity provider keeps about people over SCIM 2.0,
-- its groups, and the ownership-transfer items a leaver's identities get.
-- A person is SCIM-managed while a scim_people row names them; the row
-- stays when the IdP deletes them (deleted_at set), so apply still refuses
-- to bring them back. Emails and members are JSON arrays (docs.go).
CREATE TABLE scim_people (
    person_id     TEXT COLLATE "C" PRIMARY KEY,
    external_id   TEXT NOT NULL,
    given_name    TEXT NOT NULL,
    family_name   TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    emails        TEXT NOT NULL,
    manager       TEXT NOT NULL,
    managed_since TEXT NOT NULL,
    modified_at   TEXT NOT NULL,
    deleted_at    TEXT,
    version       INTEGER NOT NULL
);

CREATE INDEX scim_people_by_external_id ON scim_people (external_id);

CREATE TABLE scim_groups (
    id           TEXT COLLATE "C" PRIMARY KEY,
    display_name TEXT NOT NULL UNIQUE,
    external_id  TEXT NOT NULL,
    members      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    modified_at  TEXT NOT NULL,
    version      INTEGER NOT NULL
);

-- ownership_transfers holds one item per identity whose owner left: open
-- (closed_at NULL) until a new active owner is assigned.
CREATE TABLE ownership_transfers (
    id          TEXT COLLATE "C" PRIMARY KEY,
    identity_id TEXT NOT NULL,
    from_owner  TEXT NOT NULL,
    assigned_to TEXT NOT NULL,
    reason      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    closed_at   TEXT,
    closed_by   TEXT NOT NULL,
    new_owner   TEXT NOT NULL,
    outcome     TEXT NOT NULL
);

CREATE INDEX ownership_transfers_by_identity ON ownership_transfers (identity_id, closed_at);

INSERT INTO registry_features (name, added_in) VALUES ('scim', 8);
