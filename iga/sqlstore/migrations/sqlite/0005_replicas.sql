-- Replicas: every `sallyport serve` registers itself and renews a lease
-- while it runs; the session index names the replica that runs each
-- session, so a janitor can tell a session of a live replica from one whose
-- replica died. (The PostgreSQL registry also announces changes with
-- NOTIFY; SQLite has one process serving, which polls.)
CREATE TABLE replicas (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    lease_until TEXT NOT NULL
) WITHOUT ROWID;

ALTER TABLE sessions ADD COLUMN replica TEXT NOT NULL DEFAULT '';
