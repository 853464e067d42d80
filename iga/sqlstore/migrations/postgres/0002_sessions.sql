-- The session index: one row per proxied session, kept from the recorder's
-- state changes, and the kill requests `sallyport sessions kill` leaves for
-- whichever process runs the session.
CREATE TABLE sessions (
    id               TEXT COLLATE "C" PRIMARY KEY,
    identity_id      TEXT NOT NULL,
    owner            TEXT NOT NULL,
    target           TEXT NOT NULL,
    protocol         TEXT NOT NULL,
    login            TEXT NOT NULL,
    source           TEXT NOT NULL,
    breakglass_grant TEXT NOT NULL,
    state            TEXT NOT NULL,
    reason           TEXT NOT NULL,
    object_dir       TEXT NOT NULL,
    started_at       TEXT COLLATE "C" NOT NULL,
    ended_at         TEXT,
    bytes            BIGINT NOT NULL,
    events           BIGINT NOT NULL,
    kill_requested   TEXT,
    kill_reason      TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sessions_by_start ON sessions (started_at, id);
CREATE INDEX sessions_by_identity ON sessions (identity_id, started_at);
-- Pending kills are few; the watcher of every replica polls them often.
CREATE INDEX sessions_pending_kills ON sessions (id) WHERE kill_requested IS NOT NULL AND ended_at IS NULL;
