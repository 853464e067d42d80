-- Issue 23: recording retention and legal holds. Reserved so that helpers working in parallel each own one
-- numbered step; the owner replaces this body with the real schema.
INSERT INTO registry_features (name, added_in) VALUES ('recording_holds', 11);
