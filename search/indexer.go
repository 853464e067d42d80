package search

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// Indexing states of a session, in search_sessions.state.
const (
	statePending = "pending" // not read yet (a trigger adds the row with the session)
	statePartial = "partial" // indexed up to its cursor; more may come
	stateDone    = "done"    // indexed to its end, or to its bound
	stateFailed  = "failed"  // cannot be read (a broken chain, a tampered recording): see problem
	// "purged": retention deleted the recording, and adopt its entries.
)

// Indexer timing.
const (
	// DefaultPoll is how often an Indexer looks for new recorded content:
	// an ended session is searchable within about this long.
	DefaultPoll = 2 * time.Second
	// DefaultLivePoll is how often a live session with nothing new is
	// looked at again: each look lists its objects in the store.
	DefaultLivePoll = 10 * time.Second
	// claimFor is how long a claim on a session lasts: another replica
	// takes the session over when its indexer died this long ago.
	claimFor = time.Minute
	// chunksPerBatch is how many chunks one transaction indexes, so a
	// long session neither holds the registry's write lock long nor
	// starts over after a restart.
	chunksPerBatch = 16
	// endedPerPass bounds the ended sessions one pass indexes, so that a
	// backlog (an upgrade, a restore) leaves live sessions their turn.
	endedPerPass = 200
	// adoptEvery is how often Run looks for sessions without an indexing
	// state and for recordings retention deleted. A trigger gives every new
	// session its state; this finds those of a wiped or restored
	// search_sessions table, reading the whole session index (0.2 s at
	// 100,000 sessions, without holding the write lock).
	adoptEvery = 10 * time.Minute
)

// Indexer keeps the index up to date with the recordings: each pass
// claims the sessions with content not indexed yet, reads that content
// from the store and writes it with the session's new cursor in one
// transaction. Replicas sharing a registry claim sessions in it, so no two
// index one session at once.
type Indexer struct {
	// Index is the index to fill.
	Index *Index
	// Store holds the recordings.
	Store recorder.Store
	// Write runs fn in a registry transaction (sqlstore.Store.SearchWrite);
	// nil means a plain transaction on the index's database.
	Write func(ctx context.Context, fn func(*sql.Tx) error) error
	// Owner names this indexer in claims (a replica id); empty means
	// "indexer".
	Owner string
	// Poll is the pause between passes; zero means DefaultPoll.
	Poll time.Duration
	// LivePoll is how often a live session's store is looked at for new
	// chunks once a look found none; zero means DefaultLivePoll.
	LivePoll time.Duration
	// Bound bounds each session's share of the index.
	Bound Bound
	// Key is the recording signing key's public half: a recording is
	// verified with it before a continuation is indexed (see
	// continued.go), and by Reindex. Nil means no continuation is indexed
	// (its session is marked failed) and Reindex refuses to run.
	Key ed25519.PublicKey
	// Logger gets a line per session that cannot be indexed; nil
	// discards.
	Logger *slog.Logger

	polled map[string]time.Time // live sessions last looked at without news
}

// Run indexes until ctx ends, a pass every Poll.
func (x *Indexer) Run(ctx context.Context) error {
	poll := x.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var adopted, continued time.Time
	for {
		if time.Since(adopted) >= adoptEvery {
			if err := x.adopt(ctx); err != nil && ctx.Err() == nil {
				x.logger().Warn("search index: look for sessions without an indexing state failed", "err", err)
			}
			adopted = time.Now()
		}
		if time.Since(continued) >= continuedEvery {
			if err := x.reopenContinued(ctx); err != nil && ctx.Err() == nil {
				x.logger().Warn("search index: look for continued recordings failed", "err", err)
			}
			continued = time.Now()
		}
		if _, err := x.Pass(ctx); err != nil && ctx.Err() == nil {
			x.logger().Warn("search index pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// adopt gives every session without an indexing state one, pending, and
// purges the entries of sessions whose recording retention deleted: the
// index must not keep what the recording no longer does (search leaves
// them out meanwhile). It finds both reading, and writes only what it
// found, so the registry's write lock is held for the writes alone.
func (x *Indexer) adopt(ctx context.Context) error {
	missing, err := x.ids(ctx, `SELECT s.id FROM sessions s
		WHERE NOT EXISTS (SELECT 1 FROM search_sessions x WHERE x.session_id = s.id) LIMIT 10000`)
	if err != nil {
		return err
	}
	deleted, err := x.ids(ctx, `SELECT x.session_id FROM search_sessions x JOIN sessions s ON s.id = x.session_id
		WHERE s.state = 'deleted' AND x.state <> 'purged' LIMIT 1000`)
	if err != nil || len(missing)+len(deleted) == 0 {
		return err
	}
	d := x.Index.d
	return x.write(ctx, func(tx *sql.Tx) error {
		for _, id := range missing {
			if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO search_sessions (session_id, state) VALUES (?, 'pending')
				ON CONFLICT (session_id) DO NOTHING`), id); err != nil {
				return err
			}
		}
		for _, id := range deleted {
			if _, err := tx.ExecContext(ctx, d.rebind("DELETE FROM search_entries WHERE session_id = ?"), id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE search_sessions SET state = 'purged', cursor = '', bytes = 0, entries = 0
				WHERE session_id = ?`), id); err != nil {
				return err
			}
		}
		return nil
	})
}

// ids runs a query of one text column.
func (x *Indexer) ids(ctx context.Context, query string) ([]string, error) {
	rows, err := x.Index.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("find sessions to adopt or purge: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find sessions to adopt or purge: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func (x *Indexer) logger() *slog.Logger {
	if x.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return x.Logger
}

func (x *Indexer) owner() string {
	if x.Owner == "" {
		return "indexer"
	}
	return x.Owner
}

func (x *Indexer) write(ctx context.Context, fn func(*sql.Tx) error) error {
	if x.Write != nil {
		return x.Write(ctx, fn)
	}
	tx, err := x.Index.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// session indexes a claimed session from its cursor on, a batch of chunks
// per transaction, until it reaches what the store has, and says whether
// it found anything new.
func (x *Indexer) session(ctx context.Context, c candidate) (bool, error) {
	src := recorder.SessionSource(x.Store, c.id, c.started)
	final := !c.live()
	ex := newExtractor(x.Bound, c.bytes, c.entries)
	if stop, progressed, err := x.gateContinuation(ctx, src, c, ex); stop {
		return progressed, err
	}
	for progressed := false; ; progressed = true {
		cur, err := recorder.Feed(ctx, src, c.cursor, chunksPerBatch, ex.add)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, recorder.ErrNotFound) && !final {
				return progressed, ctx.Err() // not in the store yet: try again later
			}
			x.logger().Warn("search index: cannot read recording", "session", c.id, "err", err)
			return true, x.save(ctx, c.id, cur, ex, stateFailed, err.Error())
		}
		more := cur.Next != c.cursor.Next
		state := statePartial
		if ex.cut || (!more && final) {
			state = stateDone
		}
		if state == statePartial && !more {
			return progressed, nil // nothing new; the claim stands
		}
		if err := x.save(ctx, c.id, cur, ex, state, ""); err != nil {
			return true, err
		}
		if state != statePartial {
			return true, nil
		}
		c.cursor = cur
	}
}

// save writes the entries extracted so far and the session's new state
// and cursor in one transaction, releasing the claim when done.
func (x *Indexer) save(ctx context.Context, id string, cur recorder.FeedCursor, ex *extractor, state, problem string) error {
	ix := x.Index
	entries := ex.flush()
	curText, _ := json.Marshal(cur)
	until := ix.stamp(ix.now().Add(claimFor))
	if state != statePartial {
		until = ""
	}
	err := x.write(ctx, func(tx *sql.Tx) error {
		if err := insertEntries(ctx, tx, ix.d, id, entries); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, ix.d.rebind(`UPDATE search_sessions SET state = ?, cursor = ?, bytes = ?, entries = ?,
			cut = ?, claimed_until = ?, updated_at = ?, problem = ? WHERE session_id = ?`),
			state, string(curText), ex.bytes, ex.entries, boolInt(ex.cut), until, ix.stamp(ix.now()), problem, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("index session %s: %w", id, err)
	}
	return nil
}

// insertBatch is how many entries one INSERT statement carries.
const insertBatch = 100

func insertEntries(ctx context.Context, tx *sql.Tx, d dialect, id string, entries []Entry) error {
	for len(entries) > 0 {
		n := min(len(entries), insertBatch)
		args := make([]any, 0, 4*n)
		for _, e := range entries[:n] {
			args = append(args, id, e.At.UTC().Format(timeLayout), string(e.Where), e.Body)
		}
		q := "INSERT INTO search_entries (session_id, at, kind, body) VALUES " + repeatJoin("(?, ?, ?, ?)", n)
		if _, err := tx.ExecContext(ctx, d.rebind(q), args...); err != nil {
			return fmt.Errorf("insert search entries: %w", err)
		}
		entries = entries[n:]
	}
	return nil
}

// repeatJoin is n copies of s joined by ", ": a statement's parameter list.
func repeatJoin(s string, n int) string { return strings.TrimSuffix(strings.Repeat(s+", ", n), ", ") }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
