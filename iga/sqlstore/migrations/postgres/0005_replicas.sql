-- Replicas: every `sallyport serve` registers itself and renews a lease
-- while it runs; the session index names the replica that runs each
-- session, so a janitor can tell a session of a live replica from one whose
-- replica died.
CREATE TABLE replicas (
    id          TEXT COLLATE "C" PRIMARY KEY,
    host        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    lease_until TEXT COLLATE "C" NOT NULL
);

ALTER TABLE sessions ADD COLUMN replica TEXT COLLATE "C" NOT NULL DEFAULT '';

-- Every committed change that may end a live session is announced on the
-- channel sallyport_changes, so each replica re-checks its sessions at once
-- instead of at its next poll. Triggers, not store code, so that no write
-- path can forget; the payload is the table, and PostgreSQL folds the
-- notifications of one transaction into one per payload. Writes that
-- cannot end a session (an identity's last use, a session's recording
-- state) do not notify: they happen on every admission.
CREATE FUNCTION sallyport_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sallyport_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER identities_changed AFTER UPDATE ON identities FOR EACH ROW
    WHEN (ROW(OLD.kind, OLD.state, OLD.owner, OLD.environment, OLD.holders, OLD.ssh_keys, OLD.oidc, OLD.entitlements)
          IS DISTINCT FROM ROW(NEW.kind, NEW.state, NEW.owner, NEW.environment, NEW.holders, NEW.ssh_keys, NEW.oidc, NEW.entitlements))
    EXECUTE FUNCTION sallyport_notify_change();
CREATE TRIGGER identities_deleted AFTER DELETE ON identities FOR EACH STATEMENT
    EXECUTE FUNCTION sallyport_notify_change();

CREATE TRIGGER people_changed AFTER UPDATE ON people FOR EACH ROW
    WHEN (ROW(OLD.status, OLD.roles) IS DISTINCT FROM ROW(NEW.status, NEW.roles))
    EXECUTE FUNCTION sallyport_notify_change();
CREATE TRIGGER people_deleted AFTER DELETE ON people FOR EACH STATEMENT
    EXECUTE FUNCTION sallyport_notify_change();

CREATE TRIGGER certifications_changed AFTER INSERT OR UPDATE OR DELETE ON certifications FOR EACH STATEMENT
    EXECUTE FUNCTION sallyport_notify_change();

CREATE TRIGGER grants_changed AFTER INSERT OR UPDATE OR DELETE ON grants FOR EACH STATEMENT
    EXECUTE FUNCTION sallyport_notify_change();

CREATE TRIGGER sessions_kill_requested AFTER UPDATE OF kill_requested ON sessions FOR EACH ROW
    WHEN (NEW.kill_requested IS NOT NULL AND NEW.ended_at IS NULL)
    EXECUTE FUNCTION sallyport_notify_change();
