-- Legal holds on recordings (issue 23): a session on hold keeps its
-- recording past recordings.retention until the hold is released. Releasing
-- deletes the row; the audit trail keeps who held and released, and why.
CREATE TABLE recording_holds (
    session_id TEXT COLLATE "C" PRIMARY KEY,
    held_at    TEXT NOT NULL,
    held_by    TEXT NOT NULL,
    reason     TEXT NOT NULL
);

-- The retention job's candidates: ended sessions by end time.
CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;

INSERT INTO registry_features (name, added_in) VALUES ('recording_holds', 11);
