-- Issue 20: a console of one replica watches a live session another runs
-- by following its recording in the store. It leaves watch_until on the
-- session's row (and moves it on while the view is open); the replica that
-- runs the session reads it with its kill requests and flushes that
-- recording every 250 ms until then, so the view trails the session by
-- less than a second. A watch nobody renews lapses by itself.
ALTER TABLE sessions ADD COLUMN watch_until TEXT;

-- Watched sessions are few; the watcher of every replica polls them with
-- the kill requests, every 250 ms.
CREATE INDEX sessions_watched ON sessions (watch_until) WHERE watch_until IS NOT NULL AND ended_at IS NULL;

INSERT INTO registry_features (name, added_in) VALUES ('session_watch_until', 13);
