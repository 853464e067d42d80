package search

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Reindex forgets what the index holds of session id and indexes its
// recording again from the start, to its end: the recording should be
// verified first (reindex verifies it). It takes the session over from
// any indexer working on it. It returns the entries indexed.
func (x *Indexer) Reindex(ctx context.Context, id string, started time.Time) (int, error) {
	if err := x.reset(ctx, id, statePartial, ""); err != nil {
		return 0, err
	}
	c := candidate{id: id, state: "stored", started: started}
	if _, err := x.session(ctx, c); err != nil {
		return 0, err
	}
	var n int
	var state, problem string
	err := x.Index.db.QueryRowContext(ctx, x.Index.d.rebind("SELECT entries, state, problem FROM search_sessions WHERE session_id = ?"), id).
		Scan(&n, &state, &problem)
	if err != nil {
		return 0, fmt.Errorf("read how session %s was indexed: %w", id, err)
	}
	if state == stateFailed {
		return n, fmt.Errorf("index session %s: %s", id, problem)
	}
	return n, nil
}

// Reject removes session id from the index and keeps it out, saying why
// (a recording that failed verification): the indexer does not read it
// again.
func (x *Indexer) Reject(ctx context.Context, id, problem string) error {
	return x.reset(ctx, id, stateFailed, problem)
}

// reset deletes the session's entries and sets its indexing state afresh,
// claimed by this indexer.
func (x *Indexer) reset(ctx context.Context, id, state, problem string) error {
	ix := x.Index
	now := ix.now()
	err := x.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, ix.d.rebind("DELETE FROM search_entries WHERE session_id = ?"), id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, ix.d.rebind(`INSERT INTO search_sessions (session_id, state, claimed_by, claimed_until, updated_at, problem)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET state = excluded.state, cursor = '', bytes = 0, entries = 0,
			cut = 0, claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until, updated_at = excluded.updated_at,
			problem = excluded.problem`),
			id, state, x.owner(), ix.stamp(now.Add(claimFor)), ix.stamp(now), problem)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset session %s in the search index: %w", id, err)
	}
	return nil
}
