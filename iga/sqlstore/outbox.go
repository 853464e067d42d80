package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// This file is the audit export outbox (schema step 0010): every audit
// event enters audit_outbox in the transaction that writes it (a trigger),
// each export sink marks the events it has had, and the events every sink
// has had are pruned. The exporter itself lives in package auditexport.

// ErrSinkBusy reports that another process holds a sink's row: it is
// exporting to that sink now, and this one must not.
var ErrSinkBusy = errors.New("another replica is exporting to this sink")

// sinkForgetAfter is how long a sink no running exporter names keeps
// holding events in the outbox: long enough for a rolling upgrade or a
// week-end outage of the replica that exports to it, short enough that a
// sink removed from the config stops the outbox from growing.
const sinkForgetAfter = 7 * 24 * time.Hour

const pendingQuery = `SELECT e.id, e.occurred_at, e.event_type, e.actor, e.identity_id, e.target, e.action,
	e.source, e.allowed, e.reasons, e.detail
	FROM audit_outbox o JOIN audit_events e ON e.id = o.event_id
	WHERE o.event_id > ? AND NOT EXISTS (SELECT 1 FROM audit_export_done d WHERE d.sink = ? AND d.event_id = o.event_id)
	ORDER BY o.event_id LIMIT ?`

// RegisterSinks records the sinks an exporter delivers to, so the outbox
// keeps every event until each of them has had it, and marks them seen now.
func (s *Store) RegisterSinks(ctx context.Context, sinks []string) error {
	var e encoder
	now := e.time(time.Now())
	err := s.Update(ctx, func(t iga.Tx) error {
		for _, name := range sinks {
			if _, err := t.(*tx).exec(ctx, `INSERT INTO audit_export_sinks (name, seen_at) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at`, name, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("register audit export sinks: %w", err)
	}
	return nil
}

// ExportBatch passes deliver up to limit outbox events with ids above
// after that sink has not had yet, oldest first, and marks them delivered
// to it when deliver returns nil. It returns how many it delivered (0:
// none waiting). after is a hint that spares reading the events the sink
// already had (0: from the start); an event with a lower id that commits
// late is found by the next call from 0. On PostgreSQL the sink's row is
// held locked throughout, so two replicas never deliver one event to one
// sink; while another holds it, ExportBatch returns ErrSinkBusy. SQLite
// has one serve process, and there delivery runs outside any transaction,
// so admissions never wait on a slow sink.
func (s *Store) ExportBatch(ctx context.Context, sink string, after int64, limit int, deliver func(context.Context, []iga.AuditEvent) error) (int, error) {
	if s.d != postgresDialect {
		return s.exportUnlocked(ctx, sink, after, limit, deliver)
	}
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("export to %s: begin: %w", sink, err)
	}
	defer sqlTx.Rollback()
	t := &tx{reader: reader{d: s.d, stmts: s.stmts, tx: sqlTx}}
	var name string
	err = t.queryRow(ctx, `SELECT name FROM audit_export_sinks WHERE name = ? FOR UPDATE SKIP LOCKED`, sink).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrSinkBusy
	}
	if err != nil {
		return 0, fmt.Errorf("export to %s: lock sink: %w", sink, err)
	}
	n, err := exportIn(ctx, t, sink, after, limit, deliver)
	if err != nil || n == 0 {
		return 0, err
	}
	if err := sqlTx.Commit(); err != nil {
		return 0, fmt.Errorf("export to %s: commit: %w", sink, err)
	}
	return n, nil
}

// exportUnlocked is ExportBatch for SQLite: read, deliver, then mark in a
// transaction of its own.
func (s *Store) exportUnlocked(ctx context.Context, sink string, after int64, limit int, deliver func(context.Context, []iga.AuditEvent) error) (int, error) {
	return exportOnce(ctx, s.reader, sink, after, limit, deliver, func(evs []iga.AuditEvent) error {
		return s.Update(ctx, func(t iga.Tx) error { return markDone(ctx, t.(*tx), sink, evs) })
	})
}

// exportIn reads, delivers and marks one batch inside t.
func exportIn(ctx context.Context, t *tx, sink string, after int64, limit int, deliver func(context.Context, []iga.AuditEvent) error) (int, error) {
	return exportOnce(ctx, t.reader, sink, after, limit, deliver, func(evs []iga.AuditEvent) error {
		return markDone(ctx, t, sink, evs)
	})
}

// exportOnce reads up to limit events after the id after that sink has not
// had, oldest first, delivers them and marks them delivered with mark.
func exportOnce(ctx context.Context, r reader, sink string, after int64, limit int,
	deliver func(context.Context, []iga.AuditEvent) error, mark func([]iga.AuditEvent) error) (int, error) {
	evs, err := r.pending(ctx, sink, after, limit)
	if err != nil {
		return 0, fmt.Errorf("export to %s: read outbox: %w", sink, err)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	if err := deliver(ctx, evs); err != nil {
		return 0, err
	}
	if err := mark(evs); err != nil {
		return 0, fmt.Errorf("export to %s: mark delivered: %w", sink, err)
	}
	return len(evs), nil
}

// pending reads up to limit events after the id after that sink has not
// had, oldest first.
func (r reader) pending(ctx context.Context, sink string, after int64, limit int) ([]iga.AuditEvent, error) {
	rows, err := r.query(ctx, pendingQuery, after, sink, limit)
	return collect(rows, err, scanAudit)
}

func markDone(ctx context.Context, t *tx, sink string, evs []iga.AuditEvent) error {
	for _, ev := range evs {
		if _, err := t.exec(ctx, `INSERT INTO audit_export_done (sink, event_id) VALUES (?, ?)
			ON CONFLICT (sink, event_id) DO NOTHING`, sink, ev.ID); err != nil {
			return err
		}
	}
	return nil
}

// OutboxLag reports how many outbox events sink has not had yet and when
// the oldest of them happened (zero when none wait).
func (s *Store) OutboxLag(ctx context.Context, sink string) (int, time.Time, error) {
	var n int
	var oldest time.Time
	// Every mark is of an event in the outbox (pruning deletes both
	// together), so two counts of index ranges give the difference.
	err := s.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM audit_outbox) -
		(SELECT COUNT(*) FROM audit_export_done WHERE sink = ?)`, sink).Scan(&n)
	if err != nil {
		return 0, oldest, fmt.Errorf("read export lag of %s: %w", sink, err)
	}
	if n == 0 {
		return 0, oldest, nil
	}
	evs, err := s.pending(ctx, sink, 0, 1)
	if err != nil || len(evs) == 0 {
		return n, oldest, err
	}
	return n, evs[0].Time, nil
}

// PruneOutbox deletes the outbox events every registered sink has had (all
// of them when no sink is registered: nobody is waiting for them), and
// forgets sinks no exporter has named for sinkForgetAfter. It returns how
// many events it deleted.
func (s *Store) PruneOutbox(ctx context.Context) (int64, error) {
	var deleted int64
	var e encoder
	stale := e.time(time.Now().Add(-sinkForgetAfter))
	err := s.Update(ctx, func(it iga.Tx) error {
		t := it.(*tx)
		if _, err := t.exec(ctx, `DELETE FROM audit_export_sinks WHERE seen_at < ?`, stale); err != nil {
			return err
		}
		res, err := t.exec(ctx, `DELETE FROM audit_outbox WHERE NOT EXISTS (
			SELECT 1 FROM audit_export_sinks k WHERE NOT EXISTS (
				SELECT 1 FROM audit_export_done d WHERE d.sink = k.name AND d.event_id = audit_outbox.event_id))`)
		if err != nil {
			return err
		}
		deleted, _ = res.RowsAffected()
		_, err = t.exec(ctx, `DELETE FROM audit_export_done WHERE NOT EXISTS (
			SELECT 1 FROM audit_outbox o WHERE o.event_id = audit_export_done.event_id)
			OR sink NOT IN (SELECT name FROM audit_export_sinks)`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune audit outbox: %w", err)
	}
	return deleted, nil
}
