package sqlstore

import (
	"context"
	"database/sql"
)

// SearchDB returns the registry's database and its dialect, "sqlite" or
// "postgres", for package search, which keeps its index of session content
// in the registry beside the session index (schema step 7).
func (s *Store) SearchDB() (*sql.DB, string) { return s.db, s.d.name }

// SearchWrite runs fn in one transaction of the registry database, queued
// behind this process's other writers as Update is, and retried when the
// database is busy. It is for package search; fn must not keep tx.
func (s *Store) SearchWrite(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.write(ctx, "search index", fn)
}

// Rebind rewrites the ? placeholders of query for the registry dialect
// named dialectName, as the store does for its own SQL, so that package
// search writes one SQL text for both. Queries never contain ? inside
// string literals.
func Rebind(dialectName, query string) string {
	if dialectName == postgresDialect.name {
		return postgresDialect.rebind(query)
	}
	return query
}
