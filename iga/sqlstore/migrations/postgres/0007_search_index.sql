-- Issue 20: search index of session content. Reserved so that helpers working in parallel each own one
-- numbered step; the owner replaces this body with the real schema.
INSERT INTO registry_features (name, added_in) VALUES ('search_index', 7);
