package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SearchDB returns the registry's database and its dialect, "sqlite" or
// "postgres", for package search, which keeps its index of session content
// in the registry beside the session index (schema step 7).
func (s *Store) SearchDB() (*sql.DB, string) { return s.db, s.d.name }

// SearchWrite runs fn in one transaction of the registry database, queued
// behind this process's other writers as Update is, and retried when the
// database is busy. It is for package search; fn must not keep tx.
func (s *Store) SearchWrite(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.d.serialWrites {
		select {
		case s.writeTurn <- struct{}{}:
			defer func() { <-s.writeTurn }()
		case <-ctx.Done():
			return fmt.Errorf("wait to write the search index: %w", ctx.Err())
		}
	}
	for attempt := 1; ; attempt++ {
		err := s.searchTx(ctx, fn)
		if err == nil || !s.d.retryable(err) || attempt > busyRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * busyRetryBackoff):
		}
	}
}

func (s *Store) searchTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin search index transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit search index transaction: %w", err)
	}
	return nil
}
