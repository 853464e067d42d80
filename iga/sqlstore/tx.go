package sqlstore

import (
	"context"
	"database/sql"
	"sync"

	"github.com/sallyport/sallyport/iga"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// errRow is a row that could not be queried; Scan reports why.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// stmtCache keeps every statement the store runs prepared: parsing SQL
// costs more than running these primary-key queries, and admission runs
// the same few on every connection.
type stmtCache struct {
	db *sql.DB
	d  *dialect
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB, d *dialect) *stmtCache {
	return &stmtCache{db: db, d: d, m: make(map[string]*sql.Stmt)}
}

// get returns query (written with ? placeholders) prepared on the pool.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok {
		return s, nil
	}
	s, err := c.db.PrepareContext(ctx, c.d.rebind(query))
	if err != nil {
		return nil, err
	}
	c.m[query] = s
	return s, nil
}

// close releases every prepared statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.m {
		s.Close()
		delete(c.m, q)
	}
}

// reader implements iga.Reader on the pool or, with tx set, inside a
// transaction.
type reader struct {
	d     *dialect
	stmts *stmtCache
	tx    *sql.Tx // nil: each statement on its own
}

var _ iga.Reader = reader{}

// stmt returns query prepared, bound to the transaction if there is one.
func (r reader) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s, err := r.stmts.get(ctx, query)
	if err != nil || r.tx == nil {
		return s, err
	}
	return r.tx.StmtContext(ctx, s), nil
}

func (r reader) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := r.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (r reader) queryRow(ctx context.Context, query string, args ...any) scanner {
	s, err := r.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return s.QueryRowContext(ctx, args...)
}

func (r reader) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := r.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// tx implements iga.Tx; its reads see its own writes.
type tx struct {
	reader
}

var _ iga.Tx = (*tx)(nil)

// collect scans every row of a query with scan.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// insert runs one write whose arguments e encoded, failing first on any
// value e could not encode.
func (t *tx) insert(ctx context.Context, e *encoder, query string, args ...any) error {
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, query, args...)
	return err
}
