// Package sqlstore persists the iga registry in SQL: SQLite (pure Go,
// modernc.org/sqlite) for the embedded single-machine default, and
// PostgreSQL (pgx) when several sallyport replicas share one registry.
//
// Both drivers share one implementation over database/sql; the few
// differences (placeholders, identity columns, locking) live in dialect.go
// and in the per-driver migration files under migrations/. cmd/sallyport
// opens a Store and hands it to iga.Registry, which is its only user.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// Driver names accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Retry pacing for a transaction that found the database busy. SQLite
// already waited sqliteBusyTimeout inside the driver before reporting
// busy, so a few spaced retries are enough to ride out a long apply.
const (
	busyRetries      = 5
	busyRetryBackoff = 50 * time.Millisecond
)

// Config says which database holds the registry.
type Config struct {
	// Driver is DriverSQLite or DriverPostgres. Empty: DriverSQLite.
	Driver string
	// Path is the SQLite database file (created with its directory when
	// missing). Required for SQLite, unused for PostgreSQL.
	Path string
	// DSN is the PostgreSQL connection string (URL or key=value form).
	// Required for PostgreSQL, unused for SQLite. It may hold a password,
	// so it never appears in errors.
	DSN string
}

// Validate reports what is missing or wrong in c.
func (c Config) Validate() error {
	switch c.Driver {
	case "", DriverSQLite:
		if c.Path == "" {
			return errors.New("registry: sqlite needs a database file path")
		}
		if strings.ContainsRune(c.Path, '?') {
			return fmt.Errorf("registry: sqlite path %q must not contain '?'", c.Path)
		}
	case DriverPostgres:
		if c.DSN == "" {
			return errors.New("registry: postgres needs a DSN")
		}
	default:
		_, err := dialectFor(c.Driver)
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

// Store is an iga.Store on a SQL database. It is safe for concurrent use,
// and several processes may open the same database at once.
type Store struct {
	reader
	db *sql.DB
	// dsn is the PostgreSQL DSN, for the dedicated connections of
	// ListenChanges and Leader; empty for SQLite.
	dsn string
	// writeTurn queues this process's writers when the dialect asks for it:
	// a one-slot semaphore, so a waiting writer still sees its ctx end.
	writeTurn chan struct{}
	// stopCheckpoints stops the background checkpointer; nil when none runs.
	stopCheckpoints func()
	closeOnce       sync.Once
	closeErr        error
}

var _ iga.Store = (*Store)(nil)

// Open connects to the database c names, brings its schema up to date and
// returns the store. Close it when done.
func Open(ctx context.Context, c Config) (*Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d, _ := dialectFor(c.Driver)
	db, err := openDB(d, c)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(d.maxConns)
	db.SetMaxIdleConns(d.maxConns)
	if err := ping(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s registry: %w", d.name, err)
	}
	s := &Store{reader: reader{d: d, stmts: newStmtCache(db, d)}, db: db, dsn: c.DSN, writeTurn: make(chan struct{}, 1)}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.startCheckpointer()
	return s, nil
}

// ping opens the first connection. Its pragmas switch a new SQLite file to
// WAL, which needs a lock SQLite does not wait for while another process is
// doing the same, so a busy answer is retried like a busy transaction.
func ping(ctx context.Context, db *sql.DB, d *dialect) error {
	for attempt := 1; ; attempt++ {
		err := db.PingContext(ctx)
		if err == nil || !d.retryable(err) || attempt > busyRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * busyRetryBackoff):
		}
	}
}

func openDB(d *dialect, c Config) (*sql.DB, error) {
	if d != sqliteDialect {
		db, err := sql.Open(d.driverName, c.DSN)
		if err != nil { // the DSN may hold a password: keep it out of the error
			return nil, errors.New("open postgres registry: malformed DSN")
		}
		return db, nil
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite registry: %w", err)
	}
	db, err := sql.Open(d.driverName, sqliteDSN(c.Path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite registry %s: %w", c.Path, err)
	}
	return db, nil
}

// Close releases the database connections. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stopCheckpoints != nil {
			s.stopCheckpoints()
		}
		s.stmts.close()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Update runs fn in one transaction. An error from fn rolls the transaction
// back and is returned unchanged. When the database is busy (another
// process writing) the whole transaction, fn included, is retried.
func (s *Store) Update(ctx context.Context, fn func(iga.Tx) error) error {
	return s.write(ctx, "registry", func(sqlTx *sql.Tx) error {
		return fn(&tx{reader: reader{d: s.d, stmts: s.stmts, tx: sqlTx}})
	})
}

// write runs fn in one transaction of the database, queued behind this
// process's other writers (SQLite has one writer), and retries the whole
// transaction while the database is busy. what names the data written, in
// errors.
func (s *Store) write(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	if s.d.serialWrites {
		select {
		case s.writeTurn <- struct{}{}:
			defer func() { <-s.writeTurn }()
		case <-ctx.Done():
			return fmt.Errorf("wait to write the %s: %w", what, ctx.Err())
		}
	}
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, what, fn)
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

// runTx runs fn in one transaction attempt.
func (s *Store) runTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin %s transaction: %w", what, err)
	}
	if err := fn(sqlTx); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit %s transaction: %w", what, err)
	}
	return nil
}

// RecordDecision appends the decision's audit event and, when it allowed,
// moves the identity's LastUsed forward to e.Time (now when unset), in one
// short transaction.
func (s *Store) RecordDecision(ctx context.Context, e iga.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	return s.Update(ctx, func(t iga.Tx) error {
		w := t.(*tx)
		if err := w.AppendAudit(ctx, e); err != nil {
			return err
		}
		if !e.Allow {
			return nil
		}
		return w.touch(ctx, e.Identity, e.Time)
	})
}
