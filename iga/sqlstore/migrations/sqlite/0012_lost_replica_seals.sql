-- Issue 25: seals of a lost replica's recordings. Reserved so that helpers working in parallel each own one
-- numbered step; the owner replaces this body with the real schema.
INSERT INTO registry_features (name, added_in) VALUES ('lost_replica_seals', 12);
