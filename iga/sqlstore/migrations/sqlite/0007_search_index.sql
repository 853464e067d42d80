-- Issue 20: the search index of what happened inside sessions (package
-- search). search_entries holds one row per indexed thing (a command, a
-- stretch of output, a query, a file path ...) with its session and time;
-- search_fts is its FTS5 index (unicode61: words are runs of letters and
-- digits, the rest separates them). search_sessions is each session's
-- indexing state: the chunk it reached, who is indexing it, what it cost.
CREATE TABLE search_entries (
    id         INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    at         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX search_entries_by_session ON search_entries (session_id);

CREATE VIRTUAL TABLE search_fts USING fts5(
    body, content='search_entries', content_rowid='id',
    tokenize='unicode61 remove_diacritics 0'
);
CREATE TRIGGER search_entries_ai AFTER INSERT ON search_entries BEGIN
    INSERT INTO search_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER search_entries_ad AFTER DELETE ON search_entries BEGIN
    INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;

CREATE TABLE search_sessions (
    session_id    TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    cursor        TEXT NOT NULL DEFAULT '',
    bytes         INTEGER NOT NULL DEFAULT 0,
    entries       INTEGER NOT NULL DEFAULT 0,
    cut           INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT NOT NULL DEFAULT '',
    claimed_until TEXT NOT NULL DEFAULT '',
    updated_at    TEXT NOT NULL DEFAULT '',
    problem       TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

-- Every session gets its row when it enters the session index, so the
-- indexer and the lag read the few sessions still to do through
-- search_sessions_todo instead of the whole session index.
CREATE INDEX search_sessions_todo ON search_sessions (state) WHERE state IN ('pending', 'partial');
CREATE TRIGGER search_sessions_new AFTER INSERT ON sessions BEGIN
    INSERT OR IGNORE INTO search_sessions (session_id, state) VALUES (new.id, 'pending');
END;
INSERT INTO search_sessions (session_id, state) SELECT id, 'pending' FROM sessions;

INSERT INTO registry_features (name, added_in) VALUES ('search_index', 7);
