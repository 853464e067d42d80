-- The fingerprints of the keys every replica must share (the SSH user CA,
-- the recording signing key), by purpose: the first replica to start
-- records them, and a later one with another key refuses to start.
CREATE TABLE key_fingerprints (
    purpose     TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    recorded_at TEXT NOT NULL
) WITHOUT ROWID;
