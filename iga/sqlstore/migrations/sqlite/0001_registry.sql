-- The registry: people, identities with their credentials and entitlements,
-- certification history, break-glass grants and the audit trail.
-- Times are UTC text in the fixed-width form of codec.go (NULL: none);
-- lists are JSON arrays in the order they were put (docs.go); an
-- identity's credentials and entitlements live in its row, so admission
-- reads one row.
-- Tables keyed by text are WITHOUT ROWID: a lookup by id is one B-tree
-- walk, and a decision's LastUsed update writes one page. Integer keys
-- are plain INTEGER PRIMARY KEY (no AUTOINCREMENT: rows are never deleted,
-- and it would cost another page write per audit event).

CREATE TABLE people (
    id     TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    roles  TEXT NOT NULL,
    status TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE identities (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    environment TEXT NOT NULL,
    holders     TEXT NOT NULL,
    ssh_keys    TEXT NOT NULL,
    oidc        TEXT NOT NULL,
    entitlements TEXT NOT NULL,
    last_used   TEXT
) WITHOUT ROWID;

-- oidc_bindings indexes identities.oidc for IdentitiesByOIDC; PutIdentity
-- writes both.
CREATE TABLE oidc_bindings (
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    PRIMARY KEY (issuer, subject, identity_id)
) WITHOUT ROWID;

CREATE INDEX oidc_bindings_by_identity ON oidc_bindings (identity_id);

CREATE TABLE certifications (
    id          INTEGER PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    decision    TEXT NOT NULL,
    decided_by  TEXT NOT NULL,
    decided_at  TEXT,
    valid_until TEXT,
    note        TEXT NOT NULL
);

CREATE INDEX certifications_by_identity ON certifications (identity_id, id);

CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL,
    target      TEXT NOT NULL,
    opened_by   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    ticket      TEXT NOT NULL,
    opened_at   TEXT,
    expires_at  TEXT,
    closed_at   TEXT
) WITHOUT ROWID;

CREATE INDEX grants_by_identity ON grants (identity_id, opened_at);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    target      TEXT NOT NULL,
    action      TEXT NOT NULL,
    source      TEXT NOT NULL,
    allowed     INTEGER NOT NULL,
    reasons     TEXT NOT NULL,
    detail      TEXT NOT NULL
);

CREATE INDEX audit_events_by_time ON audit_events (occurred_at, id);
CREATE INDEX audit_events_by_identity ON audit_events (identity_id, occurred_at, id);
