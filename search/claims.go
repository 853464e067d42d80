package search

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// candidate is a session with content to index.
type candidate struct {
	id, state string
	started   time.Time
	cursor    recorder.FeedCursor
	bytes     int64
	entries   int
	claimedBy string
	until     string // claimed_until
	// verified: the caller verified the recording (Reindex), so a
	// continuation is read without verifying it again.
	verified bool
}

// live says more may reach the store.
func (c candidate) live() bool { return recorder.State(c.state).InTransit() }

// Pass indexes what is pending now: up to endedPerPass ended sessions,
// then the live ones due a look. It returns how many sessions it found
// something new in. Passes of one Indexer must not overlap.
func (x *Indexer) Pass(ctx context.Context) (int, error) {
	ended, err := x.candidates(ctx, finalStates, endedPerPass)
	if err != nil {
		return 0, err
	}
	live, err := x.candidates(ctx, "('live', 'uploading')", maxLive)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range append(ended, live...) {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		progressed, err := x.visit(ctx, c)
		if err != nil {
			return n, err
		}
		if progressed {
			n++
		}
	}
	return n, nil
}

// visit claims and indexes one candidate, unless it is a live session
// looked at less than LivePoll ago without news.
func (x *Indexer) visit(ctx context.Context, c candidate) (bool, error) {
	now := x.Index.now()
	if last, ok := x.polled[c.id]; ok && c.live() && now.Sub(last) < x.livePoll() {
		return false, nil
	}
	ok, err := x.claim(ctx, &c)
	if err != nil || !ok {
		return false, err
	}
	progressed, err := x.session(ctx, c)
	if x.polled == nil {
		x.polled = map[string]time.Time{}
	}
	if c.live() && !progressed {
		x.polled[c.id] = now
	} else {
		delete(x.polled, c.id)
	}
	return progressed, err
}

func (x *Indexer) livePoll() time.Duration {
	if x.LivePoll > 0 {
		return x.LivePoll
	}
	return DefaultLivePoll
}

// maxLive bounds the live sessions one pass looks at: more than any
// bastion runs at once.
const maxLive = 100000

// candidatesSQL lists the sessions to index in the recording states %s.
const candidatesSQL = `SELECT s.id, s.state, s.started_at, x.cursor, x.bytes, x.entries, x.claimed_by, x.claimed_until
FROM search_sessions x JOIN sessions s ON s.id = x.session_id
WHERE x.state IN ('pending', 'partial') AND s.state IN %s AND (x.claimed_until < ? OR x.claimed_by = ?)
ORDER BY s.started_at, s.id LIMIT ?`

func (x *Indexer) candidates(ctx context.Context, states string, limit int) ([]candidate, error) {
	ix := x.Index
	return x.queryCandidates(ctx, "list sessions to index", ix.d.rebind(fmt.Sprintf(candidatesSQL, states)),
		ix.stamp(ix.now()), x.owner(), limit)
}

// queryCandidates runs query, whose rows are a session's id, state and
// started_at, then its search_sessions cursor, bytes, entries, claimed_by
// and claimed_until; doing names the query in errors. A started_at that
// does not parse is left zero.
func (x *Indexer) queryCandidates(ctx context.Context, doing, query string, args ...any) ([]candidate, error) {
	rows, err := x.Index.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	defer rows.Close()
	var out []candidate
	for rows.Next() {
		var c candidate
		var started, cursor string
		if err := rows.Scan(&c.id, &c.state, &started, &cursor, &c.bytes, &c.entries, &c.claimedBy, &c.until); err != nil {
			return nil, fmt.Errorf("%s: %w", doing, err)
		}
		c.started, _ = time.Parse(time.RFC3339Nano, started)
		c.cursor = parseCursor(cursor)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	return out, nil
}

// parseCursor decodes a search_sessions cursor: empty or bad, it starts
// over.
func parseCursor(text string) recorder.FeedCursor {
	var cur recorder.FeedCursor
	if text != "" {
		_ = json.Unmarshal([]byte(text), &cur)
	}
	return cur
}

// claim takes the session for this indexer for claimFor, unless another
// indexer holds it, and refreshes c from the row it claimed: another
// indexer may have moved the session on since c was read. A claim of its
// own with more than half of it left stands without a write.
func (x *Indexer) claim(ctx context.Context, c *candidate) (bool, error) {
	ix := x.Index
	now := ix.now()
	if c.claimedBy == x.owner() && c.until > ix.stamp(now.Add(claimFor/2)) {
		return true, nil
	}
	var n int64
	err := x.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, ix.d.rebind(`UPDATE search_sessions SET claimed_by = ?, claimed_until = ?
			WHERE session_id = ? AND state IN (?, ?) AND (claimed_until < ? OR claimed_by = ?)`),
			x.owner(), ix.stamp(now.Add(claimFor)), c.id, statePending, statePartial, ix.stamp(now), x.owner())
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil || n != 1 {
			return err
		}
		var cursor string
		err = tx.QueryRowContext(ctx, ix.d.rebind("SELECT cursor, bytes, entries FROM search_sessions WHERE session_id = ?"), c.id).
			Scan(&cursor, &c.bytes, &c.entries)
		c.cursor = parseCursor(cursor)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim session %s to index: %w", c.id, err)
	}
	return n == 1, nil
}

func (ix *Index) stamp(t time.Time) string { return t.UTC().Format(timeLayout) }
