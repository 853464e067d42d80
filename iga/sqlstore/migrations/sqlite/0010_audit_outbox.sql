-- Issue 23: audit export outbox and per-sink cursors. Reserved so that helpers working in parallel each own one
-- numbered step; the owner replaces this body with the real schema.
INSERT INTO registry_features (name, added_in) VALUES ('audit_outbox', 10);
