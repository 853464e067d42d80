-- Governance workflows: post-event reviews of break-glass grants (one per
-- grant), certification campaigns with one item per identity, and alert
-- claims, which make each alert go out once however many processes and
-- replicas share the registry.
CREATE TABLE reviews (
    id           TEXT COLLATE "C" PRIMARY KEY,
    grant_id     TEXT NOT NULL UNIQUE,
    identity_id  TEXT NOT NULL,
    target       TEXT NOT NULL,
    opened_by    TEXT NOT NULL,
    assigned_to  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    due_at       TEXT COLLATE "C" NOT NULL,
    completed_at TEXT,
    completed_by TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    note         TEXT NOT NULL
);

CREATE INDEX reviews_by_due ON reviews (due_at, id);

CREATE TABLE campaigns (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    started_by TEXT NOT NULL,
    started_at TEXT NOT NULL,
    due_at     TEXT NOT NULL,
    closed_at  TEXT,
    closed_by  TEXT NOT NULL
);

CREATE TABLE campaign_items (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    identity_id TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    decision    TEXT NOT NULL,
    decided_by  TEXT NOT NULL,
    decided_at  TEXT,
    note        TEXT NOT NULL,
    PRIMARY KEY (campaign_id, identity_id)
);

CREATE TABLE alert_claims (
    alert_key  TEXT PRIMARY KEY,
    claimed_at TEXT NOT NULL
);
