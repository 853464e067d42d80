-- Issue 23: audit export. Every audit event enters the outbox in the transaction that writes it (a trigger,
-- not store code, so that no write path can forget), and leaves it once every export sink has it.
-- A sink's delivered events are marked in audit_export_done rather than behind a cursor: an identity
-- value can commit out of order (the transaction that took id 10 commits after 11 was exported), and a
-- mark per event skips none. Each sink has a row in audit_export_sinks that the replica exporting to it
-- holds locked (SELECT … FOR UPDATE SKIP LOCKED) while it delivers, so in HA one replica exports each event
-- to each sink once.
CREATE TABLE audit_outbox (
    event_id BIGINT PRIMARY KEY
);

CREATE TABLE audit_export_sinks (
    name    TEXT COLLATE "C" PRIMARY KEY,
    seen_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE audit_export_done (
    sink     TEXT COLLATE "C" NOT NULL,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (sink, event_id)
);

CREATE INDEX audit_export_done_by_event ON audit_export_done (event_id);

CREATE FUNCTION sallyport_audit_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_outbox (event_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_events_outbox AFTER INSERT ON audit_events FOR EACH ROW
    EXECUTE FUNCTION sallyport_audit_outbox();

INSERT INTO registry_features (name, added_in) VALUES ('audit_outbox', 10);
