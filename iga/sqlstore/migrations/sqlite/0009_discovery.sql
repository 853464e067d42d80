-- Issue 22: accounts discovered on targets (login roles, MySQL accounts,
-- Unix accounts with their authorized_keys), one row per target and
-- account, kept across discoveries: first_seen, last_seen, and gone_at when
-- the latest discovery of its target missed it (NULL while present).
-- attributes, ssh_keys and problems are JSON arrays.
CREATE TABLE discovered_accounts (
    target      TEXT NOT NULL,
    account     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    login       TEXT NOT NULL,
    password    TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    ssh_keys    TEXT NOT NULL,
    problems    TEXT NOT NULL,
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    gone_at     TEXT,
    PRIMARY KEY (target, account)
) WITHOUT ROWID;
INSERT INTO registry_features (name, added_in) VALUES ('discovery', 9);
