-- The registry: people, identities with their credentials and entitlements,
-- certification history, break-glass grants and the audit trail.
-- Times are UTC text in the fixed-width form of codec.go (NULL: none);
-- lists are JSON arrays; pos keeps the order slices were put in.

CREATE TABLE people (
    id     TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    roles  TEXT NOT NULL,
    status TEXT NOT NULL
);

CREATE TABLE identities (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    environment TEXT NOT NULL,
    holders     TEXT NOT NULL,
    last_used   TEXT
);

CREATE TABLE ssh_keys (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    pos         INTEGER NOT NULL,
    public_key  TEXT NOT NULL,
    expires     TEXT,
    PRIMARY KEY (identity_id, pos)
) WITHOUT ROWID;

CREATE TABLE oidc_bindings (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    pos         INTEGER NOT NULL,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    PRIMARY KEY (identity_id, pos)
) WITHOUT ROWID;

CREATE INDEX oidc_bindings_by_subject ON oidc_bindings (issuer, subject, identity_id);

CREATE TABLE entitlements (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    pos         INTEGER NOT NULL,
    target      TEXT NOT NULL,
    login       TEXT NOT NULL,
    actions     TEXT NOT NULL,
    expires     TEXT,
    from_cidrs  TEXT NOT NULL,
    PRIMARY KEY (identity_id, pos)
) WITHOUT ROWID;

CREATE TABLE certifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
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
);

CREATE INDEX grants_by_identity ON grants (identity_id, opened_at);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
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
