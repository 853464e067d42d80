-- Issue 22: people managed by SCIM, ownership-transfer items. Reserved so that helpers working in parallel each own one
-- numbered step; the owner replaces this body with the real schema.
INSERT INTO registry_features (name, added_in) VALUES ('scim', 8);
