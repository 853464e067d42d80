-- Issue 20: the search index of what happened inside sessions (package
-- search). search_entries holds one row per indexed thing (a command, a
-- stretch of output, a query, a file path ...) with its session and time;
-- words is its full-text vector: the body's runs of letters and digits,
-- everything else turned to spaces first so that the parser sees the same
-- words as SQLite's unicode61 (it would keep /etc/shadow or 10.1.2.3 whole).
-- search_sessions is each session's indexing state: the chunk it reached,
-- who is indexing it, what it cost.
CREATE TABLE search_entries (
    id         BIGSERIAL PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL,
    at         TEXT COLLATE "C" NOT NULL,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    words      tsvector GENERATED ALWAYS AS
        (to_tsvector('simple', regexp_replace(body, '[^[:alnum:]]+', ' ', 'g'))) STORED
);
CREATE INDEX search_entries_by_session ON search_entries (session_id);
CREATE INDEX search_entries_words ON search_entries USING GIN (words);

CREATE TABLE search_sessions (
    session_id    TEXT COLLATE "C" PRIMARY KEY,
    state         TEXT NOT NULL,
    cursor        TEXT NOT NULL DEFAULT '',
    bytes         BIGINT NOT NULL DEFAULT 0,
    entries       BIGINT NOT NULL DEFAULT 0,
    cut           INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT NOT NULL DEFAULT '',
    claimed_until TEXT COLLATE "C" NOT NULL DEFAULT '',
    updated_at    TEXT NOT NULL DEFAULT '',
    problem       TEXT NOT NULL DEFAULT ''
);

-- Every session gets its row when it enters the session index, so the
-- indexer and the lag read the few sessions still to do through
-- search_sessions_todo instead of the whole session index.
CREATE INDEX search_sessions_todo ON search_sessions (state) WHERE state IN ('pending', 'partial');
CREATE FUNCTION search_sessions_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_sessions (session_id, state) VALUES (NEW.id, 'pending') ON CONFLICT (session_id) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER search_sessions_new AFTER INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION search_sessions_new();
INSERT INTO search_sessions (session_id, state) SELECT id, 'pending' FROM sessions;

INSERT INTO registry_features (name, added_in) VALUES ('search_index', 7);
