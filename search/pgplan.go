package search

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL misjudges how many entries hold a word it has no statistics
// for (a word found nowhere, the very needle an auditor looks for): it
// then walks the whole table backwards by id, seconds on millions of
// entries. Matching through the GIN index first (fencedFrom) is quick for
// such words but costs what the word's every match costs for a common
// one. So a word the statistics know as common (commonRows) is searched by
// the planner's choice, and any other tries the fenced plan under
// fencedTimeout first: one common enough to exceed it (a prefix, whose
// matches the planner cannot estimate) then gets the planner's choice,
// which is right for it.
const fencedTimeout = 100 * time.Millisecond

// pgQueryCanceled is PostgreSQL's SQLSTATE for a statement_timeout.
const pgQueryCanceled = "57014"

// commonRows is the estimate of matching entries past which PostgreSQL's
// own plan is used at once: its statistics know such a word.
const commonRows = 20000

func (ix *Index) runFenced(ctx context.Context, terms []term, q Query, limit int, prefix bool) ([]Hit, []int64, error) {
	if ix.estimate(ctx, terms, prefix) > commonRows {
		query, args := ix.d.searchSQL(terms, q, limit, prefix, false)
		return ix.scanHits(ctx, ix.db, query, args, terms)
	}
	query, args := ix.d.searchSQL(terms, q, limit, prefix, true)
	hits, ids, err := ix.scanTimed(ctx, query, args, terms)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgQueryCanceled || ctx.Err() != nil {
		return hits, ids, err
	}
	query, args = ix.d.searchSQL(terms, q, limit, prefix, false)
	return ix.scanHits(ctx, ix.db, query, args, terms)
}

// scanTimed runs query in a read-only transaction bounded by fencedTimeout.
func (ix *Index) scanTimed(ctx context.Context, query string, args []any, terms []term) ([]Hit, []int64, error) {
	tx, err := ix.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("search the index: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", fencedTimeout.Milliseconds())); err != nil {
		return nil, nil, fmt.Errorf("search the index: %w", err)
	}
	return ix.scanHits(ctx, tx, query, args, terms)
}

// estimate is how many entries PostgreSQL expects to match; 0 when it
// cannot say.
func (ix *Index) estimate(ctx context.Context, terms []term, prefix bool) float64 {
	cond, arg := ix.d.match(terms, prefix)
	var plan string
	err := ix.db.QueryRowContext(ctx, ix.d.rebind("EXPLAIN (FORMAT JSON) SELECT 1 FROM search_entries e WHERE "+cond), arg).Scan(&plan)
	if err != nil {
		return 0
	}
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if json.Unmarshal([]byte(plan), &out) != nil || len(out) == 0 {
		return 0
	}
	return out[0].Plan.Rows
}
