-- Issue 25: seals of a lost replica's recordings. When a replica's lease
-- lapsed and it did not come back, one surviving replica seals each of its
-- sessions from what reached the recording store. A row claims a session:
-- the sealer that inserted it (or took over a stale claim) seals, and
-- sealed_at says it is done, so no other replica, and no second run, seals
-- it again. A replica that restarts on the lost one's spool and recovers a
-- session first writes a row of kind 'recovered', sealed at once: the
-- recording is then its to store, and no one seals it from the store.
CREATE TABLE lost_replica_seals (
    session_id  TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT NOT NULL,             -- 'seal' or 'recovered'
    replica     TEXT NOT NULL,             -- the replica that ran the session
    lease_until TEXT,                      -- when its lease ended; NULL when not known
    sealer      TEXT NOT NULL,             -- the replica that claimed the session
    claimed_at  TEXT COLLATE "C" NOT NULL,
    sealed_at   TEXT,                      -- NULL while the claim is in progress
    chunks      BIGINT NOT NULL DEFAULT 0, -- chunks the seal covers
    reason      TEXT NOT NULL DEFAULT ''
);

INSERT INTO registry_features (name, added_in) VALUES ('lost_replica_seals', 12);
