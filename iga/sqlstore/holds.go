package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// StateDeleted is the recording state of a session whose recording the
// retention job deleted: the index keeps the session, its Reason says
// when and why.
const StateDeleted = "deleted"

// Audit event types of legal holds and retention.
const (
	AuditRecordingHold    = "recording_hold"
	AuditRecordingRelease = "recording_release"
	AuditRecordingDelete  = "recording_delete"
)

// RecordingHold is a legal hold on a session's recording: while it lasts,
// retention does not delete the recording.
type RecordingHold struct {
	Session string    `json:"session"`
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
}

// ErrNotHeld is returned by ReleaseRecording for a session not on hold.
var ErrNotHeld = errors.New("not on legal hold")

const holdColumns = "session_id, held_at, held_by, reason"

func scanHold(s scanner) (h RecordingHold, err error) {
	return h, s.Scan(&h.Session, timeCol{&h.At}, &h.By, &h.Reason)
}

// HoldRecording puts session h.Session's recording on legal hold and
// audits it, in one transaction. A session already on hold keeps its
// first hold, which is returned with created false; an unknown session is
// an error wrapping iga.ErrNotFound.
func (s *Store) HoldRecording(ctx context.Context, h RecordingHold) (held RecordingHold, created bool, err error) {
	err = s.Update(ctx, func(t iga.Tx) error {
		x := t.(*tx)
		sess, err := x.session(ctx, h.Session)
		if err != nil {
			return err
		}
		held, err = scanHold(x.queryRow(ctx, "SELECT "+holdColumns+" FROM recording_holds WHERE session_id = ?", h.Session))
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		held, created = h, true
		var e encoder
		if err := x.insert(ctx, &e, "INSERT INTO recording_holds ("+holdColumns+") VALUES (?, ?, ?, ?)",
			h.Session, e.time(h.At), h.By, h.Reason); err != nil {
			return err
		}
		return x.AppendAudit(ctx, holdEvent(AuditRecordingHold, sess, h, "legal hold on the recording of session "))
	})
	if err != nil {
		return RecordingHold{}, false, fmt.Errorf("hold recording of session %s: %w", h.Session, err)
	}
	return held, created, nil
}

// ReleaseRecording ends the legal hold on a session's recording and
// audits it, with the release's actor and reason; it returns the hold
// that ended, or an error wrapping ErrNotHeld.
func (s *Store) ReleaseRecording(ctx context.Context, rel RecordingHold) (RecordingHold, error) {
	var held RecordingHold
	err := s.Update(ctx, func(t iga.Tx) error {
		x := t.(*tx)
		sess, err := x.session(ctx, rel.Session)
		if err != nil {
			return err
		}
		held, err = scanHold(x.queryRow(ctx, "SELECT "+holdColumns+" FROM recording_holds WHERE session_id = ?", rel.Session))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotHeld
		}
		if err != nil {
			return err
		}
		if _, err := x.exec(ctx, "DELETE FROM recording_holds WHERE session_id = ?", rel.Session); err != nil {
			return err
		}
		return x.AppendAudit(ctx, holdEvent(AuditRecordingRelease, sess, rel, "legal hold released on the recording of session "))
	})
	if err != nil {
		return RecordingHold{}, fmt.Errorf("release recording of session %s: %w", rel.Session, err)
	}
	return held, nil
}

func holdEvent(typ string, sess SessionRecord, h RecordingHold, what string) iga.AuditEvent {
	return iga.AuditEvent{Time: h.At, Type: typ, Actor: h.By, Identity: sess.Identity, Target: sess.Target,
		Detail: what + sess.ID + ": " + h.Reason}
}

// session reads one session row, inside a transaction or not; an unknown
// id is an error wrapping iga.ErrNotFound.
func (r reader) session(ctx context.Context, id string) (SessionRecord, error) {
	rec, err := scanSession(r.queryRow(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return rec, fmt.Errorf("session %q: %w", id, iga.ErrNotFound)
	}
	return rec, err
}

// RecordingHold returns the hold on a session's recording; ok is false
// when there is none.
func (s *Store) RecordingHold(ctx context.Context, id string) (h RecordingHold, ok bool, err error) {
	h, err = scanHold(s.queryRow(ctx, "SELECT "+holdColumns+" FROM recording_holds WHERE session_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return RecordingHold{}, false, nil
	}
	if err != nil {
		return RecordingHold{}, false, fmt.Errorf("read legal hold of session %s: %w", id, err)
	}
	return h, true, nil
}

// RecordingHolds returns every hold, by session id: holds are few.
func (s *Store) RecordingHolds(ctx context.Context) (map[string]RecordingHold, error) {
	rows, err := s.query(ctx, "SELECT "+holdColumns+" FROM recording_holds")
	hs, err := collect(rows, err, scanHold)
	if err != nil {
		return nil, fmt.Errorf("read legal holds: %w", err)
	}
	out := make(map[string]RecordingHold, len(hs))
	for _, h := range hs {
		out[h.Session] = h
	}
	return out, nil
}

// RetentionDue returns up to limit sessions whose recording ended before
// cutoff, is in the store and is not on legal hold: what the retention
// job deletes, oldest first.
func (s *Store) RetentionDue(ctx context.Context, cutoff time.Time, limit int) ([]SessionRecord, error) {
	var e encoder
	c := e.time(cutoff)
	if e.err != nil {
		return nil, fmt.Errorf("read sessions due for deletion: %w", e.err)
	}
	rows, err := s.query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE ended_at IS NOT NULL AND ended_at < ? AND state IN ('stored', 'incomplete', 'degraded')
		AND id NOT IN (SELECT session_id FROM recording_holds)
		ORDER BY ended_at, id LIMIT ?`, c, limit)
	out, err := collect(rows, err, scanSession)
	if err != nil {
		return nil, fmt.Errorf("read sessions due for deletion: %w", err)
	}
	return out, nil
}

// MarkRecordingDeleted records that retention deleted the recording of
// session id at at: the session stays in the index in StateDeleted, its
// reason saying so, and the audit trail gets a recording_delete event.
func (s *Store) MarkRecordingDeleted(ctx context.Context, id string, at time.Time, detail string) error {
	reason := "recording deleted by retention on " + at.UTC().Format(time.DateOnly)
	err := s.Update(ctx, func(t iga.Tx) error {
		x := t.(*tx)
		r, err := x.session(ctx, id)
		if err != nil {
			return err
		}
		if _, err := x.exec(ctx, "UPDATE sessions SET state = ?, reason = ? WHERE id = ?", StateDeleted, reason, id); err != nil {
			return err
		}
		return x.AppendAudit(ctx, iga.AuditEvent{Time: at, Type: AuditRecordingDelete, Actor: "sallyport",
			Identity: r.Identity, Target: r.Target, Detail: "recording of session " + id + " deleted: " + detail})
	})
	if err != nil {
		return fmt.Errorf("mark recording of session %s deleted: %w", id, err)
	}
	return nil
}
