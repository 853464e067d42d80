-- Entitlements may carry commands (issue 21), stored inside the
-- entitlements JSON of the identity row: no column changes. This step
-- exists so that a sallyport older than it refuses to open the registry
-- ("database schema is at version 6 …: upgrade sallyport") rather than read
-- a command-restricted entitlement as one that allows any exec.
CREATE TABLE registry_features (
    name     TEXT PRIMARY KEY,
    added_in INTEGER NOT NULL
);
INSERT INTO registry_features (name, added_in) VALUES ('entitlement_commands', 6);
