package search

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// A session whose replica was lost is sealed by a survivor from what
// reached the store (recorder.SealFromStore): the indexer reads it to its
// sealed end and marks it done. If the lost replica comes back, it stores
// the rest of the session beside the sealed recording as a signed
// continuation, which recorder.Feed reads after the sealed chunks, and
// the session index's reason then says "... as a signed continuation
// (continuation/) ...". The indexer
//
//   - verifies a recording (recorder.Verify, as `sallyport verify` does)
//     before it reads a continuation it has not read yet, and leaves a
//     continuation that fails out of the index (the session is failed);
//   - every continuedEvery, takes up again the sessions a survivor sealed
//     that it finished while their continuation was not in the store yet.

// continuedEvery is how often Run looks for continued sessions it has
// finished: a lost replica's rest is searchable within about this long of
// reaching the store. The look reads the seals of lost replicas' sessions
// (a few rows), and the store only for those whose reason says a
// continuation was stored.
const continuedEvery = time.Minute

// continuedSQL lists the sessions a survivor sealed (lost_replica_seals)
// that are indexed to their end, not cut at their bound, and whose reason
// says the lost replica stored a continuation. CROSS JOIN keeps SQLite
// from reading search_sessions first: the seals are the few rows.
const continuedSQL = `SELECT s.id, s.state, s.started_at, x.cursor, x.bytes, x.entries, x.claimed_by, x.claimed_until
FROM lost_replica_seals l CROSS JOIN search_sessions x CROSS JOIN sessions s
WHERE x.session_id = l.session_id AND s.id = l.session_id
AND x.state = 'done' AND x.cut = 0 AND s.state = 'incomplete' AND s.reason LIKE '%continuation/%'`

// unread says c holds chunks the cursor has not reached.
func unread(c *recorder.Continuation, cur recorder.FeedCursor) bool {
	return c != nil && len(c.Objects) > 0 && cur.Next <= c.Continues.Seq+len(c.Objects)
}

// gateContinuation keeps Feed from reading a continuation that fails
// verification: when stop, session returns progressed and err. It looks
// at every session but a live one: a lost replica that comes back
// reports its session uploading before it stores the continuation.
func (x *Indexer) gateContinuation(ctx context.Context, src recorder.Source, c candidate, ex *extractor) (stop, progressed bool, err error) {
	if c.verified || recorder.State(c.state) == recorder.StateLive {
		return false, false, nil
	}
	problem, err := x.checkContinuation(ctx, src, c.cursor)
	if err != nil {
		x.logger().Warn("search index: cannot verify recording; will try again", "session", c.id, "err", err)
		return true, false, ctx.Err()
	}
	if problem == "" {
		return false, false, nil
	}
	x.logger().Warn("search index: continuation not indexed", "session", c.id, "problem", problem)
	return true, true, x.save(ctx, c.id, c.cursor, ex, stateFailed, problem)
}

// checkContinuation verifies src when it has a continuation that cur has
// not read, before Feed reads it. It returns why the recording may not be
// indexed further ("" when it may): Verify found it neither intact nor
// incomplete, or the indexer has no key to verify it with.
func (x *Indexer) checkContinuation(ctx context.Context, src recorder.Source, cur recorder.FeedCursor) (string, error) {
	c, err := recorder.LoadContinuation(ctx, src)
	if err == nil && !unread(c, cur) {
		return "", nil
	} // a continuation that does not parse is Verify's to report
	if x.Key == nil {
		return "the recording has a continuation, and the indexer has no recording key to verify it with", nil
	}
	rep, err := recorder.Verify(ctx, src, x.Key)
	if err != nil {
		return "", fmt.Errorf("verify the continuation of %s: %w", src.ID(), err)
	}
	if authentic(rep) {
		return "", nil
	}
	return "recording " + string(rep.Status) + ": " + rep.String(), nil
}

// authentic says a verified recording may be indexed: intact, or cut
// short by a crash or a lost replica but unmodified.
func authentic(rep recorder.Report) bool {
	return rep.Status == recorder.StatusIntact || rep.Status == recorder.StatusIncomplete
}

// reopenContinued takes up again each continued session it finished
// before its continuation reached the store: back to partial, from its
// cursor, so the next pass verifies the recording and reads the rest.
func (x *Indexer) reopenContinued(ctx context.Context) error {
	done, err := x.continuedDone(ctx)
	if err != nil {
		return err
	}
	for _, c := range done {
		cont, err := recorder.LoadContinuation(ctx, recorder.SessionSource(x.Store, c.id, c.started))
		if err == nil && !unread(cont, c.cursor) {
			continue
		} // one that does not parse is reopened: the pass reports it
		if err := x.reopen(ctx, c.id); err != nil {
			return err
		}
	}
	return nil
}

// continuedDone lists the sessions of continuedSQL.
func (x *Indexer) continuedDone(ctx context.Context) ([]candidate, error) {
	return x.queryCandidates(ctx, "find continued sessions", continuedSQL)
}

// reopen sets a done session back to partial, its cursor kept.
func (x *Indexer) reopen(ctx context.Context, id string) error {
	d := x.Index.d
	err := x.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, d.rebind(`UPDATE search_sessions SET state = ?, claimed_until = ''
			WHERE session_id = ? AND state = ?`), statePartial, id, stateDone)
		return err
	})
	if err != nil {
		return fmt.Errorf("take continued session %s up again: %w", id, err)
	}
	return nil
}
