package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// migrationFiles holds the schema history, one directory per dialect. To
// change the schema, append NNNN_what.sql with the next number to both
// directories; applied migrations are never edited.
//
//go:embed migrations
var migrationFiles embed.FS

// migration is one numbered schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in version order.
func (d *dialect) migrations() ([]migration, error) {
	dir := path.Join("migrations", d.name)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s migrations: %w", d.name, err)
	}
	var ms []migration
	for _, e := range entries {
		m, err := readMigration(dir, e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("%s migrations: got version %d at position %d, want %d", d.name, m.version, i+1, i+1)
		}
	}
	return ms, nil
}

func readMigration(dir, file string) (migration, error) {
	num, _, ok := strings.Cut(strings.TrimSuffix(file, ".sql"), "_")
	v, err := strconv.Atoi(num)
	if !ok || err != nil || !strings.HasSuffix(file, ".sql") {
		return migration{}, fmt.Errorf("migration %s/%s: want a name like 0001_what.sql", dir, file)
	}
	b, err := migrationFiles.ReadFile(path.Join(dir, file))
	if err != nil {
		return migration{}, fmt.Errorf("read migration %s: %w", file, err)
	}
	return migration{version: v, name: file, sql: string(b)}, nil
}

// migrate applies the migrations the database lacks, all in one
// transaction so concurrent Opens of one database serialise and a failed
// step leaves the schema as it was.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := s.d.migrations()
	if err != nil {
		return err
	}
	if s.schemaVersion(ctx) == len(ms) {
		return nil // the usual Open: no write lock taken
	}
	err = s.Update(ctx, func(t iga.Tx) error { return t.(*tx).migrate(ctx, ms) })
	if err != nil {
		return fmt.Errorf("migrate %s registry schema: %w", s.d.name, err)
	}
	return nil
}

// schemaVersion is the database's recorded schema version, -1 when it
// cannot be read (a new database has no schema_migrations yet).
func (s *Store) schemaVersion(ctx context.Context) int {
	v := -1
	if err := s.db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return -1
	}
	return v
}

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)`

// migrate brings the schema from its recorded version up to the last of ms.
func (t *tx) migrate(ctx context.Context, ms []migration) error {
	if t.d.lockMigrations != "" {
		if _, err := t.tx.ExecContext(ctx, t.d.lockMigrations); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
	}
	if _, err := t.tx.ExecContext(ctx, createSchemaMigrations); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	err := t.tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("database schema is at version %d, this sallyport knows only up to %d: upgrade sallyport", current, len(ms))
	}
	for _, m := range ms[current:] {
		if err := t.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// apply runs one migration and records it.
func (t *tx) apply(ctx context.Context, m migration) error {
	if _, err := t.tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("apply migration %s: %w", m.name, err)
	}
	var e encoder
	// Not through the statement cache: it prepares outside this transaction,
	// where the tables it creates do not exist yet.
	_, err := t.tx.ExecContext(ctx, t.d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, e.time(time.Now()))
	if err != nil {
		return fmt.Errorf("record migration %s: %w", m.name, err)
	}
	return nil
}
