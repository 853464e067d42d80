package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// SessionRecord is one row of the session index: who ran which session
// where, and the state of its recording. The recorder's state changes keep
// it; `sallyport sessions list` and the console read it.
type SessionRecord struct {
	ID              string
	Identity        string
	Owner           string
	Target          string
	Protocol        string // ssh, postgres, mysql
	Login           string
	Source          string
	BreakglassGrant string
	// State is the recording state: live, uploading, stored, incomplete, degraded.
	// A session its replica still holds as live or uploading, though that
	// replica's lease lapsed, reads as incomplete, Reason saying so: the
	// replica is gone, and with it the session (see markLost).
	State string
	// Reason explains an incomplete or degraded recording.
	Reason string
	// Dir is the key prefix of the recording's objects in the store.
	Dir       string
	StartedAt time.Time
	EndedAt   time.Time // zero while live
	// Bytes counts every byte that crossed: terminal, exec streams whole,
	// sftp, forwards, query results (see recorder.StateChange).
	Bytes  int64
	Events int64
	// KillRequested is when an operator asked to end the session; zero: never.
	KillRequested time.Time
	KillReason    string
	// Replica is the serve process that runs the session (see
	// RegisterReplica); empty when not known. The first writer of a row
	// sets it: a replica recovering a crashed session's recording later
	// does not become its runner.
	Replica string

	lost bool // its replica's lease lapsed while it ran (markLost)
}

// SessionFilter selects sessions. Zero fields match everything.
type SessionFilter struct {
	Identity string
	Target   string
	Since    time.Time // started at or after
	Live     bool      // only sessions still running
	Limit    int       // the newest n, still oldest first; 0: all
}

const sessionColumns = `id, identity_id, owner, target, protocol, login, source, breakglass_grant,
	state, reason, object_dir, started_at, ended_at, bytes, events, kill_requested, kill_reason, replica`

func scanSession(s scanner) (r SessionRecord, err error) {
	return r, s.Scan(&r.ID, &r.Identity, &r.Owner, &r.Target, &r.Protocol, &r.Login, &r.Source,
		&r.BreakglassGrant, &r.State, &r.Reason, &r.Dir, timeCol{&r.StartedAt}, timeCol{&r.EndedAt},
		&r.Bytes, &r.Events, timeCol{&r.KillRequested}, &r.KillReason, &r.Replica)
}

// PutSession inserts or updates a session's row. A pending kill request is
// kept: it is the operator's, not the recorder's; so is the replica that
// first wrote the row. Bytes never shrinks: the recorder reports every byte
// that crossed when the session ends, and later only what the recording
// holds (see recorder.StateChange).
func (s *Store) PutSession(ctx context.Context, r SessionRecord) error {
	err := s.Update(ctx, func(t iga.Tx) error {
		var e encoder
		return t.(*tx).insert(ctx, &e, `INSERT INTO sessions (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '', ?)
			ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = excluded.reason,
			object_dir = excluded.object_dir, ended_at = excluded.ended_at,
			bytes = CASE WHEN excluded.bytes > sessions.bytes THEN excluded.bytes ELSE sessions.bytes END,
			events = excluded.events, owner = excluded.owner, login = excluded.login,
			breakglass_grant = excluded.breakglass_grant`,
			r.ID, r.Identity, r.Owner, r.Target, r.Protocol, r.Login, r.Source, r.BreakglassGrant,
			r.State, r.Reason, r.Dir, e.time(r.StartedAt), e.time(r.EndedAt), r.Bytes, r.Events, r.Replica)
	})
	if err != nil {
		return fmt.Errorf("index session %s: %w", r.ID, err)
	}
	return nil
}

// Session returns one session, or an error wrapping iga.ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (SessionRecord, error) {
	r, err := s.session(ctx, id)
	if errors.Is(err, iga.ErrNotFound) {
		return SessionRecord{}, err
	}
	if err != nil {
		return SessionRecord{}, fmt.Errorf("read session %q: %w", id, err)
	}
	rs := []SessionRecord{r}
	if err := s.markLost(ctx, rs, time.Now()); err != nil {
		return SessionRecord{}, err
	}
	return rs[0], nil
}

// Sessions returns the sessions matching f, oldest first.
func (s *Store) Sessions(ctx context.Context, f SessionFilter) ([]SessionRecord, error) {
	var e encoder
	var where []string
	var args []any
	add := func(cond string, arg any) { where, args = append(where, cond), append(args, arg) }
	if f.Identity != "" {
		add("identity_id = ?", f.Identity)
	}
	if f.Target != "" {
		add("target = ?", f.Target)
	}
	if !f.Since.IsZero() {
		add("started_at >= ?", e.time(f.Since))
	}
	if f.Live {
		where = append(where, "ended_at IS NULL")
	}
	if f.Limit > 0 {
		args = append(args, f.Limit)
	}
	rows, err := s.query(ctx, sessionsQuery(where, f.Limit > 0), args...)
	out, err := collect(rows, err, scanSession)
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	if err := s.markLost(ctx, out, time.Now()); err != nil {
		return nil, err
	}
	if f.Live {
		out = slices.DeleteFunc(out, func(r SessionRecord) bool { return r.lost })
	}
	return out, nil
}

// markLost shows the sessions of a replica whose lease lapsed (it crashed,
// or lost the registry) as what they are: ended with it, their recording
// incomplete until that replica restarts with its spool and uploads the
// rest. Only the reading is changed, so a replica that renews its lease
// late shows its sessions live again, and the janitors, which read
// SessionHolders, still treat those sessions' credentials as orphaned.
func (s *Store) markLost(ctx context.Context, rs []SessionRecord, now time.Time) error {
	if !slices.ContainsFunc(rs, func(r SessionRecord) bool { return r.EndedAt.IsZero() && r.Replica != "" }) {
		return nil
	}
	replicas, err := s.Replicas(ctx)
	if err != nil {
		return fmt.Errorf("read sessions: %w", err)
	}
	lease := make(map[string]time.Time, len(replicas))
	for _, r := range replicas {
		lease[r.ID] = r.LeaseUntil
	}
	for i := range rs {
		r := &rs[i]
		if !r.EndedAt.IsZero() || r.Replica == "" || (r.State != "live" && r.State != "uploading") {
			continue
		}
		until, known := lease[r.Replica]
		if known && until.After(now) {
			continue
		}
		r.lost, r.State = true, "incomplete"
		lapsed := "is gone"
		if known {
			lapsed = "stopped renewing its lease at " + until.UTC().Format(time.RFC3339)
		}
		r.Reason = fmt.Sprintf("replica %s %s, and the session ended with it; "+
			"the rest of its recording is stored when that replica restarts with its spool", r.Replica, lapsed)
	}
	return nil
}

func sessionsQuery(where []string, limit bool) string {
	q := "SELECT " + sessionColumns + " FROM sessions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if !limit {
		return q + " ORDER BY started_at, id"
	}
	return "SELECT * FROM (" + q + " ORDER BY started_at DESC, id DESC LIMIT ?) newest ORDER BY started_at, id"
}

// stillLive fails with iga.ErrNotFound for an unknown session id, and
// says so for one that ended or whose replica was lost: nothing is left
// to verb.
func (s *Store) stillLive(ctx context.Context, id, verb string) error {
	r, err := s.Session(ctx, id)
	if err != nil {
		return err
	}
	if !r.EndedAt.IsZero() {
		return fmt.Errorf("session %s already ended at %s", id, r.EndedAt.Format(time.RFC3339))
	}
	if r.lost {
		return fmt.Errorf("session %s has nothing left to %s: %s", id, verb, r.Reason)
	}
	return nil
}

// RequestKill asks whichever process runs session id to end it. It fails
// with iga.ErrNotFound for an unknown session and says so for one that
// already ended.
func (s *Store) RequestKill(ctx context.Context, id, reason string, at time.Time) error {
	if err := s.stillLive(ctx, id, "end"); err != nil {
		return err
	}
	err := s.Update(ctx, func(t iga.Tx) error {
		var e encoder
		return t.(*tx).insert(ctx, &e, "UPDATE sessions SET kill_requested = ?, kill_reason = ? WHERE id = ?",
			e.time(at), reason, id)
	})
	if err != nil {
		return fmt.Errorf("request kill of session %s: %w", id, err)
	}
	return nil
}

// RequestWatch asks whichever process runs session id to have its
// recording reach the store faster until until: a console of another
// replica follows it there (schema step 13). A later call extends the
// watch, an earlier one leaves it; a watch nobody renews lapses. It fails
// as RequestKill does for an unknown session, or one that ended.
func (s *Store) RequestWatch(ctx context.Context, id string, until time.Time) error {
	if err := s.stillLive(ctx, id, "watch"); err != nil {
		return err
	}
	err := s.Update(ctx, func(t iga.Tx) error {
		var e encoder
		at := e.time(until)
		return t.(*tx).insert(ctx, &e, "UPDATE sessions SET watch_until = ? WHERE id = ? AND (watch_until IS NULL OR watch_until < ?)",
			at, id, at)
	})
	if err != nil {
		return fmt.Errorf("request watch of session %s: %w", id, err)
	}
	return nil
}

// sessionRequests reads the live sessions with a pending kill request or
// a watch that lasts beyond now: each half reads only its few rows, by its
// partial index (sessions_pending_kills, sessions_watched), in one round
// trip. A session both killed and watched comes twice.
const sessionRequests = `SELECT id, kill_requested, kill_reason, watch_until FROM sessions
	WHERE kill_requested IS NOT NULL AND ended_at IS NULL
	UNION ALL
	SELECT id, kill_requested, kill_reason, watch_until FROM sessions
	WHERE watch_until > ? AND ended_at IS NULL`

// SessionRequests returns, of the given live session ids, those with a
// pending kill request, with its reason, and those watched from another
// replica's console (RequestWatch), with when the watch lapses. It reads
// only the few sessions killed or watched: the session watcher of every
// replica calls it several times a second.
func (s *Store) SessionRequests(ctx context.Context, ids []string) (kills map[string]string, watched map[string]time.Time, err error) {
	var e encoder
	now := time.Now()
	rows, err := s.query(ctx, sessionRequests, e.time(now))
	type request struct {
		id, reason    string
		killed, until time.Time
	}
	reqs, err := collect(rows, err, func(sc scanner) (r request, err error) {
		return r, sc.Scan(&r.id, timeCol{&r.killed}, &r.reason, timeCol{&r.until})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read kill and watch requests: %w", err)
	}
	kills, watched = map[string]string{}, map[string]time.Time{}
	if len(reqs) == 0 {
		return kills, watched, nil // the usual poll: no set of the live ids to build
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for _, r := range reqs {
		if !want[r.id] {
			continue
		}
		if !r.killed.IsZero() {
			kills[r.id] = r.reason
		}
		if r.until.After(now) {
			watched[r.id] = r.until
		}
	}
	return kills, watched, nil
}
