-- Issue 25: seals of a lost replica's recordings. When a replica's lease
-- lapsed and it did not come back, one surviving replica seals each of its
-- sessions from what reached the recording store. A row claims a session:
-- the sealer that inserted it (or took over a stale claim) seals, and
-- sealed_at says it is done, so no other replica, and no second run, seals
-- it again. A replica that restarts on the lost one's spool and recovers a
-- session first writes a row of kind 'recovered', sealed at once: the
-- recording is then its to store, and no one seals it from the store.
CREATE TABLE lost_replica_seals (
    session_id  TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    replica     TEXT NOT NULL,
    lease_until TEXT,
    sealer      TEXT NOT NULL,
    claimed_at  TEXT NOT NULL,
    sealed_at   TEXT,
    chunks      INTEGER NOT NULL DEFAULT 0,
    reason      TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

INSERT INTO registry_features (name, added_in) VALUES ('lost_replica_seals', 12);
