package search

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// Reindexed is what a Reindex did.
type Reindexed struct {
	// Sessions were verified and indexed again, from scratch; Entries is
	// what they hold now.
	Sessions, Entries int
	// Failed failed verification: reported, and taken out of the index.
	Failed int
	// Skipped are live or deleted: left alone (serve indexes the live
	// ones; a deleted recording is not in the store).
	Skipped int
}

// String is the tally `sallyport recording reindex` prints.
func (r Reindexed) String() string {
	return fmt.Sprintf("reindexed %d session(s), %d entries; %d failed verification, %d live or deleted (left alone)",
		r.Sessions, r.Entries, r.Failed, r.Skipped)
}

// reindexSQL lists the sessions a Reindex considers, oldest first.
// Its rows have queryCandidates' columns; the indexing state is not read:
// a Reindex starts each session over.
const reindexSQL = `SELECT id, state, started_at, '', 0, 0, '', '' FROM sessions WHERE started_at >= ? ORDER BY started_at, id`

// Reindex rebuilds the index from the store: every session that started
// at or after since (zero: every session) and has ended is verified with
// Key, as `sallyport verify` does, and indexed again from scratch when it
// is intact or incomplete (authentic, cut short by a crash or a lost
// replica), its continuation included. Any other (tampered, unsealed,
// missing objects) is taken out of the index and kept out, and report
// is called with its verification. Live and deleted sessions are left
// alone. Errors of the store or the database stop it.
func (x *Indexer) Reindex(ctx context.Context, since time.Time, report func(recorder.Report)) (Reindexed, error) {
	var r Reindexed
	if x.Key == nil {
		return r, errors.New("reindex: no recording key to verify recordings with")
	}
	todo, err := x.reindexCandidates(ctx, since)
	if err != nil {
		return r, err
	}
	for _, c := range todo {
		if c.live() || c.state == "deleted" {
			r.Skipped++
			continue
		}
		n, ok, err := x.verifyAndReindex(ctx, c, report)
		if err != nil {
			return r, err
		}
		if !ok {
			r.Failed++
			continue
		}
		r.Sessions, r.Entries = r.Sessions+1, r.Entries+n
	}
	return r, nil
}

// reindexCandidates lists the sessions that started since, oldest first.
func (x *Indexer) reindexCandidates(ctx context.Context, since time.Time) ([]candidate, error) {
	ix := x.Index
	todo, err := x.queryCandidates(ctx, "list sessions to reindex", ix.d.rebind(reindexSQL), since.UTC().Format(timeLayout))
	for _, c := range todo {
		if c.started.IsZero() {
			return nil, fmt.Errorf("list sessions to reindex: session %s has no start time", c.id)
		}
	}
	return todo, err
}

// verifyAndReindex verifies one recording and indexes it afresh when it
// is authentic; ok is false when it is not (reported, and taken out of
// the index).
func (x *Indexer) verifyAndReindex(ctx context.Context, c candidate, report func(recorder.Report)) (n int, ok bool, err error) {
	rep, err := recorder.Verify(ctx, recorder.SessionSource(x.Store, c.id, c.started), x.Key)
	if err != nil {
		return 0, false, fmt.Errorf("reindex: verify session %s: %w", c.id, err)
	}
	if !authentic(rep) {
		if report != nil {
			report(rep)
		}
		return 0, false, x.reset(ctx, c.id, stateFailed, "recording "+string(rep.Status))
	}
	n, err = x.reindexSession(ctx, c.id, c.started)
	return n, err == nil, err
}

// reindexSession forgets what the index holds of session id and indexes
// its recording again from the start, to its end, continuation included:
// the caller verified it. It takes the session over from any indexer
// working on it, and returns the entries indexed.
func (x *Indexer) reindexSession(ctx context.Context, id string, started time.Time) (int, error) {
	if err := x.reset(ctx, id, statePartial, ""); err != nil {
		return 0, err
	}
	c := candidate{id: id, state: "stored", started: started, verified: true}
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
