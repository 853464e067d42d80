-- Issue 23: audit export. Every audit event enters the outbox in the transaction that writes it (a trigger,
-- not store code, so that no write path can forget), and leaves it once every export sink has it.
-- A sink's delivered events are marked in audit_export_done, one row per event (see the PostgreSQL step
-- for why not a cursor); audit_export_sinks names the sinks the outbox is kept for.
CREATE TABLE audit_outbox (
    event_id INTEGER PRIMARY KEY
);

CREATE TABLE audit_export_sinks (
    name    TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);

CREATE TABLE audit_export_done (
    sink     TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (sink, event_id)
);

CREATE INDEX audit_export_done_by_event ON audit_export_done (event_id);

CREATE TRIGGER audit_events_outbox AFTER INSERT ON audit_events
BEGIN
    INSERT INTO audit_outbox (event_id) VALUES (NEW.id);
END;

INSERT INTO registry_features (name, added_in) VALUES ('audit_outbox', 10);
